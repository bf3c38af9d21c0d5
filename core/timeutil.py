"""Times, one representation: stored documents hold UTC ``datetime``s (BSON dates, millisecond
precision); the API and the WebSocket show them as ISO-8601 strings, ``2024-03-20T14:30:00Z`` (the
guide's format). ``as_datetime`` / ``epoch_seconds`` also read the ISO strings and epoch numbers that
documents written by earlier versions hold."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def utcnow() -> datetime:
    # millisecond precision: what BSON dates keep, so what is read back equals what was written
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_datetime(value: Any) -> datetime | None:
    """A UTC datetime from a datetime (naive = UTC), an ISO-8601 string or epoch seconds; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), timezone.utc)
    if isinstance(value, str) and value:
        try:
            return as_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def epoch_seconds(value: Any) -> float | None:
    dt = as_datetime(value)
    return None if dt is None else dt.timestamp()


def iso(value: Any) -> str | None:
    """``2024-01-01T12:00:00Z``, the guide's format; None when ``value`` is no time."""
    dt = as_datetime(value)
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")
