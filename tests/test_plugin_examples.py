"""The two example plugins of examples/, installed into the test environment as the packages they are
(scripts/install_test_extras.sh) and loaded through their entry points, each enabled by one line of
configuration: a ``behavioral`` phase between the questions and the code task, and a
``camera_cover`` cheat detector with a kind of its own. Run end to end over the real WebSocket: the
phase's prompts, spoken and typed answers stored against them, its report section; the new kind's
``cheat_detected`` with its own text, stored and in the report."""
from __future__ import annotations

import asyncio
import base64
import json
from importlib.metadata import entry_points

import numpy as np
import pytest
import websockets

from engine_support import HookPlugin, silence, tone
from ws_support import Inbox

EXAMPLES = {"behavioral": "mianshi-behavioral", "camera_cover": "mianshi-camera-cover"}
PROMPTS = ["请讲一次你和同事意见不一致的经历。", "请讲一个你在压力下完成任务的例子。"]

pytestmark = pytest.mark.skipif(
    not set(EXAMPLES) <= {ep.name for ep in entry_points(group="mianshi")},
    reason="the example plugins are not installed (scripts/install_test_extras.sh installs them)")

CONFIG = {
    # the one line each example needs: its name in [engine] phases / cheat_detectors
    "engine": {"phases": ["intro", "question", "behavioral", "code"],
               "cheat_detectors": ["camera_cover"],
               # the rest keeps the test fast and deterministic (scripted tone VAD/ASR, the bank)
               "vad": "tone", "asr": "tone", "question_sources": ["bank"], "scorers": ["heuristic"],
               "code_runner": "bubblewrap"},
    "timing": {"question_count": 1, "intro_silence_seconds": 600.0, "answer_silence_seconds": 600.0},
    "plugins": {"question": {"max_follow_ups": 0}, "behavioral": {"prompts": PROMPTS},
                "code": {"time_allowed_seconds": 300}},
}


def jpeg(image: np.ndarray) -> str:
    import cv2
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return json.dumps({"type": "video_frame", "frame_data": base64.b64encode(buf.tobytes()).decode()})


def textured() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)


def covered() -> np.ndarray:
    return np.full((240, 320, 3), 12, dtype=np.uint8)


def is_message(**match):
    return lambda m: m["type"] == "interview_message" and all(m.get(k) == v for k, v in match.items())


async def test_example_phase_and_detector_run_end_to_end(app_server_factory, api_client):
    server = await app_server_factory(CONFIG, extra_plugins=(HookPlugin(),))
    listing = server.engine.plugins_listing()
    for name, dist in EXAMPLES.items():
        plugin = next(p for p in listing["plugins"] if any(r["name"] == name for r in p["registered"]))
        assert plugin["distribution"]["name"] == dist and not plugin["builtin"]     # from its entry point
    client = await api_client(server)
    # what the page shows by name is the server's data, plugins' phases and kinds included
    options = (await client.get("/interviews/options/")).json()
    assert [(p["name"], p["input"]) for p in options["phases"]] == [
        ("intro", "speech"), ("question", "speech"), ("behavioral", "speech"), ("code", "code"), ("end", "none")]
    assert {p["name"]: p["title"] for p in options["phases"]}["behavioral"] == "行为面试"
    assert {k["kind"]: k["label"] for k in options["cheat_kinds"]}["camera_covered"] == "摄像头被遮挡"
    assert [t["value"] for t in options["position_types"]] == ["backend", "frontend", "pm", "qa", "algo"]
    resume_id, interview_id = await client.create_resume(), await client.create_interview()
    ws = await websockets.connect(f"{server.ws_url}?token={client.token}", max_size=None)
    inbox = Inbox(ws)
    await inbox.wait_for(lambda m: m["type"] == "connection_established")
    await ws.send(json.dumps({"type": "create_stream", "interview_id": interview_id, "resume_id": resume_id}))
    await inbox.wait_for(is_message(phase="intro"))
    await ws.send(json.dumps({"type": "text_answer", "text": "我是张三，四年后端开发"}))
    await ws.send(json.dumps({"type": "end_answer"}))
    await inbox.wait_for(is_message(phase="question", question_index=1))
    await ws.send(json.dumps({"type": "text_answer", "text": "用 Redis 做缓存，注意缓存穿透"}))
    await ws.send(json.dumps({"type": "end_answer"}))

    # --- the example phase: its transition, title, input and prompts ---------------------------------
    transition = await inbox.wait_for(is_message(phase="behavioral"))
    assert transition["text"] == "问答环节结束，下面进入行为面试环节。"
    assert transition["input"] == "speech" and transition["phase_title"] == "行为面试"
    first = await inbox.wait_for(is_message(phase="behavioral", question_index=1))
    assert first["text"] == PROMPTS[0] and first["total"] == 2
    # a spoken answer (two utterances), then "回答完毕"
    pcm = tone(1, 0.4) + silence(0.4) + tone(2, 0.4) + silence(0.4)
    for i in range(0, len(pcm), 1280):
        await ws.send(json.dumps({"type": "audio_frame", "audio_data": base64.b64encode(pcm[i:i + 1280]).decode(),
                                  "end": False}))
    await ws.send(json.dumps({"type": "end_answer"}))
    second = await inbox.wait_for(is_message(phase="behavioral", question_index=2))
    assert second["text"] == PROMPTS[1]
    await ws.send(json.dumps({"type": "text_answer", "text": "上线前一天发现性能问题，我先定位瓶颈再分工处理"}))
    await ws.send(json.dumps({"type": "end_answer"}))
    code_transition = await inbox.wait_for(is_message(phase="code"))
    assert code_transition["text"] == "行为面试结束，下面进入代码题环节。" and code_transition["input"] == "code"
    await inbox.wait_for(lambda m: m["type"] == "interview_message" and m.get("problem"))

    # --- the example detector: a kind of its own ---------------------------------------------------------
    for frame in [textured()] + [covered()] * 4:         # a frame at a time, as a page sends them
        await ws.send(jpeg(frame))
        await asyncio.sleep(0.3)
    cheat = await inbox.wait_for(lambda m: m["type"] == "cheat_detected", timeout=30)
    assert cheat == {"type": "cheat_detected", "kind": "camera_covered",
                     "text": "摄像头画面被遮挡，请移开遮挡物并保持面部在画面中。"}
    assert not inbox.of("error"), inbox.of("error")
    await ws.send(json.dumps({"type": "end_answer"}))           # done with the code task
    await inbox.wait_for(is_message(phase="end"))
    await ws.close()

    stored = (await client.get(f"/interviews/{interview_id}/")).json()["interview"]
    behavioral = [(e["prompt_index"], e["source"], e["text"]) for e in stored["transcript"]
                  if e["phase"] == "behavioral"]
    assert behavioral == [(1, "speech", "一"), (1, "speech", "二"),
                          (2, "text", "上线前一天发现性能问题，我先定位瓶颈再分工处理")]
    assert [p["phase"] for p in stored["phase_history"]] == ["intro", "question", "behavioral", "code", "end"]
    episode = stored["cheat_events"][0]
    assert episode["kind"] == "camera_covered" and episode["label"] == "摄像头被遮挡"
    assert episode["phase"] == "code" and episode["detector"] == "camera_cover"

    report = None
    for _ in range(200):
        r = await client.get(f"/interviews/{interview_id}/report/")
        if r.status_code == 200:
            report = r.json()
            break
        await asyncio.sleep(0.05)
    assert report is not None, "no report"
    sections = {s["phase"]: s for s in report["sections"]}
    assert [s["phase"] for s in report["sections"]] == ["question", "behavioral", "code"]
    items = sections["behavioral"]["items"]
    assert sections["behavioral"]["title"] == "行为面试" and sections["behavioral"]["type"] == "qa"
    assert [it["question"] for it in items] == PROMPTS
    assert items[0]["answer"] == "一 二" and items[1]["answer"].startswith("上线前一天")
    assert all(isinstance(it["score"], int) for it in items)         # scored like every qa item
    assert report["cheat_events"][0]["kind_zh"] == "摄像头被遮挡"
    assert any(q.get("phase") == "behavioral" for q in report["questions"])


def test_the_examples_declare_what_core_needs_to_know():
    import mianshi_behavioral
    import mianshi_camera_cover
    from core.interfaces import CheatKind
    from core.phase import Phase
    assert issubclass(mianshi_behavioral.BehavioralPhase, Phase)
    assert mianshi_behavioral.BehavioralPhase.input == "speech"
    kind = mianshi_camera_cover.CameraCoverDetector.kinds[0]
    assert isinstance(kind, CheatKind) and kind.name == "camera_covered" and kind.label == "摄像头被遮挡"
    detector = mianshi_camera_cover.CameraCoverDetector()
    assert detector.detect(covered(), {})[0].kind == "camera_covered"
    assert detector.detect(textured(), {})[0].kind is None
