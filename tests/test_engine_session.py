"""The engine and its phases, driven event by event with an injected clock, on the real store."""
from __future__ import annotations

import asyncio

import pytest

from core import events as ev
from core.clock import ManualClock
from engine_support import (BrightnessDetector, HookPlugin, Client, ScriptedSource, engine_config, jpeg_of, seed,
                            settle, silence, start_engine, tone)


async def open_session(engine, store, user_id, resume_id, interview_id, client=None):
    client = client or Client()
    session = await engine.open_session(user_id, ev.CreateStream(interview_id, resume_id), client.send)
    await session.start()
    await settle(session)
    return session, client


def sources(name="scripted"):
    return {"engine": {"question_sources": [name, "bank"], "scorers": ["scripted"]}}


async def test_text_flow_runs_intro_questions_and_end(store):
    plugin = HookPlugin()
    engine = await start_engine(store, engine_config(**sources()), plugin, ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    session, client = await open_session(engine, store, user_id, resume_id, interview_id)
    assert client.of("interview_message") == [ev.interview_message("intro", "请开始自我介绍吧", input="speech",
                                                                              phase_title="自我介绍")]

    await session.handle(ev.TextAnswer("我叫李明，做了三年后端开发，我说完了"))
    await settle(session)
    msgs = client.of("interview_message")
    assert msgs[1] == ev.interview_message("question", "自我介绍结束，下面开始问问题。", input="speech",
                                           phase_title="问答环节")
    assert msgs[2] == ev.interview_message("question", "第一题：请介绍Redis持久化", question_index=1, total=2,
                                           input="speech", phase_title="问答环节")

    # ASR is biased towards the question, the resume's terms and the question's reference points
    assert session.asr_context.question == "第一题：请介绍Redis持久化"
    assert "Redis" in session.asr_context.terms and session.asr_context.hints == plugin.source.points
    await session.handle(ev.TextAnswer("RDB 和 AOF 两种"))
    await session.handle(ev.EndAnswer())
    await settle(session)
    assert client.of("interview_message")[-1]["text"] == "第二题：Kafka如何保证不丢消息"
    await session.handle(ev.TextAnswer("acks=all，说完了"))
    await settle(session)
    assert client.of("interview_message")[-1]["phase"] == "end"
    await session.close()

    stored = await store.load_interview(user_id, interview_id)
    assert stored["status"] == "finished" and stored["phase"] == "end"
    assert [q["text"] for q in stored["questions"]] == ["第一题：请介绍Redis持久化", "第二题：Kafka如何保证不丢消息"]
    transcript = await store.load_transcript(interview_id)
    assert [(t["phase"], t.get("question_index"), t["text"]) for t in transcript] == [
        ("intro", None, "我叫李明，做了三年后端开发，我说完了"),
        ("question", 1, "RDB 和 AOF 两种"),
        ("question", 2, "acks=all，说完了"),
    ]
    # the question source saw the chosen resume and the position
    request = plugin.source.requests[0]
    assert request.resume["skills"][0] == "Java" and request.interview["position_type"] == "backend"
    # interview_event observers saw every kind of event
    kinds = {kind for iid, kind, _ in plugin.observed if iid == interview_id}
    assert {"phase", "question", "utterance", "end"} <= kinds
    await engine.close()


async def test_silence_rule_uses_the_injected_clock(store):
    clock = ManualClock()
    engine = await start_engine(store, engine_config(**sources()), HookPlugin(), clock)
    user_id, resume_id, interview_id = await seed(store)
    session, client = await open_session(engine, store, user_id, resume_id, interview_id)
    await clock.advance(14.5)
    await settle(session)
    assert len(client.of("interview_message")) == 1
    await clock.advance(0.75)
    await settle(session)
    assert client.texts()[1:] == ["自我介绍结束，下面开始问问题。", "第一题：请介绍Redis持久化"]
    # answers follow the same rule, counted from the moment the question was asked
    await clock.advance(14.5)
    await settle(session)
    assert len(client.of("interview_message")) == 3
    await clock.advance(0.75)
    await settle(session)
    assert client.texts()[-1] == "第二题：Kafka如何保证不丢消息"
    await session.close()
    await engine.close()


async def test_speech_hooks_drive_asr_results_and_the_done_phrase(store):
    """VAD and ASR hooks: scripted tones stand for speech; the engine streams partials and finals."""
    clock = ManualClock()
    plugin = HookPlugin()
    config = engine_config(engine={"vad": "tone", "asr": "tone", "question_sources": ["scripted"],
                                   "scorers": ["scripted"]})
    engine = await start_engine(store, config, plugin, clock)
    user_id, resume_id, interview_id = await seed(store)
    session, client = await open_session(engine, store, user_id, resume_id, interview_id)
    audio = tone(3, 1.2) + silence(0.6) + tone(9, 0.8) + silence(0.6)
    for i in range(0, len(audio), 1280):
        await session.handle(ev.AudioFrame(audio[i:i + 1280]))
    await session.speech.drain()
    await settle(session)
    finals = [m["text"] for m in client.of("asr_result", is_final=True)]
    assert finals == ["三", "九说完了"]
    assert client.texts()[1] == "自我介绍结束，下面开始问问题。"
    # the ASR was biased with the resume's terms
    assert any("Redis" in c.terms for c in plugin.asr.contexts)
    transcript = await store.load_transcript(interview_id)
    assert [t["text"] for t in transcript] == ["三", "九说完了"]
    await session.close()
    await engine.close()


async def test_follow_ups_are_limited(store):
    source = ScriptedSource(["问题一", "问题二"], follow_up="能具体说说吗？")
    plugin = HookPlugin(source)
    config = engine_config(**sources(), plugins={"question": {"max_follow_ups": 1}})
    engine = await start_engine(store, config, plugin, ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    session, client = await open_session(engine, store, user_id, resume_id, interview_id)
    for text in ["自我介绍，说完了", "回答一，说完了", "补充回答，说完了", "回答二，说完了", "补充二，说完了"]:
        await session.handle(ev.TextAnswer(text))
        await settle(session)
    asked = [m["text"] for m in client.of("interview_message", phase="question")][1:]
    assert asked == ["问题一", "能具体说说吗？", "问题二", "能具体说说吗？"]
    assert client.of("interview_message")[-1]["phase"] == "end"
    await session.close()
    await engine.close()


async def test_failing_source_falls_back_to_the_bank(store):
    plugin = HookPlugin(ScriptedSource([], fail=True))
    engine = await start_engine(store, engine_config(**sources()), plugin, ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    session, client = await open_session(engine, store, user_id, resume_id, interview_id)
    await session.handle(ev.TextAnswer("说完了"))
    await settle(session)
    first = client.of("interview_message", phase="question")[1]
    assert first["question_index"] == 1 and first["total"] == 3
    stored = await store.load_interview(user_id, interview_id)
    assert stored["phase_state"]["question"]["plan_source"] == "bank"
    assert "model unreachable" in stored["phase_state"]["question"]["plan_errors"][0]
    await session.close()
    await engine.close()


async def test_reconnect_resumes_without_losing_or_repeating(store):
    engine = await start_engine(store, engine_config(**sources()), HookPlugin(), ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    session, first = await open_session(engine, store, user_id, resume_id, interview_id)
    await session.handle(ev.TextAnswer("自我介绍，说完了"))
    await session.handle(ev.TextAnswer("Redis 有 RDB"))
    await settle(session)
    await session.close()          # the connection dropped mid-answer

    session, second = await open_session(engine, store, user_id, resume_id, interview_id)
    # exactly the current question again, nothing else re-sent
    assert second.of("interview_message") == [first.of("interview_message")[-1]]
    await session.handle(ev.TextAnswer("还有 AOF，说完了"))
    await settle(session)
    assert second.texts()[-1] == "第二题：Kafka如何保证不丢消息"
    transcript = await store.load_transcript(interview_id)
    assert [t["text"] for t in transcript] == ["自我介绍，说完了", "Redis 有 RDB", "还有 AOF，说完了"]
    stored = await store.load_interview(user_id, interview_id)
    assert [q["index"] for q in stored["questions"]] == [1, 2]
    await session.close()
    await engine.close()


async def test_a_second_connection_takes_over_the_first(store):
    engine = await start_engine(store, engine_config(**sources()), HookPlugin(), ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    old, old_client = await open_session(engine, store, user_id, resume_id, interview_id)
    new, new_client = await open_session(engine, store, user_id, resume_id, interview_id)
    assert old.closed and not new.closed
    assert "新的连接" in old_client.of("error")[-1]["text"]
    assert new_client.texts() == ["请开始自我介绍吧"]
    assert engine._open_locks == {}           # per-interview locks do not outlive the calls
    await new.close()
    await engine.close()


async def test_other_users_interview_and_resume_are_refused(store):
    engine = await start_engine(store, engine_config(**sources()), HookPlugin(), ManualClock())
    user_a, resume_a, interview_a = await seed(store)
    user_b, resume_b, interview_b = await seed(store)
    client = Client()
    with pytest.raises(Exception) as info:
        await engine.open_session(user_b, ev.CreateStream(interview_a, resume_b), client.send)
    assert info.value.field == "interview_id"
    with pytest.raises(Exception) as info:
        await engine.open_session(user_b, ev.CreateStream(interview_b, resume_a), client.send)
    assert info.value.field == "resume_id"
    await engine.close()


async def test_a_third_party_phase_and_code_runner_plug_in(store):
    plugin = HookPlugin()
    config = engine_config(engine={"phases": ["oneshot"], "code_runner": "echo",
                                   "question_sources": ["scripted"], "scorers": ["scripted"]})
    engine = await start_engine(store, config, plugin, ManualClock())
    assert engine.code_runner.name == "echo" and engine.code_runner_problem is None
    user_id, resume_id, interview_id = await seed(store)
    session, client = await open_session(engine, store, user_id, resume_id, interview_id)
    assert client.of("interview_message")[0] == ev.interview_message("oneshot", "请用一句话总结你的优势", input="speech")
    await session.handle(ev.TextAnswer("学习快"))
    await settle(session)
    assert client.of("interview_message")[-1]["phase"] == "end"
    stored = await store.load_interview(user_id, interview_id)
    assert stored["phase_state"]["oneshot"] == {"answer": "学习快"}
    listing = engine.plugins_listing()
    mine = [p for p in listing["plugins"] if not p["builtin"]]
    assert {"register_phases", "register_vad", "register_asr", "register_question_sources", "register_scorers",
            "register_code_runners", "interview_event"} <= set(mine[0]["hooks"])
    await session.close()
    await engine.close()


async def test_scorer_hook_writes_the_report(store):
    plugin = HookPlugin()
    config = engine_config(engine={"phases": ["oneshot"], "question_sources": ["scripted"], "scorers": ["scripted"]})
    engine = await start_engine(store, config, plugin, ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    session, client = await open_session(engine, store, user_id, resume_id, interview_id)
    await session.handle(ev.TextAnswer("学习快"))
    await settle(session)
    for _ in range(200):
        stored = await store.load_interview(user_id, interview_id)
        if stored.get("report_status") == "ready":
            break
        await asyncio.sleep(0.05)
    assert stored["report_status"] == "ready"
    assert stored["report"]["overall_score"] == 7
    assert plugin.scorer.records and plugin.scorer.records[0]["phase_state"]["oneshot"]["answer"] == "学习快"
    await session.close()
    await engine.close()


async def test_cheat_detector_hook_reports_one_message_per_episode(store):
    plugin = HookPlugin()
    config = engine_config(engine={"cheat_detectors": ["brightness"], "question_sources": ["scripted"],
                                   "scorers": ["scripted"]},
                           cheat={"consecutive_frames": 2, "clear_frames": 2})
    engine = await start_engine(store, config, plugin, ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    session, client = await open_session(engine, store, user_id, resume_id, interview_id)
    for value in [200, 10, 10, 10, 10, 200, 200, 10, 200]:
        await session.handle(ev.VideoFrame(jpeg_of(value)))
        await session.cheat.drain()
    await session.handle(ev.VideoFrame(b"not a jpeg at all"))
    await session.cheat.drain()
    await session.handle(ev.ClientEvent("tab_hidden"))
    await session.handle(ev.ClientEvent("tab_visible"))
    await settle(session)
    assert [m["kind"] for m in client.of("cheat_detected")] == ["no_face", "tab_hidden"]
    assert client.of("cheat_detected")[0]["text"] == BrightnessDetector.kinds[0].text
    assert len(client.of("error")) == 1                        # the broken frame, skipped
    stored = await store.load_interview(user_id, interview_id)
    events = stored["cheat_events"]
    assert [e["kind"] for e in events] == ["no_face", "tab_hidden"]
    assert events[0]["frames"] == 4 and events[0]["ended_at"]   # closed by two normal frames
    assert any(kind == "cheat" for _, kind, _ in plugin.observed)
    await session.close()
    await engine.close()


async def test_a_code_submission_in_flight_is_stored_when_the_connection_drops(store):
    config = engine_config(engine={"phases": ["code"], "code_runner": "echo", "question_sources": ["scripted"],
                                   "scorers": ["scripted"]})
    engine = await start_engine(store, config, HookPlugin(), ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    session, client = await open_session(engine, store, user_id, resume_id, interview_id)
    assert client.of("interview_message", phase="code")
    await session.handle(ev.CodeSubmit("python", "print(input())"))
    await asyncio.sleep(0)
    await session.close()                    # dropped before the result was sent
    stored = await store.load_interview(user_id, interview_id)
    assert len(stored["code"]["submissions"]) == 1
    assert stored["code"]["submissions"][0]["language"] == "python"
    await engine.close()


async def test_limits_bound_the_audio_and_video_queues(store):
    plugin = HookPlugin()
    config = engine_config(engine={"vad": "tone", "asr": "tone", "cheat_detectors": ["brightness"]},
                           limits={"audio_queue_frames": 7, "video_queue_frames": 3})
    engine = await start_engine(store, config, plugin, ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    session, _ = await open_session(engine, store, user_id, resume_id, interview_id)
    assert session.speech._queue.maxsize == 7          # [limits] audio_queue_frames
    assert session.cheat.queue_size == 3               # [limits] video_queue_frames
    await session.close()
    await engine.close()
