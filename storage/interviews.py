"""Interviews and their transcripts.

Data model (see README, "Storage" for the measurements behind it). With mongoeco every insert costs
time proportional to the size of the collection, while an update by ``_id`` costs the same however
big the collection is. So everything that happens *during* an interview is an update by ``_id``:

Both are sharded by owner (``interviews_NN``, ``transcripts_NN``, see storage/common.py): the id is
``str(sequence * SHARDS + shard)``, so the shard of any interview id is ``int(id) % SHARDS``.

* ``interviews``: one document per interview, ``_id`` = the interview id (a string). Phase, status,
  questions, cheat events, code submissions... are ``$set``/``$push`` on it (``update_interview``).
* ``transcripts``: final utterances, in buckets of ``BUCKET_SIZE`` entries, ``_id`` =
  ``"<interview_id>:<n>"``. Bucket 0 is created together with the interview (when the REST call is
  made, not while the candidate speaks); appending is a ``$push`` by ``_id``. The interview's
  ``transcript_count`` (``$inc``) says where the next entry goes. Only every ``BUCKET_SIZE``-th
  utterance inserts a new bucket. An update costs time proportional to the size of the document it
  changes (measured: a ``$push`` onto a 300-entry array is ~6x slower than onto a 10-entry one), so
  small buckets keep the cost per utterance flat however long the interview runs.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.interfaces import LeaseLost
from core.report import UNFINISHED_REPORT_STATES
from storage.common import SHARDS, ShardedCollection, iso, next_sequence, shard_name, user_shard, utcnow
from storage.db import AFTER, BEFORE, DESCENDING, DuplicateKeyError

BUCKET_SIZE = 25      # mongoeco rewrites the whole document on every update: keep buckets small
SUMMARY_FIELDS = ("position_name", "position_type", "company_name", "status", "phase", "resume_id")
PROTECTED_FIELDS = {"_id", "user_id", "transcript_count", "lease", "report_claim"}
PRIVATE_FIELDS = ("_id", "user_id", "lease", "report_claim")      # never in what the API or the engine reads


def interview_shard(interview_id) -> int | None:
    """The shard an interview id lives in, or None for a string that is no interview id."""
    text = str(interview_id)
    if not text.isdigit() or len(text) > 18:
        return None
    return int(text) % SHARDS


def bucket_id(interview_id: str, n: int) -> str:
    return f"{interview_id}:{n}"


def _public(doc: dict) -> dict:
    out = {"id": doc["_id"]}
    for key, value in doc.items():
        if key in PRIVATE_FIELDS:
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
        self.shards = ShardedCollection(db, "interviews")
        self.transcript_shards = ShardedCollection(db, "transcripts", index_user=False)

    async def _cols(self, interview_id: str):
        """(interviews, transcripts) collections of this id's shard, or (None, None)."""
        shard = interview_shard(interview_id)
        if shard is None:
            return None, None
        return await self.shards.get(shard), await self.transcript_shards.get(shard)

    async def transcript_buckets(self, interview_id: str) -> list[dict]:
        """The raw bucket documents (tests, maintenance)."""
        _, transcripts = await self._cols(interview_id)
        if transcripts is None:
            return []
        return await transcripts.find({"interview_id": str(interview_id)}).sort("n", 1).to_list(None)

    # --- REST ------------------------------------------------------------------------------------
    async def create(self, user_id: str, fields: dict) -> dict:
        shard = user_shard(user_id)
        interview_id = str(await next_sequence(self.db, "interview_id") * SHARDS + shard)
        col, transcripts = await self._cols(interview_id)
        now = utcnow()
        doc = {"_id": interview_id, "user_id": user_id, **fields,
               "status": "created", "phase": None, "resume_id": None,
               "questions": [], "cheat_events": [],
               "transcript_count": 0, "created_at": now, "updated_at": now}
        # bucket 0 first: an interview document never exists without its transcript bucket
        await transcripts.insert_one({"_id": bucket_id(interview_id, 0), "interview_id": interview_id,
                                      "n": 0, "entries": []})
        await col.insert_one(doc)
        return doc

    async def _find(self, interview_id: str, projection: dict | None = None) -> dict | None:
        col, _ = await self._cols(interview_id)
        if col is None:
            return None
        return await col.find_one({"_id": str(interview_id)}, projection)

    async def get_owned(self, user_id: str, interview_id: str) -> dict | None:
        doc = await self._find(interview_id)
        if doc is None or doc.get("user_id") != user_id:
            return None
        return doc

    async def list(self, user_id: str, *, limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
        col = await self.shards.get(user_shard(user_id))
        total = await col.count_documents({"user_id": user_id})
        projection = {key: 1 for key in (*SUMMARY_FIELDS, "interview_time", "created_at", "updated_at")}
        cursor = (col.find({"user_id": user_id}, projection)
                  .sort([("created_at", DESCENDING), ("_id", DESCENDING)]).skip(offset).limit(limit))
        return await cursor.to_list(None), total

    # --- the engine's InterviewStore part --------------------------------------------------------
    async def load(self, user_id: str, interview_id: str) -> dict | None:
        doc = await self.get_owned(user_id, interview_id)
        return None if doc is None else _public(doc) | {"user_id": user_id}

    async def load_by_id(self, interview_id: str) -> dict | None:
        doc = await self._find(interview_id)
        return None if doc is None else _public(doc) | {"user_id": doc.get("user_id")}

    async def list_report_pending(self) -> list[str]:
        """Finished interviews whose report is unfinished, or was written by a fallback scorer
        (core/report.py upgrades those). Start-up only: a scan is acceptable."""
        ids: list[str] = []
        query = {"$or": [{"report_status": {"$in": list(UNFINISHED_REPORT_STATES)}},
                         {"report_status": "ready", "report_degraded": True}]}
        for col in self.shards.all():
            ids.extend([doc["_id"] async for doc in col.find(query, {"_id": 1})])
        return sorted(ids, key=int)

    # --- the lease: one writer per interview across instances ---------------------------------------
    # ``lease`` = {epoch, owner, taken_at, heartbeat_at, expires_at} on the interview document. Taking
    # it raises the epoch; every session write filters on ``lease.epoch``, so the database itself
    # refuses what an earlier holder writes after a takeover (see ``_fenced``).
    async def take_lease(self, user_id: str, interview_id: str, owner: str, ttl_seconds: float) -> dict | None:
        col, _ = await self._cols(interview_id)
        if col is None:
            return None
        now = utcnow()
        doc = await col.find_one_and_update(
            {"_id": interview_id, "user_id": user_id},
            {"$inc": {"lease.epoch": 1},
             "$set": {"lease.owner": owner, "lease.taken_at": now, "lease.heartbeat_at": now,
                      "lease.expires_at": now + timedelta(seconds=ttl_seconds)}},
            return_document=AFTER)
        if doc is None:
            return None
        return _public(doc) | {"user_id": user_id, "lease_epoch": int(doc["lease"]["epoch"])}

    def _by_shard(self, held: dict[str, int]) -> dict[int, dict[str, int]]:
        groups: dict[int, dict[str, int]] = {}
        for interview_id, epoch in held.items():
            shard = interview_shard(interview_id)
            if shard is not None:
                groups.setdefault(shard, {})[str(interview_id)] = int(epoch)
        return groups

    async def check_leases(self, held: dict[str, int]) -> set[str]:
        """Which of ``held`` (interview id -> epoch) this instance no longer holds: one read per
        shard, however many sessions it runs (README, "Several instances")."""
        lost = {str(i) for i in held if interview_shard(i) is None}
        for shard, group in self._by_shard(held).items():
            col = await self.shards.get(shard)
            seen = {doc["_id"]: (doc.get("lease") or {}).get("epoch")
                    async for doc in col.find({"_id": {"$in": list(group)}}, {"lease.epoch": 1})}
            lost.update(i for i, epoch in group.items() if seen.get(i) != epoch)
        return lost

    async def renew_leases(self, held: dict[str, int], ttl_seconds: float) -> set[str]:
        """Heartbeat of every lease in ``held``: push their expiry on (one update per shard) and
        return those no longer held (taken over or deleted), which were not touched."""
        lost = await self.check_leases(held)
        now = utcnow()
        for shard, group in self._by_shard({i: e for i, e in held.items() if str(i) not in lost}).items():
            col = await self.shards.get(shard)
            # each clause fences one interview by its own epoch: a lease taken over between the
            # check and this update is not renewed (and is found lost at the next check)
            await col.update_many({"$or": [{"_id": i, "lease.epoch": e} for i, e in group.items()]},
                                  {"$set": {"lease.heartbeat_at": now,
                                            "lease.expires_at": now + timedelta(seconds=ttl_seconds)}})
        return lost

    async def release_lease(self, interview_id: str, epoch: int) -> None:
        col, _ = await self._cols(interview_id)
        if col is not None:
            await col.update_one({"_id": interview_id, "lease.epoch": epoch},
                                 {"$set": {"lease.expires_at": utcnow(), "lease.owner": None}})

    async def lease(self, interview_id: str) -> dict | None:
        """The lease as stored (tests, operators)."""
        doc = await self._find(interview_id, {"lease": 1})
        return None if doc is None else doc.get("lease")

    # --- the report claim: one report writer per interview across instances -----------------------
    async def claim_report(self, interview_id: str, owner: str, ttl_seconds: float) -> bool:
        """Take (or renew) ``report_claim = {owner, expires_at}`` unless another owner's claim is
        still unexpired."""
        col, _ = await self._cols(interview_id)
        if col is None:
            return False
        now = utcnow()
        result = await col.update_one(
            {"_id": interview_id, "$or": [{"report_claim": None}, {"report_claim.owner": owner},
                                          {"report_claim.expires_at": {"$lt": now}}]},
            {"$set": {"report_claim": {"owner": owner, "expires_at": now + timedelta(seconds=ttl_seconds)}}})
        return result.matched_count == 1

    async def report_claim(self, interview_id: str) -> dict | None:
        doc = await self._find(interview_id, {"report_claim": 1})
        return None if doc is None else doc.get("report_claim")

    async def release_report(self, interview_id: str, owner: str) -> None:
        col, _ = await self._cols(interview_id)
        if col is not None:
            await col.update_one({"_id": interview_id, "report_claim.owner": owner}, {"$set": {"report_claim": None}})

    @staticmethod
    def _fenced(interview_id: str, epoch: int | None, report_owner: str | None = None) -> dict:
        """The filter of a write by ``epoch``'s holder (any writer when None), or by the holder of
        the report claim."""
        query: dict[str, Any] = {"_id": interview_id}
        if epoch is not None:
            query["lease.epoch"] = epoch
        if report_owner is not None:
            query["report_claim.owner"] = report_owner
        return query

    async def _refused(self, interview_id: str, epoch: int | None, report_owner: str | None = None) -> Exception:
        """Why a write matched nothing: the interview is gone, or the lease (claim) moved on."""
        if (epoch is not None or report_owner is not None) \
                and await self._find(interview_id, {"_id": 1}) is not None:
            if epoch is not None:
                return LeaseLost(f"interview {interview_id!r}: lease epoch {epoch} was taken over")
            return LeaseLost(f"interview {interview_id!r}: the report claim of {report_owner} was taken over")
        return LookupError(f"no interview {interview_id!r}")

    async def update(self, interview_id: str, *, set_fields: dict | None = None,
                     push: dict[str, Any] | None = None, epoch: int | None = None,
                     report_owner: str | None = None) -> None:
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
        col, _ = await self._cols(interview_id)
        if col is None:
            raise LookupError(f"no interview {interview_id!r}")
        result = await col.update_one(self._fenced(interview_id, epoch, report_owner), update)
        if result.matched_count == 0:
            raise await self._refused(interview_id, epoch, report_owner)

    async def append_transcript(self, interview_id: str, entries: list[dict], epoch: int | None = None) -> int:
        entries = list(entries)
        if not entries:
            return -1
        col, transcripts = await self._cols(interview_id)
        if col is None:
            raise LookupError(f"no interview {interview_id!r}")
        # The slots are reserved under the fence: an entry is either counted here by the lease holder
        # or refused; the bucket write below only fills slots already reserved.
        before = await col.find_one_and_update(
            self._fenced(interview_id, epoch),
            {"$inc": {"transcript_count": len(entries)}, "$set": {"updated_at": utcnow()}},
            projection={"transcript_count": 1}, return_document=BEFORE)
        if before is None:
            raise await self._refused(interview_id, epoch)
        start = int(before.get("transcript_count", 0))
        chunks: dict[int, list[dict]] = {}
        for offset, entry in enumerate(entries):
            chunks.setdefault((start + offset) // BUCKET_SIZE, []).append(dict(entry))
        for n, chunk in sorted(chunks.items()):
            key = bucket_id(interview_id, n)
            push = {"$push": {"entries": {"$each": chunk}}}
            result = await transcripts.update_one({"_id": key}, push)
            if result.matched_count:
                continue
            try:
                await transcripts.insert_one({"_id": key, "interview_id": interview_id, "n": n,
                                              "entries": chunk})
            except DuplicateKeyError:      # another writer created the bucket in between
                await transcripts.update_one({"_id": key}, push)
        return start

    async def update_transcript_entry(self, interview_id: str, position: int, fields: dict,
                                      epoch: int | None = None) -> None:
        """Set ``fields`` on the entry at ``position``, fenced like every write of a session."""
        col, transcripts = await self._cols(interview_id)
        if col is None:
            raise LookupError(f"no interview {interview_id!r}")
        result = await col.update_one(self._fenced(interview_id, epoch), {"$set": {"updated_at": utcnow()}})
        if result.matched_count == 0:
            raise await self._refused(interview_id, epoch)
        n, slot = divmod(int(position), BUCKET_SIZE)
        await transcripts.update_one({"_id": bucket_id(interview_id, n)},
                                     {"$set": {f"entries.{slot}.{k}": v for k, v in fields.items()}})

    async def delete(self, interview_id: str) -> None:
        """Delete the interview document (its report is inside it) and every transcript bucket."""
        col, transcripts = await self._cols(interview_id)
        if col is None:
            return
        await transcripts.delete_many({"interview_id": str(interview_id)})
        await col.delete_one({"_id": str(interview_id)})

    async def load_transcript(self, interview_id: str) -> list[dict]:
        doc = await self._find(interview_id, {"transcript_count": 1})
        if doc is None:
            return []
        _, transcripts = await self._cols(interview_id)
        buckets = max(1, -(-int(doc.get("transcript_count", 0)) // BUCKET_SIZE))
        wanted = [bucket_id(interview_id, n) for n in range(buckets)]
        found = {doc["_id"]: doc for doc in await transcripts.find({"_id": {"$in": wanted}}).to_list(None)}
        entries: list[dict] = []
        for key in wanted:
            entries.extend(found.get(key, {}).get("entries", []))
        return entries
