"""The whole interview through the real WebSocket of a running app, with real Mandarin recordings
streamed as 1 280-byte frames every 40 ms through the configured VAD and ASR (plugins.toml)."""
from __future__ import annotations

import asyncio
import base64
import json
import time
import wave
from pathlib import Path

import pytest
import websockets

from core.clock import ManualClock
from plugins._speech_util import cer
from ws_support import Inbox

AUDIO = Path(__file__).resolve().parent.parent.parent / "shared" / "audio" / "zh"
FLOW = {"engine": {"phases": ["intro", "question", "code"], "question_sources": ["bank"]},
        "timing": {"question_count": 2}}

REFERENCE = dict(line.split("\t", 1) for line in
                 (AUDIO / "transcripts.tsv").read_text(encoding="utf-8").splitlines() if "\t" in line) \
    if AUDIO.exists() else {}

pytestmark = pytest.mark.skipif(not AUDIO.exists(), reason=f"recordings not found at {AUDIO}")


def pcm(name: str) -> bytes:
    with wave.open(str(AUDIO / name), "rb") as w:
        return w.readframes(w.getnframes())


def frames(data: bytes):
    for i in range(0, len(data), 1280):
        chunk = data[i:i + 1280]
        if len(chunk) % 2:
            chunk = chunk[:-1]
        yield json.dumps({"type": "audio_frame", "audio_data": base64.b64encode(chunk).decode(), "end": False})


async def stream(ws, data: bytes, pace: bool = True) -> None:
    start = time.monotonic()
    for i, frame in enumerate(frames(data)):
        await ws.send(frame)
        if pace:
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.04 - time.monotonic()))


async def start(server, client, resume_id, interview_id):
    ws = await websockets.connect(f"{server.ws_url}?token={client.token}", max_size=None)
    inbox = Inbox(ws)
    await inbox.wait_for(lambda m: m["type"] == "connection_established")
    await ws.send(json.dumps({"type": "create_stream", "title": "面试视频流", "description": "实时面试",
                              "interview_id": interview_id, "resume_id": str(resume_id)}))
    await inbox.wait_for(lambda m: m["type"] == "interview_message" and m["phase"] == "intro")
    return ws, inbox


def is_question(index):
    return lambda m: m["type"] == "interview_message" and m.get("question_index") == index


async def test_full_interview_by_voice_reaches_the_code_phase(app_server_factory, api_client):
    server = await app_server_factory(FLOW)
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    ws, inbox = await start(server, client, resume_id, interview_id)

    gap = bytes(32000)  # one second of silence between sentences
    for name in ("intro_01.wav", "intro_02.wav", "intro_03.wav", "intro_end.wav"):
        await stream(ws, pcm(name) + gap)
    switched = await inbox.wait_for(lambda m: m.get("text") == "自我介绍结束，下面开始问问题。", timeout=30)
    assert switched["phase"] == "question"
    first = await inbox.wait_for(is_question(1))
    assert first["total"] == 2
    assert inbox.messages.index(first) == inbox.messages.index(switched) + 1   # immediately followed
    finals = [m["text"] for m in inbox.of("asr_result", is_final=True)]
    partials = inbox.of("asr_result", is_final=False)
    assert len(finals) >= 4 and partials, (finals, len(partials))
    assert "说完了" in finals[-1]
    assert any(k in "".join(finals) for k in ("华中科技大学", "电商", "后端", "高并发"))

    # the questions are about this resume (skills Python/Django/MySQL/Redis, project 订单系统重构)
    asked = [first["text"]]
    await stream(ws, pcm("answer_cache.wav") + gap)
    await ws.send(json.dumps({"type": "end_answer"}))
    second = await inbox.wait_for(is_question(2))
    asked.append(second["text"])
    resume_terms = ("Python", "Django", "MySQL", "Redis", "订单系统", "示例科技")
    assert any(term in q for q in asked for term in resume_terms), asked

    await stream(ws, pcm("answer_queue.wav") + gap)
    await ws.send(json.dumps({"type": "end_answer"}))
    code = await inbox.wait_for(lambda m: m.get("text") == "问答环节结束，下面进入代码题环节。")
    assert code["phase"] == "code"
    # the lean FSMN engine (plugins.toml) got every 200 ms chunk through its loop-turn batches
    stats = (await client.get("/-/stats")).json()
    vad = stats["vad"]
    assert vad["chunks"] >= vad["batched_calls"] > 100, vad
    # the server's loop monitor feeds the partial cadence (core/cadence.py): a judgement a second
    cadence = stats["partial_cadence"]
    assert cadence["windows"] >= 10 and 1.0 <= cadence["stretch"] <= 8.0, cadence
    await ws.close()

    record = (await client.get(f"/interviews/{interview_id}/")).json()
    transcript = record["interview"]["transcript"]
    answers: dict[int, str] = {}
    for t in transcript:
        if t["phase"] == "question":
            answers[t["question_index"]] = answers.get(t["question_index"], "") + t["text"]
    # Whisper base reads these recordings at ~12 % CER; stored answers must be recognisably them
    assert set(answers) == {1, 2}, transcript
    assert cer(answers[1], REFERENCE["answer_cache"]) < 0.4, answers
    assert cer(answers[2], REFERENCE["answer_queue"]) < 0.4, answers
    intro = "".join(t["text"] for t in transcript if t["phase"] == "intro")
    assert cer(intro, "".join(REFERENCE[k] for k in ("intro_01", "intro_02", "intro_03", "intro_end"))) < 0.3


async def test_fifteen_seconds_of_silence_end_the_intro(app_server_factory, api_client):
    clock = ManualClock()
    server = await app_server_factory(FLOW, clock=clock)
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    ws, inbox = await start(server, client, resume_id, interview_id)
    await stream(ws, pcm("intro_01.wav") + bytes(32000), pace=False)
    # the recording pauses after "面试官您好" long enough to be two utterances: wait for the last
    await inbox.wait_for(lambda m: m["type"] == "asr_result" and m.get("is_final") and "专业" in m["text"],
                         timeout=60)
    await clock.advance(14.0)
    await asyncio.sleep(0.5)
    assert not inbox.of("interview_message", phase="question")
    await clock.advance(1.25)
    switched = await inbox.wait_for(lambda m: m.get("text") == "自我介绍结束，下面开始问问题。", timeout=10)
    assert switched["phase"] == "question"
    await inbox.wait_for(is_question(1))
    await ws.close()
