"""The front end in Firefox (headless ESR driven over WebDriver BiDi with a few lines of
``websockets``: Playwright's Firefox is a patched build that is never downloaded here).

Skipped when no ``firefox-esr``/``firefox`` is installed (``apt-get install firefox-esr``).
1. The AudioWorklet renders the same checked 16 kHz output as in Chromium (48 and 44.1 kHz).
2. The interview room of the real app with Firefox's fake camera and microphone
   (``media.navigator.streams.fake``): the intro starts, 640x480 JPEG frames go out, and either
   1 280-byte audio frames every 40 ms or — where Firefox has no audio output device, so its
   AudioContext cannot run (a container without sound) — the page says the audio has not started
   instead of hanging.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import websockets

from browser_support import OUTPUT_DIR, static_only_server
from test_browser_audio import OFFLINE_JS, check_offline_output, offline_args

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")
pytestmark = [pytest.mark.browser, pytest.mark.asyncio,
              pytest.mark.skipif(FIREFOX is None, reason="Firefox not installed (apt-get install firefox-esr)")]

PREFS = {
    "media.navigator.streams.fake": True,            # fake camera (colour frames) and microphone (tone)
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "app.update.enabled": False,
}


class BiDi:
    """Just enough WebDriver BiDi: navigate, evaluate (awaiting promises), screenshot."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.n = 0
        self.context = ""

    async def call(self, method: str, params: dict, timeout: float = 60.0) -> dict:
        self.n += 1
        ident = self.n
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))

        async def reply() -> dict:
            while True:
                msg = json.loads(await self.ws.recv())
                if msg.get("id") == ident:
                    return msg
        msg = await asyncio.wait_for(reply(), timeout)
        if msg.get("type") == "error":
            raise AssertionError(f"{method}: {msg.get('error')}: {msg.get('message')}")
        return msg["result"]

    async def navigate(self, url: str) -> None:
        await self.call("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    async def evaluate(self, expression: str, timeout: float = 60.0):
        """Evaluate; the (awaited) value must be JSON-serialisable: it is returned via JSON.stringify."""
        res = await self.call("script.evaluate", {
            "expression": f"Promise.resolve({expression}).then(v => JSON.stringify(v === undefined ? null : v))",
            "target": {"context": self.context}, "awaitPromise": True}, timeout)
        if res.get("type") == "exception":
            raise AssertionError(f"page exception: {res['exceptionDetails'].get('text')}")
        return json.loads(res["result"]["value"])

    async def wait_for(self, expression: str, timeout: float = 30.0):
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            value = await self.evaluate(f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()")
            if value:
                return value
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.25)

    async def screenshot(self, path: Path) -> None:
        res = await self.call("browsingContext.captureScreenshot", {"context": self.context})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(res["data"]))


@contextlib.asynccontextmanager
async def firefox():
    profile = Path(tempfile.mkdtemp(prefix="mianshi-ff-"))
    (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n"
                                             for k, v in PREFS.items()))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([FIREFOX, "--headless", "--remote-debugging-port", str(port), "-no-remote",
                             "-profile", str(profile), "--width", "1280", "--height", "900"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ws = None
    try:
        for _ in range(150):
            try:
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/session", max_size=None)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{FIREFOX} exited with {proc.returncode}")
                await asyncio.sleep(0.2)
        assert ws is not None, "Firefox's WebDriver BiDi endpoint did not come up"
        bidi = BiDi(ws)
        await bidi.call("session.new", {"capabilities": {}})
        tree = await bidi.call("browsingContext.getTree", {})
        bidi.context = tree["contexts"][0]["context"]
        yield bidi
    finally:
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(profile, ignore_errors=True)


async def test_worklet_in_firefox():
    results = {}
    async with static_only_server() as base_url, firefox() as ff:
        await ff.navigate(base_url + "/")
        await ff.wait_for("document.querySelector('#login-btn') !== null")
        for rate in (48000, 44100):
            got = await ff.evaluate(f"({OFFLINE_JS})({json.dumps(offline_args(rate))})", timeout=120)
            results[rate] = check_offline_output(got, rate)
    (OUTPUT_DIR / "worklet_offline_firefox.json").write_text(json.dumps(results, indent=2))


async def test_interview_room_in_firefox(app_server_factory, api_client):
    server = await app_server_factory({"engine": {"question_sources": ["bank"]}})
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    async with firefox() as ff:
        await ff.navigate(server.base_url + "/")
        await ff.evaluate("localStorage.setItem('mianshi.auth', JSON.stringify(%s))" % json.dumps(
            {"token": client.token, "userId": client.user_id, "username": client.username}))
        await ff.navigate(f"{server.base_url}/#/room/{interview_id}?resume={resume_id}")
        try:
            await ff.wait_for("document.querySelector('#phase').dataset.phase === 'intro'")
        except AssertionError:
            await ff.screenshot(OUTPUT_DIR / "firefox" / "room-failed.png")
            state = await ff.evaluate("({view: document.querySelector('#view').innerText.slice(0, 500), "
                                      "debug: {connects: window.__mianshi.connects, received: window.__mianshi.received}})")
            raise AssertionError(f"the room did not start in Firefox: {state}")
        assert await ff.evaluate("document.querySelector('#question').textContent") == "请开始自我介绍吧"
        await ff.wait_for("window.__mianshi.video.framesSent >= 2", timeout=30)
        # Firefox runs an AudioContext only with an audio output device; a container without sound
        # has none (the context stays "suspended" and the page says so instead of hanging)
        await ff.wait_for("window.__mianshi.room.audioCtx !== null", timeout=30)
        await asyncio.sleep(2)
        audio_state = await ff.evaluate("window.__mianshi.room.audioCtx.state")
        if audio_state == "running":
            await ff.wait_for("window.__mianshi.audio.framesSent >= 150", timeout=60)
        await ff.screenshot(OUTPUT_DIR / "firefox" / "room.png")
        a = await ff.evaluate("window.__mianshi.audio")
        v = await ff.evaluate("window.__mianshi.video")
        mic = await ff.evaluate("document.querySelector('#mic-status').textContent")
        no_error = await ff.evaluate("document.querySelector('#room-errors').hidden")
    assert (v["width"], v["height"]) in ((640, 480), (480, 360))
    assert no_error is True, "the room showed an error"
    result = {"audio_context": audio_state, "context_rate": a["contextRate"], "frames": a["framesSent"],
              "video": v, "mic_status": mic}
    if audio_state == "running":
        assert a["bytesSent"] == 1280 * a["framesSent"]
        assert a["lastFrameIndex"] - a["firstFrameIndex"] + 1 == a["framesSent"]
        gaps = [t2 - t1 for t1, t2 in zip(a["sendTimes"], a["sendTimes"][1:])]
        result["mean_gap_ms"] = round(sum(gaps) / len(gaps), 3)
        audio = a["audioTimes"]
        result["audio_clock_gap_ms"] = round((audio[-1] - audio[0]) / (len(audio) - 1), 3)
        # exact on the audio clock; the wall clock follows the browser's audio clock (see test_browser_audio)
        assert 39.9 <= result["audio_clock_gap_ms"] <= 40.1, result
        assert 38.0 <= result["mean_gap_ms"] <= 43.0, result
    else:
        assert audio_state == "suspended" and a["framesSent"] == 0
        assert mic == "音频未启动（点击页面任意处开启）"
    (OUTPUT_DIR / "firefox" / "room.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
