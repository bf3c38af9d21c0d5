"""The FunASR plugin's streaming path, offline: a small, randomly initialised Paraformer-streaming
model built from funasr's own classes and config (the real weights cannot be downloaded here).
Accuracy is not asserted; chunking, the streaming cache, the final flush and the reset are."""

import numpy as np
import pytest

from core.clock import SystemClock
from core.events import SpeechEnded, SpeechStarted, Transcript
from core.interfaces import AsrContext, PluginContext
from core.plugins import collect, make_plugin_manager
from core.speech import AsrScheduler, SpeechPipeline
from plugins._term_fix import fix_terms
from plugins.asr_funasr import FunAsr
from plugins.vad_energy import EnergyVad
from tests.asr_remote_support import build_model_dir
from tests.asr_support import frames, load, silence

TOKENS = ["<blank>", "<s>", "</s>"] + list("面试官您好我叫李明的是说完了") + ["<unk>"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # paraformer-zh-streaming's architecture, shrunk (tests/asr_remote_support.py)
    return build_model_dir(tmp_path_factory.mktemp("paraformer-tiny"), streaming=True, tokens=TOKENS)


@pytest.fixture(scope="module")
def asr(model_dir):
    return FunAsr({"model": str(model_dir)})


def test_registered_and_loaded_through_the_plugin_factory(model_dir, asr):
    import importlib.util  # noqa: F401
    regs = collect(make_plugin_manager(load_entry_points=False, default_plugins=("plugins.asr_funasr",)))
    factory = regs["asr"].get("funasr").factory
    ctx = PluginContext("funasr", {"model": str(model_dir)}, {}, model_dir, SystemClock())
    again = factory(ctx)
    assert again.model is asr.model                  # loaded once per process
    assert again.call_lock is asr.call_lock          # and called by one thread at a time
    with pytest.raises(ValueError):
        FunAsr({"model": str(model_dir), "chunk_size": [0, 10]})
    with pytest.raises(ValueError, match="unknown setting"):
        FunAsr({"model": str(model_dir), "beam": 3})


def test_streaming_partials_then_final_flush_and_reset(asr):
    pcm = load("intro_01")
    stride = asr.stride
    assert stride == 9600                              # chunk_size [0, 10, 5]: 600 ms steps
    ctx = AsrContext("请开始自我介绍吧", ["李明"])
    stream = asr.open_stream()
    assert stream.partial(pcm[: stride - 1], ctx) == ""   # less than one step: nothing fed yet
    assert stream.fed == 0
    partials, fed = [], []
    for n in range(6400, len(pcm), 6400):
        partials.append(stream.partial(pcm[:n], ctx))
        fed.append(stream.fed)
        assert stream.fed % stride == 0 and stream.fed <= n
    assert fed == sorted(fed) and fed[-1] >= len(pcm) - 6400 - stride
    for a, b in zip(partials, partials[1:]):
        assert b.startswith(a)                          # streaming: text only grows
    final = stream.final(pcm, ctx)
    assert final and final.startswith(partials[-1])     # the flush adds the tail
    assert stream.fed == 0 and stream.cache == {} and stream.text == ""
    # a fresh stream over the same audio gives the same result: the cache was really reset
    again = asr.open_stream()
    for n in range(6400, len(pcm), 6400):
        again.partial(pcm[:n], ctx)
    assert again.final(pcm, ctx) == final
    # final without partials decodes everything in one call
    assert asr.open_stream().final(pcm, ctx) == final


def test_partials_and_finals_go_through_the_term_correction(model_dir, asr):
    # The random model's output is a string of its 14 characters; intro_02 reads "面官好您了好面…" with
    # this seed. A context term that sounds the same (面馆, mian guan) is restored by the sound-alike
    # correction in partials and the final, and not with term_fix = false.
    pcm = load("intro_02")
    ctx = AsrContext("你平时喜欢去哪里吃饭", ["面馆"])
    plain = FunAsr({"model": str(model_dir), "term_fix": False})

    def run(engine):
        stream = engine.open_stream()
        partials = [stream.partial(pcm[:n], ctx) for n in range(asr.stride, len(pcm), asr.stride)]
        return partials, stream.final(pcm, ctx)

    raw_partials, raw_final = run(plain)
    assert "面官" in raw_final and "面馆" not in raw_final, raw_final   # the seed's output, as measured
    partials, final = run(asr)
    assert final == fix_terms(raw_final, ctx) and "面馆" in final and len(final) == len(raw_final)
    assert partials == [fix_terms(p, ctx) for p in raw_partials]
    assert any("面馆" in p for p in partials), partials
    # no context, no change
    assert asr.open_stream().final(pcm, AsrContext()) == raw_final


async def test_runs_inside_the_speech_pipeline(asr):
    events = []

    async def on_event(ev):
        events.append(ev)

    scheduler = AsrScheduler(workers=2)
    pipe = SpeechPipeline(EnergyVad({}), asr, scheduler, SystemClock(), on_event)
    audio = np.concatenate([silence(0.5), load("intro_02"), silence(1.5), load("short_yes"), silence(1.5)])
    for frame in frames(audio):
        await pipe.feed(frame.tobytes())
    await pipe.end_of_stream()
    await pipe.drain()
    await pipe.aclose()
    scheduler.close()
    assert pipe.errors == []
    assert sum(isinstance(e, SpeechStarted) for e in events) == 2
    assert sum(isinstance(e, SpeechEnded) for e in events) == 2
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert len(finals) <= 2 and all(f.text for f in finals)
