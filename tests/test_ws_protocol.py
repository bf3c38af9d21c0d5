"""The WebSocket contract over a real socket of a running app: authentication, the guide's message
flow, and bad input of every kind answered with an ``error`` while the session lives on."""
from __future__ import annotations

import asyncio
import base64
import json

import pytest
import websockets

from core.clock import ManualClock

LIGHT = {"engine": {"phases": ["intro", "question"], "vad": "", "asr": "", "question_sources": ["bank"],
                    "cheat_detectors": [], "code_runner": ""},
         "timing": {"question_count": 2}}


async def recv(ws, timeout=20.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, predicate, timeout=30.0) -> list[dict]:
    got = []
    async def loop():
        while True:
            msg = await recv(ws, timeout)
            got.append(msg)
            if predicate(msg):
                return got
    return await asyncio.wait_for(loop(), timeout)


async def connect(server, token):
    ws = await websockets.connect(f"{server.ws_url}?token={token}", max_size=None)
    first = await recv(ws)
    assert first["type"] == "connection_established" and first["text"] == "WebRTC连接已建立"
    assert first["session_id"]
    return ws


async def create_stream(ws, interview_id, resume_id):
    await ws.send(json.dumps({"type": "create_stream", "title": "面试视频流", "description": "实时面试",
                              "interview_id": interview_id, "resume_id": resume_id}))
    created = await recv(ws)
    assert created["type"] == "stream_created", created
    assert created["interview_id"] == str(interview_id) and created["text"] == "视频流创建成功"
    return created


@pytest.mark.parametrize("query", ["", "?token=", "?token=abc.def.ghi"])
async def test_bad_token_gets_error_then_4401(app_server_factory, query):
    server = await app_server_factory(LIGHT)
    async with websockets.connect(server.ws_url + query) as ws:
        msg = await recv(ws)
        assert msg["type"] == "error" and msg["text"]
        with pytest.raises(websockets.ConnectionClosed) as info:
            await recv(ws)
        assert info.value.rcvd.code == 4401


async def test_guide_flow_with_string_or_number_ids(app_server_factory, api_client):
    server = await app_server_factory(LIGHT)
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    ws = await connect(server, client.token)
    await create_stream(ws, str(interview_id), str(resume_id))     # the guide sends strings
    intro = await recv(ws)
    assert intro == {"type": "interview_message", "phase": "intro", "text": "请开始自我介绍吧", "input": "speech",
                     "phase_title": "自我介绍"}
    await ws.send(json.dumps({"type": "text_answer", "text": "我是张三，做了四年 Python 后端。"}))
    await ws.send(json.dumps({"type": "end_answer"}))
    msgs = await recv_until(ws, lambda m: m.get("question_index") == 1)
    phase_msgs = [m for m in msgs if m["type"] == "interview_message"]
    assert phase_msgs[0] == {"type": "interview_message", "phase": "question", "text": "自我介绍结束，下面开始问问题。",
                             "input": "speech", "phase_title": "问答环节"}
    assert phase_msgs[1]["total"] == 2
    await ws.send(json.dumps({"type": "disconnect"}))
    with pytest.raises(websockets.ConnectionClosed):
        await recv(ws, 5)

    ws = await connect(server, client.token)
    await create_stream(ws, int(interview_id), int(resume_id))     # and numbers work too
    again = await recv(ws)
    assert again == phase_msgs[1]                                  # resumed: the same question, once
    await ws.close()


async def test_bad_input_never_kills_the_session(app_server_factory, api_client):
    server = await app_server_factory(LIGHT)
    client = await api_client(server)
    other = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    foreign_interview = await other.create_interview()
    ws = await connect(server, client.token)

    async def expect_error(payload, needle):
        await ws.send(payload if isinstance(payload, str) else json.dumps(payload))
        msg = await recv(ws)
        assert msg["type"] == "error", msg
        assert needle in msg["text"], msg
        return msg

    await expect_error({"type": "audio_frame", "audio_data": base64.b64encode(b"\0" * 1280).decode()}, "create_stream")
    await expect_error({"type": "video_frame", "frame_data": "AAAA"}, "create_stream")
    await expect_error("this is not json", "JSON")
    await expect_error("[1, 2, 3]", "JSON 对象")
    await expect_error({"no_type": 1}, "type")
    await expect_error({"type": "launch_rockets"}, "未知的消息类型")
    await expect_error({"type": "create_stream", "resume_id": resume_id}, "interview_id")
    await expect_error({"type": "create_stream", "interview_id": foreign_interview, "resume_id": resume_id},
                       "无权访问")
    await expect_error({"type": "create_stream", "interview_id": interview_id, "resume_id": 999999}, "简历")
    await create_stream(ws, interview_id, resume_id)
    assert (await recv(ws))["phase"] == "intro"
    await expect_error({"type": "audio_frame", "audio_data": "@@not base64@@"}, "base64")
    await expect_error({"type": "audio_frame", "audio_data": base64.b64encode(b"\0" * 1279).decode()}, "16位")
    await expect_error({"type": "audio_frame", "audio_data": base64.b64encode(b"\0" * 64000).decode()}, "过大")
    await expect_error({"type": "audio_frame", "audio_data": 12}, "audio_data")
    await expect_error({"type": "text_answer"}, "text")
    await expect_error({"type": "code_submit", "language": "python"}, "code")
    await expect_error({"type": "client_event", "event": "shrug"}, "tab_hidden")
    await expect_error(json.dumps({"type": "text_answer", "text": "x" * 3_000_000}), "过大")
    # audio while speech recognition is disabled in this configuration is refused politely
    await expect_error({"type": "audio_frame", "audio_data": base64.b64encode(b"\0" * 1280).decode()}, "语音识别")
    # after all of that the interview goes on
    await ws.send(json.dumps({"type": "text_answer", "text": "我说完了"}))
    msgs = await recv_until(ws, lambda m: m.get("question_index") == 1)
    assert msgs[-1]["phase"] == "question"
    await ws.close()


async def test_flood_is_answered_with_one_error_and_the_session_survives(app_server_factory, api_client):
    server = await app_server_factory(dict(LIGHT, limits={"messages_per_second": 50}))
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    ws = await connect(server, client.token)
    await create_stream(ws, interview_id, resume_id)
    await recv(ws)
    for _ in range(400):
        await ws.send(json.dumps({"type": "client_event", "event": "tab_visible"}))
    msgs = await recv_until(ws, lambda m: m["type"] == "error")
    assert "过于频繁" in msgs[-1]["text"]
    await asyncio.sleep(1.0)
    await ws.send(json.dumps({"type": "text_answer", "text": "说完了"}))
    msgs = await recv_until(ws, lambda m: m.get("question_index") == 1)
    assert sum(1 for m in msgs if m["type"] == "error") <= 1
    await ws.close()


async def test_silence_rule_over_the_socket_with_an_injected_clock(app_server_factory, api_client):
    clock = ManualClock()
    server = await app_server_factory(LIGHT, clock=clock)
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    ws = await connect(server, client.token)
    await create_stream(ws, interview_id, resume_id)
    assert (await recv(ws))["phase"] == "intro"
    await clock.advance(14.0)
    with pytest.raises(asyncio.TimeoutError):
        await recv(ws, 0.5)
    await clock.advance(1.25)
    msgs = await recv_until(ws, lambda m: m.get("question_index") == 1, timeout=10)
    assert msgs[0]["text"] == "自我介绍结束，下面开始问问题。"
    await ws.close()


async def test_operator_listings(app_server_factory, api_client):
    server = await app_server_factory(LIGHT)
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    ws = await connect(server, client.token)
    await create_stream(ws, interview_id, resume_id)
    await recv(ws)
    stats = (await client.get("/-/stats")).json()
    assert stats["sessions"] == 1 and stats["rss_bytes"] > 10 * 2**20
    assert stats["loop"]["samples"] > 0 and stats["loop"]["lag_ms_p99"] >= 0
    listing = (await client.get("/-/plugins")).json()
    by_name = {p["name"]: p for p in listing["plugins"]}
    assert "register_phases" in by_name["phases.intro"]["hooks"] and by_name["phases.intro"]["builtin"]
    assert {"kind": "question_source", "name": "bank", "active": True} in by_name["plugins.question_bank"]["registered"]
    assert listing["active"]["phase"] == ["intro", "question"]
    await ws.close()
