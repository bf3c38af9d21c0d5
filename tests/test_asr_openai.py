"""The remote ASR plugin ``openai_asr`` (plugins/asr_openai.py).

Part 1: against a REAL ``funasr-server`` process (the funasr package's own OpenAI-compatible server)
serving a small randomly initialised Paraformer (tests/asr_remote_support.py): finals and partials
through the speech pipeline, a request the server refuses, and the server going down mid-session.

Part 2: against a small aiohttp fake on a real socket, for what funasr-server cannot be made to do:
answer slowly, answer garbage, fail with 5xx; and to see exactly which form fields arrive. It is a
stand-in for failure modes only, never for the recogniser.
"""
from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from core.clock import ManualClock, SystemClock
from core.events import AsrFailed, SpeechEnded, SpeechStarted, Transcript, asr_failed
from core.interfaces import AsrContext, PluginContext
from core.plugins import collect, make_plugin_manager
from core.settings import SettingsError
from core.speech import AsrScheduler, SpeechPipeline
from plugins.asr_openai import OpenAiAsr, RemoteAsrError, parse_answer, wav_bytes
from plugins.vad_energy import EnergyVad
from tests.asr_remote_support import (TOKENS, ThreadedAiohttp, build_model_dir, free_port, start_funasr_server,
                                     stop)
from tests.asr_support import frames, load, references, silence

CONTEXT = AsrContext(question="请介绍一下你做过的缓存项目。", terms=["Redis", "布隆过滤器"], domain="backend")


def utterance(i: int = 0) -> np.ndarray:
    return load(sorted(references())[i])


async def run_pipeline(asr, audio: np.ndarray | list[np.ndarray], settings: dict | None = None,
                       workers: int = 2, between=None) -> tuple[list, SpeechPipeline]:
    """Feed ``audio`` through a speech pipeline (energy VAD); the events and the pipeline. ``audio``
    may be a list of parts: after each but the last, everything fed so far is reported (drained)
    and ``between()`` is called."""
    events = []

    async def on_event(ev):
        events.append(ev)

    scheduler = AsrScheduler(workers=workers)
    pipe = SpeechPipeline(EnergyVad({}), asr, scheduler, SystemClock(), on_event, settings)
    pipe.set_context(CONTEXT)
    parts = audio if isinstance(audio, list) else [audio]
    for i, part in enumerate(parts):
        if i:
            await pipe.drain()
            between()
        for frame in frames(part):
            await pipe.feed(frame.tobytes())
            await asyncio.sleep(0)
    await pipe.end_of_stream()
    await pipe.drain()
    await pipe.aclose()
    scheduler.close()
    return events, pipe


# --- part 1: the real funasr-server ----------------------------------------------------------------
@pytest.fixture(scope="module")
def funasr(tmp_path_factory):
    d = tmp_path_factory.mktemp("funasr-server")
    model = build_model_dir(d / "paraformer-tiny")
    proc, url = start_funasr_server(model, d / "server.log")
    yield proc, url
    stop(proc)


def test_final_from_the_real_server_is_cleaned_and_counted(funasr):
    _, url = funasr
    asr = OpenAiAsr({"base_url": url})
    text = asr.open_stream().final(utterance(), CONTEXT)
    assert text and set(text) <= set("".join(TOKENS[3:-1]) + "，。")   # the random model's characters
    st = asr.stats()
    assert st["finals_ok"] == 1 and st["requests"] == 1 and len(st["latency_s"]["final"]) == 1


async def test_partials_then_finals_through_the_pipeline(funasr):
    _, url = funasr
    asr = OpenAiAsr({"base_url": url, "partial_interval_seconds": 0.5, "max_concurrency": 2})
    audio = np.concatenate([silence(0.5), utterance(0), silence(1.5), utterance(1), silence(1.5)])
    events, pipe = await run_pipeline(asr, audio, {"partial_interval_s": 0.3})
    assert pipe.errors == []
    kinds = [type(e).__name__ + (":final" if getattr(e, "is_final", False) else "") for e in events]
    assert kinds.count("SpeechStarted") == 2 and kinds.count("SpeechEnded") == 2
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert len(finals) == 2 and all(f.text for f in finals)
    st = asr.stats()
    assert st["finals_ok"] == 2 and st["partials_ok"] >= 1
    # every partial of an utterance comes before its final
    for f in finals:
        last = events.index(f)
        assert not any(isinstance(e, Transcript) and not e.is_final and e.audio_start == f.audio_start
                       for e in events[last + 1:])
    assert not any(isinstance(e, AsrFailed) for e in events)


def test_a_request_the_server_refuses_is_not_retried(funasr):
    _, url = funasr
    asr = OpenAiAsr({"base_url": url, "model": "no-such-model", "retries": 3})
    with pytest.raises(RemoteAsrError) as err:
        asr.open_stream().final(utterance(), CONTEXT)
    assert err.value.reason == "http_400"
    assert asr.stats()["requests"] == 1


async def test_server_going_down_mid_session_is_reported_and_the_session_goes_on(tmp_path):
    model = build_model_dir(tmp_path / "m")
    proc, url = start_funasr_server(model, tmp_path / "server.log")
    asr = OpenAiAsr({"base_url": url, "retries": 1, "timeout_seconds": 5.0})
    events = []

    async def on_event(ev):
        events.append(ev)

    scheduler = AsrScheduler(workers=2)
    pipe = SpeechPipeline(EnergyVad({}), asr, scheduler, SystemClock(), on_event)
    try:
        for frame in frames(np.concatenate([silence(0.5), utterance(0), silence(1.5)])):
            await pipe.feed(frame.tobytes())
        await pipe.drain()
        stop(proc)              # the server dies after the first final
        for frame in frames(np.concatenate([utterance(1), silence(1.5)])):
            await pipe.feed(frame.tobytes())
        await pipe.end_of_stream()
        await pipe.drain()
    finally:
        await pipe.aclose()
        scheduler.close()
        stop(proc)
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    failed = [e for e in events if isinstance(e, AsrFailed)]
    assert len(finals) == 1 and len(failed) == 1
    assert failed[0].reason == "unreachable" and failed[0].audio_start > finals[0].audio_end
    assert events.index(failed[0]) > events.index(finals[0])
    assert asr.stats()["retries"] >= 1


# --- part 2: a fake on a real socket: slow, garbage, 5xx ---------------------------------------------
class FakeServer:
    """aiohttp on 127.0.0.1 in its own thread. ``mode``: ok | slow | garbage | huge | error500."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.text = "我們用了 Redis 做緩存"
        self.delay = 1.0
        self.forms: list[dict] = []
        self._http = ThreadedAiohttp(lambda router: router.add_post("/v1/audio/transcriptions", self.transcriptions))
        self.port = self._http.port
        self.url = f"http://127.0.0.1:{self.port}/v1"

    async def transcriptions(self, request):
        from aiohttp import web
        form = await request.post()
        f = form.get("file")
        self.forms.append({k: (v if isinstance(v, str) else v.file.read()) for k, v in form.items()})
        assert f is not None
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        if self.mode == "garbage":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if self.mode == "huge":
            return web.json_response({"text": "啊" * 5000})
        if self.mode == "error500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        return web.json_response({"text": self.text})

    def close(self) -> None:
        self._http.close()


@pytest.fixture
def fake():
    server = FakeServer()
    yield server
    server.close()


def test_settings_are_checked():
    with pytest.raises(ValueError, match="base_url"):
        OpenAiAsr({})
    with pytest.raises(ValueError, match="base_url"):
        OpenAiAsr({"base_url": "localhost:8000"})
    with pytest.raises(SettingsError, match="partial_interval"):
        OpenAiAsr({"base_url": "http://x/v1", "partial_interval": 1})
    with pytest.raises(SettingsError, match="max_concurrency"):
        OpenAiAsr({"base_url": "http://x/v1", "max_concurrency": 0})


def test_registered_under_its_own_name():
    regs = collect(make_plugin_manager(load_entry_points=False, default_plugins=("plugins.asr_openai",)))
    factory = regs["asr"].get("openai_asr").factory
    clock = ManualClock()
    asr = factory(PluginContext("openai_asr", {"base_url": "http://127.0.0.1:9/v1"}, {}, None, clock))
    assert isinstance(asr, OpenAiAsr) and asr.clock is clock


def test_final_sends_wav_context_and_hotwords_and_cleans_the_text(fake, monkeypatch):
    monkeypatch.setenv("TEST_ASR_KEY", "sk-test")
    asr = OpenAiAsr({"base_url": fake.url, "hotword_field": "hotwords", "api_key_env": "TEST_ASR_KEY",
                     "model": "paraformer"})
    pcm = utterance()
    text = asr.open_stream().final(pcm, CONTEXT)
    assert text == "我们用了Redis做缓存"                   # simplified, no spaces between CJK
    form = fake.forms[-1]
    assert form["model"] == "paraformer" and form["language"] == "zh" and form["response_format"] == "json"
    assert "请介绍一下你做过的缓存项目" in form["prompt"] and "布隆过滤器" in form["prompt"]
    assert form["hotwords"] == "Redis 布隆过滤器"
    assert form["file"] == wav_bytes(pcm) and form["file"][:4] == b"RIFF"


def test_silence_is_not_sent(fake):
    asr = OpenAiAsr({"base_url": fake.url})
    assert asr.open_stream().final(silence(1.0), CONTEXT) == ""
    assert fake.forms == [] and asr.stats()["silent_skipped"] == 1


def test_partial_cadence(fake):
    asr = OpenAiAsr({"base_url": fake.url, "partial_interval_seconds": 1.0})
    stream = asr.open_stream()
    pcm = utterance()
    assert stream.partial(pcm[:8000], CONTEXT)                 # first partial of the utterance: sent
    assert stream.partial(pcm[:16000], CONTEXT) is None        # 0.5 s later: too soon
    assert stream.partial(pcm[:8000 + 16000], CONTEXT)          # 1 s of new audio: sent
    stream.final(pcm, CONTEXT)
    assert stream.partial(pcm[:8000], CONTEXT)                 # next utterance starts afresh
    st = asr.stats()
    assert (st["partials_ok"], st["partials_skipped_interval"], st["finals_ok"]) == (3, 1, 1)
    assert len(fake.forms) == 4
    none = OpenAiAsr({"base_url": fake.url, "partial_interval_seconds": 0.0}).open_stream()
    assert none.partial(pcm, CONTEXT) is None and len(fake.forms) == 4


async def test_garbage_answers_fail_the_final_and_drop_the_partial(fake):
    clock = ManualClock()
    asr = OpenAiAsr({"base_url": fake.url, "retries": 2, "cooldown_seconds": 5.0}, clock)
    stream = asr.open_stream()
    for mode in ("garbage", "huge"):
        fake.mode = mode
        with pytest.raises(RemoteAsrError) as err:
            stream.final(utterance(), CONTEXT)
        assert err.value.reason == "bad_response"
    assert asr.stats()["requests"] == 2                 # garbage is not retried
    await clock.advance(5.0)                            # past the cool-down
    assert stream.partial(utterance(), CONTEXT) is None
    assert asr.stats()["partials_failed"] == 1


def test_5xx_is_retried_then_reported(fake):
    fake.mode = "error500"
    asr = OpenAiAsr({"base_url": fake.url, "retries": 2})
    with pytest.raises(RemoteAsrError) as err:
        asr.open_stream().final(utterance(), CONTEXT)
    assert err.value.reason == "http_500" and len(fake.forms) == 3
    assert asr.stats()["failures"] == {"http_500": 3}


def test_slow_server_times_out(fake):
    fake.mode, fake.delay = "slow", 3.0
    asr = OpenAiAsr({"base_url": fake.url, "timeout_seconds": 0.3, "retries": 0})
    with pytest.raises(RemoteAsrError) as err:
        asr.open_stream().final(utterance(), CONTEXT)
    assert err.value.reason == "timeout"


def test_server_down_is_unreachable():
    asr = OpenAiAsr({"base_url": f"http://127.0.0.1:{free_port()}/v1", "retries": 1})
    with pytest.raises(RemoteAsrError) as err:
        asr.open_stream().final(utterance(), CONTEXT)
    assert err.value.reason == "unreachable" and asr.stats()["requests"] == 2


async def test_partials_pause_after_a_failure_until_the_cooldown_passes(fake):
    clock = ManualClock()
    asr = OpenAiAsr({"base_url": fake.url, "cooldown_seconds": 5.0, "retries": 0}, clock)
    stream = asr.open_stream()
    fake.mode = "error500"
    with pytest.raises(RemoteAsrError):
        stream.final(utterance(), CONTEXT)
    fake.mode = "ok"
    sent = len(fake.forms)
    assert stream.partial(utterance(), CONTEXT) is None and len(fake.forms) == sent
    await clock.advance(4.9)
    assert stream.partial(utterance(), CONTEXT) is None
    await clock.advance(0.1)
    assert stream.partial(utterance(), CONTEXT) == "我们用了Redis做缓存"
    assert asr.stats()["partials_skipped_down"] == 2


def test_partials_never_wait_for_a_slot_finals_do(fake):
    fake.mode, fake.delay = "slow", 1.0
    asr = OpenAiAsr({"base_url": fake.url, "max_concurrency": 1, "timeout_seconds": 10.0})
    busy = asr.open_stream()
    results = {}
    t = threading.Thread(target=lambda: results.setdefault("first", busy.final(utterance(), CONTEXT)))
    t.start()
    while not fake.forms:            # the slow request holds the only slot
        time.sleep(0.01)
    other = asr.open_stream()
    assert other.partial(utterance(), CONTEXT) is None
    assert asr.stats()["partials_skipped_busy"] == 1
    fake.mode = "ok"
    assert other.final(utterance(), CONTEXT) == "我们用了Redis做缓存"    # waited for the slot
    t.join(10)
    assert results["first"] == "我们用了Redis做缓存"


async def test_pipeline_reports_a_failed_final_and_keeps_going(fake):
    asr = OpenAiAsr({"base_url": fake.url, "retries": 0, "partial_interval_seconds": 0.0})

    def recover():
        fake.mode = "ok"              # the server recovers for the next utterance

    # the first utterance is reported (its final failed) before the second is fed: queued frames
    # reach the VAD in batches, so fed at once both finals could be asked before either came back
    fake.mode = "garbage"
    first = np.concatenate([silence(0.5), utterance(0), silence(1.5)])
    seen, pipe = await run_pipeline(asr, [first, np.concatenate([utterance(1), silence(1.5)])], between=recover)
    failed = [e for e in seen if isinstance(e, AsrFailed)]
    finals = [e for e in seen if isinstance(e, Transcript) and e.is_final]
    assert [f.reason for f in failed] == ["bad_response"]
    assert [f.text for f in finals] == ["我们用了Redis做缓存"]
    assert sum(isinstance(e, SpeechEnded) for e in seen) == 2
    assert seen.index(failed[0]) < seen.index(finals[0])          # in utterance order
    msg = asr_failed(failed[0].reason)
    assert msg["type"] == "error" and msg["text"] and msg["source"] == "asr" and msg["reason"] == "bad_response"


def test_parse_answer():
    assert parse_answer(b'{"text": "\\u4f60\\u597d"}', "application/json") == "你好"
    assert parse_answer(b'"plain"', "application/json") == "plain"
    for body in (b"<html>", b'{"txt": 1}', b"\xff\xfe", b"[1]"):
        with pytest.raises(RemoteAsrError):
            parse_answer(body, "")


# --- the session: the client is told, the transcript keeps the utterance, the interview goes on ------
async def test_session_reports_a_failed_utterance_and_goes_on(fake, app_server_factory, api_client):
    import base64
    import json

    import websockets

    from tests.ws_support import Inbox

    server = await app_server_factory({
        "engine": {"vad": "energy", "asr": "openai_asr", "phases": ["intro", "question"],
                   "question_sources": ["bank"]},
        "plugins": {"openai_asr": {"base_url": fake.url, "retries": 0, "partial_interval_seconds": 0.0}}})
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    ws = await websockets.connect(f"{server.ws_url}?token={client.token}", max_size=None)
    try:
        inbox = Inbox(ws)
        await inbox.wait_for(lambda m: m["type"] == "connection_established")
        await ws.send(json.dumps({"type": "create_stream", "interview_id": interview_id,
                                  "resume_id": str(resume_id)}))
        await inbox.wait_for(lambda m: m["type"] == "interview_message" and m["phase"] == "intro")

        async def say(pcm: np.ndarray) -> None:
            data = np.concatenate([pcm, silence(1.5)]).tobytes()
            for i in range(0, len(data), 1280):
                await ws.send(json.dumps({"type": "audio_frame", "end": False,
                                          "audio_data": base64.b64encode(data[i:i + 1280]).decode()}))

        fake.mode = "garbage"
        await say(utterance(0))
        err = await inbox.wait_for(lambda m: m["type"] == "error", timeout=30)
        assert err["source"] == "asr" and err["reason"] == "bad_response" and err["text"]
        fake.mode = "ok"
        await say(utterance(1))
        final = await inbox.wait_for(lambda m: m["type"] == "asr_result" and m["is_final"], timeout=30)
        assert final["text"] == "我们用了Redis做缓存"
    finally:
        await ws.close()
    # the final is sent before it is stored: the session's close (flushing what it heard) ends first
    for _ in range(500):
        if interview_id not in server.engine.sessions and not server.engine.closing:
            break
        await asyncio.sleep(0.02)
    transcript = await server.store.load_transcript(interview_id)
    speech = [e for e in transcript if e["source"] == "speech"]
    assert [(e["text"], e.get("asr_failed")) for e in speech] == [("", "bad_response"), ("我们用了Redis做缓存", None)]
    assert speech[0]["t_end"] <= speech[1]["t_start"]
    import httpx
    async with httpx.AsyncClient() as http:          # the operator sees the remote requests
        stats = (await http.get(server.base_url + "/-/stats")).json()
    asr = stats["asr_remote"]
    assert stats["asr"]["finals"] == 2 and stats["speech_backlog_frames"]["max"] == 0
    assert stats["speech_events_waiting"] == {"total": 0, "max_wait_s": 0.0}
    assert (asr["finals_ok"], asr["finals_failed"], asr["failures"]) == (1, 1, {"bad_response": 1})
    assert asr["final_ms_p95"] > 0


def test_a_final_that_finds_no_free_slot_in_time_is_reported_busy(fake):
    asr = OpenAiAsr({"base_url": fake.url, "max_concurrency": 1, "timeout_seconds": 0.2, "retries": 0})
    assert asr.try_slot()            # the only slot is taken (as by a request in flight)
    with pytest.raises(RemoteAsrError) as err:
        asr.open_stream().final(utterance(), CONTEXT)
    assert err.value.reason == "busy" and fake.forms == []
    assert asr.stats()["failures"] == {"busy": 1} and asr.stats()["finals_failed"] == 1
    asr.release_slot()
    assert asr.open_stream().final(utterance(), CONTEXT) == "我们用了Redis做缓存"
