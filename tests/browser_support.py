"""Shared pieces of the browser tests (tests/test_browser_*.py): Debian's Chromium driven by
Playwright's async API in the tests' event loop (the app server runs in the same loop), fake camera
and microphone from files, screenshots under ``test-output/browser/``.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium``.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("MIANSHI_CHROMIUM", "/usr/bin/chromium")
OUTPUT_DIR = ROOT / "test-output" / "browser"
OUTPUT_DIR.mkdir(parents=True, exist_ok=True)

requires_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} not found: install Debian's chromium (scripts/bootstrap.sh does); "
           "never `playwright install`")


def chromium_args(wav: Path | None = None, y4m: Path | None = None) -> list[str]:
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    if y4m is not None:
        args.append(f"--use-file-for-fake-video-capture={y4m}")
    return args


@contextlib.asynccontextmanager
async def chromium_page(wav: Path | None = None, y4m: Path | None = None, *, errors: list | None = None):
    """A fresh Chromium (fake devices fed from the files) and one page; page errors collected."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=chromium_args(wav, y4m))
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page = await context.new_page()
            sink = errors if errors is not None else []
            page.on("pageerror", lambda exc: sink.append(f"pageerror: {exc}"))
            page.on("console", lambda msg: sink.append(f"console.{msg.type}: {msg.text}")
                    if msg.type == "error" else None)
            yield page
        finally:
            await browser.close()


class WsRecorder:
    """Every WebSocket text frame the page sends or receives, with the test's monotonic time."""

    def __init__(self, page) -> None:
        self.sent: list[tuple[float, dict]] = []
        self.received: list[tuple[float, dict]] = []
        self.sockets = 0
        page.on("websocket", self._attach)

    def _attach(self, ws) -> None:
        self.sockets += 1
        ws.on("framesent", lambda payload: self._add(self.sent, payload))
        ws.on("framereceived", lambda payload: self._add(self.received, payload))

    @staticmethod
    def _add(into: list, payload) -> None:
        if isinstance(payload, (bytes, bytearray)):
            payload = payload.decode("utf-8", "replace")
        try:
            into.append((time.monotonic(), json.loads(payload)))
        except ValueError:
            into.append((time.monotonic(), {"type": "<not json>", "raw": payload[:200]}))

    def sent_of(self, mtype: str) -> list[dict]:
        return [m for _, m in self.sent if m.get("type") == mtype]

    def received_of(self, mtype: str, **match) -> list[dict]:
        return [m for _, m in self.received
                if m.get("type") == mtype and all(m.get(k) == v for k, v in match.items())]


async def sign_in(page, base_url: str, client) -> None:
    """Put a REST-registered user's token where the page keeps it (localStorage)."""
    await page.goto(base_url + "/")
    await page.evaluate(
        "auth => localStorage.setItem('mianshi.auth', JSON.stringify(auth))",
        {"token": client.token, "userId": client.user_id, "username": client.username})


async def open_voiced_room(page, server, client, interview_id: str, resume_id: int) -> WsRecorder:
    """Sign in, switch the page's voice on (开启语音) and open the interview room; returns the page's
    WebSocket recorder once the intro phase is shown (tests/test_browser_voice.py, test_browser_echo.py)."""
    rec = WsRecorder(page)
    page.set_default_timeout(60000)
    await sign_in(page, server.base_url, client)
    await page.evaluate("localStorage.setItem('mianshi.voice', 'on')")
    await page.goto(f"{server.base_url}/#/room/{interview_id}?resume={resume_id}")
    await page.wait_for_function("document.querySelector('#phase') && "
                                 "document.querySelector('#phase').dataset.phase === 'intro'")
    return rec


class Shots:
    """Numbered screenshots of one test under test-output/browser/<test name>/."""

    def __init__(self, name: str) -> None:
        self.dir = OUTPUT_DIR / name
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.n = 0

    async def take(self, page, step: str) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{step}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path


@contextlib.asynccontextmanager
async def static_only_server():
    """Only the front-end blueprint (api.static) on a free loopback port, in this event loop: for
    tests of the page's own code that need no backend (an AudioWorklet needs an http origin)."""
    from conftest import serve_app
    from sanic import Sanic

    from api import static

    Sanic.test_mode = True
    app = Sanic(f"static_only_{os.getpid()}_{time.monotonic_ns()}")
    app.blueprint(static.bp)
    server = await serve_app(app)
    try:
        yield server.base_url
    finally:
        await server.stop()
