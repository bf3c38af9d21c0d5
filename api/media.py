"""Evidence files of an interview and its deletion (owner only; 404 for anyone else):

* ``GET /interviews/<id>/recordings/<utterance_id>/`` — one utterance's audio (``audio/ogg``, Opus),
  with HTTP range requests (``Range: bytes=a-b`` -> 206 + ``Content-Range``; a range that cannot be
  satisfied -> 416 + ``Content-Range: bytes */<size>``);
* ``GET /interviews/<id>/frames/<frame_id>/`` — the JPEG that opened a cheat episode;
* ``DELETE /interviews/<id>/`` — ends a session in progress, then deletes the interview, its transcript,
  recordings, frames and report.
"""
from __future__ import annotations

import re

from sanic import Blueprint
from sanic.response import raw
from sanic_ext import openapi

from api.auth import authenticated
from api.errors import ApiError, json_response
from api.interviews import NOT_FOUND as INTERVIEW_NOT_FOUND
from core import events as ev

bp = Blueprint("media")

NOT_FOUND = {"recording": "录音不存在", "frame": "截图不存在"}
CLOSE_DELETED = 4410          # WebSocket close code of a connection whose interview was deleted
_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiable(ValueError):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range ``[start, end]`` (inclusive) a ``Range`` header asks for; None for the
    whole file (no header, another unit, or several ranges, which RFC 9110 lets a server ignore);
    ``RangeNotSatisfiable`` for a malformed or unsatisfiable bytes range."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    m = _RANGE.match(spec)
    if m is None or (not m.group(1) and not m.group(2)):
        raise RangeNotSatisfiable(header)
    first, last = m.group(1), m.group(2)
    if not first:                                  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(header)
    return start, min(end, size - 1)


async def _serve(request, interview_id: str, media_id: str, kind: str):
    found = await request.app.ctx.store.media.get(request.ctx.user_id, interview_id, media_id, kind)
    if found is None:
        raise ApiError(404, NOT_FOUND[kind], "media_id")
    doc, data = found
    content_type = (doc.get("metadata") or {}).get("content_type") or "application/octet-stream"
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600",
               "X-Content-Type-Options": "nosniff"}
    try:
        wanted = parse_range(request.headers.get("range"), len(data))
    except RangeNotSatisfiable:
        return json_response({"success": False, "msg": "请求的字节范围无效", "field": "Range"}, status=416,
                             headers={"Content-Range": f"bytes */{len(data)}"})
    if wanted is None:
        return raw(data, content_type=content_type, headers=headers)
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return raw(data[start:end + 1], status=206, content_type=content_type, headers=headers)


@bp.get("/interviews/<interview_id>/recordings/<media_id>/", name="get_recording")
@bp.get("/interviews/<interview_id>/frames/<media_id>/", name="get_frame")
@openapi.summary("一句回答的录音（Ogg/Opus，支持 Range 请求）或作弊事件开始时的画面（JPEG 缩略图）")
@openapi.secured("token")
@authenticated
async def get_media(request, interview_id: str, media_id: str):
    kind = "frame" if request.path.rstrip("/").rsplit("/", 2)[-2] == "frames" else "recording"
    return await _serve(request, interview_id, media_id, kind)


async def _end_session(session) -> None:
    """The interview is being deleted while a connection runs it: tell the client, end the session
    (what it heard is flushed, then deleted with the rest) and close the socket with 4410."""
    await session.send(ev.error("该面试已被删除，连接将关闭", code=CLOSE_DELETED))
    await session.close("closed")
    try:
        await session.hangup(CLOSE_DELETED, "interview deleted")
    except Exception:           # the socket is already gone
        pass


@bp.delete("/interviews/<interview_id>/")
@openapi.summary("删除面试：结束进行中的会话，删除转写、录音、截图与报告")
@openapi.secured("token")
@authenticated
async def delete_interview(request, interview_id: str):
    store = request.app.ctx.store
    user_id = request.ctx.user_id
    if await store.interviews.get_owned(user_id, str(interview_id)) is None:
        raise ApiError(404, INTERVIEW_NOT_FOUND, "interview_id")
    engine = request.app.ctx.engine
    session = engine.sessions.get(str(interview_id)) if engine is not None else None
    if session is not None and session.user_id == user_id:
        await _end_session(session)
    if engine is not None and engine.reports is not None:
        await engine.reports.cancel(str(interview_id))
    await store.delete_interview(user_id, str(interview_id))
    return json_response({"success": True, "msg": "面试已删除"})
