"""VAD plugins on the test recordings: with a long end silence (800 ms) one utterance per recording,
boundaries near the voiced part, pauses inside a sentence (up to ~650 ms in this set) do not split
it; with plugins.toml's 500 ms, cuts only inside real pauses; silence and steady noise give
nothing."""
import numpy as np
import pytest

from plugins.vad_energy import EnergyVad
from plugins.vad_fsmn import FsmnVad
from tests.asr_support import frames, load, references, segments, silence, vad_events, voiced_bounds

NAMES = sorted(references())
# reported start may precede the first voiced sample by the look-back, end follow the last by the
# look-ahead/tail; both stay within these bounds (seconds)
START_EARLY, START_LATE = 0.40, 0.20
END_EARLY, END_LATE = 0.10, 0.40


@pytest.fixture(scope="module", params=["energy", "fsmn", "fsmn-funasr"])
def vad(request):
    if request.param == "energy":
        return EnergyVad({})
    if request.param == "fsmn-funasr":
        return FsmnVad({"max_end_silence_time": 800, "engine": "funasr"})
    return FsmnVad({"max_end_silence_time": 800})


@pytest.mark.parametrize("name", NAMES)
def test_each_recording_is_one_utterance_with_tight_boundaries(vad, name):
    pcm = load(name)
    lead = 16000
    stream = np.concatenate([silence(1.0), pcm, silence(1.5)])
    segs = segments(vad_events(vad, stream))
    assert len(segs) == 1, f"{name}: {segs}"
    a, b = voiced_bounds(pcm)
    start, end = (x / 16000 for x in segs[0])
    assert (lead + a) / 16000 - START_EARLY <= start <= (lead + a) / 16000 + START_LATE, (name, start)
    assert (lead + b) / 16000 - END_EARLY <= end <= (lead + b) / 16000 + END_LATE, (name, end)


def test_a_session_of_several_answers_gives_one_segment_each(vad):
    names = ["intro_01", "answer_queue", "short_yes", "answer_long"]
    parts, spans, pos = [silence(0.5)], [], 8000
    for n in names:
        pcm = load(n)
        a, b = voiced_bounds(pcm)
        spans.append((pos + a, pos + b))
        parts += [pcm, silence(1.5)]
        pos += len(pcm) + 24000
    segs = segments(vad_events(vad, np.concatenate(parts)))
    assert len(segs) == len(names), segs
    for (s, e), (a, b) in zip(segs, spans):
        assert a - START_EARLY * 16000 <= s <= a + START_LATE * 16000
        assert b - END_EARLY * 16000 <= e <= b + END_LATE * 16000


def quiet_runs(pcm: np.ndarray, min_s: float, rel_db: float = 35.0) -> list[tuple[float, float]]:
    """Pauses inside the voiced part: runs of 10 ms frames ``rel_db`` below the loudest (s)."""
    fr = pcm[: len(pcm) // 160 * 160].astype(np.float32).reshape(-1, 160)
    quiet = 10 * np.log10((fr ** 2).mean(1) + 1e-3) < 10 * np.log10((fr ** 2).mean(1).max() + 1e-3) - rel_db
    voiced = np.nonzero(~quiet)[0]
    runs, start = [], None
    for i in range(voiced[0], voiced[-1] + 1):
        if quiet[i] and start is None:
            start = i
        elif not quiet[i] and start is not None:
            if i - start >= min_s * 100:
                runs.append((start / 100, i / 100))
            start = None
    return runs


@pytest.mark.parametrize("name", NAMES)
def test_configured_fsmn_cuts_only_inside_pauses(name):
    """With plugins.toml's setting (500 ms: a final soon after the speaker stops) a recording may
    become several utterances, but only at real pauses: every cut lies inside a quiet stretch of
    at least 0.3 s, every pause of 0.6 s or more is cut, and the outer boundaries stay tight."""
    from core.config import load_config
    settings = dict(load_config().get("plugins", {}).get("fsmn", {}))
    vad = FsmnVad(settings)
    pcm = load(name)
    segs = segments(vad_events(vad, np.concatenate([silence(1.0), pcm, silence(1.5)])))
    segs = [(a / 16000 - 1.0, b / 16000 - 1.0) for a, b in segs]
    a, b = (x / 16000 for x in voiced_bounds(pcm))
    assert a - START_EARLY <= segs[0][0] <= a + START_LATE, (name, segs)
    assert b - END_EARLY <= segs[-1][1] <= b + END_LATE, (name, segs)
    pauses = quiet_runs(pcm, 0.3)
    for (_, end), (start, _) in zip(segs, segs[1:]):
        assert start >= end
        assert any(p0 - 0.15 <= end and start <= p1 + 0.15 for p0, p1 in pauses), (name, segs, pauses)
    long_pauses = quiet_runs(pcm, 0.6)
    assert len(pauses) + 1 >= len(segs) >= len(long_pauses) + 1, (name, segs, pauses)


def test_silence_and_steady_noise_give_no_speech(vad):
    assert vad_events(vad, silence(3.0)) == []
    assert vad_events(vad, silence(3.0, level_dbfs=-60)) == []


def test_speech_cut_off_by_end_of_stream_is_closed(vad):
    pcm = load("intro_02")
    stream = np.concatenate([silence(0.5), pcm[: len(pcm) // 2]])
    events = vad_events(vad, stream)
    segs = segments(events)
    assert len(segs) == 1
    assert segs[0][1] <= len(stream) + 160


def test_end_is_detected_promptly(vad):
    """The end event comes within max-end-silence (+ chunking) of the last voiced sample."""
    pcm = load("answer_cache")
    stream = np.concatenate([silence(1.0), pcm, silence(2.0)])
    s = vad.open_stream()
    fed = 0
    for frame in frames(stream):
        fed += len(frame)
        if any(e.kind == "end" for e in s.accept(frame)):
            break
    _, b = voiced_bounds(pcm)
    assert (fed - (16000 + b)) / 16000 <= 1.1


def test_bad_input_is_refused(vad):
    with pytest.raises(TypeError):
        vad.open_stream().accept(np.zeros(640, np.float32))


def test_fsmn_instances_share_the_model_and_its_call_lock():
    """Models load once per process; FunASR's generate() keeps per-call state on the model, so two
    plugin instances over one model take turns: streams run in parallel threads segment exactly as
    they do one after the other."""
    from concurrent.futures import ThreadPoolExecutor
    a = FsmnVad({"max_end_silence_time": 800, "engine": "funasr"})
    b = FsmnVad({"max_end_silence_time": 800, "engine": "funasr"})
    assert a.model is b.model and a.call_lock is b.call_lock
    assert FsmnVad({"max_end_silence_time": 500, "engine": "funasr"}).call_lock is not a.call_lock   # another model
    pcms = [np.concatenate([silence(0.5), load(name), silence(1.0)]) for name in NAMES[:4]]
    alone = [segments(vad_events(a, pcm)) for pcm in pcms]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda ip: segments(vad_events((a, b)[ip[0] % 2], ip[1])), enumerate(pcms)))
    assert together == alone


def test_fsmn_in_a_worker_process_segments_as_in_process_and_survives_its_death():
    """``worker_process = true``: the model runs in a child process (no GIL shared with the server's
    event loop). Streams segment exactly as in-process, interleaved; a worker killed mid-session
    makes that call fail with a clear error and the next call starts a new one, and so does one that
    hangs (after ``worker_timeout_seconds``); aclose stops it."""
    import asyncio
    import os
    import signal
    from plugins.vad_fsmn import VadSetupError
    inproc = FsmnVad({"max_end_silence_time": 800, "engine": "funasr"})
    worker = FsmnVad({"max_end_silence_time": 800, "worker_process": True, "engine": "funasr"})
    try:
        assert worker.model is None and worker.worker.proc.poll() is None
        pcms = [np.concatenate([silence(0.5), load(name), silence(1.0)]) for name in NAMES[:3]]
        streams = [worker.open_stream() for _ in pcms]
        got = [[] for _ in pcms]
        chunks = [list(frames(pcm)) for pcm in pcms]
        for i in range(max(map(len, chunks))):           # the streams' frames interleaved
            for k, stream in enumerate(streams):
                if i < len(chunks[k]):
                    got[k] += stream.accept(chunks[k][i])
        for k, stream in enumerate(streams):
            got[k] += stream.finish()
        assert [segments(g) for g in got] == [segments(vad_events(inproc, pcm)) for pcm in pcms]
        assert all(segments(g) for g in got)
        # a worker found dead before a call is started again at once
        os.kill(worker.worker.proc.pid, signal.SIGKILL)
        worker.worker.proc.wait(10)
        assert segments(vad_events(worker, pcms[0])) == segments(vad_events(inproc, pcms[0]))
        assert worker.worker.starts == 2
        # one that dies during a call: that call fails, saying so; the next starts a new worker
        dying = worker.worker.proc
        os.kill(dying.pid, signal.SIGKILL)
        dying.wait(10)
        dying.poll = lambda: None                        # as if it died after the check
        with pytest.raises(VadSetupError, match="died"):
            vad_events(worker, pcms[0])
        assert segments(vad_events(worker, pcms[0])) == segments(vad_events(inproc, pcms[0]))
        assert worker.worker.starts == 3
        # a request the worker cannot serve is answered with its error; the worker goes on
        with pytest.raises(RuntimeError, match="FSMN-VAD worker: ValueError: bad request"):
            worker.worker.request(1, 999, b"\x00\x01\x02")              # half a sample
        assert segments(vad_events(worker, pcms[1])) == segments(vad_events(inproc, pcms[1])) and worker.worker.starts == 3
        # one that hangs (stopped): the call gives up after worker_timeout_seconds instead of stalling
        # every stream's VAD, the hung worker is killed, and the next call starts a new one
        import time
        worker.worker.timeout = 1.0
        hung = worker.worker.proc
        os.kill(hung.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(VadSetupError, match="did not answer within 1 s"):
            vad_events(worker, pcms[0])
        assert 0.9 < time.monotonic() - t0 < 5.0 and hung.poll() is not None and worker.worker.timeouts == 1
        assert segments(vad_events(worker, pcms[2])) == segments(vad_events(inproc, pcms[2])) and worker.worker.starts == 4
    finally:
        proc = worker.worker.proc
        asyncio.run(worker.aclose())
    assert proc is not None and proc.poll() is not None and worker.worker.proc is None
