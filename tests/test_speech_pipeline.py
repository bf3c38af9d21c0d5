"""SpeechPipeline with a scripted ASR (frame in, events out): a pause asks for the final ahead of
time, the final reuses it, and a pre-final still waiting when speech resumes is withdrawn."""
import asyncio
import threading

import numpy as np
import pytest

from core.clock import SystemClock
from core.events import SpeechStarted, Transcript
from core.interfaces import AsrContext, VadEvent
from core.speech import AsrScheduler, SpeechPipeline

RATE = 16000


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


class ScriptedVad:
    """Speech starts at the first loud frame and ends after ``end_s`` of digital silence."""
    name = "scripted"

    def __init__(self, end_s: float = 0.5):
        self.end = int(end_s * RATE)

    def open_stream(self):
        vad = self

        class Stream:
            def __init__(self):
                self.pos, self.open, self.silent = 0, False, 0

            def accept(self, pcm):
                events = []
                loud = bool(np.abs(pcm).max() > 1000)
                if loud and not self.open:
                    self.open = True
                    events.append(VadEvent("start", self.pos))
                self.silent = 0 if loud else self.silent + pcm.size
                self.pos += pcm.size
                if self.open and self.silent >= vad.end:
                    self.open = False
                    events.append(VadEvent("end", self.pos - self.silent + 1600))
                return events

            def finish(self):
                return [VadEvent("end", self.pos)] if self.open else []
        return Stream()


class ScriptedAsr:
    """Text = how many samples it was given; ``prepare_final`` can be held on a gate."""
    name = "scripted"

    def __init__(self):
        self.calls = []
        self.gate = threading.Event()
        self.gate.set()

    def open_stream(self):
        asr = self

        class Stream:
            prepared = None

            def partial(self, pcm, ctx):
                asr.calls.append(("partial", pcm.size))
                return f"p{pcm.size}"

            def prepare_final(self, pcm, ctx):
                asr.gate.wait(10)
                asr.calls.append(("prepare", pcm.size))
                self.prepared = pcm.size
                return f"f{pcm.size}"

            def final(self, pcm, ctx):
                if self.prepared is not None and pcm.size - self.prepared < RATE:
                    asr.calls.append(("final-reused", pcm.size))
                    return f"f{self.prepared}"
                asr.calls.append(("final", pcm.size))
                return f"f{pcm.size}"
        return Stream()


async def run(asr, pcm, scheduler, pace=0.0):
    events = []

    async def on_event(ev):
        events.append(ev)
    pipe = SpeechPipeline(ScriptedVad(), asr, scheduler, SystemClock(), on_event)
    pipe.set_context(AsrContext("q", []))
    for i in range(0, pcm.size, 640):
        await pipe.feed(pcm[i:i + 640].tobytes())
        if pace:
            await asyncio.sleep(pace)
    await pipe.drain()
    await pipe.aclose()
    assert pipe.errors == []
    return events


async def test_a_pause_prepares_the_final_and_the_final_reuses_it():
    scheduler = AsrScheduler(workers=2)
    asr = ScriptedAsr()
    events = await run(asr, np.concatenate([quiet(0.2), tone(2.0), quiet(1.0)]), scheduler, pace=0.002)
    kinds = [k for k, _ in asr.calls]
    assert "prepare" in kinds and kinds[-1] == "final-reused"
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    partials = [e for e in events if isinstance(e, Transcript) and not e.is_final]
    prepared = [n for k, n in asr.calls if k == "prepare"][-1]
    assert [f.text for f in finals] == [f"f{prepared}"]
    assert partials and partials[-1].text == f"f{prepared}"     # the prepared text is shown first
    scheduler.close()


async def test_a_prefinal_still_waiting_when_speech_resumes_is_withdrawn():
    scheduler = AsrScheduler(workers=1)
    asr = ScriptedAsr()
    gate = threading.Event()
    busy = asyncio.ensure_future(scheduler.run_final(gate.wait, 10))    # the only worker is busy
    await asyncio.sleep(0.05)
    # tone, a 0.3 s pause (a pre-final is asked), tone again (it is withdrawn), then the end
    pcm = np.concatenate([quiet(0.2), tone(1.0), quiet(0.3), tone(1.0)])
    task = asyncio.ensure_future(run(asr, np.concatenate([pcm, quiet(1.0)]), scheduler, pace=0.002))
    await asyncio.sleep(1.0)
    assert scheduler.stats["prefinals_withdrawn"] >= 1
    gate.set()
    await busy
    events = await task
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert len(finals) == 1
    # the pre-final of the first pause never ran: every decode includes the second tone
    assert all(n > (1.0 + 0.3 + 1.0) * RATE for _, n in asr.calls if _ != "partial"), asr.calls
    scheduler.close()


class RecordingScheduler(AsrScheduler):
    """Notes how much audio each pre-final was asked for (run or withdrawn later)."""

    def __init__(self, workers):
        super().__init__(workers)
        self.asked: list[int] = []

    async def run_prefinal(self, key, fn, pcm, *args):
        self.asked.append(pcm.size)
        return await super().run_prefinal(key, fn, pcm, *args)


async def test_the_prefinal_starts_sooner_while_a_worker_is_idle():
    """With spare capacity the final is prepared after ``pause_idle_s`` (0.15 s) of quiet; when
    every worker is busy the pipeline waits for ``pause_partial_s`` (0.25 s), so a loaded server
    does not spend decodes on pauses that may not be the end."""
    head = 1.0                # the utterance audio: tone(1.0), then the pause
    pcm = np.concatenate([quiet(0.2), tone(1.0), quiet(1.0)])

    scheduler = RecordingScheduler(workers=2)
    await run(ScriptedAsr(), pcm, scheduler, pace=0.002)
    assert 0.15 * RATE <= scheduler.asked[0] - head * RATE < 0.25 * RATE, scheduler.asked
    scheduler.close()

    scheduler = RecordingScheduler(workers=2)
    gate = threading.Event()
    busy = [asyncio.ensure_future(scheduler.run_final(gate.wait, 10)) for _ in range(2)]
    await asyncio.sleep(0.05)
    assert not scheduler.idle()
    task = asyncio.ensure_future(run(ScriptedAsr(), pcm, scheduler, pace=0.002))
    await asyncio.sleep(0.5)
    gate.set()
    await asyncio.gather(*busy)
    await task
    assert scheduler.asked and scheduler.asked[0] - head * RATE >= 0.25 * RATE, scheduler.asked
    # a worker counts itself free just after handing over its result: give it a moment
    for _ in range(100):
        if scheduler.idle():
            break
        await asyncio.sleep(0.01)
    assert scheduler.idle()
    scheduler.close()


class CountingVad:
    """The energy VAD (its decisions do not depend on how the audio is cut), counting calls."""
    name = "counting"

    def __init__(self):
        from plugins.vad_energy import EnergyVad
        self.inner = EnergyVad({})
        self.calls: list[int] = []

    def open_stream(self):
        inner, calls = self.inner.open_stream(), self.calls

        class Stream:
            def accept(self, pcm):
                calls.append(pcm.size)
                return inner.accept(pcm)

            def finish(self):
                return inner.finish()
        return Stream()


class DigestAsr:
    """Finals name the exact audio they were given (length and a checksum); no pre-finals."""
    name = "digest"

    def open_stream(self):
        class Stream:
            def partial(self, pcm, ctx):
                return "…"

            def final(self, pcm, ctx):
                return f"{pcm.size}:{int(pcm.astype(np.int64).sum())}"
        return Stream()


async def test_queued_frames_reach_the_vad_together_and_nothing_changes_but_the_call_count():
    """Frames already waiting when the VAD is free are handed over as one call (up to
    ``vad_batch_frames``): the same utterances, cut at the same samples, with far fewer calls; the
    end of the stream in the middle of a batch still closes the open utterance."""
    rng = np.random.default_rng(7)
    pcm = np.concatenate([quiet(0.5), tone(1.5), quiet(1.2), tone(0.8), quiet(0.4), tone(2.0)])
    pcm = (pcm + rng.normal(0, 30, pcm.size)).astype(np.int16)       # a noise floor, not digital zero
    results = {}
    for batch in (1, 25):
        scheduler = AsrScheduler(workers=1)
        vad = CountingVad()
        events = []

        async def on_event(ev, events=events):
            events.append(ev)
        pipe = SpeechPipeline(vad, DigestAsr(), scheduler, SystemClock(), on_event, {"vad_batch_frames": batch})
        for i in range(0, pcm.size, 640):             # all queued before the pipeline runs
            await pipe.feed(pcm[i:i + 640].tobytes())
        await pipe.end_of_stream()                     # speech is still on: the end closes it
        await pipe.drain()
        await pipe.aclose()
        scheduler.close()
        assert pipe.errors == []
        finals = [(e.text, e.audio_start, e.audio_end) for e in events if isinstance(e, Transcript) and e.is_final]
        starts = [e.audio_start for e in events if isinstance(e, SpeechStarted)]
        results[batch] = finals, starts, vad.calls
    frames = -(-pcm.size // 640)
    assert len(results[1][2]) == frames and max(results[1][2]) == 640
    assert len(results[25][2]) == -(-frames // 25) and max(results[25][2]) == 25 * 640
    assert results[25][:2] == results[1][:2]
    finals, starts, _ = results[1]
    assert len(finals) == len(starts) >= 2, finals
    assert finals[-1][2] == pytest.approx(pcm.size / RATE, abs=0.05)  # closed by the end of the stream


async def test_an_inline_vad_runs_on_the_event_loop_and_others_on_the_vad_thread():
    """``inline = True`` (the energy VAD) skips the hand-off to the VAD thread, which costs more than
    such a VAD: every call on the loop's thread, the same utterances as through the thread."""
    from plugins.vad_energy import EnergyVad
    assert EnergyVad.inline is True
    pcm = np.concatenate([quiet(0.3), tone(1.0), quiet(1.0), tone(0.6), quiet(1.0)])
    pcm = (pcm + np.random.default_rng(3).normal(0, 30, pcm.size)).astype(np.int16)
    loop_thread = threading.get_ident()
    results = {}
    for inline in (False, True):
        threads: list[int] = []

        class Vad(CountingVad):
            def open_stream(self):
                stream = super().open_stream()
                accept = stream.accept

                def traced(pcm):
                    threads.append(threading.get_ident())
                    return accept(pcm)
                stream.accept = traced
                return stream
        vad = Vad()
        vad.inline = inline
        scheduler = AsrScheduler(workers=1)
        events = []

        async def on_event(ev, events=events):
            events.append(ev)
        pipe = SpeechPipeline(vad, DigestAsr(), scheduler, SystemClock(), on_event)
        for i in range(0, pcm.size, 640):
            await pipe.feed(pcm[i:i + 640].tobytes())
            await asyncio.sleep(0)
        await pipe.end_of_stream()
        await pipe.drain()
        await pipe.aclose()
        scheduler.close()
        assert pipe.errors == [] and threads
        on_loop = {t == loop_thread for t in threads}
        assert on_loop == {inline}
        results[inline] = [(e.text, e.audio_start, e.audio_end) for e in events
                           if isinstance(e, Transcript) and e.is_final]
    assert len(results[True]) == 2 and results[True] == results[False]


async def test_a_slow_event_handler_does_not_hold_up_the_audio():
    """Events go to the handler in order through one delivery task: while the handler is stuck (a
    slow database write, a slow client), the session's audio still goes through the VAD (its backlog
    empties, later utterances are cut), and once the handler moves again every event arrives, in
    the order emitted; ``drain`` waits for them. Partials still waiting are replaced by a newer one:
    a slow handler is not sent stale hypotheses."""
    pcm = np.concatenate([quiet(0.3), tone(1.5), quiet(1.2), tone(1.5), quiet(1.2), tone(1.5), quiet(1.2)])
    pcm = (pcm + np.random.default_rng(5).normal(0, 30, pcm.size)).astype(np.int16)

    async def collect(gate):
        events, seen = [], asyncio.Event()

        async def on_event(ev):
            seen.set()
            if gate is not None:
                await gate.wait()
            events.append(ev)
        scheduler = AsrScheduler(workers=1)
        vad = CountingVad()
        pipe = SpeechPipeline(vad, DigestAsr(), scheduler, SystemClock(), on_event, {"vad_batch_frames": 1})
        for i in range(0, pcm.size, 640):
            await pipe.feed(pcm[i:i + 640].tobytes())
            await asyncio.sleep(0)
        return pipe, vad, scheduler, events, seen

    gate = asyncio.Event()
    pipe, vad, scheduler, events, seen = await collect(gate)
    for _ in range(200):                                     # the VAD catches up with the handler stuck
        if pipe.backlog == 0 and len(vad.calls) == -(-pcm.size // 640):
            break
        await asyncio.sleep(0.01)
    assert seen.is_set() and events == []                    # the first event is stuck in the handler
    assert pipe.backlog == 0 and len(vad.calls) == -(-pcm.size // 640)
    assert pipe.undelivered >= 5                             # three starts and ends at least, waiting
    waiting = [e for _, e in pipe._outbox if isinstance(e, Transcript) and not e.is_final]
    assert len(waiting) <= 1 and pipe.partials_superseded >= 1   # each utterance had a partial
    gate.set()
    await pipe.end_of_stream()
    await pipe.drain()
    assert pipe.undelivered == 0
    await pipe.aclose()
    scheduler.close()
    free_pipe, _, free_sched, free_events, _ = await collect(None)
    await free_pipe.end_of_stream()
    await free_pipe.drain()
    await free_pipe.aclose()
    free_sched.close()
    kinds = [(type(e).__name__, getattr(e, "text", None)) for e in events if not (isinstance(e, Transcript) and not e.is_final)]
    assert kinds == [(type(e).__name__, getattr(e, "text", None)) for e in free_events
                     if not (isinstance(e, Transcript) and not e.is_final)]
    assert sum(isinstance(e, SpeechStarted) for e in events) == 3
    assert pipe.errors == []
