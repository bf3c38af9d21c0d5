"""The code phase through the real WebSocket of a running app: reach it with text answers, get the
problem, submit wrong, hostile and correct code, get code_result, and see phase "end" when the time
allowed runs out; the stored interview keeps every submission. A second session keeps being served
while a hostile submission runs."""
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
from phases.code import ProblemBank
from plugins.sandbox_bwrap import BubblewrapRunner
from ws_support import Inbox

SOLUTIONS = Path(__file__).resolve().parent / "code_solutions"
AUDIO = Path(__file__).resolve().parent.parent.parent / "shared" / "audio" / "zh"
CONFIG = {"engine": {"phases": ["intro", "question", "code"], "vad": "", "asr": "", "question_sources": ["bank"],
                     "cheat_detectors": [], "code_runner": "bubblewrap"},
          "timing": {"question_count": 1},
          "plugins": {"code": {"time_allowed_seconds": 300, "cpu_seconds": 1, "wall_seconds": 2},
                      "bubblewrap": {"max_concurrent": 3},
                      "question": {"max_follow_ups": 0}}}

pytestmark = pytest.mark.skipif(BubblewrapRunner({}).check() is not None, reason="bubblewrap cannot run here")


async def open_session(server, client, interview_id, resume_id):
    ws = await websockets.connect(f"{server.ws_url}?token={client.token}", max_size=None)
    inbox = Inbox(ws)
    await inbox.wait_for(lambda m: m["type"] == "connection_established")
    await ws.send(json.dumps({"type": "create_stream", "title": "面试视频流", "description": "实时面试",
                              "interview_id": interview_id, "resume_id": resume_id}))
    return ws, inbox


async def answer(ws, text):
    await ws.send(json.dumps({"type": "text_answer", "text": text}))
    await ws.send(json.dumps({"type": "end_answer"}))


async def reach_code_phase(ws, inbox) -> dict:
    await inbox.wait_for(lambda m: m.get("phase") == "intro")
    await answer(ws, "我是张三，做了四年 Python 后端，熟悉 Redis 和 MySQL。")
    seen = 0
    while True:
        msg = await inbox.wait_for(lambda m: m["type"] == "interview_message" and (
            m.get("question_index") or m.get("problem")), start=seen)
        seen = inbox.messages.index(msg) + 1
        if msg.get("problem"):
            return msg
        await answer(ws, "我会先分析瓶颈，再用缓存和索引优化，最后压测验证。")


async def test_code_phase_over_the_websocket(app_server_factory, api_client):
    clock = ManualClock()
    server = await app_server_factory(CONFIG, clock=clock)
    client = await api_client(server)
    resume_id = await client.create_resume()                     # skills include Redis
    interview_id = await client.create_interview()               # position_type backend
    ws, inbox = await open_session(server, client, interview_id, resume_id)
    problem_msg = await reach_code_phase(ws, inbox)
    transition = [m for m in inbox.messages if m["type"] == "interview_message" and m["phase"] == "code"][0]
    assert transition["text"] == "问答环节结束，下面进入代码题环节。"
    problem = problem_msg["problem"]
    # the sample resume (Python, Django, MySQL, Redis) fits a backend problem tagged with its skills
    bank = ProblemBank.load()
    pid = problem["id"]
    assert problem_msg["phase"] == "code" and pid in {"backend-meeting-rooms", "backend-lru-cache"}
    total = len(bank.by_id[pid]["examples"]) + len(bank.by_id[pid]["hidden"])
    assert problem["time_limit_seconds"] == 300 and "hidden" not in problem

    # bad input: unknown language, empty code
    await ws.send(json.dumps({"type": "code_submit", "language": "rust", "code": "fn main(){}"}))
    err = await inbox.wait_for(lambda m: m["type"] == "error")
    assert "不支持的语言" in err["text"]
    await ws.send(json.dumps({"type": "code_submit", "language": "python", "code": "  "}))
    await inbox.wait_for(lambda m: m["type"] == "error" and "code" in m["text"])

    # hostile, then wrong, then correct
    started = time.monotonic()
    await ws.send(json.dumps({"type": "code_submit", "language": "python", "code": "while True:\n    pass"}))
    hostile = await inbox.wait_for(lambda m: m["type"] == "code_result")
    assert hostile["passed"] == 0 and time.monotonic() - started < 15
    assert all(c["error"].startswith("超时") for c in hostile["cases"])
    await ws.send(json.dumps({"type": "code_submit", "language": "javascript", "code": "console.log(-7)"}))
    wrong = await inbox.wait_for(lambda m: m["type"] == "code_result" and m["submission_index"] == 2)
    assert wrong["passed"] == 0 and wrong["cases"][0]["got"] == "-7\n" and "expected" in wrong["cases"][0]
    assert all("expected" not in c and "got" not in c for c in wrong["cases"] if not c["visible"])
    code = (SOLUTIONS / pid / "correct.js").read_text(encoding="utf-8")
    await ws.send(json.dumps({"type": "code_submit", "language": "javascript", "code": code}))
    right = await inbox.wait_for(lambda m: m["type"] == "code_result" and m["submission_index"] == 3)
    assert right["passed"] == right["total"] == total

    # the time allowed runs out: the interview ends
    await clock.advance(301)
    end = await inbox.wait_for(lambda m: m["type"] == "interview_message" and m["phase"] == "end", timeout=20)
    assert end["text"]
    await ws.send(json.dumps({"type": "code_submit", "language": "python", "code": "print(1)"}))
    await asyncio.sleep(0.3)
    assert len([m for m in inbox.messages if m["type"] == "code_result"]) == 3
    await ws.close()

    stored = await server.store.load_interview(client.user_id, interview_id)
    code_rec = stored["code"]
    assert code_rec["problem"]["id"] == pid
    assert [s["passed"] for s in code_rec["submissions"]] == [0, 0, total]
    assert code_rec["submissions"][2]["code"] == code and code_rec["final"]["passed"] == total
    assert code_rec["submission_count"] == 3
    assert stored["phase"] == "end"


@pytest.mark.skipif(not AUDIO.exists(), reason="recordings not found")
async def test_other_sessions_audio_is_served_while_a_hostile_submission_runs(app_server_factory, api_client,
                                                                              tmp_path_factory):
    """Session A's fork bomb runs (and is followed by a CPU burner) while session B streams a real
    recording at the guide's 40 ms pace through the energy VAD and Whisper: B's speech is recognised
    as usual, nothing of B's is refused, and the event loop keeps its pace."""
    speech = {"engine": {"vad": "energy", "asr": "whisper"}}
    config = json.loads(json.dumps(CONFIG))
    config["engine"].update(speech["engine"])
    server = await app_server_factory(config, data_dir=tmp_path_factory.getbasetemp() / "code-ws-data")
    client = await api_client(server)
    resume_id = await client.create_resume()
    ws_a, inbox_a = await open_session(server, client, await client.create_interview(), resume_id)
    await reach_code_phase(ws_a, inbox_a)
    ws_b, inbox_b = await open_session(server, client, await client.create_interview(), resume_id)
    await inbox_b.wait_for(lambda m: m.get("phase") == "intro")

    with wave.open(str(AUDIO / "intro_01.wav"), "rb") as w:
        pcm = w.readframes(w.getnframes()) + bytes(16000 * 2 * 2)        # + 2 s of silence
    frames = [pcm[i:i + 1280] for i in range(0, len(pcm) - 1279, 1280)]

    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    burner = "while True:\n    pass"
    await ws_a.send(json.dumps({"type": "code_submit", "language": "python", "code": bomb}))
    await asyncio.sleep(0.3)                    # the bomb is running
    lags, start = [], time.monotonic()
    for i, frame in enumerate(frames):
        if i == len(frames) // 2 and any(m["type"] == "code_result" for m in inbox_a.messages):
            await ws_a.send(json.dumps({"type": "code_submit", "language": "python", "code": burner}))
        t = time.monotonic()
        await ws_b.send(json.dumps({"type": "audio_frame", "audio_data": base64.b64encode(frame).decode()}))
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.04 - time.monotonic()))
        lags.append(time.monotonic() - t - 0.04)
    audio_done = time.monotonic()
    final = await inbox_b.wait_for(lambda m: m["type"] == "asr_result" and m.get("is_final"), timeout=30)
    final_after = time.monotonic() - audio_done
    result = await inbox_a.wait_for(lambda m: m["type"] == "code_result", timeout=30)
    assert result["passed"] == 0
    assert "李明" in final["text"] or "华中" in final["text"] or "软件" in final["text"], final["text"]
    assert not [m for m in inbox_b.messages if m["type"] == "error"], inbox_b.messages
    assert final_after < 10.0, final_after
    assert max(lags) < 0.25, max(lags)
    await ws_a.close()
    await ws_b.close()
