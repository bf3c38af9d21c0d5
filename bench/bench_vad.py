"""VAD cost per stream: CPU per audio second and per model call, for each VAD configuration, on
speech nobody tuned on, and whether the FSMN engines agree.

    .venv/bin/python bench/bench_vad.py                       # zh-dev-heldout, 40 ms frames
    .venv/bin/python bench/bench_vad.py --audio-set zh --degrade
    .venv/bin/python bench/bench_vad.py --batch 1,3,5,10,20    # lean FSMN, streams per model call

Each recording becomes one stream (0.5 s of silence, the recording, 1 s of silence, its first half)
fed in 40 ms frames as the speech pipeline does, then finished. Printed per VAD: CPU seconds per
audio second (this thread's CPU, so other processes do not count), the per-call CPU p50/p95 of the
calls that ran the model (FSMN: every ``chunk_ms``) in microseconds, the sessions one core would
carry at that cost (VAD alone), and the segments found. ``fsmn`` (lean engine) and ``fsmn-funasr``
must give the same events, call by call: the run says how many streams differ. numpy's BLAS is held
to one thread for every engine (the lean engine does that itself; the others are measured the same
way so that no spinning BLAS thread is counted or hidden).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from bench_asr import SETS, degrade, load_set  # noqa: E402
from tests.asr_support import load_from, references_in  # noqa: E402

CONFIGS = {
    "fsmn": ("fsmn", {}),
    "fsmn-funasr": ("fsmn", {"engine": "funasr"}),
    "energy": ("energy", {}),
}


def make(name: str):
    kind, extra = CONFIGS[name]
    from core.config import load_config
    settings = {**load_config().get("plugins", {}).get(kind, {}), **extra}
    if kind == "fsmn":
        from plugins.vad_fsmn import FsmnVad
        return FsmnVad(settings)
    from plugins.vad_energy import EnergyVad
    return EnergyVad(settings)


def stream_audio(pcm: np.ndarray) -> np.ndarray:
    z = np.zeros
    return np.concatenate([z(8000, np.int16), pcm, z(16000, np.int16), pcm[: len(pcm) // 2]])


def measure(vad, streams: list[np.ndarray]) -> dict:
    per_call: list[float] = []
    events: list[list] = []
    total = 0.0
    audio = 0
    for pcm in streams:
        s = vad.open_stream()
        calls = []
        for i in range(0, len(pcm), 640):
            t = time.thread_time()
            calls.append(s.accept(pcm[i:i + 640]))
            dt = time.thread_time() - t
            total += dt
            per_call.append(dt)
        t = time.thread_time()
        calls.append(s.finish())
        total += time.thread_time() - t
        audio += len(pcm)
        events.append(calls)
    # the calls that did the work: the slowest fifth (FSMN runs the model on one call in five)
    heavy = sorted(per_call)[-max(1, len(per_call) // 5):]
    q = statistics.quantiles(heavy, n=20) if len(heavy) >= 20 else [heavy[-1]] * 19
    cost = total / (audio / 16000)
    return {"cpu_per_audio_s": cost, "call_p50_us": statistics.median(heavy) * 1e6, "call_p95_us": q[18] * 1e6,
            "sessions_per_core": 1.0 / cost if cost else float("inf"),
            "segments": sum(sum(e.kind == "start" for c in calls for e in c) for calls in events),
            "events": events, "audio_s": audio / 16000}


def measure_batched(vad, streams: list[np.ndarray], size: int) -> dict:
    """The lean FSMN engine with ``size`` streams fed together: every 40 ms frame of each goes
    through ``accept_async`` in one event-loop turn, so their chunks run as one model call (what the
    speech pipeline does for sessions whose chunks complete in the same turn)."""
    import asyncio

    async def group(pcms: list[np.ndarray]) -> tuple[float, list[list]]:
        ss = [vad.open_stream() for _ in pcms]
        out: list[list] = [[] for _ in pcms]
        spent = 0.0
        for i in range(0, max(len(p) for p in pcms), 640):
            live = [k for k, p in enumerate(pcms) if i < len(p)]
            t = time.thread_time()
            found = await asyncio.gather(*(ss[k].accept_async(pcms[k][i:i + 640]) for k in live))
            spent += time.thread_time() - t
            for k, f in zip(live, found):
                out[k].append(f)
        t = time.thread_time()
        for k, s in enumerate(ss):
            out[k].append(s.finish())
        return spent + time.thread_time() - t, out

    total, events, audio = 0.0, [], 0
    calls_before, chunks_before = vad.turns, vad.turn_chunks
    for g in range(0, len(streams), size):
        spent, out = asyncio.run(group(streams[g:g + size]))
        total += spent
        events += out
        audio += sum(len(p) for p in streams[g:g + size])
    calls, chunks = vad.turns - calls_before, vad.turn_chunks - chunks_before
    return {"cpu_per_audio_s": total / (audio / 16000), "events": events,
            "chunks_per_call": chunks / calls if calls else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--audio-set", choices=SETS, default="zh-dev-heldout")
    ap.add_argument("--degrade", action="store_true", help="sox-degraded copies instead (noise, reverb, speed, quiet)")
    ap.add_argument("--vads", default="fsmn,fsmn-funasr,energy", help=f"comma-separated, of {sorted(CONFIGS)}")
    ap.add_argument("--batch", help="instead: the lean FSMN engine with this many streams fed together, "
                                    "comma-separated sizes (e.g. 1,3,5,10,20)")
    args = ap.parse_args()
    items = load_set(None, args.audio_set)
    if args.degrade:
        d = degrade(items, Path(tempfile.mkdtemp(prefix="vad-degraded-")))
        items = [(n, r, load_from(d, n)) for n, r in references_in(d).items()]
    streams = [stream_audio(pcm) for _, _, pcm in items]
    if args.batch:
        batched(streams, [int(x) for x in args.batch.split(",")], args)
        return
    results = {}
    with threadpool_limits(1, "blas"):
        for name in args.vads.split(","):
            vad = make(name)
            measure(vad, streams[:2])                    # warm-up
            results[name] = measure(vad, streams)
    audio_s = next(iter(results.values()))["audio_s"]
    print(f"{len(streams)} streams ({args.audio_set}{', degraded' if args.degrade else ''}), {audio_s:.0f} s of audio, "
          "40 ms frames, one thread")
    print(f"{'VAD':<13} {'CPU s/audio s':>13} {'model call p50/p95 (us)':>24} {'sessions/core':>14} {'segments':>9}")
    for name, r in results.items():
        print(f"{name:<13} {r['cpu_per_audio_s']:13.5f} {r['call_p50_us']:11.0f} / {r['call_p95_us']:<10.0f} "
              f"{r['sessions_per_core']:14.0f} {r['segments']:9d}")
    if "fsmn" in results and "fsmn-funasr" in results:
        differ = sum(a != b for a, b in zip(results["fsmn"]["events"], results["fsmn-funasr"]["events"]))
        print(f"fsmn (lean) and fsmn-funasr: {len(streams) - differ} of {len(streams)} streams with the same events "
              f"at the same calls")


def batched(streams: list[np.ndarray], sizes: list[int], args) -> None:
    """``--batch``: CPU per audio second of the lean FSMN engine by streams per model call, and
    whether every stream's events are those it gets alone."""
    with threadpool_limits(1, "blas"):
        vad = make("fsmn")
        measure(vad, streams[:2])                        # warm-up
        alone = measure(vad, streams)
        print(f"{len(streams)} streams ({args.audio_set}{', degraded' if args.degrade else ''}), "
              f"{alone['audio_s']:.0f} s of audio, 40 ms frames, one thread; lean FSMN engine")
        print(f"{'streams fed together':>20} {'chunks per call':>16} {'CPU s/audio s':>14} {'same events':>12}")
        print(f"{'alone (accept)':>20} {1.0:16.1f} {alone['cpu_per_audio_s']:14.5f} {'-':>12}")
        for size in sizes:
            r = measure_batched(vad, streams, size)
            same = sum(a == b for a, b in zip(r["events"], alone["events"]))
            print(f"{size:20d} {r['chunks_per_call']:16.1f} {r['cpu_per_audio_s']:14.5f} "
                  f"{same:>5} of {len(streams)}")


if __name__ == "__main__":
    main()
