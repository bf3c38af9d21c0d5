"""api.static: the front end's files over HTTP (no browser needed, but part of the front end)."""
from __future__ import annotations

import httpx
import pytest

from browser_support import static_only_server

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]


async def test_pages_and_modules_are_served_with_the_right_types():
    async with static_only_server() as base, httpx.AsyncClient(timeout=10) as http:
        r = await http.get(base + "/")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/app.js">' in r.text
        for name, mime in (("app.js", "text/javascript"), ("audio-worklet.js", "text/javascript"),
                           ("styles.css", "text/css")):
            r = await http.get(f"{base}/static/{name}")
            assert r.status_code == 200, name
            assert r.headers["content-type"].startswith(mime), (name, r.headers["content-type"])
            assert r.headers.get("cache-control") == "no-cache"
        r = await http.get(f"{base}/static/audio-worklet.js")
        assert "registerProcessor('pcm16k'" in r.text
        # revalidation: unchanged files answer 304
        r2 = await http.get(f"{base}/static/audio-worklet.js",
                            headers={"If-Modified-Since": r.headers["last-modified"]})
        assert r2.status_code == 304


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/../api/static.py", "/static/%2e%2e/api/static.py",
                                  "/static/..%2fapi%2fstatic.py", "/static/%2fetc%2fpasswd", "/static/"])
async def test_nothing_outside_static_is_served(path):
    async with static_only_server() as base, httpx.AsyncClient(timeout=10) as http:
        r = await http.get(base + path)
        assert r.status_code == 404, (path, r.status_code)
        assert "import" not in r.text and "root:" not in r.text
