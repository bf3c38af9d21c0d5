"""Recordings of the candidate's utterances and cheat-episode frames, in GridFS.

One GridFS bucket per shard (``media_NN.files`` / ``media_NN.chunks``, the interview's shard, which
is its owner's): an insert into the embedded server costs time proportional to the collection's size
(README, "Storage"), so the buckets are spread like interviews and transcripts. Each file's ``_id``
is its random media id (a utterance id or a frame id); ``metadata`` holds ``user_id``,
``interview_id``, ``kind`` (``recording`` | ``frame``), ``content_type``, ``created_at`` and what the
writer adds (a recording's ``audio_start``/``audio_end``/``duration``). Only the owner reads a file
(``get`` returns None for anyone else, the routes answer 404)."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from storage.common import SHARDS, shard_name, utcnow
from storage.interviews import interview_shard

log = logging.getLogger(__name__)

KINDS = ("recording", "frame")
BUCKET = "media"


# GridFS's chunk index, without ``unique``: the drivers create it unique when a bucket is first
# written, and mongoeco checks a unique index by loading and decoding the whole collection on every
# insert and on every update, so each recording cost time proportional to the recordings already in
# its shard (~90 ms with 300 there, and growing; README, "What mongoeco costs"). Media ids are random
# and each file is written once by one writer, so nothing relies on the uniqueness; reads and
# deletes use the index the same way.
CHUNKS_INDEX = (("files_id", 1), ("n", 1))
CHUNKS_INDEX_NAME = "files_id_1_n_1"
CHUNK_SIZE = 255 * 1024          # GridFS's default chunk size


class MediaRepository:
    def __init__(self, db) -> None:
        self.db = db
        self._prepared: dict[int, asyncio.Future] = {}

    async def _prepare(self, shard: int) -> None:
        """Once per shard and process, before its first write: ``_plain_chunk_index``. Concurrent
        first writes wait for the same preparation; one that failed is tried again by the next."""
        task = self._prepared.get(shard)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._prepared[shard] = asyncio.ensure_future(self._plain_chunk_index(shard))
        await asyncio.shield(task)

    async def _plain_chunk_index(self, shard: int) -> None:
        """GridFS's chunk index on the shard, not unique (a unique one left by an earlier version is
        replaced)."""
        chunks = self.db[f"{shard_name(BUCKET, shard)}.chunks"]
        plain = False
        for index in await chunks.list_indexes().to_list(None):
            if tuple(index["key"].items()) == CHUNKS_INDEX:
                if index.get("unique"):
                    await chunks.drop_index(index["name"])
                else:
                    plain = True
        if not plain:
            await chunks.create_index(list(CHUNKS_INDEX), name=CHUNKS_INDEX_NAME)

    def _bucket(self, shard: int):
        from storage.db import gridfs_bucket
        return gridfs_bucket(self.db, shard_name(BUCKET, shard))

    def _files(self, shard: int):
        return self.db[f"{shard_name(BUCKET, shard)}.files"]

    @staticmethod
    def _shard(interview_id: str) -> int:
        shard = interview_shard(interview_id)
        if shard is None:
            raise LookupError(f"no interview {interview_id!r}")
        return shard

    async def put(self, user_id: str, interview_id: str, media_id: str, *, kind: str, data: bytes,
                  content_type: str, meta: dict | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"media kind must be one of {KINDS}, got {kind!r}")
        if not data:
            raise ValueError("empty media file")
        shard = self._shard(interview_id)
        await self._prepare(shard)
        metadata = {**(meta or {}), "user_id": user_id, "interview_id": str(interview_id), "kind": kind,
                    "content_type": content_type, "created_at": utcnow()}
        await self._write(shard, str(media_id), f"{interview_id}/{kind}/{media_id}", bytes(data), metadata)

    async def _write(self, shard: int, file_id: str, filename: str, data: bytes, metadata: dict) -> None:
        """One file in GridFS's format (the GridFS specification: chunks of ``CHUNK_SIZE`` with
        ``files_id`` and ``n``, then the files document, which makes the file visible), in two
        round trips. The driver's upload takes four: each upload first asks both collections
        whether they are empty (to create GridFS's indexes; ``_prepare`` has made the one reads
        need), and on a busy server every round trip waits for the event loop. A files document
        refused (the id exists) takes its chunks with it, and only its own."""
        from bson import Binary, ObjectId
        chunks = [{"_id": ObjectId(), "files_id": file_id, "n": n, "data": Binary(data[at:at + CHUNK_SIZE])}
                  for n, at in enumerate(range(0, len(data), CHUNK_SIZE))]
        bucket = shard_name(BUCKET, shard)
        try:
            await self.db[f"{bucket}.chunks"].insert_many(chunks)
            await self.db[f"{bucket}.files"].insert_one(
                {"_id": file_id, "length": len(data), "chunkSize": CHUNK_SIZE, "uploadDate": utcnow(),
                 "filename": filename, "metadata": metadata})
        except BaseException:
            # no chunk without its files document (nothing would ever find it to delete it)
            cleanup = self.db[f"{bucket}.chunks"].delete_many({"_id": {"$in": [c["_id"] for c in chunks]}})
            try:
                await asyncio.shield(cleanup)
            except Exception as exc:                     # the database is gone: said, not hidden
                log.warning("GridFS chunks of %s in %s not removed after a failed write: %s", file_id, bucket, exc)
            raise

    async def meta(self, user_id: str, interview_id: str, media_id: str, kind: str) -> dict | None:
        """The file document if it is ``user_id``'s, of that interview and kind; else None."""
        shard = interview_shard(interview_id)
        if shard is None:
            return None
        doc = await self._files(shard).find_one({"_id": str(media_id)})
        if doc is None:
            return None
        m = doc.get("metadata") or {}
        if m.get("user_id") != user_id or m.get("interview_id") != str(interview_id) or m.get("kind") != kind:
            return None
        return doc

    async def get(self, user_id: str, interview_id: str, media_id: str, kind: str) -> tuple[dict, bytes] | None:
        doc = await self.meta(user_id, interview_id, media_id, kind)
        if doc is None:
            return None
        from storage.db import NoFile
        try:
            stream = await self._bucket(self._shard(interview_id)).open_download_stream(doc["_id"])
            return doc, await stream.read()
        except NoFile:
            return None

    async def list_interview(self, interview_id: str) -> list[dict]:
        """Every file document of the interview (tests, deletion)."""
        shard = interview_shard(interview_id)
        if shard is None:
            return []
        return await self._files(shard).find({"metadata.interview_id": str(interview_id)}).to_list(None)

    async def delete_interview(self, interview_id: str) -> int:
        """Delete every recording and frame of the interview; returns how many files went."""
        docs = await self.list_interview(interview_id)
        bucket = self._bucket(self._shard(interview_id)) if docs else None
        for doc in docs:
            await self._delete(bucket, doc["_id"])
        return len(docs)

    async def sweep(self, cutoff: datetime) -> int:
        """Retention: delete every file written before ``cutoff`` (all shards); returns the count."""
        removed = 0
        for shard in range(SHARDS):
            docs = await self._files(shard).find({"metadata.created_at": {"$lt": cutoff}}, {"_id": 1}).to_list(None)
            bucket = self._bucket(shard)
            for doc in docs:
                removed += await self._delete(bucket, doc["_id"])
        return removed

    @staticmethod
    async def _delete(bucket, file_id) -> int:
        from storage.db import NoFile
        try:
            await bucket.delete(file_id)
            return 1
        except NoFile:            # deleted meanwhile (another sweep, a DELETE of the interview)
            return 0
