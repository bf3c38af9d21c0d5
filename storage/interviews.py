"""Interviews and their transcripts.

Data model (see docs/storage.md for the measurements behind it). With mongoeco every insert costs
time proportional to the size of the collection, while an update by ``_id`` costs the same however
big the collection is. So everything that happens *during* an interview is an update by ``_id``:

* ``interviews``: one document per interview, ``_id`` = the interview id (a string). Phase, status,
  questions, cheat events, code submissions... are ``$set``/``$push`` on it (``update_interview``).
* ``transcripts``: final utterances, in buckets of ``BUCKET_SIZE`` entries, ``_id`` =
  ``"<interview_id>:<n>"``. Bucket 0 is created together with the interview (when the REST call is
  made, not while the candidate speaks); appending is a ``$push`` by ``_id``. The interview's
  ``transcript_count`` (``$inc``) says where the next entry goes. Only every ``BUCKET_SIZE``-th
  utterance inserts a new bucket, and buckets keep documents small, so a long interview costs the same
  per utterance as a short one.
"""
from __future__ import annotations

from typing import Any

from storage.common import iso, next_sequence, utcnow
from storage.db import BEFORE, DESCENDING, DuplicateKeyError

BUCKET_SIZE = 200
UNFINISHED_REPORT_STATES = ("pending", "generating", "retrying")
SUMMARY_FIELDS = ("position_name", "position_type", "company_name", "status", "phase", "resume_id")
PROTECTED_FIELDS = {"_id", "user_id", "transcript_count"}


def bucket_id(interview_id: str, n: int) -> str:
    return f"{interview_id}:{n}"


def _public(doc: dict) -> dict:
    out = {"id": doc["_id"]}
    for key, value in doc.items():
        if key in ("_id", "user_id"):
            continue
        out[key] = iso(value) if hasattr(value, "tzinfo") and hasattr(value, "strftime") else value
    return out


def to_summary(doc: dict) -> dict:
    out = {"id": doc["_id"], "interview_time": iso(doc.get("interview_time"))}
    for key in SUMMARY_FIELDS:
        out[key] = doc.get(key)
    out["created_at"] = iso(doc.get("created_at"))
    out["updated_at"] = iso(doc.get("updated_at"))
    return out


class InterviewRepository:
    def __init__(self, db) -> None:
        self.db = db
        self.col = db.interviews
        self.transcripts = db.transcripts

    # --- REST ------------------------------------------------------------------------------------
    async def create(self, user_id: str, fields: dict) -> dict:
        interview_id = str(await next_sequence(self.db, "interview_id"))
        now = utcnow()
        doc = {"_id": interview_id, "user_id": user_id, **fields,
               "status": "created", "phase": None, "resume_id": None,
               "questions": [], "cheat_events": [], "code_submissions": [],
               "transcript_count": 0, "created_at": now, "updated_at": now}
        # bucket 0 first: an interview document never exists without its transcript bucket
        await self.transcripts.insert_one({"_id": bucket_id(interview_id, 0), "interview_id": interview_id,
                                           "n": 0, "entries": []})
        await self.col.insert_one(doc)
        return doc

    async def get_owned(self, user_id: str, interview_id: str) -> dict | None:
        doc = await self.col.find_one({"_id": interview_id})
        if doc is None or doc.get("user_id") != user_id:
            return None
        return doc

    async def list(self, user_id: str, *, limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
        total = await self.col.count_documents({"user_id": user_id})
        cursor = (self.col.find({"user_id": user_id}, {"questions": 0, "cheat_events": 0, "code_submissions": 0})
                  .sort([("created_at", DESCENDING), ("_id", DESCENDING)]).skip(offset).limit(limit))
        return await cursor.to_list(None), total

    # --- the engine's InterviewStore part --------------------------------------------------------
    async def load(self, user_id: str, interview_id: str) -> dict | None:
        doc = await self.get_owned(user_id, interview_id)
        return None if doc is None else _public(doc) | {"user_id": user_id}

    async def load_by_id(self, interview_id: str) -> dict | None:
        doc = await self.col.find_one({"_id": interview_id})
        return None if doc is None else _public(doc) | {"user_id": doc.get("user_id")}

    async def list_report_pending(self) -> list[str]:
        """Finished interviews whose report is unfinished, or was written by a fallback scorer
        (core/report.py upgrades those). Start-up only: a scan is acceptable."""
        cursor = self.col.find({"$or": [{"report_status": {"$in": list(UNFINISHED_REPORT_STATES)}},
                                        {"report_status": "ready", "report_degraded": True}]},
                               {"_id": 1}).sort("_id", 1)
        return [doc["_id"] async for doc in cursor]

    async def update(self, interview_id: str, *, set_fields: dict | None = None,
                     push: dict[str, Any] | None = None) -> None:
        update: dict[str, Any] = {}
        sets = dict(set_fields or {})
        bad = PROTECTED_FIELDS.intersection(sets) | PROTECTED_FIELDS.intersection(push or {})
        if bad:
            raise ValueError(f"update_interview may not change {sorted(bad)}")
        sets["updated_at"] = utcnow()
        update["$set"] = sets
        if push:
            update["$push"] = {key: {"$each": list(value) if isinstance(value, (list, tuple)) else [value]}
                               for key, value in push.items()}
        result = await self.col.update_one({"_id": interview_id}, update)
        if result.matched_count == 0:
            raise LookupError(f"no interview {interview_id!r}")

    async def append_transcript(self, interview_id: str, entries: list[dict]) -> None:
        entries = list(entries)
        if not entries:
            return
        before = await self.col.find_one_and_update(
            {"_id": interview_id}, {"$inc": {"transcript_count": len(entries)}, "$set": {"updated_at": utcnow()}},
            projection={"transcript_count": 1}, return_document=BEFORE)
        if before is None:
            raise LookupError(f"no interview {interview_id!r}")
        start = int(before.get("transcript_count", 0))
        chunks: dict[int, list[dict]] = {}
        for offset, entry in enumerate(entries):
            chunks.setdefault((start + offset) // BUCKET_SIZE, []).append(dict(entry))
        for n, chunk in sorted(chunks.items()):
            key = bucket_id(interview_id, n)
            push = {"$push": {"entries": {"$each": chunk}}}
            result = await self.transcripts.update_one({"_id": key}, push)
            if result.matched_count:
                continue
            try:
                await self.transcripts.insert_one({"_id": key, "interview_id": interview_id, "n": n,
                                                   "entries": chunk})
            except DuplicateKeyError:      # another writer created the bucket in between
                await self.transcripts.update_one({"_id": key}, push)

    async def load_transcript(self, interview_id: str) -> list[dict]:
        doc = await self.col.find_one({"_id": interview_id}, {"transcript_count": 1})
        if doc is None:
            return []
        buckets = max(1, -(-int(doc.get("transcript_count", 0)) // BUCKET_SIZE))
        entries: list[dict] = []
        for n in range(buckets):
            bucket = await self.transcripts.find_one({"_id": bucket_id(interview_id, n)})
            if bucket:
                entries.extend(bucket.get("entries", []))
        return entries
