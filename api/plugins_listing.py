"""``GET /-/plugins``: the loaded plugins, the hooks each implements and what each registered
(in the manner of datasette's ``/-/plugins``)."""
from __future__ import annotations

from sanic import Blueprint, json

bp = Blueprint("plugins_listing")


@bp.get("/-/plugins")
async def plugins(request):
    listing = request.app.ctx.engine.plugins_listing()
    return json({"success": True, **listing})
