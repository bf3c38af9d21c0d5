"""The per-session speech pipeline: audio frames -> VAD -> partial and final transcripts.

``AsrScheduler`` (one per process) owns the ASR worker threads and decides what runs: finals are
queued ahead of everything and always run; then "pre-finals" (the final decoded speculatively at
a pause, so that it is ready when the VAD ends the utterance); then partials. A session has at most
one pre-final and one partial waiting; both are skipped when finals are waiting, and partials also
when the workers are busy, so under load the partial cadence degrades first and finals never wait
behind partials. The web tier's own load (the event loop's lag, core/cadence.py) stretches the
partial interval too.

``SpeechPipeline`` (one per session) takes validated s16le frames from the engine (``feed`` returns
at once; frames go through an internal bounded queue to a worker task, never dropped), runs the VAD,
keeps the audio of the utterance in progress, asks for a partial every ``partial_interval_s`` of new
speech and for one final per utterance, and reports ``SpeechStarted``/``SpeechEnded``/``Transcript``
events in order through ``on_event``: one delivery task per session calls it, so the audio never
waits for a handler (a slow database write or client send delays the events, shown by
``delivery_lag()``, not the VAD), and a partial still waiting is replaced by a newer one. Transcript text has its numbers in the one written form of
``core.itn`` (百分之四十 -> 40%), whichever recogniser produced it: shown, stored and scored alike.
"""
from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

import numpy as np

from core.cadence import PartialCadence
from core.clock import Clock
from core.config import CORE_SETTINGS
from core.events import AsrFailed, SpeechEnded, SpeechEvent, SpeechStarted, Transcript
from core.interfaces import AsrContext, AsrEngine, Vad
from core.itn import itn

log = logging.getLogger("mianshi.speech")

SAMPLE_RATE = 16_000


def frame_levels_db(pcm: np.ndarray, frame: int = 160) -> np.ndarray:
    """The level (dBFS) of each whole ``frame``-sample frame of int16 ``pcm`` (10 ms by default), in
    one numpy pass: the pause tracker here, the energy VAD and Whisper's pause cuts all measure this."""
    n = pcm.size // frame
    x = pcm[:n * frame].reshape(n, frame).astype(np.float32) / 32768.0
    return 10.0 * np.log10(np.mean(x * x, axis=1) + 1e-12)

# [speech] in plugins.toml; the keys, defaults and their meaning are declared in core/config.py
DEFAULT_SETTINGS = {key: setting.default for key, setting in CORE_SETTINGS["speech"].items()}


class AsrScheduler:
    """ONE per process: the ASR worker threads shared by all sessions.

    Order: finals, then pre-finals (any worker), then partials. A partial starts only while
    fewer than ``workers - 1`` workers are busy with anything, so a final never waits for
    partials to finish and, under load, partials are the work that stops. A session has at most
    one partial and one pre-final waiting (a newer one replaces it); partials are not queued
    while finals or pre-finals wait, nor when the workers are busy and as many partials already
    wait; pre-finals are not queued while finals wait."""

    def __init__(self, workers: int = 2, cadence: "PartialCadence | None" = None) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.cadence = cadence      # the web tier's load stretches the partial interval (core/cadence.py)
        self._cv = threading.Condition()
        self._finals: collections.deque = collections.deque()
        self._prefinals: dict[Any, tuple] = {}         # key -> (fn, args, future, loop), insertion order
        self._partials: dict[Any, tuple] = {}          # key -> (fn, args, future, loop), insertion order
        self._busy = 0
        # a partial starts only while at least one other worker stays idle (any work counts, not
        # just partials): a final or pre-final always finds a free worker, and under load - when
        # finals and pre-finals keep the workers busy - partials simply stop
        self._partial_lane = max(1, workers - 1)
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"asr-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()
        self._vad_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        self.stats = {"finals": 0, "prefinals_run": 0, "prefinals_skipped": 0, "prefinals_withdrawn": 0,
                      "partials_run": 0, "partials_skipped": 0, "partials_coalesced": 0}
        self.busy_seconds = {"final": 0.0, "prefinal": 0.0, "partial": 0.0}   # worker time by kind

    @property
    def partial_stretch(self) -> float:
        """How many times ``partial_interval_s`` a session now waits between two partials (>= 1)."""
        return self.cadence.stretch if self.cadence is not None else 1.0

    # --- worker threads -----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._closed and not self._finals and not self._prefinals and not (
                        self._partials and self._busy < self._partial_lane):
                    self._cv.wait()
                if self._closed and not self._finals and not self._partials:
                    return
                if self._finals:
                    fn, args, fut, loop = self._finals.popleft()
                    kind = "final"
                elif self._prefinals:
                    key = next(iter(self._prefinals))
                    fn, args, fut, loop = self._prefinals.pop(key)
                    kind = "prefinal"
                elif self._partials and self._busy < self._partial_lane:
                    key = next(iter(self._partials))
                    fn, args, fut, loop = self._partials.pop(key)
                    kind = "partial"
                else:          # closed with partials left: they were answered None by close()
                    return
                self._busy += 1
            t0 = time.perf_counter()
            try:
                if fut.cancelled():
                    continue
                try:
                    result = fn(*args)
                except BaseException as exc:  # delivered to the awaiting coroutine
                    loop.call_soon_threadsafe(_set_exception, fut, exc)
                else:
                    loop.call_soon_threadsafe(_set_result, fut, result)
                with self._cv:
                    self.stats[{"final": "finals", "prefinal": "prefinals_run"}.get(kind, "partials_run")] += 1
                    self.busy_seconds[kind] += time.perf_counter() - t0
            finally:
                with self._cv:
                    self._busy -= 1
                    self._cv.notify_all()

    # --- API ----------------------------------------------------------------------------------
    def idle(self) -> bool:
        """A worker is free and no final or pre-final waits: extra work would start at once."""
        with self._cv:
            return self._busy < self.workers and not self._finals and not self._prefinals

    async def run_final(self, fn: Callable, *args: Any) -> Any:
        """Always runs, ahead of every waiting partial."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cv:
            if self._closed:
                raise RuntimeError("ASR scheduler is closed")
            self._finals.append((fn, args, fut, loop))
            self._cv.notify()
        return await fut

    async def run_partial(self, key: Any, fn: Callable, *args: Any) -> Any:
        """Run a partial, or return None when it is skipped: while finals or pre-finals are
        waiting; when the workers are busy and other partials already wait; a newer partial for
        ``key`` replaces (coalesces) the one still waiting."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cv:
            if self._closed:
                return None
            if self._finals or self._prefinals:
                self.stats["partials_skipped"] += 1
                return None
            if not self._drop_waiting(self._partials, key, "partials_coalesced") and \
                    self._busy >= self._partial_lane and len(self._partials) >= self._partial_lane:
                self.stats["partials_skipped"] += 1
                return None
            self._partials[key] = (fn, args, fut, loop)
            self._cv.notify()
        try:
            return await fut
        except asyncio.CancelledError:
            with self._cv:
                self._drop_waiting(self._partials, key, None, fut)
            raise

    async def run_prefinal(self, key: Any, fn: Callable, *args: Any) -> Any:
        """Decode an utterance's final ahead of time (at a pause), or return None when skipped:
        while finals are waiting, or when withdrawn (``withdraw_prefinal``) before it started.
        Runs after finals and before partials, on any worker; a newer request for ``key``
        replaces the one still waiting."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cv:
            if self._closed:
                return None
            if self._finals:
                self.stats["prefinals_skipped"] += 1
                return None
            self._drop_waiting(self._prefinals, key, "prefinals_withdrawn")
            self._prefinals[key] = (fn, args, fut, loop)
            self._cv.notify()
        try:
            return await fut
        except asyncio.CancelledError:
            self.withdraw_prefinal(key, fut)
            raise

    def withdraw_prefinal(self, key: Any, fut: asyncio.Future | None = None) -> bool:
        """Drop ``key``'s pre-final if it has not started (its caller gets None). True if dropped."""
        with self._cv:
            return self._drop_waiting(self._prefinals, key, "prefinals_withdrawn", fut)

    def _drop_waiting(self, table: dict, key: Any, stat: str | None,
                      fut: asyncio.Future | None = None) -> bool:
        """Under ``self._cv``: take ``key``'s waiting item out of ``table`` (only if it is
        ``fut``, when given); its caller gets None. True if one was dropped."""
        cur = table.get(key)
        if cur is None or (fut is not None and cur[2] is not fut):
            return False
        del table[key]
        if stat:
            self.stats[stat] += 1
        cur[3].call_soon_threadsafe(_set_result, cur[2], None)
        return True

    async def run_vad(self, fn: Callable, *args: Any) -> Any:
        """Cheap blocking VAD calls, on their own thread (never behind ASR work)."""
        return await asyncio.get_running_loop().run_in_executor(self._vad_pool, fn, *args)

    @property
    def pending_finals(self) -> int:
        with self._cv:
            return len(self._finals)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            for key, (_, _, fut, loop) in [*self._partials.items(), *self._prefinals.items()]:
                loop.call_soon_threadsafe(_set_result, fut, None)
            self._partials.clear()
            self._prefinals.clear()
            self._cv.notify_all()
        self._vad_pool.shutdown(wait=False, cancel_futures=True)


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class _Utterance:
    __slots__ = ("uid", "start", "buf", "length", "last_partial_len", "partial_task",
                 "last_partial_text", "ended", "peak_db", "quiet_samples", "pause_done", "prefinal_task",
                 "shown_len")

    def __init__(self, uid: int, start: int) -> None:
        self.uid = uid
        self.start = start                  # stream sample where it begins
        self.buf = np.zeros(0, np.int16)    # the audio so far is buf[:length]; room to grow after it
        self.length = 0
        self.last_partial_len = 0
        self.partial_task: asyncio.Task | None = None
        self.last_partial_text = ""
        self.ended = False
        self.peak_db = -120.0
        self.quiet_samples = 0             # trailing quiet audio
        self.pause_done = False            # the pause partial for the current pause was asked
        self.prefinal_task: asyncio.Task | None = None
        self.shown_len = 0                 # audio length behind the last partial shown

    def append(self, pcm: np.ndarray) -> None:
        """Add samples. The buffer grows by doubling, so that ``audio()`` (asked for every partial)
        is a view, not a copy of the whole utterance each time; views handed out before stay valid
        (samples are only ever written after them, and a grown buffer is a new array)."""
        end = self.length + pcm.size
        if end > self.buf.size:
            grown = np.empty(max(end, 2 * self.buf.size, SAMPLE_RATE), np.int16)
            grown[:self.length] = self.buf[:self.length]
            self.buf = grown
        self.buf[self.length:end] = pcm
        self.length = end

    def audio(self) -> np.ndarray:
        return self.buf[:self.length]


_ids = itertools.count(1)


class SpeechPipeline:
    """ONE per interview session."""

    def __init__(self, vad: Vad, asr: AsrEngine, scheduler: AsrScheduler, clock: Clock,
                 on_event: Callable[[SpeechEvent], Awaitable[None]], settings: dict | None = None) -> None:
        unknown = set(settings or {}) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError(f"unknown speech setting(s) {sorted(unknown)}")
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.vad_stream = vad.open_stream()
        self._vad_inline = bool(getattr(vad, "inline", False))    # a cheap VAD: no thread hop
        # an inline VAD may batch the sessions' calls of one loop turn (VadStream.accept_async)
        self._vad_async = getattr(self.vad_stream, "accept_async", None) if self._vad_inline else None
        self.asr_stream = asr.open_stream()
        self.scheduler = scheduler
        self.clock = clock
        self.on_event = on_event
        self.context = AsrContext()
        self.speaking = False
        self.key = ("speech", next(_ids))
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=int(self.settings["queue_frames"]))
        self._worker: asyncio.Task | None = None
        self._closed = False
        # audio bookkeeping: samples [self._hist_start, self._total) are kept in self._hist
        self._hist: collections.deque[np.ndarray] = collections.deque()
        self._hist_start = 0
        self._hist_len = 0
        self._total = 0
        self._utt: _Utterance | None = None
        self._uids = itertools.count(1)
        self._final_chain: asyncio.Task | None = None   # finals are emitted in utterance order
        self._tasks: set[asyncio.Task] = set()
        # events go out in order through one delivery task: the audio never waits for a handler
        # (a slow database write or client send must not hold up the VAD of this session)
        self._outbox: collections.deque[tuple[float, SpeechEvent]] = collections.deque()
        self._deliverer: asyncio.Task | None = None
        self.partials_superseded = 0       # partials replaced by a newer one before delivery
        self._finals_pending = 0
        self.errors: list[BaseException] = []

    # --- public API ---------------------------------------------------------------------------
    def set_context(self, context: AsrContext) -> None:
        self.context = context

    async def feed(self, pcm: bytes) -> None:
        """Queue one s16le frame (any whole number of samples); returns at once unless the
        internal queue is full (back-pressure, audio is never dropped)."""
        if self._closed:
            raise RuntimeError("speech pipeline is closed")
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise TypeError("pcm must be bytes (16 kHz mono s16le)")
        if len(pcm) % 2:
            raise ValueError("audio frame must hold whole 16-bit samples (even byte count)")
        if not pcm:
            return
        self._ensure_worker()
        await self._queue.put(bytes(pcm))

    @property
    def backlog(self) -> int:
        """Frames fed but not yet through the VAD (the internal queue's length)."""
        return self._queue.qsize()

    async def end_of_stream(self) -> None:
        """The client stopped sending (end:true): close an open utterance and emit its final."""
        if self._closed:
            return
        self._ensure_worker()
        await self._queue.put(None)

    async def drain(self) -> None:
        """Wait until everything fed so far has been processed and reported."""
        if self._worker is not None:
            await self._queue.join()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._final_chain is not None:
            await asyncio.gather(self._final_chain, return_exceptions=True)
        await self._delivered()

    async def _delivered(self) -> None:
        """Until every event emitted so far has been through the handler."""
        while self._deliverer is not None and not self._deliverer.done():
            await asyncio.gather(self._deliverer, return_exceptions=True)

    @property
    def undelivered(self) -> int:
        """Events emitted but not yet through the handler."""
        return len(self._outbox)

    def delivery_lag(self) -> float:
        """Seconds the oldest event not yet through the handler has waited (0 when none waits)."""
        return max(0.0, self.clock.now() - self._outbox[0][0]) if self._outbox else 0.0

    async def aclose(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for t in list(self._tasks):
            if self._utt is not None and t in (self._utt.partial_task, self._utt.prefinal_task):
                t.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._delivered()      # what was said is still stored and sent

    # --- worker -------------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"speech-{self.key[1]}")

    def _take_batch(self, first: bytes) -> tuple[list[bytes], bool]:
        """``first`` and the frames queued behind it (up to ``vad_batch_frames``, stopping at the
        end-of-stream marker): one VAD call for audio that is already waiting. Idle, a batch is
        one frame (no added latency); behind, the calls and thread hops per second fall as the
        backlog grows. Returns the frames and whether the end-of-stream marker was taken too."""
        frames = [first]
        limit = int(self.settings["vad_batch_frames"])
        while len(frames) < limit and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                return frames, True
            frames.append(item)
        return frames, False

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            frames, eos = self._take_batch(item) if item is not None else ([], True)
            try:
                if frames:
                    await self._guarded(self._accept, b"".join(frames))
                if eos:
                    await self._guarded(self._finish)
            finally:
                for _ in range(len(frames) + eos):
                    self._queue.task_done()

    async def _guarded(self, step: Callable, *args: Any) -> None:
        try:
            await step(*args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken frame or model error must not kill the session
            log.exception("speech pipeline error")
            self.errors.append(exc)

    async def _accept(self, data: bytes) -> None:
        pcm = np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)
        self._append(pcm)
        if self._vad_async is not None:
            events = await self._vad_async(pcm)
        elif self._vad_inline:
            events = self.vad_stream.accept(pcm)
        else:
            events = await self.scheduler.run_vad(self.vad_stream.accept, pcm)
        await self._handle_events(events)
        self._maybe_partial()

    async def _finish(self) -> None:
        if self._vad_inline:
            events = self.vad_stream.finish()
        else:
            events = await self.scheduler.run_vad(self.vad_stream.finish)
        await self._handle_events(events, eos=True)

    def _append(self, pcm: np.ndarray) -> None:
        self._hist.append(pcm)
        self._hist_len += pcm.size
        self._total += pcm.size
        if self._utt is not None:
            utt = self._utt
            utt.append(pcm)
            self._track_pause(utt, pcm)
            if utt.quiet_samples < pcm.size and utt.prefinal_task is not None and not utt.prefinal_task.done():
                # speech again: a pre-final still waiting for a worker would decode stale audio
                self.scheduler.withdraw_prefinal(self.key)
        else:
            keep = int(float(self.settings["preroll_s"]) * SAMPLE_RATE)
            while self._hist and self._hist_len - self._hist[0].size >= keep:
                dropped = self._hist.popleft()
                self._hist_len -= dropped.size
                self._hist_start += dropped.size

    def _track_pause(self, utt: _Utterance, pcm: np.ndarray) -> None:
        rel = float(self.settings["pause_rel_db"])
        for level in frame_levels_db(pcm).tolist():
            utt.peak_db = max(utt.peak_db, level)
            if level < max(-50.0, utt.peak_db - rel):
                utt.quiet_samples += 160
            else:
                utt.quiet_samples = 0
                utt.pause_done = False

    def _slice(self, start: int, end: int) -> np.ndarray:
        if not self._hist:
            return np.zeros(0, np.int16)
        buf = np.concatenate(list(self._hist))
        self._hist.clear()
        self._hist.append(buf)
        a = max(0, start - self._hist_start)
        b = max(a, min(buf.size, end - self._hist_start))
        return buf[a:b]

    async def _handle_events(self, events, eos: bool = False) -> None:
        for ev in events:
            if ev.kind == "start" and self._utt is None:
                start = max(ev.sample, self._hist_start)
                utt = _Utterance(next(self._uids), start)
                first = self._slice(start, self._total)
                utt.append(first)
                if first.size:
                    self._track_pause(utt, first)
                self._utt = utt
                self.speaking = True
                await self._emit(SpeechStarted(self.clock.now(), start / SAMPLE_RATE))
            elif ev.kind == "end" and self._utt is not None:
                end = ev.sample if ev.sample > self._utt.start else self._total
                await self._close_utterance(min(end, self._total))
        if eos and self._utt is not None:
            await self._close_utterance(self._total)
        if self._utt is not None and self._utt.length >= float(self.settings["max_utterance_s"]) * SAMPLE_RATE:
            await self._close_utterance(self._total)

    async def _close_utterance(self, end: int) -> None:
        utt = self._utt
        self._utt = None
        self.speaking = False
        utt.ended = True
        audio = utt.audio()[: max(0, end - utt.start)]
        # keep only what follows the utterance as history for the next one
        tail = self._slice(end, self._total)
        self._hist.clear()
        self._hist.append(tail)
        self._hist_start = end
        self._hist_len = tail.size
        if utt.partial_task is not None and not utt.partial_task.done():
            utt.partial_task.cancel()
        await self._emit(SpeechEnded(self.clock.now(), utt.start / SAMPLE_RATE))
        context = self.context
        prev = self._final_chain
        self._finals_pending += 1
        task = asyncio.get_running_loop().create_task(self._final(utt, audio, end, context, prev))
        self._final_chain = task
        self._track(task)

    async def _final(self, utt: _Utterance, audio: np.ndarray, end: int, context: AsrContext,
                     prev: asyncio.Task | None) -> None:
        try:
            pre = utt.prefinal_task
            if pre is not None and not pre.done():
                # a decode of this speech started at the last pause: if it has not started yet it
                # is dropped (the final does the work); if it is running, its result is reused
                self.scheduler.withdraw_prefinal(self.key)
                await asyncio.gather(pre, return_exceptions=True)
            failed = None
            try:
                text = await self.scheduler.run_final(self.asr_stream.final, audio, context)
            except Exception as exc:
                # a recogniser's reported failure (RemoteAsrError has a reason) needs no traceback
                log.warning("final transcription failed: %s", exc, exc_info=not hasattr(exc, "reason"))
                self.errors.append(exc)
                text, failed = "", str(getattr(exc, "reason", "") or type(exc).__name__)
            if prev is not None:
                await asyncio.gather(prev, return_exceptions=True)
            if failed is not None:      # said so, in the final's place: the session goes on
                await self._emit(AsrFailed(failed, self.clock.now(), utt.start / SAMPLE_RATE, end / SAMPLE_RATE))
            text = itn((text or "").strip())      # numbers in one written form (core/itn.py)
            if text:
                await self._emit(Transcript(text, True, self.clock.now(), utt.start / SAMPLE_RATE,
                                            end / SAMPLE_RATE))
        finally:
            self._finals_pending -= 1

    def _maybe_partial(self) -> None:
        utt = self._utt
        if utt is None or self._closed:
            return
        if self._finals_pending:
            return   # the previous utterance's final comes first
        s = self.settings
        if utt.length < float(s["min_partial_s"]) * SAMPLE_RATE:
            return
        prepare = getattr(self.asr_stream, "prepare_final", None)
        pause_s = float(s["pause_partial_s"])
        if prepare is not None and utt.quiet_samples >= float(s["pause_idle_s"]) * SAMPLE_RATE \
                and self.scheduler.idle():
            pause_s = min(pause_s, float(s["pause_idle_s"]))   # spare capacity: prepare sooner
        pause = (not utt.pause_done and utt.length > utt.quiet_samples
                 and utt.quiet_samples >= pause_s * SAMPLE_RATE)
        if pause and prepare is not None:
            # the speaker paused: decode the utterance so far as its final would be, on its own
            # (it does not wait for a partial in flight); the final reuses it if no speech follows
            utt.pause_done = True
            task = asyncio.get_running_loop().create_task(self._prefinal(utt, utt.audio(), self.context))
            utt.prefinal_task = task
            self._track(task)
            return
        if utt.partial_task is not None and not utt.partial_task.done():
            return
        if utt.prefinal_task is not None and (not utt.prefinal_task.done() or utt.pause_done):
            return   # its text is the next partial, and nothing new is said while the pause lasts
        # a loaded server stretches the interval (core/cadence.py); a pause partial then also needs
        # the stretch's extra speech since the last one, so that it does not make up for it
        interval = float(s["partial_interval_s"]) * SAMPLE_RATE
        stretch = self.scheduler.partial_stretch
        new = utt.length - utt.last_partial_len
        if pause and new >= (stretch - 1.0) * interval:
            utt.pause_done = True
        elif new < stretch * interval:
            return
        elif prepare is not None and utt.quiet_samples >= float(s["pause_partial_s"]) * SAMPLE_RATE / 2:
            return   # the speaker may be stopping: keep the workers for the final's decode
        utt.last_partial_len = utt.length
        audio = utt.audio()
        task = asyncio.get_running_loop().create_task(self._partial(utt, audio, self.context))
        utt.partial_task = task
        self._track(task)

    async def _partial(self, utt: _Utterance, audio: np.ndarray, context: AsrContext) -> None:
        await self._hypothesis(utt, audio, self.scheduler.run_partial(
            self.key, self.asr_stream.partial, audio, context), "partial transcription failed")

    async def _prefinal(self, utt: _Utterance, audio: np.ndarray, context: AsrContext) -> None:
        # its text is the best hypothesis so far: shown as a partial
        await self._hypothesis(utt, audio, self.scheduler.run_prefinal(
            self.key, self.asr_stream.prepare_final, audio, context), "speculative final failed")

    async def _hypothesis(self, utt: _Utterance, audio: np.ndarray, job: Awaitable, what: str) -> None:
        try:
            text = await job
        except asyncio.CancelledError:
            return
        except Exception as exc:
            log.exception(what)
            self.errors.append(exc)
            return
        await self._emit_partial(utt, audio, text)

    async def _emit_partial(self, utt: _Utterance, audio: np.ndarray, text: str | None) -> None:
        if text is None or utt.ended or self._utt is not utt or self._finals_pending:
            return
        text = itn(text.strip())
        if not text or text == utt.last_partial_text or audio.size < utt.shown_len:
            return      # nothing new, or older than what is shown (a partial overtaken by a pre-final)
        utt.last_partial_text = text
        utt.shown_len = audio.size
        await self._emit(Transcript(text, False, self.clock.now(), utt.start / SAMPLE_RATE,
                                    (utt.start + audio.size) / SAMPLE_RATE))

    def _track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit(self, event: SpeechEvent) -> None:
        """Queue ``event`` for the handler, in emission order; returns at once. A partial transcript
        replaces any partial still waiting (only the newest hypothesis is worth showing), so a slow
        handler gets fewer partials rather than a growing queue of stale ones."""
        if isinstance(event, Transcript) and not event.is_final and self._outbox:
            kept = [item for item in self._outbox
                    if not (isinstance(item[1], Transcript) and not item[1].is_final)]
            if len(kept) < len(self._outbox):
                self.partials_superseded += len(self._outbox) - len(kept)
                self._outbox = collections.deque(kept)
        self._outbox.append((self.clock.now(), event))
        if self._deliverer is None or self._deliverer.done():
            self._deliverer = asyncio.get_running_loop().create_task(self._deliver(),
                                                                     name=f"speech-events-{self.key[1]}")

    async def _deliver(self) -> None:
        while self._outbox:
            _, event = self._outbox.popleft()
            try:
                await self.on_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("speech event handler failed")
                self.errors.append(exc)
