"""End to end over the WebSocket: frames of one person, then two, then nobody, then one again give
exactly one ``multiple_faces`` and one ``no_face`` message, and the episodes are stored on the
interview (real app, real embedded MongoDB, real BlazeFace)."""
from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from core import events as ev
from plugins._vision_util import encode_jpeg
from tests import vision_images as vi
from tests.ws_support import until, video_frame

CONFIG = {"engine": {"phases": ["intro", "question"], "vad": "", "asr": "", "question_sources": ["bank"],
                     "scorers": ["heuristic"], "cheat_detectors": ["blazeface"], "code_runner": ""},
          "cheat": {"consecutive_frames": 3, "clear_frames": 2},
          "timing": {"intro_silence_seconds": 600.0}}


@pytest.mark.asyncio
async def test_one_two_nobody_one_over_the_websocket(app_server_factory, api_client):
    by_name = {i.name: i for i in vi.one_face() + vi.two_faces() + vi.no_face()}
    one = encode_jpeg(by_name["webcam_distance"].image)
    two = encode_jpeg(by_name["side_by_side_brick"].image)
    nobody = encode_jpeg(by_name["coffee"].image)

    server = await app_server_factory(CONFIG)
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    received: list[dict] = []

    async with websockets.connect(server.ws_url + "?token=" + client.token, max_size=None) as ws:
        async def reader():
            async for raw in ws:
                received.append(json.loads(raw))

        task = asyncio.create_task(reader())
        await ws.send(json.dumps({"type": "create_stream", "interview_id": interview_id,
                                  "resume_id": resume_id}))
        await until(lambda: any(m["type"] == "stream_created" for m in received))
        session = server.engine.sessions[interview_id]
        assert session.cheat is not None

        sent = 0
        for jpeg in [one] * 4 + [two] * 5 + [nobody] * 6 + [one] * 4 + [b"not a jpeg"] + [one]:
            await ws.send(video_frame(jpeg))
            sent += 1
            await until(lambda: session.cheat.stats["frames_received"] == sent)
            await session.cheat.drain()
        await until(lambda: any(m["type"] == "error" and "视频帧" in m.get("text", "") for m in received))
        cheats = [m for m in received if m["type"] == "cheat_detected"]
        assert [m["kind"] for m in cheats] == ["multiple_faces", "no_face"]
        assert cheats[0]["text"] == "检测到多个人，疑似作弊！"          # the guide's text
        assert cheats[1]["text"] == "未检测到人脸，请保持在摄像头画面中。"

        await ws.send(json.dumps({"type": "client_event", "event": "tab_hidden"}))
        await until(lambda: sum(m["type"] == "cheat_detected" for m in received) == 3)
        await ws.send(json.dumps({"type": "client_event", "event": "tab_visible"}))
        await until(lambda: "tab_hidden" not in session.cheat.open_episodes)
        assert [m["kind"] for m in received if m["type"] == "cheat_detected"][-1] == "tab_hidden"
        assert session.cheat.stats["frames_invalid"] == 1
        assert server.engine.stats()["vision_frames"] == {"received": sent, "processed": sent - 1,
                                                          "dropped": 0, "invalid": 1}   # GET /-/stats
        await ws.send(json.dumps({"type": "disconnect"}))
        await asyncio.wait_for(task, 10)
    await until(lambda: interview_id not in server.engine.sessions)
    assert server.engine.stats()["vision_frames"]["processed"] == sent - 1      # ended sessions count on

    r = await client.get(f"/interviews/{interview_id}/")
    assert r.status_code == 200, r.text
    events = r.json()["interview"]["cheat_events"]
    assert [e["kind"] for e in events] == ["multiple_faces", "no_face", "tab_hidden"]
    multi, none, tab = events
    assert multi["detector"] == none["detector"] == "blazeface" and tab["detector"] == "client"
    assert multi["detail"]["faces"] == 2 and none["detail"]["faces"] == 0
    assert multi["frames"] == 5 and none["frames"] == 6
    for e in events:
        assert e["started_at"] <= e["ended_at"]
    assert multi["ended_at"] <= none["started_at"]
    # flags are for review only: three episodes did not end the interview
    assert not any(m["type"] == "interview_message" and m.get("phase") == "end" for m in received)
    assert r.json()["interview"]["phase"] == "intro"
