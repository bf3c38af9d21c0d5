"""Recordings benchmark (issue 17): what keeping the candidate's speech costs.

    .venv/bin/python bench/bench_recordings.py [--streams 8] [--utterances 60]

Prints
1. storage per interview minute: every recording of ../shared/audio/zh encoded as the server does
   (Ogg/Opus, core/recording.py ``encode_opus``) — bytes per minute of speech, and per minute of an
   interview stream in which the candidate speaks the set with ``--gap`` seconds of silence between
   recordings (silence is not recorded: only finalised utterances are kept);
2. write cost per utterance, ms p50/p95 over ``--utterances`` utterances: the cut from the session's
   ring, the Opus encode, and the GridFS write into the embedded database (mongoeco, a fresh one in a
   temporary directory), through ``core.recording.Recorder`` and ``storage.store.Store``;
3. the effect on ASR final latency (speech end -> final, p50/p95) of ``--streams`` simultaneous
   real-time sessions with recording on vs off: bench/bench_asr.py's ``run_load`` (the configured VAD
   and ASR through core.speech.SpeechPipeline), with recording added to each stream's pipeline the way
   the session does it (every fed frame into the ring; every final cut, encoded on a 4-thread
   blocking pool and written to GridFS in the background).
The machine is shared (2 cores, other engineers' tests and benchmarks): the load average is printed
with the numbers.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_asr  # noqa: E402
from core.config import load_config  # noqa: E402
from core.events import Transcript  # noqa: E402
from core.recording import SAMPLE_RATE, Recorder, encode_opus  # noqa: E402
from core.speech import AsrScheduler, SpeechPipeline  # noqa: E402
from storage import db as dbmod  # noqa: E402
from storage.embedded import EmbeddedMongo  # noqa: E402
from storage.store import Store  # noqa: E402

pct = bench_asr.pct


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f} (1 / 5 min)"


def storage_per_minute(items, gap_s: float) -> None:
    sizes, seconds = [], []
    for _, _, pcm in items:
        sizes.append(len(encode_opus(pcm)))
        seconds.append(pcm.size / SAMPLE_RATE)
    speech_min = sum(seconds) / 60
    stream_min = (sum(seconds) + gap_s * len(items) + 1.0) / 60
    kbps = [8 * b / s / 1000 for b, s in zip(sizes, seconds)]
    print("== 1. storage ==")
    print(f"{len(items)} recordings, {sum(seconds):.1f} s of speech, {sum(sizes)} bytes of Ogg/Opus "
          f"(bitrate median {statistics.median(kbps):.1f} kbit/s)")
    print(f"per minute of speech             {sum(sizes) / speech_min / 1024:.0f} KiB")
    print(f"per interview minute (gap {gap_s:g} s) {sum(sizes) / stream_min / 1024:.0f} KiB"
          f"   (raw PCM would be {SAMPLE_RATE * 2 * 60 / 1024:.0f} KiB per minute)")


async def write_cost(store: Store, items, n: int, executor: ThreadPoolExecutor) -> None:
    interview = await store.interviews.create("bench-user", {"position_name": "bench"})
    tasks: set = set()

    async def run_blocking(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    recorder = Recorder(store=store, user_id="bench-user", interview_id=interview["_id"],
                        settings={"buffer_seconds": 120}, run_blocking=run_blocking, track=tasks.add)
    cut, encode, write, total = [], [], [], []
    for k in range(n):
        _, _, pcm = items[k % len(items)]
        start = recorder.ring.total
        recorder.feed(pcm.tobytes())
        t0 = time.perf_counter()
        samples = recorder.ring.slice(start, start + pcm.size)
        t1 = time.perf_counter()
        data = await run_blocking(encode_opus, samples)
        t2 = time.perf_counter()
        await store.save_media("bench-user", interview["_id"], f"bench-{k}", kind="recording", data=data,
                               content_type="audio/ogg", meta={})
        t3 = time.perf_counter()
        cut.append((t1 - t0) * 1000)
        encode.append((t2 - t1) * 1000)
        write.append((t3 - t2) * 1000)
        total.append((t3 - t0) * 1000)
    print(f"\n== 2. write cost per utterance ({n} utterances, mean {np.mean([p.size for _, _, p in items]) / SAMPLE_RATE:.1f} s) ==")
    for label, values in (("cut from the ring", cut), ("Opus encode", encode), ("GridFS write", write),
                          ("total", total)):
        print(f"{label:18s} p50 {pct(values, 50):7.2f} ms   p95 {pct(values, 95):7.2f} ms")
    print("(the session does not wait for any of this: it runs in a task of its own)")


def recording_pipeline(store: Store, interviews: list[str], executor: ThreadPoolExecutor, pending: set):
    """SpeechPipeline with the session's recording added: every frame fed also goes into a Recorder,
    every final is cut, encoded and written in the background."""
    ids = iter(interviews)

    async def run_blocking(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    class RecordingPipeline(SpeechPipeline):
        def __init__(self, vad, asr, scheduler, clock, on_event, settings=None):
            self.recorder = Recorder(store=store, user_id="bench-user", interview_id=next(ids), settings={},
                                     run_blocking=run_blocking, track=pending.add)

            async def recorded(event):
                if isinstance(event, Transcript) and event.is_final and event.text:
                    self.recorder.utterance(event.audio_start, event.audio_end)
                await on_event(event)
            super().__init__(vad, asr, scheduler, clock, recorded, settings)

        async def feed(self, pcm: bytes) -> None:
            await super().feed(pcm)
            self.recorder.feed(pcm)

    return RecordingPipeline


async def latency(store, vad, asr, items, streams: int, gap: float, executor) -> None:
    audio, segs = bench_asr.build_stream(items, gap)
    config = load_config()
    settings = dict(config.get("speech", {}))
    workers = int(config.get("engine", {}).get("asr_workers", 2))
    print(f"\n== 3. ASR final latency, {streams} real-time sessions, {len(audio) / 16000:.0f} s each "
          f"(asr_workers={workers}) ==")
    results = {}
    for mode in ("off", "on", "off again"):
        scheduler = AsrScheduler(workers=workers)
        pending: set = set()
        if mode == "on":
            interviews = [(await store.interviews.create("bench-user", {"position_name": "bench"}))["_id"]
                          for _ in range(streams)]
            bench_asr.SpeechPipeline = recording_pipeline(store, interviews, executor, pending)
        else:
            bench_asr.SpeechPipeline = SpeechPipeline
        before = load()
        try:
            r = await bench_asr.run_load(streams, vad, asr, scheduler, audio, segs, True, settings)
            await asyncio.gather(*pending)
        finally:
            scheduler.close()
        kept = len(pending)
        results[mode] = r
        print(f"recording {mode:9s}: speech end -> final p50 {pct(r['lat_speech'], 50):.2f} s  p95 "
              f"{pct(r['lat_speech'], 95):.2f} s  over {len(r['lat_speech'])} recordings ({r['n_final']} finals); CPU s per audio s "
              f"{r['cpu_per_audio_s']:.3f}; utterances recorded {kept}; {before}")
    bench_asr.SpeechPipeline = SpeechPipeline


async def amain(args) -> None:
    print(f"cores={os.cpu_count()} {load()} (shared machine: other engineers' tests/benchmarks may be running)")
    items = bench_asr.load_set(None, "zh")
    storage_per_minute(items, args.gap)
    tmp = Path(tempfile.mkdtemp(prefix="mianshi-bench-rec-"))
    server = EmbeddedMongo(tmp)
    uri = await server.start()
    client, database = dbmod.connect(uri, "bench")
    store = Store(database)
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bench-blocking")
    try:
        await write_cost(store, items, args.utterances, executor)
        print(f"({load()})")
        if args.streams:
            config = load_config()
            vad, asr = bench_asr.make_plugins(config["engine"].get("vad", "fsmn"), config["engine"].get("asr", "whisper"), config)
            await latency(store, vad, asr, items, args.streams, args.gap, executor)
    finally:
        executor.shutdown(wait=True)
        dbmod.close(client)
        await server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=8, help="simultaneous sessions for the latency part (0: skip it)")
    ap.add_argument("--utterances", type=int, default=60, help="utterances written for the write cost")
    ap.add_argument("--gap", type=float, default=1.5, help="silence between recordings in a stream (s)")
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
