"""Media-server benchmark: how many interview sessions one ``media_server.py`` serves (cheat detection
on one JPEG a second per session, Opus encoding of every utterance), for sizing the media tier that
takes this work off the web tier (README, "Media server").

    .venv/bin/python bench/bench_media.py                          # levels 25,50,75,100,125; 2 workers
    .venv/bin/python bench/bench_media.py --levels 50,100 --workers 2 --seconds 30

Starts the real server (plugins.toml's detectors: blazeface + facemesh_pose) with ``--workers``
threads. For each level N, N simulated sessions each send one 640x480 JPEG with a face a second
(``POST /v1/vision/analyse``, the detectors' state carried from answer to answer as the web tier
does) and, speaking 60 % of the time, one utterance of Mandarin speech (a shared recording of 3-9 s)
at the end of each stretch of speech (``POST /v1/audio/encode``). A level is held when every frame
and utterance was answered (no 503, no error), frame latency p95 < 1 s (a frame a second per
session) and encoding keeps pace. Printed: frames and utterances per second, latency p50/p95, 503s,
the server's CPU seconds per wall second. The clients run in this process on the same machine (their
CPU is printed too).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402

from bench_session import free_port, jpeg_frame, read_pcm, stop_server  # noqa: E402
from bench_webtier import parse_levels, proc_cpu  # noqa: E402

CLIPS = ("intro_01.wav", "intro_02.wav", "intro_03.wav", "answer_long.wav")
SPEAKING = 0.6


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def session(http: aiohttp.ClientSession, base: str, jpeg_b64: str, clips: list[bytes], seconds: float,
                  offset: float, out: dict) -> None:
    rng = random.Random(offset)
    await asyncio.sleep(offset)
    start = time.monotonic()
    states: dict = {}
    next_utterance = start + rng.uniform(2, 8)
    tick = 0
    encodes: list[asyncio.Task] = []
    while time.monotonic() - start < seconds:
        t0 = time.monotonic()
        body = {"jpeg": jpeg_b64, "detectors": ["blazeface", "facemesh_pose"], "states": states}
        try:
            async with http.post(base + "/v1/vision/analyse", json=body) as resp:
                data = await resp.read()
                if resp.status == 200:
                    states = json.loads(data)["states"]
                    out["frame_ms"].append((time.monotonic() - t0) * 1000)
                else:
                    out["frame_status"][resp.status] = out["frame_status"].get(resp.status, 0) + 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            out["errors"].append(repr(exc))
        if time.monotonic() >= next_utterance:
            pcm = clips[rng.randrange(len(clips))]
            encodes.append(asyncio.create_task(encode(http, base, pcm, out)))
            seconds_of_speech = len(pcm) / 32000
            next_utterance = time.monotonic() + seconds_of_speech / SPEAKING
        tick += 1
        await asyncio.sleep(max(0.0, start + tick - time.monotonic()))
    await asyncio.gather(*encodes)


async def encode(http: aiohttp.ClientSession, base: str, pcm: bytes, out: dict) -> None:
    t0 = time.monotonic()
    try:
        async with http.post(base + "/v1/audio/encode?sample_rate=16000", data=pcm) as resp:
            data = await resp.read()
            if resp.status == 200 and data[:4] == b"OggS":
                out["encode_ms"].append((time.monotonic() - t0) * 1000)
                out["audio_s"] += len(pcm) / 32000
            else:
                out["encode_status"][resp.status] = out["encode_status"].get(resp.status, 0) + 1
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        out["errors"].append(repr(exc))


async def run(levels: list[int], seconds: float, workers: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="mianshi-media-bench-"))
    port = free_port()
    log = open(data / "media_server.log", "wb")
    proc = subprocess.Popen([sys.executable, str(ROOT / "media_server.py"), "--port", str(port), "--workers",
                             str(workers)], cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    jpeg_b64 = json.loads(jpeg_frame())["frame_data"]
    # each recording cut to at most 9 s: utterances as the VAD cuts them
    clips = [read_pcm(f)[: 9 * 32000] for f in CLIPS]
    try:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"media_server.py exited; see {data / 'media_server.log'}")
                try:
                    async with http.get(base + "/v1/media/info") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("media_server.py did not come up")
                await asyncio.sleep(0.5)
            print(f"media_server.py --workers {workers} (detectors as plugins.toml) up; cores={os.cpu_count()}, "
                  f"load average {os.getloadavg()[0]:.2f} before the run; clients in this process")
            print("  N  frames/s  frame ms p50   p95   not answered  utterances  audio s/s  encode ms p50   p95"
                  "   server CPU  client CPU  held")
            best = 0
            for n in levels:
                out = {"frame_ms": [], "encode_ms": [], "frame_status": {}, "encode_status": {}, "errors": [],
                       "audio_s": 0.0}
                cpu_s, cpu_c, t0 = proc_cpu(proc.pid), proc_cpu(os.getpid()), time.monotonic()
                await asyncio.gather(*(session(http, base, jpeg_b64, clips, seconds, k / n, out) for k in range(n)))
                wall = time.monotonic() - t0
                cpu = ((proc_cpu(proc.pid) - cpu_s) / wall, (proc_cpu(os.getpid()) - cpu_c) / wall)
                missing = sum(out["frame_status"].values()) + sum(out["encode_status"].values()) + len(out["errors"])
                held = (missing == 0 and pct(out["frame_ms"], 95) < 1000
                        and pct(out["encode_ms"], 95) < 5000)
                if held:
                    best = max(best, n)
                print(f"{n:3d}  {len(out['frame_ms']) / wall:7.1f}  {pct(out['frame_ms'], 50):9.0f} "
                      f"{pct(out['frame_ms'], 95):6.0f}   {missing:8d}     {len(out['encode_ms']):8d}   "
                      f"{out['audio_s'] / wall:7.1f}   {pct(out['encode_ms'], 50):9.0f} {pct(out['encode_ms'], 95):6.0f}"
                      f"     {cpu[0]:5.2f}/s     {cpu[1]:5.2f}/s   {'yes' if held else 'no'}"
                      + (f"  (frames: {out['frame_status']}, audio: {out['encode_status']}, "
                         f"errors: {out['errors'][:2]})" if missing else ""), flush=True)
                await asyncio.sleep(2)
            print(f"most sessions served (every frame answered within 1 s p95, every utterance encoded): {best} "
                  f"with {workers} worker threads (of the levels tried: {', '.join(map(str, levels))})")
    finally:
        stop_server(proc, 10)
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="25,50,75,100,125", help="session counts, comma-separated")
    ap.add_argument("--seconds", type=float, default=30.0, help="time per level")
    ap.add_argument("--workers", type=int, default=2, help="the server's threads for frames (and for audio)")
    args = ap.parse_args()
    levels = parse_levels(ap, args.levels)
    if args.workers < 1:
        ap.error("--workers must be positive")
    asyncio.run(run(levels, args.seconds, args.workers))


if __name__ == "__main__":
    main()
