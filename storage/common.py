"""Small helpers shared by the repositories."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    # Millisecond precision: what BSON dates keep, so what we return equals what we store.
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(value: datetime | None) -> str | None:
    """``2024-01-01T12:00:00Z``, the guide's format."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def next_sequence(db, name: str) -> int:
    """A per-name counter (resume ids, interview ids): one atomic ``$inc`` by ``_id``."""
    from storage.db import AFTER
    doc = await db.counters.find_one_and_update({"_id": name}, {"$inc": {"seq": 1}}, upsert=True,
                                                return_document=AFTER)
    return int(doc["seq"])
