"""The lean FSMN-VAD engine (plugins/_fsmn_lean.py) against FunASR's own streaming call: the same
segments, reported at the same audio frame, on every shared clip, on degraded copies of them, fed in
any chunking, and many streams in one call; the sessions' chunks of one event-loop turn batched
(``accept_async``) with each session's events unchanged, and a failed batched call; the segment
rules' corners (a segment cut at ``max_single_segment_time``); configurations it does not implement
are refused."""
import asyncio
import threading
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from plugins._fsmn_lean import LeanFsmnModel, LeanStream, mel_banks, run
from plugins.vad_fsmn import FsmnVad, VadSetupError, package_model_dir
from tests.asr_support import DEV_AUDIO, frames, load, load_from, references, references_in, silence

CLIPS = [("zh", n) for n in sorted(references())] + [("zh-dev", n) for n in sorted(references_in(DEV_AUDIO))]


def clip(where: str, name: str) -> np.ndarray:
    return load(name) if where == "zh" else load_from(DEV_AUDIO, name)


def session_audio(pcm: np.ndarray) -> np.ndarray:
    """Silence, the clip, a second of silence, its first half: starts, ends and a second segment."""
    return np.concatenate([silence(0.5), pcm, silence(1.0), pcm[: len(pcm) // 2]])


def calls(vad: FsmnVad, pcm: np.ndarray, size: int = 640) -> list:
    """The events of every call, call by call (40 ms frames, then finish)."""
    stream = vad.open_stream()
    out = [stream.accept(f) for f in frames(pcm, size)]
    return out + [stream.finish()]


@pytest.fixture(scope="module")
def engines():
    return {m: (FsmnVad({"max_end_silence_time": m}), FsmnVad({"max_end_silence_time": m, "engine": "funasr"}))
            for m in (300, 500)}


def test_the_default_engine_is_lean_and_runs_inline():
    lean, funasr = FsmnVad({}), FsmnVad({"engine": "funasr"})
    assert lean.lean is not None and lean.inline and lean.model is None
    assert funasr.lean is None and not funasr.inline


@pytest.mark.parametrize("mes", [300, 500])
def test_same_events_at_the_same_calls_as_funasr_on_every_shared_clip(engines, mes):
    lean, funasr = engines[mes]
    differ, events = [], 0
    for where, name in CLIPS:
        pcm = session_audio(clip(where, name))
        a, b = calls(lean, pcm), calls(funasr, pcm)
        events += sum(map(len, b))
        if a != b:
            differ.append(name)
    assert not differ, differ
    assert events >= 4 * len(CLIPS)       # every clip gave at least its two segments


def degrade(pcm: np.ndarray, how: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = pcm.astype(np.float64)
    if how == "noise":            # white noise at 10 dB SNR
        p = np.mean(x ** 2)
        x = x + rng.normal(0, np.sqrt(p / 10), len(x))
    elif how == "quiet":          # -24 dB
        x = x * 10 ** (-24 / 20)
    elif how == "reverb":         # an exponentially decaying diffuse tail (RT60 ~0.5 s)
        n = 8000
        ir = rng.normal(0, 1, n) * np.exp(-6.9 * np.arange(n) / n)
        ir[0] = 1.0
        x = np.convolve(x, ir / np.sqrt(np.sum(ir ** 2)))[: len(x)]
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("how", ["noise", "quiet", "reverb"])
def test_same_events_on_degraded_speech(engines, how):
    lean, funasr = engines[500]
    picked = CLIPS[::5]
    for i, (where, name) in enumerate(picked):
        pcm = session_audio(degrade(clip(where, name), how, seed=i))
        assert calls(lean, pcm) == calls(funasr, pcm), (how, name)


def test_chunking_does_not_change_the_segments(engines):
    lean, _ = engines[500]
    pcm = session_audio(clip(*CLIPS[3]))
    flat = [e for c in calls(lean, pcm, 640) for e in c]
    assert flat
    for size in (160, 1234, 3200, 16000):
        assert [e for c in calls(lean, pcm, size) for e in c] == flat, size


def test_many_streams_in_one_call_segment_as_each_alone():
    """``run`` takes several streams' audio at once (their frames share the network's matrix
    products; streams with the same number of new frames share the memory step): each gets what it
    gets alone, whatever the others are doing, including streams that finish in the same call."""
    model = LeanFsmnModel(package_model_dir(), 500)
    pcms = [session_audio(clip(*c)) for c in CLIPS[:6]]
    sizes = [3200, 3200, 1600, 4800, 3200, 640]      # unequal: different frame counts per call

    def alone(pcm, size):
        s, out = LeanStream(model), []
        for i in range(0, len(pcm), size):
            out += run(model, [(s, pcm[i:i + size], False)])[0]
        return out + run(model, [(s, np.zeros(160, np.int16), True)])[0]

    want = [alone(p, z) for p, z in zip(pcms, sizes)]
    streams = [LeanStream(model) for _ in pcms]
    got = [[] for _ in pcms]
    pos = [0] * len(pcms)
    done = [False] * len(pcms)
    while not all(done):
        batch, who = [], []
        for k, (p, z) in enumerate(zip(pcms, sizes)):
            if done[k]:
                continue
            if pos[k] < len(p):
                batch.append((streams[k], p[pos[k]: pos[k] + z], False))
                pos[k] += z
            else:
                batch.append((streams[k], np.zeros(160, np.int16), True))
                done[k] = True
            who.append(k)
        for k, found in zip(who, run(model, batch)):
            got[k] += found
    assert got == want
    assert all(len(w) >= 4 for w in want)


def model_copy(tmp_path: Path, **model_conf) -> Path:
    """The packaged model in a directory of its own, with ``model_conf`` changed."""
    dst = tmp_path / "fsmn"
    shutil.copytree(package_model_dir(), dst)
    conf = yaml.safe_load((dst / "config.yaml").read_text())
    for k, v in model_conf.items():
        section, _, key = k.partition("__")
        conf[section][key] = v
    (dst / "config.yaml").write_text(yaml.safe_dump(conf))
    return dst


def test_a_segment_longer_than_the_maximum_is_cut_the_same_way(tmp_path):
    """``max_single_segment_time`` (60 s shipped; 2 s here): speech that goes on is cut there and
    goes on in a new segment, in both engines."""
    d = model_copy(tmp_path, model_conf__max_single_segment_time=2000)
    lean = FsmnVad({"model_dir": str(d), "max_end_silence_time": 800})
    funasr = FsmnVad({"model_dir": str(d), "max_end_silence_time": 800, "engine": "funasr"})
    pcm = np.concatenate([silence(0.3), clip(*CLIPS[0]), clip(*CLIPS[1])])
    a, b = calls(lean, pcm), calls(funasr, pcm)
    assert a == b
    ev = [e for c in a for e in c]
    lengths = [(ev[i + 1].sample - ev[i].sample) / 16000 for i in range(0, len(ev), 2)]
    assert len(lengths) >= 3 and max(lengths) <= 2.05, lengths


def test_configurations_it_does_not_implement_are_refused(tmp_path):
    d = model_copy(tmp_path, frontend_conf__lfr_m=7)
    with pytest.raises(VadSetupError, match='engine = "funasr"'):
        FsmnVad({"model_dir": str(d)})
    with pytest.raises(ValueError, match="worker_process"):
        FsmnVad({"worker_process": True})
    with pytest.raises(ValueError, match="engine"):
        FsmnVad({"engine": "fast"})


def test_mel_filters_are_kaldis():
    """Kaldi's bank: 80 triangles between 20 Hz and 8 kHz on the mel scale, each rising to one at
    its centre bin and touching only its neighbours' centres."""
    w = mel_banks(80)
    assert w.shape == (256, 80) and (w >= 0).all() and w.max() <= 1.0
    assert w[0].sum() == 0                     # DC is below 20 Hz
    peaks = w.argmax(axis=0)
    assert (np.diff(peaks) >= 0).all()         # centres rise with frequency
    assert (w > 0).sum(axis=1).max() <= 2      # a bin is in at most two triangles


@pytest.mark.parametrize("lean_thread", [False, True])
def test_chunks_of_one_loop_turn_run_as_one_call_and_each_session_gets_its_own_events(lean_thread):
    """``accept_async`` (what the speech pipeline calls on the event loop): the chunks several
    sessions hand over in one turn of the loop go through the model as one call, and each session
    gets exactly the events it gets from ``accept`` alone, at the same frames; with ``lean_thread``
    the calls run on a thread of their own, with the same events."""
    vad = FsmnVad({"max_end_silence_time": 500, "lean_thread": lean_thread})
    ran_on = set()
    real = vad.lean_segments

    def recording(items):
        ran_on.add(threading.current_thread().name)
        return real(items)
    pcms = [session_audio(clip(*c)) for c in CLIPS[:4]]

    async def session(pcm, delay_frames):
        stream = vad.open_stream()
        out = []
        for _ in range(delay_frames):       # sessions that started at other moments
            await asyncio.sleep(0)
        for f in frames(pcm, 640):
            out.append(await stream.accept_async(f))
        return out + [stream.finish()]

    async def all_sessions():
        return await asyncio.gather(*(session(p, k) for k, p in enumerate(pcms)))

    want = [calls(vad, p) for p in pcms]         # (accept: the calling thread, not batched)
    vad.lean_segments = recording
    got = asyncio.run(all_sessions())
    assert got == want
    assert vad.turns > 0
    if not lean_thread:       # on the loop every session resumes in the same turn: calls shared
        assert vad.summary()["chunks_per_call"] > 1.5
    # (on the thread each finished call wakes its sessions on its own, so how many share later
    # calls depends on the thread's timing; that chunks of one turn share a call is checked below)
    on_thread = {name for name in ran_on if name.startswith("fsmn-lean")}
    assert bool(on_thread) == lean_thread, ran_on     # (finish() runs where it is called)
    asyncio.run(vad.aclose())


@pytest.mark.parametrize("lean_thread", [False, True])
def test_the_chunks_handed_over_in_one_turn_make_one_call(lean_thread):
    vad = FsmnVad({"max_end_silence_time": 500, "lean_thread": lean_thread})
    pcms = [session_audio(clip(*c)) for c in CLIPS[:4]]
    streams = [vad.open_stream() for _ in pcms]
    size = streams[0].chunk

    async def one_turn():           # every stream's first whole chunk, handed over before any yield
        return await asyncio.gather(*(s.accept_async(p[:size]) for s, p in zip(streams, pcms)))

    asyncio.run(one_turn())
    assert (vad.turns, vad.turn_chunks) == (1, 4)
    asyncio.run(one_turn())
    assert (vad.turns, vad.turn_chunks) == (2, 8)
    asyncio.run(vad.aclose())


@pytest.mark.parametrize("lean_thread", [False, True])
def test_a_failed_batched_call_fails_every_waiting_session_and_the_next_turn_runs(lean_thread):
    vad = FsmnVad({"max_end_silence_time": 500, "lean_thread": lean_thread})
    real = vad.lean_segments
    failures = iter([RuntimeError("model error")])

    def flaky(items):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real(items)

    vad.lean_segments = flaky
    chunk = silence(0.2)

    async def two():
        a, b = vad.open_stream(), vad.open_stream()
        first = await asyncio.gather(a.accept_async(chunk), b.accept_async(chunk), return_exceptions=True)
        second = await asyncio.gather(a.accept_async(chunk), b.accept_async(chunk))
        return first, second

    first, second = asyncio.run(two())
    assert [type(x) for x in first] == [RuntimeError, RuntimeError]
    assert second == [[], []]


def test_the_funasr_engine_is_not_batched():
    vad = FsmnVad({"max_end_silence_time": 500, "engine": "funasr"})
    pcm = session_audio(clip(*CLIPS[0]))

    async def feed():
        stream = vad.open_stream()
        return [await stream.accept_async(f) for f in frames(pcm, 640)] + [stream.finish()]

    assert asyncio.run(feed()) == calls(vad, pcm)
    assert vad.turns == 0


def test_a_turn_with_many_chunks_is_split_into_calls_of_at_most_batch_max():
    from plugins.vad_fsmn import BATCH_MAX
    vad = FsmnVad({"max_end_silence_time": 500})
    n = BATCH_MAX + 2
    chunk = silence(0.2)

    async def turn():
        streams = [vad.open_stream() for _ in range(n)]
        return await asyncio.gather(*(s.accept_async(chunk) for s in streams))

    assert asyncio.run(turn()) == [[]] * n
    assert (vad.turns, vad.turn_chunks) == (2, n)
