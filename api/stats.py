"""``GET /-/stats``: live sessions, event-loop lag and memory (for operators and the benchmarks).
``POST /-/stats/reset`` clears the lag window (only from loopback)."""
from __future__ import annotations

import asyncio

from sanic import Blueprint, json

from api.errors import ApiError
from core.loopmon import rss_bytes

bp = Blueprint("stats")


@bp.get("/-/stats")
async def stats(request):
    app = request.app
    return json({"success": True, **app.ctx.engine.stats(), "rss_bytes": rss_bytes(),
                 "tasks": len(asyncio.all_tasks()), "loop": app.ctx.loop_monitor.snapshot()})


@bp.post("/-/stats/reset")
async def reset(request):
    if request.ip not in ("127.0.0.1", "::1"):
        raise ApiError(403, "只允许本机调用", None)
    request.app.ctx.loop_monitor.reset()
    return json({"success": True})
