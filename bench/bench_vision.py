"""Vision benchmark: accuracy and speed of each detector on the labelled 640×480 image set, the frame
rate one core sustains, and the effect of 10 sessions sending frames on audio-frame latency.

    .venv/bin/python bench/bench_vision.py [--reps 2] [--seconds 12] [--skip-haar] [--only-latency]

OpenCV is limited to one thread (as in the server's VisionPool), so "ms per frame" is single-core.
The audio-latency part runs 10 CheatMonitors on one VisionPool worker in one event loop together
with 10 simulated audio streams: every 40 ms each stream parses a real ``audio_frame`` message (the
work the WebSocket handler does on the loop) and records how late it was woken. Numbers depend on
how busy the machine is; print ``uptime`` next to them.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.cheat import CheatMonitor, VisionPool  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.events import parse_client_message  # noqa: E402
from plugins._vision_util import decode_frame, encode_jpeg  # noqa: E402
from plugins.vision_blazeface import BlazeFaceCounter  # noqa: E402
from plugins.vision_facemesh import FaceMeshPose  # noqa: E402
from plugins.vision_haar import HaarFaceCounter  # noqa: E402
from tests import vision_images as vi  # noqa: E402


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))
    return v[k]


def count_table(images, reps: int, skip_haar: bool) -> list[dict]:
    counters = {"blazeface (full_range)": BlazeFaceCounter("full_range"),
                "blazeface (short_range)": BlazeFaceCounter("short_range")}
    if not skip_haar:
        counters["haar (scale 1.2)"] = HaarFaceCounter()
    count_imgs = [i for i in images]
    rows = []
    for name, det in counters.items():
        times, right, by_cat, wrong = [], 0, {}, []
        for img in count_imgs:
            n = None
            for _ in range(reps):
                # fresh array each rep: the shared per-frame cache must not hide the cost
                frame = img.image.copy()
                t = time.perf_counter()
                n = len(det.count(frame))
                times.append((time.perf_counter() - t) * 1000)
            ok = n == img.faces
            right += ok
            c = by_cat.setdefault(img.category, [0, 0])
            c[0] += ok
            c[1] += 1
            if not ok:
                wrong.append(f"{img.name}: {n} (label {img.faces})")
        rows.append({"detector": name, "right": right, "total": len(count_imgs),
                     "by_category": by_cat, "p50": pct(times, 50), "p95": pct(times, 95), "wrong": wrong})
    return rows


def pose_table(reps: int) -> dict:
    det = FaceMeshPose(yaw_threshold=20.0, pitch_threshold=20.0, baseline_frames=3)
    frames = {y: vi.yaw_frame(y) for y in vi.YAW_ANGLES}
    state: dict = {}
    for _ in range(3):
        det.detect(frames[0.0], state)
    out, times = [], []
    for y, img in frames.items():
        sig = None
        for _ in range(reps):
            frame = img.copy()
            t = time.perf_counter()
            sig = det.detect(frame, dict(state))      # baseline kept fixed
            times.append((time.perf_counter() - t) * 1000)
        d = sig[0].detail if sig else {}
        out.append((y, d.get("d_yaw"), sig[0].kind if sig else "no pose"))
    expected = {y: (abs(y) >= 30) for y in frames}
    right = sum((kind == "looking_away") == expected[y] for y, _, kind in out)
    return {"rows": out, "right": right, "total": len(out), "p50": pct(times, 50), "p95": pct(times, 95)}


def pipeline_fps(images, seconds: float = 6.0) -> dict:
    """decode JPEG + blazeface + facemesh_pose on one thread, as the monitor does per frame."""
    dets = [BlazeFaceCounter("full_range"), FaceMeshPose()]
    states = [{}, {}]
    jpegs = [encode_jpeg(i.image) for i in images if i.category in ("one_face", "yaw", "two_faces")]
    times = []
    t_end = time.perf_counter() + seconds
    k = 0
    while time.perf_counter() < t_end:
        jpeg = jpegs[k % len(jpegs)]
        k += 1
        t = time.perf_counter()
        img = decode_frame(jpeg)
        for d, s in zip(dets, states):
            d.detect(img, s)
        times.append((time.perf_counter() - t) * 1000)
    return {"frames": len(times), "p50": pct(times, 50), "p95": pct(times, 95),
            "fps": 1000 / statistics.mean(times)}


async def audio_latency(images, sessions: int, fps_per_session: float, seconds: float) -> dict:
    pool = VisionPool(workers=1)
    clock = SystemClock()
    episodes = []

    async def on_episode(r):
        episodes.append(r)

    async def on_error(t):
        pass

    dets = [BlazeFaceCounter("full_range"), FaceMeshPose()]
    monitors = [CheatMonitor(dets, pool, clock, on_episode, on_error,
                             {"consecutive_frames": 3, "clear_frames": 2, "queue_size": 2})
                for _ in range(sessions)]
    jpegs = [encode_jpeg(i.image) for i in images if i.category in ("one_face", "two_faces", "no_face")]
    pcm = (np.sin(np.arange(640) / 5) * 3000).astype("<i2").tobytes()
    audio_msg = json.dumps({"type": "audio_frame", "audio_data": base64.b64encode(pcm).decode()})
    lateness: list[float] = []
    stop = time.perf_counter() + seconds

    async def audio_stream(offset: float):
        nxt = time.perf_counter() + offset
        while nxt < stop:
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
            lateness.append((time.perf_counter() - nxt) * 1000)
            parse_client_message(audio_msg)
            nxt += 0.040

    async def video_stream(i: int, m: CheatMonitor):
        if fps_per_session <= 0:
            return
        period = 1.0 / fps_per_session
        nxt = time.perf_counter() + (i / sessions) * period
        k = i
        while nxt < stop:
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
            await m.submit_frame(jpegs[k % len(jpegs)])
            k += 1
            nxt += period

    await asyncio.gather(*[audio_stream(i * 0.004) for i in range(sessions)],
                         *[video_stream(i, m) for i, m in enumerate(monitors)])
    received = sum(m.stats["frames_received"] for m in monitors)
    processed = sum(m.stats["frames_processed"] for m in monitors)
    dropped = sum(m.stats["frames_dropped"] for m in monitors)
    for m in monitors:
        await m.aclose()
    pool.close()
    return {"p50": pct(lateness, 50), "p95": pct(lateness, 95), "p99": pct(lateness, 99),
            "max": max(lateness), "received": received, "processed": processed, "dropped": dropped,
            "processed_per_s": processed / seconds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--skip-haar", action="store_true")
    ap.add_argument("--only-latency", action="store_true", help="only the audio-latency runs")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    print(f"# load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; OpenCV {cv2.__version__}, 1 thread")
    images = vi.labelled_set()
    if args.only_latency:
        latency(images, args.seconds)
        return
    cats = sorted({i.category for i in images})
    print(f"\n## Face counting on {len(images)} labelled 640×480 images ({', '.join(cats)})\n")
    print("| detector | right | " + " | ".join(cats) + " | ms p50 | ms p95 |")
    print("|---|---|" + "---|" * len(cats) + "---|---|")
    rows = count_table(images, args.reps, args.skip_haar)
    for r in rows:
        per = " | ".join(f"{r['by_category'][c][0]}/{r['by_category'][c][1]}" for c in cats)
        print(f"| {r['detector']} | {r['right']}/{r['total']} | {per} | {r['p50']:.1f} | {r['p95']:.1f} |")
    for r in rows:
        if r["wrong"]:
            print(f"- {r['detector']} wrong on: " + "; ".join(r["wrong"]))

    pose = pose_table(args.reps)
    print("\n## Looking away (facemesh_pose, threshold 20° measured yaw, baseline = 0° render)\n")
    print("| rendered yaw | measured yaw vs baseline | signal |")
    print("|---|---|---|")
    for y, d, kind in pose["rows"]:
        print(f"| {y:+.0f}° | {d if d is None else f'{d:+.1f}°'} | {kind or 'normal'} |")
    print(f"\nright (flag iff |yaw| ≥ 30°): {pose['right']}/{pose['total']}; "
          f"ms per frame (BlazeFace + mesh + PnP): p50 {pose['p50']:.1f}, p95 {pose['p95']:.1f}")

    fps = pipeline_fps(images)
    print(f"\n## One core, whole per-frame work (JPEG decode + blazeface + facemesh_pose)\n\n"
          f"{fps['frames']} frames: p50 {fps['p50']:.1f} ms, p95 {fps['p95']:.1f} ms -> "
          f"{fps['fps']:.1f} frames/s sustained on one core")

    latency(images, args.seconds)


def latency(images, seconds: float) -> None:
    print(f"\n## Audio-frame latency on the event loop, 10 sessions, {seconds:.0f} s each run\n")
    print("| video | audio lateness p50 / p95 / p99 / max (ms) | frames received / processed / dropped |")
    print("|---|---|---|")
    for label, fps_s in (("none", 0.0), ("10 × 1 frame/s (the guide)", 1.0), ("10 × 5 frames/s (flood)", 5.0)):
        r = asyncio.run(audio_latency(images, 10, fps_s, seconds))
        print(f"| {label} | {r['p50']:.2f} / {r['p95']:.2f} / {r['p99']:.2f} / {r['max']:.1f} | "
              f"{r['received']} / {r['processed']} / {r['dropped']} |")
    print(f"\n# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
