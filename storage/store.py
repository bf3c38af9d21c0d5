"""The repositories behind one handle; also the engine's ``core.interfaces.InterviewStore``."""
from __future__ import annotations

from typing import Any

from storage.interviews import InterviewRepository
from storage.media import MediaRepository
from storage.resumes import ResumeRepository, to_public as resume_public
from storage.users import UserRepository


class Store:
    def __init__(self, db) -> None:
        self.db = db
        self.users = UserRepository(db)
        self.resumes = ResumeRepository(db)
        self.interviews = InterviewRepository(db)
        self.media = MediaRepository(db)

    # --- core.interfaces.InterviewStore ---------------------------------------------------------
    async def load_interview(self, user_id: str, interview_id: str) -> dict | None:
        return await self.interviews.load(user_id, str(interview_id))

    async def load_resume(self, user_id: str, resume_id: int) -> dict | None:
        try:
            resume_id = int(resume_id)
        except (TypeError, ValueError):
            return None
        doc = await self.resumes.get(user_id, resume_id)
        return None if doc is None else resume_public(doc)

    async def take_lease(self, user_id: str, interview_id: str, owner: str, ttl_seconds: float) -> dict | None:
        return await self.interviews.take_lease(user_id, str(interview_id), owner, ttl_seconds)

    async def check_leases(self, held: dict[str, int]) -> set[str]:
        return await self.interviews.check_leases(held)

    async def renew_leases(self, held: dict[str, int], ttl_seconds: float) -> set[str]:
        return await self.interviews.renew_leases(held, ttl_seconds)

    async def release_lease(self, interview_id: str, epoch: int) -> None:
        await self.interviews.release_lease(str(interview_id), epoch)

    async def update_interview(self, interview_id: str, *, set_fields: dict | None = None,
                               push: dict[str, Any] | None = None, epoch: int | None = None,
                               report_owner: str | None = None) -> None:
        await self.interviews.update(str(interview_id), set_fields=set_fields, push=push, epoch=epoch,
                                     report_owner=report_owner)

    async def append_transcript(self, interview_id: str, entries: list[dict], epoch: int | None = None) -> int:
        return await self.interviews.append_transcript(str(interview_id), entries, epoch=epoch)

    async def update_transcript_entry(self, interview_id: str, position: int, fields: dict,
                                      epoch: int | None = None) -> None:
        await self.interviews.update_transcript_entry(str(interview_id), position, fields, epoch=epoch)

    async def load_transcript(self, interview_id: str) -> list[dict]:
        return await self.interviews.load_transcript(str(interview_id))

    async def save_media(self, user_id: str, interview_id: str, media_id: str, *, kind: str, data: bytes,
                         content_type: str, meta: dict | None = None) -> None:
        """A recording of an utterance or a cheat frame (``core/recording.py``)."""
        await self.media.put(user_id, str(interview_id), media_id, kind=kind, data=data,
                             content_type=content_type, meta=meta)

    async def sweep_media(self, cutoff) -> int:
        """Retention: delete every recording and frame written before ``cutoff``."""
        return await self.media.sweep(cutoff)

    async def delete_interview(self, user_id: str, interview_id: str) -> bool:
        """Everything of the interview: recordings, frames, transcript buckets, the interview and
        its report. False if it is not ``user_id``'s."""
        if await self.interviews.get_owned(user_id, str(interview_id)) is None:
            return False
        await self.media.delete_interview(str(interview_id))
        await self.interviews.delete(str(interview_id))
        return True

    # --- what core/report.py reads (beyond the protocol) ------------------------------------------
    async def claim_report(self, interview_id: str, owner: str, ttl_seconds: float) -> bool:
        return await self.interviews.claim_report(str(interview_id), owner, ttl_seconds)

    async def report_claim(self, interview_id: str) -> dict | None:
        return await self.interviews.report_claim(str(interview_id))

    async def release_report(self, interview_id: str, owner: str) -> None:
        await self.interviews.release_report(str(interview_id), owner)

    async def load_interview_by_id(self, interview_id: str) -> dict | None:
        """The interview whoever owns it (background report writing)."""
        return await self.interviews.load_by_id(str(interview_id))

    async def load_report_source(self, interview_id: str) -> dict | None:
        """The whole interview with its transcript, for the scorers."""
        record = await self.interviews.load_by_id(str(interview_id))
        if record is None:
            return None
        record["transcript"] = await self.interviews.load_transcript(str(interview_id))
        return record

    async def list_report_pending(self) -> list[str]:
        return await self.interviews.list_report_pending()
