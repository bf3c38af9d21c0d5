"""``GET /-/plugins``: the loaded plugins, the hooks each implements and what each registered
(in the manner of datasette's ``/-/plugins``). ``operator_only`` (api/auth.py)."""
from __future__ import annotations

from sanic import Blueprint, json

from api.auth import operator_only

bp = Blueprint("plugins_listing")


@bp.get("/-/plugins")
@operator_only
async def plugins(request):
    listing = request.app.ctx.engine.plugins_listing()
    return json({"success": True, **listing})
