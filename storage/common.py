"""Small helpers shared by the repositories."""
from __future__ import annotations

from core.timeutil import iso, utcnow  # noqa: F401  (the repositories' names for them)


async def next_sequence(db, name: str) -> int:
    """A per-name counter (resume ids, interview ids): one atomic ``$inc`` by ``_id``."""
    from storage.db import AFTER
    doc = await db.counters.find_one_and_update({"_id": name}, {"$inc": {"seq": 1}}, upsert=True,
                                                return_document=AFTER)
    return int(doc["seq"])


# --- sharding -------------------------------------------------------------------------------------
# With mongoeco an insert cost time proportional to the size of the collection it goes into (it
# re-read the collection to check the new _id; the embedded server skips that for string ids since
# 2026-11-30, a real MongoDB never had it; README, "Storage"). Resumes, interviews and transcript
# buckets are therefore spread over SHARDS collections each, chosen by the owner: a user's documents
# all live in the same shard, so listing them is one indexed query, and an insert only pays for
# 1/SHARDS of the data. Interview ids carry their shard (id % SHARDS), because the engine addresses
# an interview by id alone.
SHARDS = 32


def user_shard(user_id: str) -> int:
    import hashlib
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=4).digest(), "big") % SHARDS


def shard_name(base: str, shard: int) -> str:
    return f"{base}_{shard:02d}"


class ShardedCollection:
    """``base_00`` .. ``base_31``; the per-user index of a shard is ensured once per process before
    the shard is first used (creating all of them at every start-up would cost a second)."""

    def __init__(self, db, base: str, *, index_user: bool = True) -> None:
        self.db = db
        self.base = base
        self.index_user = index_user
        self._ready: set[int] = set()

    async def get(self, shard: int):
        col = self.db[shard_name(self.base, shard)]
        if self.index_user and shard not in self._ready:
            from storage.db import ASCENDING
            await col.create_index([("user_id", ASCENDING)], name=f"{self.base}_by_user")
            self._ready.add(shard)
        return col

    def all(self) -> list:
        return [self.db[shard_name(self.base, i)] for i in range(SHARDS)]
