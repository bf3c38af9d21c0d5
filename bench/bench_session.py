"""Session benchmark (issue 3).

    .venv/bin/python bench/bench_session.py [--sessions 10] [--seconds 20]

Prints
1. the server-side cost per audio frame: decode + validate (``parse_client_message``) + enqueue
   (``SpeechPipeline.feed``), median and p95 over 750 frames (30 s) of real recordings sent at
   real-time pace through the configured VAD and ASR;
2. event-loop lag p50/p99 of a running server (a separate process started with plugins.toml, real
   VAD and ASR) while N WebSocket clients stream the Mandarin recordings at real-time pace (40 ms
   frames) and send one JPEG a second — read from the server's ``GET /-/stats``;
3. memory per session: the server's RSS growth with N sessions open and streaming, divided by N.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
AUDIO = ROOT.parent / "shared" / "audio" / "zh"

import httpx  # noqa: E402
import websockets  # noqa: E402

from core import events as ev  # noqa: E402

RESUME = {"resume_name": "后端简历", "expected_position": "后端工程师", "name": "李明",
          "education": [{"school": "华中科技大学", "major": "软件工程"}],
          "work_experience": [{"company": "星河电商", "title": "后端开发"}],
          "projects": [{"name": "订单系统", "description": "订单与支付"}], "skills": ["Java", "Redis"]}
INTERVIEW = {"position_name": "后端开发工程师", "position_type": "backend", "position_description": "后端开发"}


def read_pcm(name: str) -> bytes:
    with wave.open(str(AUDIO / name), "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())


def frames_of(pcm: bytes) -> list[str]:
    return [json.dumps({"type": "audio_frame", "audio_data": base64.b64encode(pcm[i:i + 1280]).decode(),
                        "end": False}) for i in range(0, len(pcm) - 1279, 1280)]


def jpeg_frame() -> str:
    import cv2
    from skimage import data
    image = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (640, 480))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return json.dumps({"type": "video_frame", "frame_data": base64.b64encode(buf.tobytes()).decode(),
                       "frame_type": "keyframe"})


# --- 1. per-frame cost -------------------------------------------------------------------------------
async def frame_cost(n: int = 750) -> dict:
    from core.clock import SystemClock
    from core.config import load_config
    from core.engine import Engine

    from core.speech import SpeechPipeline
    from core.testing import MemoryStore

    # the configured VAD and ASR, built by a started engine (nothing else of it is used)
    config = load_config(env={"MIANSHI_DATA_DIR": str(ROOT / "data")},
                         overrides={"engine": {"question_sources": ["bank"], "scorers": ["heuristic"],
                                               "cheat_detectors": [], "code_runner": ""}})
    engine = Engine(config, store=MemoryStore(), load_entry_points=False)
    await engine.start()

    async def on_event(_event):
        return None

    pipeline = SpeechPipeline(engine.vad, engine.asr, engine.asr_scheduler, SystemClock(), on_event,
                              config.get("speech", {}))
    raw_frames = frames_of(b"".join(read_pcm(f) for f in ("intro_01.wav", "intro_02.wav", "intro_03.wav")))
    costs = []
    start = time.perf_counter()
    for i in range(n):
        raw = raw_frames[i % len(raw_frames)]
        t0 = time.perf_counter()
        message = ev.parse_client_message(raw)
        await pipeline.feed(message.pcm)
        costs.append(time.perf_counter() - t0)
        # real-time pace, as a client sends: the pipeline's worker (VAD, ASR) runs in between
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.04 - time.perf_counter()))
    await pipeline.aclose()
    await engine.close()
    return {"frames": n, "median_us": statistics.median(costs) * 1e6,
            "p95_us": sorted(costs)[int(0.95 * n)] * 1e6}


# --- 2 and 3. a real server under N streaming sessions ------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_up(base: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("server exited early")
            try:
                if (await http.get(base + "/-/stats")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("server did not come up")


async def new_candidate(base: str, http: httpx.AsyncClient, prefix: str = "b") -> tuple[str, int]:
    """A user registered (a random name starting with ``prefix``) with the benchmark resume: its
    token and the resume id."""
    r = await http.post(base + "/users/register/",
                        json={"username": f"{prefix}{uuid.uuid4().hex[:10]}", "password": "bench-pass-1"})
    r.raise_for_status()
    token = r.json()["token"]
    r = await http.post(base + "/users/resume/", json=RESUME, headers={"Authorization": f"Bearer {token}"})
    r.raise_for_status()
    return token, r.json()["resume_id"]


async def client_session(base: str, ws_base: str, audio_frames: list[str], video: str, seconds: float,
                         ready: asyncio.Barrier, counts: dict) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        token, resume_id = await new_candidate(base, http)
        headers = {"Authorization": f"Bearer {token}"}
        interview_id = (await http.post(base + "/interviews/create/", json=INTERVIEW, headers=headers)).json()["id"]
    async with websockets.connect(f"{ws_base}?token={token}", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "create_stream", "interview_id": interview_id, "resume_id": resume_id}))

        async def reader():
            async for raw in ws:
                msg = json.loads(raw)
                counts[msg["type"]] = counts.get(msg["type"], 0) + 1

        reading = asyncio.create_task(reader())
        await ready.wait()
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < seconds:
            await ws.send(audio_frames[i % len(audio_frames)])
            if i % 25 == 0:
                await ws.send(video)
            i += 1
            await asyncio.sleep(max(0.0, start + i * 0.04 - time.monotonic()))
        reading.cancel()


def start_server(prefix: str = "mianshi-bench-") -> tuple[subprocess.Popen, str, str]:
    """``python sanic_app.py`` with plugins.toml on a free port and a fresh data directory (embedded
    database); returns the process, its HTTP base and its WebSocket URL."""
    port = free_port()
    data = tempfile.mkdtemp(prefix=prefix)
    env = dict(os.environ, PORT=str(port), MIANSHI_DATA_DIR=data)
    env.pop("MONGODB_URI", None)
    proc = subprocess.Popen([sys.executable, str(ROOT / "sanic_app.py")], env=env, cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws/webrtc/"


def stop_server(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Stop what ``start_server`` started: SIGTERM (a clean shutdown), SIGKILL after ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


async def server_load(sessions: int, seconds: float) -> dict:
    proc, base, ws_base = start_server()
    try:
        await wait_up(base, proc)
        async with httpx.AsyncClient() as http:
            idle = (await http.get(base + "/-/stats")).json()
        audio = frames_of(b"".join(read_pcm(f) for f in ("intro_01.wav", "intro_02.wav", "intro_03.wav",
                                                         "answer_long.wav")))
        video = jpeg_frame()
        ready = asyncio.Barrier(sessions + 1)
        counts: dict = {}
        tasks = [asyncio.create_task(client_session(base, ws_base, audio, video, seconds, ready, counts))
                 for _ in range(sessions)]
        await ready.wait()
        async with httpx.AsyncClient() as http:
            await http.post(base + "/-/stats/reset")
            await asyncio.sleep(seconds * 0.8)
            busy = (await http.get(base + "/-/stats")).json()
        await asyncio.gather(*tasks)
    finally:
        stop_server(proc)
    return {"sessions": sessions, "seconds": seconds, "loop": busy["loop"], "open_sessions": busy["sessions"],
            "rss_idle_mb": idle["rss_bytes"] / 2**20, "rss_busy_mb": busy["rss_bytes"] / 2**20,
            "per_session_mb": (busy["rss_bytes"] - idle["rss_bytes"]) / 2**20 / sessions,
            "messages": counts}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    cost = await frame_cost()
    print(f"audio frame cost (decode+validate+enqueue): median {cost['median_us']:.0f} µs, "
          f"p95 {cost['p95_us']:.0f} µs over {cost['frames']} frames")
    load = await server_load(args.sessions, args.seconds)
    loop = load["loop"]
    print(f"{load['sessions']} sessions streaming audio (40 ms frames) + 1 JPEG/s for {load['seconds']:.0f} s: "
          f"event-loop lag p50 {loop['lag_ms_p50']} ms, p99 {loop['lag_ms_p99']} ms, max {loop['lag_ms_max']} ms "
          f"({loop['samples']} samples)")
    print(f"memory: idle RSS {load['rss_idle_mb']:.0f} MiB, with {load['open_sessions']} sessions "
          f"{load['rss_busy_mb']:.0f} MiB -> {load['per_session_mb']:.1f} MiB per session")
    print(f"server messages received by the clients: {load['messages']}")


if __name__ == "__main__":
    asyncio.run(main())
