"""Resumes: documents ``{_id: str(resume_id), resume_id: int, user_id, <content>, created_at,
updated_at}`` in the owner's shard ``resumes_NN`` (storage/common.py). The API's ``resume_id`` is a JSON number (the guide); the ``_id`` is its decimal string
because mongoeco looks string ids up directly but compares numeric ids by value (a scan)."""
from __future__ import annotations

from storage.common import ShardedCollection, iso, next_sequence, user_shard, utcnow
from storage.db import AFTER, DESCENDING

CONTENT_FIELDS = ("resume_name", "expected_position", "name", "education", "work_experience",
                  "projects", "skills", "self_evaluation")
LIST_FIELDS = ("education", "work_experience", "projects", "skills")


def is_completed(doc: dict) -> bool:
    """api.md: true once name, education, skills and at least one of work_experience/projects are filled."""
    def filled(value) -> bool:
        if isinstance(value, str):
            return bool(value.strip())
        return bool(value)
    return (filled(doc.get("name")) and filled(doc.get("education")) and filled(doc.get("skills"))
            and (filled(doc.get("work_experience")) or filled(doc.get("projects"))))


def to_summary(doc: dict) -> dict:
    """One entry of ``GET /users/resume/list/``, exactly the guide's fields."""
    return {"resume_id": int(doc["resume_id"]), "resume_name": doc.get("resume_name", ""),
            "expected_position": doc.get("expected_position", ""),
            "updated_at": iso(doc.get("updated_at")), "completed": is_completed(doc)}


def to_public(doc: dict) -> dict:
    out = {"resume_id": int(doc["resume_id"])}
    for key in CONTENT_FIELDS:
        out[key] = doc.get(key, [] if key in LIST_FIELDS else "")
    out["completed"] = is_completed(doc)
    if doc.get("file"):
        # the original file the resume was imported from (owner-only GET /users/resume/<id>/file/)
        out["file"] = {k: doc["file"].get(k) for k in ("filename", "content_type", "size")}
    out["created_at"] = iso(doc.get("created_at"))
    out["updated_at"] = iso(doc.get("updated_at"))
    return out


class ResumeRepository:
    def __init__(self, db) -> None:
        from storage.resume_files import ResumeFileRepository
        self.db = db
        self.shards = ShardedCollection(db, "resumes")
        self.files = ResumeFileRepository(db)

    async def _col(self, user_id: str):
        return await self.shards.get(user_shard(user_id))

    async def create(self, user_id: str, fields: dict) -> dict:
        resume_id = await next_sequence(self.db, "resume_id")
        now = utcnow()
        doc = {"_id": str(resume_id), "resume_id": resume_id, "user_id": user_id}
        for key in CONTENT_FIELDS:
            doc[key] = fields.get(key, [] if key in LIST_FIELDS else "")
        doc["created_at"] = doc["updated_at"] = now
        await (await self._col(user_id)).insert_one(doc)
        return doc

    async def get(self, user_id: str, resume_id: int) -> dict | None:
        doc = await (await self._col(user_id)).find_one({"_id": str(resume_id)})
        if doc is None or doc.get("user_id") != user_id:
            return None
        return doc

    # Writes filter on ``_id`` alone after the ownership check: with mongoeco a filter with any other
    # field scans the collection, one on ``_id`` alone does not (README, "Storage"). The owner of a
    # resume never changes, so checking it first is as safe as putting it in the filter.
    async def update(self, user_id: str, resume_id: int, fields: dict) -> dict | None:
        if await self.get(user_id, resume_id) is None:
            return None
        changes = {key: fields[key] for key in CONTENT_FIELDS if key in fields}
        changes["updated_at"] = utcnow()
        return await (await self._col(user_id)).find_one_and_update({"_id": str(resume_id)}, {"$set": changes}, return_document=AFTER)

    async def delete(self, user_id: str, resume_id: int) -> bool:
        doc = await self.get(user_id, resume_id)
        if doc is None:
            return False
        result = await (await self._col(user_id)).delete_one({"_id": str(resume_id)})
        if (doc.get("file") or {}).get("file_id"):
            await self.files.delete(user_id, doc["file"]["file_id"])     # the original file goes too
        return result.deleted_count == 1

    async def attach_file(self, user_id: str, resume_id: int, file_id: str) -> dict | None:
        """Attach a pending uploaded file (storage/resume_files.py) to the resume; the resume as it
        is then, or None when the upload is unknown, expired or not this user's."""
        meta = await self.files.pending(user_id, file_id)
        if meta is None or await self.get(user_id, resume_id) is None:
            return None
        if not await self.files.attach(user_id, file_id, resume_id):
            return None
        info = {"file_id": str(file_id), "filename": meta.get("filename", ""),
                "content_type": meta.get("content_type", ""), "size": int(meta.get("size") or 0)}
        return await (await self._col(user_id)).find_one_and_update(
            {"_id": str(resume_id)}, {"$set": {"file": info}}, return_document=AFTER)

    async def original_file(self, user_id: str, resume_id: int) -> dict | None:
        doc = await self.get(user_id, resume_id)
        file_id = ((doc or {}).get("file") or {}).get("file_id")
        return None if not file_id else await self.files.get(user_id, file_id)

    async def list(self, user_id: str) -> list[dict]:
        cursor = (await self._col(user_id)).find({"user_id": user_id}).sort([("updated_at", DESCENDING), ("resume_id", DESCENDING)])
        return await cursor.to_list(None)
