"""Original resume files (PDF / DOCX / text, at most a few MB) kept with the resume imported from them.

Documents ``{_id: <random hex>, user_id, resume_id (None while pending), filename, content_type,
kind, size, sha256, data: <binary>, created_at, expires_at (None once attached)}`` in the owner's
shard ``resume_files_NN``. An import that is not saved at once keeps its file *pending* for
``PENDING_TTL`` (the user reviews the draft, then ``POST /users/resume/`` with ``upload_id`` attaches
it); pending files older than that are removed at the user's next import. Deleting a resume deletes
its file."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from storage.common import ShardedCollection, user_shard, utcnow

PENDING_TTL = timedelta(hours=24)
MAX_PENDING_PER_USER = 5


class ResumeFileRepository:
    def __init__(self, db) -> None:
        self.db = db
        self.shards = ShardedCollection(db, "resume_files")

    async def _col(self, user_id: str):
        return await self.shards.get(user_shard(user_id))

    async def add(self, user_id: str, *, data: bytes, filename: str, content_type: str, kind: str,
                  resume_id: int | None = None) -> str:
        """Store a file; pending (``resume_id`` None) until ``attach``. Returns its id."""
        col = await self._col(user_id)
        now = utcnow()
        if resume_id is None:
            await self._purge_pending(col, user_id, now)
        file_id = secrets.token_hex(12)
        await col.insert_one({"_id": file_id, "user_id": user_id, "resume_id": resume_id,
                              "filename": filename, "content_type": content_type, "kind": kind,
                              "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                              "data": bytes(data), "created_at": now,
                              "expires_at": now + PENDING_TTL if resume_id is None else None})
        return file_id

    async def _purge_pending(self, col, user_id: str, now) -> None:
        await col.delete_many({"user_id": user_id, "resume_id": None, "expires_at": {"$lt": now}})
        pending = await col.find({"user_id": user_id, "resume_id": None}, {"_id": 1, "created_at": 1}) \
            .to_list(None)
        pending.sort(key=lambda d: d["created_at"])
        for doc in pending[:max(0, len(pending) - MAX_PENDING_PER_USER + 1)]:
            await col.delete_one({"_id": doc["_id"]})

    async def meta(self, user_id: str, file_id: str) -> dict | None:
        doc = await (await self._col(user_id)).find_one({"_id": str(file_id)}, {"data": 0})
        if doc is None or doc.get("user_id") != user_id:
            return None
        return doc

    async def pending(self, user_id: str, file_id: str) -> dict | None:
        """A pending upload of this user that has not expired."""
        doc = await self.meta(user_id, file_id)
        if doc is None or doc.get("resume_id") is not None:
            return None
        expires = doc.get("expires_at")
        if expires is not None and expires < utcnow():
            return None
        return doc

    async def attach(self, user_id: str, file_id: str, resume_id: int) -> bool:
        if await self.pending(user_id, file_id) is None:
            return False
        result = await (await self._col(user_id)).update_one(
            {"_id": str(file_id)}, {"$set": {"resume_id": int(resume_id), "expires_at": None}})
        return result.modified_count == 1

    async def get(self, user_id: str, file_id: str) -> dict | None:
        doc = await (await self._col(user_id)).find_one({"_id": str(file_id)})
        if doc is None or doc.get("user_id") != user_id:
            return None
        doc["data"] = bytes(doc.get("data") or b"")
        return doc

    async def delete(self, user_id: str, file_id: str) -> bool:
        if await self.meta(user_id, file_id) is None:
            return False
        result = await (await self._col(user_id)).delete_one({"_id": str(file_id)})
        return result.deleted_count == 1

    async def count(self, user_id: str) -> int:
        return await (await self._col(user_id)).count_documents({"user_id": user_id})
