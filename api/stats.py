"""``GET /-/stats``: live sessions, event-loop lag and memory (for operators and the benchmarks), and
with a remote recogniser (``openai_asr``) its request counts and latencies as ``asr``.
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
    return json({"success": True, **app.ctx.engine.stats(), "rss_bytes": rss_bytes(),
                 "tasks": len(asyncio.all_tasks()), "loop": app.ctx.loop_monitor.snapshot(),
                 **({"asr": asr_summary()} if asr_summary else {})})


@bp.post("/-/stats/reset")
@operator_only
async def reset(request):
    request.app.ctx.loop_monitor.reset()
    return json({"success": True})
