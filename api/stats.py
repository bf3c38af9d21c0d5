"""``GET /-/stats``: live sessions, event-loop lag and memory (for operators and the benchmarks), and
the speech streams' audio backlog and the speech events still waiting for their handler; with a remote recogniser (``openai_asr``) its request counts and
latencies as ``asr_remote``; with a VAD that batches the sessions' calls (the lean FSMN engine) its
call counts as ``vad``.
``POST /-/stats/reset`` clears the lag window. Both are ``operator_only`` (api/auth.py)."""
from __future__ import annotations

import asyncio

from sanic import Blueprint, json

from api.auth import operator_only
from core.loopmon import rss_bytes

bp = Blueprint("stats")


@bp.get("/-/stats")
@operator_only
async def stats(request):
    app = request.app
    asr_summary = getattr(app.ctx.engine.asr, "summary", None)     # a remote recogniser's requests
    vad_summary = getattr(app.ctx.engine.vad, "summary", None)     # a VAD batching sessions' calls
    return json({"success": True, **app.ctx.engine.stats(), "rss_bytes": rss_bytes(),
                 "tasks": len(asyncio.all_tasks()), "loop": app.ctx.loop_monitor.snapshot(),
                 "speech_backlog_frames": speech_backlog(app.ctx.engine),
                 "speech_events_waiting": speech_events_waiting(app.ctx.engine),
                 **({"asr_remote": asr_summary()} if asr_summary else {}),
                 **({"vad": vad_summary()} if vad_summary else {})})


def speech_backlog(engine) -> dict:
    """Audio frames received but not yet through the VAD, over the open speech streams: a server
    that keeps up has a few at most; a growing backlog means sessions fall behind real time."""
    sizes = [s.speech.backlog for s in engine.sessions.values() if s.speech is not None]
    return {"max": max(sizes, default=0), "total": sum(sizes)}


def speech_events_waiting(engine) -> dict:
    """Speech events (speech start/end, transcripts) emitted but not yet through the session's
    handler (stored, sent): how many over the open streams, and the longest any has waited."""
    pipes = [s.speech for s in engine.sessions.values() if s.speech is not None]
    return {"total": sum(p.undelivered for p in pipes),
            "max_wait_s": round(max((p.delivery_lag() for p in pipes), default=0.0), 3)}


@bp.post("/-/stats/reset")
@operator_only
async def reset(request):
    request.app.ctx.loop_monitor.reset()
    return json({"success": True})
