"""The browser front end: static pages served by Sanic, no build step.

``bp`` serves ``/`` (the single-page app shell, ``static/index.html``) and ``/static/<file>``
(ES modules, the AudioWorklet, styles) from the repository's ``static/`` directory. The app
composer registers this blueprint when the module exists.
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import file, json

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Module scripts and the worklet must be served as JavaScript or browsers refuse them.
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")

bp = Blueprint("static_pages")

def _resolve(name: str) -> Path | None:
    """The file ``name`` inside STATIC_DIR, or None (never a path outside it)."""
    if not name or "\x00" in name:
        return None
    base = STATIC_DIR.resolve()
    try:
        path = (base / name).resolve()
    except (OSError, RuntimeError):
        return None
    if base not in path.parents or not path.is_file():
        return None
    return path


@bp.get("/")
async def index(request: Request):
    return await file(STATIC_DIR / "index.html", mime_type="text/html; charset=utf-8",
                      request_headers=request.headers)


@bp.get("/static/<name:path>")
async def static_file(request: Request, name: str):
    path = _resolve(name)
    if path is None:
        return json({"success": False, "msg": f"文件不存在：{name[:200]}"}, status=404)
    mime, _ = mimetypes.guess_type(path.name)
    if mime and (mime.startswith("text/") or mime.endswith("javascript")):
        mime += "; charset=utf-8"
    # Sanic adds Last-Modified and "Cache-Control: no-cache": browsers revalidate (304) each load.
    return await file(path, mime_type=mime or "application/octet-stream",
                      request_headers=request.headers)
