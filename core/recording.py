"""What the candidate said and did, kept as evidence: one Ogg/Opus recording per final utterance
and one small JPEG per cheat episode (the frame that opened it).

``AudioRing`` keeps the last ``buffer_seconds`` of a session's audio keyed by sample position (the
same positions as the speech pipeline's, which counts every sample it is fed: a final ``Transcript``
says ``audio_start``/``audio_end`` in seconds of that stream). ``Recorder`` (one per session) gives
every transcript entry its ``utterance_id`` and, for speech, cuts that span from the ring at once,
then encodes and stores it in a task of its own: the session does not wait for it, a closing session
does (the task is among the session writer's writes in flight). Encoding runs on the process's
``MediaEncoder``: low-priority threads, with a bound on the audio waiting for them, or on a media
server (``[media] url``, ``core/media_remote.py``).

No sanic, no motor: the store is the engine's (``save_media``; ``storage/media.py`` puts it in
GridFS).
"""
from __future__ import annotations

import asyncio
import collections
import io
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

import numpy as np

from core.priority import lower_thread_priority

log = logging.getLogger("mianshi.recording")

SAMPLE_RATE = 16000
AUDIO_TYPE = "audio/ogg"        # Ogg/Opus
FRAME_TYPE = "image/jpeg"


def new_id() -> str:
    return secrets.token_hex(8)


class AudioRing:
    """The most recent ``keep_samples`` samples (s16le mono) of a stream, by absolute position."""

    def __init__(self, keep_samples: int) -> None:
        if keep_samples < 1:
            raise ValueError("keep_samples must be >= 1")
        self.keep = int(keep_samples)
        self._chunks: collections.deque[np.ndarray] = collections.deque()
        self.start = 0           # position of the first kept sample
        self.total = 0           # samples seen so far

    def append(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise ValueError("audio must hold whole 16-bit samples")
        chunk = np.frombuffer(bytes(pcm), dtype="<i2")
        if not chunk.size:
            return
        self._chunks.append(chunk)
        self.total += chunk.size
        while self._chunks and self.total - self.start - self._chunks[0].size >= self.keep:
            self.start += self._chunks.popleft().size

    def slice(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)`` clipped to what is still kept (an empty array when none is)."""
        start, end = max(int(start), self.start), min(int(end), self.total)
        if end <= start:
            return np.zeros(0, np.int16)
        out, pos = [], self.start
        for chunk in self._chunks:
            a, b = pos, pos + chunk.size
            if b > start and a < end:
                out.append(chunk[max(0, start - a): min(chunk.size, end - a)])
            if b >= end:
                break
            pos = b
        return np.concatenate(out).astype(np.int16, copy=False)


def encode_opus(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Ogg/Opus of int16 mono samples (libsndfile through ``soundfile``)."""
    import soundfile as sf
    if samples.size == 0:
        raise ValueError("no audio to encode")
    buf = io.BytesIO()
    sf.write(buf, np.asarray(samples, dtype=np.int16), sample_rate, format="OGG", subtype="OPUS")
    return buf.getvalue()


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """(float32 mono samples, sample rate) of an encoded file (tests, benchmark)."""
    import soundfile as sf
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return samples, int(rate)


def thumbnail_jpeg(jpeg: bytes, width: int) -> bytes:
    """The frame downscaled (never upscaled) to at most ``width`` pixels wide, as JPEG."""
    from core import frames
    image = frames.decode_frame(jpeg)
    h, w = image.shape[:2]
    if w > width:
        image = frames.fit_for_detection(image, width, max(1, round(h * width / w)))
    return frames.encode_jpeg(image, quality=75)


class MediaEncoder:
    """ONE per process: the threads that encode recordings (Opus, ~0.02 CPU s per audio second) and
    cheat-frame thumbnails, at a lower CPU priority (``encoder_nice``, +10) like the vision pool, so
    that on a busy server the audio path (event loop, VAD) runs first and recordings wait. What
    waits is bounded: an utterance that would take the audio still to be encoded beyond
    ``max_pending_seconds`` is not recorded (its transcript entry stands; ``skipped_busy`` counts it
    and a warning says so) instead of holding ever more raw audio in memory."""

    def __init__(self, workers: int = 1, nice: int = 10, max_pending_seconds: float = 1800.0,
                 remote=None, store_concurrency: int = 4, max_store_waiting_mb: float = 64.0) -> None:
        """``remote``: a ``core.media_remote.MediaClient`` that encodes recordings first (``[media]
        url`` with ``recordings = true``); what it fails to encode is encoded here.
        ``store_concurrency``: at most this many recordings and frames are written to the store at
        once (``store``); the others wait their turn here, not in the database's queue in front of
        the transcripts, up to ``max_store_waiting_mb`` of them: beyond it a file is not written
        (a database that cannot keep up must not grow the server's memory without end)."""
        if int(workers) < 1:
            raise ValueError("[recordings] encoder_threads must be >= 1")
        if int(store_concurrency) < 1:
            raise ValueError("[recordings] store_concurrency must be >= 1")
        self.max_pending = float(max_pending_seconds)
        self.pending = 0.0
        self.remote = remote
        self._store_gate = asyncio.Semaphore(int(store_concurrency))
        if float(max_store_waiting_mb) <= 0:
            raise ValueError("[recordings] max_store_waiting_mb must be > 0")
        self._store_waiting = 0
        self._store_waiting_bytes = 0
        self.max_store_waiting_bytes = int(float(max_store_waiting_mb) * 1024 * 1024)
        self._counts = {"encoded": 0, "skipped_busy": 0, "encode_cpu_seconds": 0.0,
                        "encoded_remote": 0, "remote_failed": 0, "stored": 0, "store_failed": 0,
                        "store_skipped_busy": 0}
        self.executor = ThreadPoolExecutor(max_workers=int(workers), thread_name_prefix="media-encode",
                                           initializer=lower_thread_priority, initargs=(int(nice),))

    @classmethod
    def from_settings(cls, settings: dict, remote=None) -> "MediaEncoder":
        return cls(int(settings.get("encoder_threads", 1)), int(settings.get("encoder_nice", 10)),
                   float(settings.get("max_pending_seconds", 1800.0)), remote=remote,
                   store_concurrency=int(settings.get("store_concurrency", 4)),
                   max_store_waiting_mb=float(settings.get("max_store_waiting_mb", 64.0)))

    def reserve(self, seconds: float) -> bool:
        """Room for ``seconds`` more audio to encode? (then it is counted until ``release``)."""
        if self.pending > 0 and self.pending + seconds > self.max_pending:
            self._counts["skipped_busy"] += 1
            return False
        self.pending += seconds
        return True

    def release(self, seconds: float) -> None:
        self.pending = max(0.0, self.pending - seconds)

    @property
    def stats(self) -> dict:
        """Counts so far, the audio seconds waiting now to be encoded and the files waiting to be
        written (``GET /-/stats`` ``recording_encoder``)."""
        return {**self._counts, "pending_seconds": round(self.pending, 2), "store_waiting": self._store_waiting,
                "store_waiting_bytes": self._store_waiting_bytes}

    async def store(self, write: Callable[[], Awaitable[Any]], size: int = 0) -> bool:
        """``write()`` (one file of ``size`` bytes into the store) once fewer than
        ``store_concurrency`` writes are under way: on a busy database the recordings wait here
        rather than in front of the sessions' transcript writes (with 100 sessions each final's two
        writes queued behind the recordings' GridFS writes for seconds). False, and nothing written,
        when ``max_store_waiting_mb`` already wait (``store_skipped_busy``)."""
        size = max(0, int(size))
        if self._store_waiting and self._store_waiting_bytes + size > self.max_store_waiting_bytes:
            self._counts["store_skipped_busy"] += 1
            return False
        self._store_waiting += 1
        self._store_waiting_bytes += size
        try:
            await self._store_gate.acquire()
        finally:
            self._store_waiting -= 1
            self._store_waiting_bytes -= size
        try:
            await write()
        except BaseException:
            self._counts["store_failed"] += 1
            raise
        finally:
            self._store_gate.release()
        self._counts["stored"] += 1
        return True

    async def run(self, fn: Callable, *args: Any) -> Any:
        def timed():
            t0 = time.thread_time()
            try:
                return fn(*args)
            finally:
                self._counts["encode_cpu_seconds"] += time.thread_time() - t0
        result = await asyncio.get_running_loop().run_in_executor(self.executor, timed)
        self._counts["encoded"] += 1
        return result

    async def opus(self, samples: np.ndarray) -> bytes:
        """Ogg/Opus of one utterance: by the media server when there is one, else (or when it
        fails) on these threads."""
        if self.remote is not None:
            from core.media_remote import MediaUnavailable
            try:
                data = await self.remote.encode(samples, SAMPLE_RATE)
            except MediaUnavailable:
                self._counts["remote_failed"] += 1
            else:
                self._counts["encoded_remote"] += 1
                return data
        return await self.run(encode_opus, samples)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class Recorder:
    """One per session. ``utterance(t_start, t_end)`` -> the new entry's ``utterance_id`` (and its
    recording, when recording is on and the entry is speech); ``frame(jpeg)`` -> a frame id (or None)."""

    def __init__(self, *, store: Any, user_id: str, interview_id: str, settings: dict,
                 track: Callable[[asyncio.Task], None], run_blocking: Callable | None = None,
                 encoder: MediaEncoder | None = None) -> None:
        """Encoding runs on ``encoder`` (bounded, low priority) or, without one (tests, benchmarks),
        through ``run_blocking``."""
        self.store = store
        self.user_id = user_id
        self.interview_id = interview_id
        self.enabled = bool(settings.get("enabled", True)) and hasattr(store, "save_media")
        self.frame_width = int(settings.get("frame_width", 320))
        self.ring = AudioRing(int(float(settings.get("buffer_seconds", 120.0)) * SAMPLE_RATE)) if self.enabled else None
        self._run_blocking = encoder.run if encoder is not None else run_blocking
        self._encoder = encoder
        self._track = track
        self.stats = {"recordings": 0, "bytes": 0, "frames": 0, "clipped": 0, "skipped_busy": 0,
                      "store_skipped": 0}

    @classmethod
    def for_session(cls, session) -> "Recorder":
        engine = session.engine
        return cls(store=engine.store, user_id=session.user_id, interview_id=session.interview_id,
                   settings=engine.config.get("recordings", {}), track=session.writer.track,
                   encoder=engine.media_encoder)

    def feed(self, pcm: bytes) -> None:
        if self.ring is not None:
            self.ring.append(pcm)

    def utterance(self, t_start: float | None, t_end: float | None) -> str:
        uid = new_id()
        if self.ring is None or t_start is None or t_end is None or t_end <= t_start:
            return uid
        start, end = round(t_start * SAMPLE_RATE), round(t_end * SAMPLE_RATE)
        samples = self.ring.slice(start, end)
        if samples.size < end - start:
            self.stats["clipped"] += 1
            log.warning("recording of utterance %s clipped: %d of %d samples still buffered "
                        "(raise [recordings] buffer_seconds)", uid, samples.size, end - start)
        seconds = samples.size / SAMPLE_RATE
        if samples.size and self._encoder is not None and not self._encoder.reserve(seconds):
            self.stats["skipped_busy"] += 1
            log.warning("utterance %s of interview %s not recorded: %.0f s of audio already wait to be "
                        "encoded ([recordings] max_pending_seconds; the server is short of CPU)",
                        uid, self.interview_id, self._encoder.pending)
            return uid
        if samples.size:
            meta = {"audio_start": t_start, "audio_end": t_end, "duration": seconds}
            self._spawn(self._store_audio(uid, samples.copy(), meta), uid)
        return uid

    def frame(self, jpeg: bytes | None) -> str | None:
        if not self.enabled or not jpeg:
            return None
        fid = new_id()
        self._spawn(self._store_frame(fid, bytes(jpeg)), fid)
        return fid

    def _spawn(self, coro, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.interview_id}:media:{name}")
        self._track(task)

    async def _store_audio(self, uid: str, samples: np.ndarray, meta: dict) -> None:
        try:
            if self._encoder is not None:
                data = await self._encoder.opus(samples)
            else:
                data = await self._run_blocking(encode_opus, samples)
        finally:
            if self._encoder is not None:
                self._encoder.release(meta["duration"])
        if await self._save(uid, kind="recording", data=data, content_type=AUDIO_TYPE, meta=meta):
            self.stats["recordings"] += 1
            self.stats["bytes"] += len(data)

    async def _store_frame(self, fid: str, jpeg: bytes) -> None:
        data = await self._run_blocking(thumbnail_jpeg, jpeg, self.frame_width)
        if await self._save(fid, kind="frame", data=data, content_type=FRAME_TYPE, meta={}):
            self.stats["frames"] += 1

    async def _save(self, media_id: str, **what: Any) -> bool:
        """Written? (False: the database is that far behind, see ``MediaEncoder.store``.)"""
        def write():
            return self.store.save_media(self.user_id, self.interview_id, media_id, **what)
        if self._encoder is None:
            await write()
            return True
        if await self._encoder.store(write, len(what["data"])):
            return True
        self.stats["store_skipped"] += 1
        log.warning("%s %s of interview %s not written: %.1f MB of recordings and frames already wait "
                    "for the database ([recordings] max_store_waiting_mb; the database is short of "
                    "capacity)", what["kind"], media_id, self.interview_id,
                    self._encoder.stats["store_waiting_bytes"] / 1048576)
        return False


class RetentionSweep:
    """Deletes recordings and frames older than ``[recordings] retention_days``, at start and then
    every ``sweep_interval_hours`` (the store's ``sweep_media(cutoff)``; the clock is injected)."""

    def __init__(self, store: Any, clock: Any, settings: dict) -> None:
        self.store = store
        self.clock = clock
        self.retention_days = float(settings.get("retention_days", 30.0))
        self.interval = float(settings.get("sweep_interval_hours", 6.0)) * 3600.0
        self._task: asyncio.Task | None = None
        self.removed = 0

    async def run_once(self, now=None) -> int:
        from datetime import timedelta
        from core.timeutil import utcnow
        cutoff = (now or utcnow()) - timedelta(days=self.retention_days)
        removed = await self.store.sweep_media(cutoff)
        self.removed += removed
        if removed:
            log.info("retention: deleted %d recording(s)/frame(s) older than %s days", removed, self.retention_days)
        return removed

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:      # the database is away: try again next round
                log.warning("retention sweep failed: %s", exc)
            await self.clock.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="recordings-retention")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
