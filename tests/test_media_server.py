"""The media server (``media_server.py``) and the web tier's client (``core/media_remote.py``).

Part 1, a real ``media_server.py`` process with the real detectors: what it answers is what the same
detectors say in this process (state carried with the frames); bad frames, bad requests, unknown
detectors, the bearer key; Opus that decodes back to the audio's length.
Part 2, the web tier: a session's frames analysed remotely open the same episodes over the WebSocket;
recordings encoded remotely; an engine refuses a media server that lacks a detector.
Part 3, failures (a closed port, an aiohttp fake that is slow, busy or answers garbage): frames are
dropped and counted, the monitor keeps going, the cooldown spares the server, recordings are encoded
locally instead.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import websockets

from core.cheat import CheatMonitor, VisionPool, analyse_frame, declared_kinds, frame_limits
from core.clock import ManualClock
from core.media_remote import MediaClient, MediaUnavailable, RemoteFrameError
from core.recording import MediaEncoder, decode_audio
from media_server import build_detectors
from plugins._vision_util import encode_jpeg
from tests import vision_images as vi
from tests.ws_support import Inbox, until, video_frame
from tests.asr_remote_support import ThreadedAiohttp, free_port, stop, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
DETECTORS = ["blazeface", "facemesh_pose"]


def _start_media_server(tmp: Path, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(tmp / f"media_server_{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, str(ROOT / "media_server.py"), "--port", str(port), "--workers", "1",
                             *args], stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT),
                            env={**os.environ, **(env or {})})
    log.close()
    url = f"http://127.0.0.1:{port}"
    headers_ok = not (env or {}).get("MIANSHI_MEDIA_API_KEY")
    try:
        if headers_ok:
            wait_healthy(url + "/v1/media/info", proc)
        else:                                   # 401 without the key: wait for the port instead
            import socket
            import time
            deadline = time.monotonic() + 120
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("media server did not start")
                    time.sleep(0.2)
    except Exception:
        stop(proc)
        raise RuntimeError((tmp / f"media_server_{port}.log").read_text(errors="replace")[-3000:])
    return proc, url


@pytest.fixture(scope="module")
def media_server(tmp_path_factory):
    proc, url = _start_media_server(tmp_path_factory.mktemp("media"))
    yield url
    stop(proc)


def _local_detectors(names: list[str]) -> list:
    from core.config import load_config
    return build_detectors(load_config(overrides={"engine": {"cheat_detectors": names}}), names)


def _frames() -> dict[str, bytes]:
    by_name = {i.name: i for i in vi.one_face() + vi.two_faces() + vi.no_face()}
    return {"one": encode_jpeg(by_name["webcam_distance"].image),
            "two": encode_jpeg(by_name["side_by_side_brick"].image),
            "nobody": encode_jpeg(by_name["coffee"].image),
            "ahead": encode_jpeg(vi.yaw_frame(0.0)), "away": encode_jpeg(vi.yaw_frame(45.0))}


# --- part 1: the server ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_remote_analysis_is_what_the_detectors_say_here(media_server):
    frames = _frames()
    sequence = ["ahead"] * 6 + ["away"] * 3 + ["one", "two", "nobody", "ahead"]
    local_detectors = _local_detectors(DETECTORS)
    kinds = tuple(k for k in declared_kinds(local_detectors) if k != "tab_hidden")
    limits = frame_limits({})
    client = MediaClient(media_server)
    try:
        info = await client.info()
        assert info["detectors"] == {"blazeface": ["multiple_faces", "no_face"], "facemesh_pose": ["looking_away"]}
        local_states: dict = {}
        remote_states: dict = {}
        remote_kinds, local_kinds = [], []
        for name in sequence:
            signals, remote_states, ms, errors = await client.analyse(frames[name], DETECTORS, remote_states)
            assert errors == 0 and ms > 0
            here, _, _ = analyse_frame(local_detectors, local_states, frames[name], limits, kinds)
            remote_kinds.append([(s.detector, s.kind) for s in signals])
            local_kinds.append([(s.detector, s.kind) for s in here])
            assert [s.detail for s in signals] == json.loads(json.dumps([s.detail for s in here]))
        assert remote_kinds == local_kinds
        # the baseline was learnt from the state the frames carried, and "away" is looking away
        assert "baseline" in remote_states["facemesh_pose"]
        assert ("facemesh_pose", "looking_away") in remote_kinds[6]
        assert ("blazeface", "multiple_faces") in remote_kinds[10]
        assert ("blazeface", "no_face") in remote_kinds[11]
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_bad_frames_requests_and_detectors_get_clear_answers(media_server):
    import aiohttp
    client = MediaClient(media_server)
    try:
        with pytest.raises(RemoteFrameError) as refused:
            await client.analyse(b"this is not a jpeg", ["blazeface"], {})
        assert "JPEG" in refused.value.text
        truncated = _frames()["one"][:200]
        with pytest.raises(RemoteFrameError):
            await client.analyse(truncated, ["blazeface"], {})
        assert not client.cooling()          # a bad frame is the frame's fault, not the server's
        async with aiohttp.ClientSession() as http:
            async with http.post(media_server + "/v1/vision/analyse", data=b"{not json") as resp:
                assert resp.status == 400 and (await resp.json())["error"] == "bad_request"
            async with http.post(media_server + "/v1/vision/analyse",
                                 json={"jpeg": "!!!", "detectors": ["blazeface"]}) as resp:
                assert resp.status == 400
            async with http.post(media_server + "/v1/vision/analyse",
                                 json={"jpeg": base64.b64encode(_frames()["one"]).decode(),
                                       "detectors": ["haar"]}) as resp:
                body = await resp.json()
                assert resp.status == 404 and "haar" in body["message"] and "blazeface" in body["message"]
            async with http.post(media_server + "/v1/audio/encode", data=b"\x01\x02\x03") as resp:
                assert resp.status == 400
            async with http.post(media_server + "/v1/audio/encode?sample_rate=abc", data=b"\x00\x00") as resp:
                assert resp.status == 400
        with pytest.raises(MediaUnavailable):       # a 404 from a misconfigured pair is a failure
            await client.analyse(_frames()["one"], ["haar"], {})
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_encoded_audio_decodes_back_to_its_length(media_server):
    t = np.arange(16000 * 3) / 16000
    samples = (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)
    client = MediaClient(media_server)
    try:
        data = await client.encode(samples)
        decoded, rate = decode_audio(data)
        assert data[:4] == b"OggS" and rate == 16000
        assert abs(len(decoded) - len(samples)) < 0.05 * 16000
        assert np.corrcoef(decoded[:16000], samples[:16000] / 32768.0)[0, 1] > 0.9
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_a_server_with_a_key_refuses_requests_without_it(tmp_path):
    proc, url = _start_media_server(tmp_path, env={"MIANSHI_MEDIA_API_KEY": "k-123"})
    try:
        anonymous = MediaClient(url, cooldown_seconds=0.0)
        keyed = MediaClient(url, api_key="k-123")
        try:
            with pytest.raises(MediaUnavailable, match="401"):
                await anonymous.encode(np.ones(1600, np.int16))
            assert (await keyed.encode(np.ones(1600, np.int16)))[:4] == b"OggS"
            assert "blazeface" in (await keyed.info())["detectors"]
        finally:
            await anonymous.aclose()
            await keyed.aclose()
    finally:
        stop(proc)


# --- part 2: the web tier -------------------------------------------------------------------------
def _config(url: str, detectors=("blazeface",)) -> dict:
    return {"engine": {"phases": ["intro", "question"], "vad": "", "asr": "", "question_sources": ["bank"],
                       "scorers": ["heuristic"], "cheat_detectors": list(detectors), "code_runner": "",
                       "tts": []},
            "cheat": {"consecutive_frames": 3, "clear_frames": 2},
            "timing": {"intro_silence_seconds": 600.0},
            "media": {"url": url}}


@pytest.mark.asyncio
async def test_a_session_whose_frames_are_analysed_remotely(media_server, app_server_factory, api_client):
    frames = _frames()
    server = await app_server_factory(_config(media_server))
    assert server.engine.vision_remote is not None
    client = await api_client(server)
    ids = {"resume_id": await client.create_resume(), "interview_id": await client.create_interview()}
    async with websockets.connect(f"{server.ws_url}?token={client.token}", max_size=None) as ws:
        inbox = Inbox(ws)
        await ws.send(json.dumps({"type": "create_stream", **ids}))
        await inbox.wait_for(lambda m: m["type"] == "stream_created")
        monitor = server.engine.sessions[ids["interview_id"]].cheat
        for sent, name in enumerate(["one"] * 4 + ["two"] * 5 + ["nobody"] * 6 + ["one"] * 4, start=1):
            await ws.send(video_frame(frames[name]))
            await until(lambda: monitor.stats["frames_received"] == sent)
            await monitor.drain()
        await ws.send(video_frame(b"not a jpeg"))
        await inbox.wait_for(lambda m: m["type"] == "error" and "视频帧" in m.get("text", ""))
        assert [m["kind"] for m in inbox.of("cheat_detected")] == ["multiple_faces", "no_face"]
        stats = server.engine.stats()
        assert stats["media_server"]["frames_analysed"] == sent
        assert stats["vision_frames"]["processed"] == sent and monitor.stats["remote_errors"] == 0
        await ws.send(json.dumps({"type": "disconnect"}))
        await asyncio.wait_for(inbox.task, 10)
    await until(lambda: ids["interview_id"] not in server.engine.sessions)
    r = await client.get(f"/interviews/{ids['interview_id']}/")
    events = r.json()["interview"]["cheat_events"]
    assert [e["kind"] for e in events] == ["multiple_faces", "no_face"]
    assert events[0]["detail"]["faces"] == 2 and events[0]["frames"] == 5 and events[1]["frames"] == 6


@pytest.mark.asyncio
async def test_an_engine_refuses_a_media_server_without_its_detector(media_server, app_server_factory):
    with pytest.raises(Exception, match="does not run cheat detector 'haar'"):
        await app_server_factory(_config(media_server, detectors=("haar",)))


@pytest.mark.asyncio
async def test_an_engine_starts_while_the_media_server_is_down(app_server_factory):
    server = await app_server_factory(_config(f"http://127.0.0.1:{free_port()}"))
    assert server.engine.vision_remote is not None and server.engine.stats()["media_server"]["last_error"]


@pytest.mark.asyncio
async def test_recordings_are_encoded_by_the_media_server(media_server):
    samples = (np.random.default_rng(0).normal(0, 3000, 16000 * 2)).astype(np.int16)
    encoder = MediaEncoder(remote=MediaClient(media_server))
    try:
        data = await encoder.opus(samples)
        assert data[:4] == b"OggS"
        assert encoder.stats["encoded_remote"] == 1 and encoder.stats["encoded"] == 0
    finally:
        await encoder.remote.aclose()
        encoder.close()


# --- part 3: failures -----------------------------------------------------------------------------
class FakeMediaServer:
    """An aiohttp fake in its own thread. ``mode``: slow | garbage | busy | wrong_audio."""

    def __init__(self, mode: str, delay: float = 2.0) -> None:
        self.mode, self.delay = mode, delay
        self.requests = 0
        self._http: ThreadedAiohttp | None = None

    async def handle(self, request):
        from aiohttp import web
        self.requests += 1
        await request.read()
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
            return web.json_response({"signals": [], "states": {}, "ms": 1})
        if self.mode == "busy":
            return web.json_response({"error": "busy", "message": "x"}, status=503)
        if self.mode == "wrong_audio":
            return web.Response(body=b"RIFF....", content_type="audio/wav")
        return web.Response(text="<html>proxy error</html>", content_type="text/html")

    def __enter__(self) -> str:
        self._http = ThreadedAiohttp(lambda router: router.add_route("*", "/{tail:.*}", self.handle))
        return f"http://127.0.0.1:{self._http.port}"

    def __exit__(self, *exc) -> None:
        self._http.close()


def _monitor(client: MediaClient, clock, errors: list) -> tuple[CheatMonitor, VisionPool]:
    detectors = _local_detectors(["blazeface"])
    pool = VisionPool(workers=1)
    episodes: list = []

    async def on_episode(record):
        episodes.append(record)

    async def on_error(text):
        errors.append(text)

    return CheatMonitor(detectors, pool, clock, on_episode, on_error, {"consecutive_frames": 1}, remote=client), pool


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["down", "slow", "garbage", "busy"])
async def test_a_failing_media_server_drops_frames_and_the_monitor_keeps_going(mode):
    clock = ManualClock()
    frames = _frames()
    fake = FakeMediaServer(mode if mode != "down" else "garbage")
    errors: list = []
    with fake as fake_url:
        url = fake_url if mode != "down" else f"http://127.0.0.1:{free_port()}"
        client = MediaClient(url, timeout_seconds=0.5, cooldown_seconds=5.0, clock=clock)
        monitor, pool = _monitor(client, clock, errors)
        try:
            await monitor.submit_frame(frames["nobody"])
            await monitor.drain()
            assert monitor.stats["remote_errors"] == 1 and monitor.stats["frames_processed"] == 0
            assert client.stats["last_error"]
            asked = fake.requests
            for _ in range(3):                      # cooling down: no requests, frames dropped
                await monitor.submit_frame(frames["nobody"])
                await monitor.drain()
            assert fake.requests == asked and client.stats["frames_skipped_cooldown"] == 3
            assert monitor.stats["remote_errors"] == 4 and monitor.episodes == [] and errors == []
            await clock.advance(5.1)                 # after the cooldown it asks again
            await monitor.submit_frame(frames["nobody"])
            await monitor.drain()
            assert monitor.stats["remote_errors"] == 5
            assert fake.requests == asked + (0 if mode == "down" else 1)
        finally:
            await monitor.aclose()
            pool.close()
            await client.aclose()


@pytest.mark.asyncio
async def test_the_monitor_recovers_when_the_media_server_comes_back(media_server):
    clock = ManualClock()
    frames = _frames()
    client = MediaClient(media_server, cooldown_seconds=5.0, clock=clock)
    client.url = f"http://127.0.0.1:{free_port()}"             # first: nobody listens there
    errors: list = []
    monitor, pool = _monitor(client, clock, errors)
    try:
        await monitor.submit_frame(frames["nobody"])
        await monitor.drain()
        assert monitor.stats["remote_errors"] == 1
        client.url = media_server                                   # the server is back
        await clock.advance(6)
        await monitor.submit_frame(frames["nobody"])
        await monitor.drain()
        assert monitor.stats["frames_processed"] == 1
        assert [e["kind"] for e in monitor.episodes] == ["no_face"]
    finally:
        await monitor.aclose()
        pool.close()
        await client.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["down", "wrong_audio", "slow"])
async def test_recordings_the_media_server_fails_are_encoded_here(mode):
    samples = (np.random.default_rng(1).normal(0, 3000, 16000)).astype(np.int16)
    fake = FakeMediaServer("slow" if mode == "slow" else "wrong_audio", delay=2.0)
    with fake as fake_url:
        url = fake_url if mode != "down" else f"http://127.0.0.1:{free_port()}"
        client = MediaClient(url, encode_timeout_seconds=0.5, cooldown_seconds=60.0)
        encoder = MediaEncoder(remote=client)
        try:
            data = await encoder.opus(samples)
            assert data[:4] == b"OggS" and decode_audio(data)[1] == 16000
            assert encoder.stats["remote_failed"] == 1 and encoder.stats["encoded"] == 1
            data = await encoder.opus(samples)            # cooling down: straight to the local encoder
            assert data[:4] == b"OggS" and encoder.stats["remote_failed"] == 2
            assert client.stats["audio_sent"] == 1
        finally:
            await client.aclose()
            encoder.close()


def test_the_media_section_is_checked():
    from core.config import ConfigError, load_config
    with pytest.raises(ConfigError, match="media"):
        load_config(overrides={"media": {"url": 5}})
    with pytest.raises(ValueError, match="http"):
        MediaClient.from_config({"media": {"url": "ftp://x"}})
    assert MediaClient.from_config({"media": {}}) is None
    assert MediaClient.from_config({"media": {"url": "http://m:8100/"}, "_env": {"MIANSHI_MEDIA_API_KEY": "z"}}).api_key == "z"
