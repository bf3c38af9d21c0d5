"""Correcting recognised finals: the guard that refuses a correction changing what was said, the
engine's flow (stored raw first, corrected text to the phase and the store, opt-in asr_correction
messages, a timeout or a failure keeps the raw text) through the register_correctors hook, and the
llm corrector against a real HTTP server."""
from __future__ import annotations

import asyncio

import pytest

from core import events as ev
from core.clock import ManualClock
from core.correction import Corrections, check_correction
from core.hookspecs import hookimpl
from core.interfaces import AsrContext, CorrectionRequest
from engine_support import HookPlugin, ToneAsr, engine_config, seed, settle, silence, start_engine, tone
from llm_support import Reply, ScriptedServer, plugin_context
from plugins.llm import LlmCorrector

TERMS = ["Redis", "Kafka", "函数", "作用域"]


@pytest.mark.parametrize("raw,corrected", [
    ("韩束的作用预是什么", "函数的作用域是什么"),          # sound-alikes (fuzzy initials and finals too)
    ("服务要做融断和降机", "服务要做熔断和降级"),
    ("我们用瑞迪斯做缓存", "我们用Redis做缓存"),            # a context term for Chinese that sounds like it
    ("我们用redis做缓存", "我们用Redis做缓存"),              # letter case
    ("嗯我们用了三台机器", "我们用了三台机器。"),              # a filler and punctuation
    ("这个接口是密等的", "这个接口是幂等的"),
])
def test_the_guard_accepts_what_a_recogniser_gets_wrong(raw, corrected):
    assert check_correction(raw, corrected, TERMS) is None


@pytest.mark.parametrize("raw,corrected,why", [
    ("我不熟悉Kafka", "我熟悉Kafka", "negation"),
    ("我们用了三台机器", "我们用了五台机器", "numbers"),
    ("QPS大概两千", "QPS大概2万", "numbers"),
    ("我用过Redis", "我精通Redis", "sound-alike"),
    ("缓存用Redis", "缓存用Redis集群并且做了主从复制", "added"),
    ("我们先做压测然后上线", "我们上线", "dropped"),
    ("韩束的作用预是什么", "", "empty"),
    ("时间复杂度是多少", "实践夫砸度是多少", "too much"),
])
def test_the_guard_refuses_a_change_of_meaning(raw, corrected, why):
    reason = check_correction(raw, corrected, TERMS)
    assert reason is not None and why in reason, reason


class Corrector:
    """A scripted corrector: ``answers`` maps a final to its correction; ``gate`` holds it."""

    def __init__(self, name, answers=None, gate=None, fail=False):
        self.name = name
        self.answers = answers or {}
        self.gate = gate
        self.fail = fail
        self.requests: list[CorrectionRequest] = []

    async def correct(self, request):
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("the corrector is down")
        return self.answers.get(request.text, request.text)


WORDS = {"三": "韩束", "四": "用了三台", "五": "融断"}     # what the tones stand for here


class WordAsr(ToneAsr):
    """The tone recogniser, its digits read as words a recogniser might mishear."""

    class Stream(ToneAsr.Stream):
        def partial(self, pcm, context):
            text = super().partial(pcm, context)
            return WORDS.get(text, text)

        def final(self, pcm, context):
            text = super().final(pcm, context)
            return WORDS.get(text, text)


class CorrectorPlugin(HookPlugin):
    def __init__(self, corrector) -> None:
        super().__init__()
        self.corrector = corrector
        self.asr = WordAsr()

    @hookimpl
    def register_correctors(self, register):
        register("scripted", lambda ctx: self.corrector)


def speech_config(**correction):
    return engine_config(engine={"vad": "tone", "asr": "tone", "question_sources": ["scripted"],
                                 "scorers": ["scripted"], "correctors": ["scripted"]},
                         correction={"timeout_seconds": 5.0, **correction})


async def speak(session, *digits):
    audio = b"".join(tone(d, 1.2) + silence(0.6) for d in digits)
    for i in range(0, len(audio), 1280):
        await session.handle(ev.AudioFrame(audio[i:i + 1280]))


async def start(store, corrector, *, corrections=True, **correction):
    engine = await start_engine(store, speech_config(**correction), CorrectorPlugin(corrector), ManualClock())
    user_id, resume_id, interview_id = await seed(store)
    from engine_support import Client
    client = Client()
    session = await engine.open_session(user_id, ev.CreateStream(interview_id, resume_id, asr_corrections=corrections),
                                        client.send)
    await session.start()
    await settle(session)
    return engine, session, client, interview_id


async def test_a_correction_is_stored_beside_what_was_heard_and_reaches_the_phase(store):
    # 韩束 -> 函数 (a sound-alike): accepted; 用了三台 -> 用了五台 would change a number: refused
    corrector = Corrector("scripted", {"韩束": "函数", "用了三台": "用了五台"})
    engine, session, client, interview_id = await start(store, corrector)
    await speak(session, 3, 4)
    await session.speech.drain()
    await session.handle(ev.EndAnswer())          # waits for the finals and their corrections
    await session.inputs.flush_speech()
    await settle(session)
    # the client saw what was heard at once, then the correction of the one accepted
    assert [m["text"] for m in client.of("asr_result", is_final=True)] == ["韩束", "用了三台"]
    assert client.of("asr_correction") == [ev.asr_correction("函数", "韩束")]
    transcript = await store.load_transcript(interview_id)
    assert [(t["text"], t["raw_text"]) for t in transcript] == [("函数", "韩束"), ("用了三台", "用了三台")]
    assert transcript[0]["correction"] == {"by": "scripted"}
    assert "numbers" in transcript[1]["correction"]["refused"]
    # the phase got the corrected text: the intro ended on end_answer with it as the answer
    assert client.texts()[1] == "自我介绍结束，下面开始问问题。"
    assert corrector.requests[0].text == "韩束" and corrector.requests[0].domain == "backend"
    assert engine.stats()["corrections"] == {"asked": 2, "accepted": 1, "refused": 1, "timeouts": 0, "errors": 0}
    await session.close()
    await engine.close()


async def test_without_the_opt_in_the_client_sees_only_the_guides_messages(store):
    engine, session, client, interview_id = await start(store, Corrector("scripted", {"韩束": "函数"}), corrections=False)
    await speak(session, 3)
    await session.speech.drain()
    await session.handle(ev.EndAnswer())
    await session.inputs.flush_speech()
    await settle(session)
    assert client.of("asr_correction") == []
    assert (await store.load_transcript(interview_id))[0]["text"] == "函数"
    await session.close()
    await engine.close()


async def test_a_slow_or_failing_corrector_keeps_the_raw_text(store):
    gate = asyncio.Event()                       # never set: the corrector never answers
    engine, session, client, interview_id = await start(store, Corrector("scripted", gate=gate), timeout_seconds=0.2)
    await speak(session, 3)
    await session.speech.drain()
    await session.handle(ev.EndAnswer())
    await settle(session)
    await session.inputs.flush_speech()
    entry = (await store.load_transcript(interview_id))[0]
    assert entry["text"] == "韩束" and entry["raw_text"] == "韩束" and "timeout" in entry["correction"]["refused"]
    assert client.of("asr_correction") == []
    await session.close()
    await engine.close()

    engine, session, client, interview_id = await start(store, Corrector("scripted", fail=True))
    await speak(session, 5)
    await session.inputs.flush_speech()
    entry = (await store.load_transcript(interview_id))[0]
    assert entry["text"] == "融断" and "down" in entry["correction"]["refused"]
    await session.close()
    await engine.close()


async def test_the_final_is_stored_before_it_is_corrected(store):
    """A crash while the corrector thinks loses nothing: the raw final is already stored."""
    gate = asyncio.Event()
    engine, session, client, interview_id = await start(store, Corrector("scripted", {"韩束": "函数"}, gate=gate))
    await speak(session, 3)
    await session.speech.drain()
    for _ in range(200):
        if await store.load_transcript(interview_id):
            break
        await asyncio.sleep(0.01)
    assert [t["text"] for t in await store.load_transcript(interview_id)] == ["韩束"]
    gate.set()
    await session.inputs.flush_speech()
    assert [t["text"] for t in await store.load_transcript(interview_id)] == ["函数"]
    await session.close()
    await engine.close()


async def test_the_llm_corrector_over_http():
    context = AsrContext(question="说说函数的作用域", terms=["函数", "作用域"], domain="frontend")
    async with ScriptedServer([Reply.ok({"text": "函数的作用域是词法的"})]) as server:
        corrector = LlmCorrector.from_context(plugin_context("llm", {"base_url": server.base_url, "model": "m"}))
        corrections = Corrections([corrector])
        outcome = await corrections.correct("韩束的作用预是词法的", context)
        assert (outcome.text, outcome.raw_text, outcome.corrector) == ("函数的作用域是词法的", "韩束的作用预是词法的", "llm")
        sent = server.requests[0]["messages"]
        assert "韩束的作用预是词法的" in sent[-1]["content"] and "作用域" in sent[-1]["content"]
        await corrector.aclose()
    # garbage, then a rewrite the guard refuses: the raw text stays either way
    async with ScriptedServer([Reply(200, "not json at all")]) as server:
        corrector = LlmCorrector.from_context(plugin_context("llm", {"base_url": server.base_url, "model": "m",
                                                                     "max_retries": 0}))
        outcome = await Corrections([corrector]).correct("韩束的作用预", context)
        assert outcome.text == "韩束的作用预" and outcome.refused.startswith("error")
        await corrector.aclose()
    async with ScriptedServer([Reply.ok({"text": "我完全不懂闭包"})]) as server:
        corrector = LlmCorrector.from_context(plugin_context("llm", {"base_url": server.base_url, "model": "m"}))
        outcome = await Corrections([corrector]).correct("我懂闭包", context)
        assert outcome.text == "我懂闭包" and outcome.refused
        await corrector.aclose()
