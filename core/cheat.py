"""Cheat detection on the video stream: frames in, episodes out.

``VisionPool`` (one per process) is the thread pool in which JPEG decoding and every detector run,
never on the event loop. ``CheatMonitor`` (one per interview session) keeps a small bounded queue of
frames, runs the detectors on the newest ones, and merges their per-frame ``CheatSignal``s into
*episodes*: an episode of kind K opens after ``consecutive_frames`` frames in a row with a K signal
and closes after ``clear_frames`` frames in a row without one. ``on_episode`` is awaited once per new
episode (the engine sends one ``cheat_detected`` and stores the record), ``on_episode_end`` once when
it closes, with the *same* record object, now carrying ``ended_at`` and the total ``frames``.
``tab_hidden`` episodes come from the page (``client_event``) and open at once.

Flags are for human review only: nothing here ends an interview or touches a score.

Back-pressure: a session never has more than ``queue_size`` frames waiting (default 2, about two
seconds at the guide's one frame a second); when a new frame arrives on a full queue the oldest is
dropped (``stats["frames_dropped"]``), and a frame that waited longer than ``max_frame_age_seconds``
is dropped unprocessed. The pool has ``workers`` threads (default 1) and OpenCV is limited to one
thread per call, so vision uses at most ``workers`` cores however many sessions send frames, and the
event loop, which carries the audio, only does queue bookkeeping.

``settings`` is the ``[cheat]`` table of plugins.toml: ``consecutive_frames`` (3), ``clear_frames``
(2), ``max_width``/``max_height`` (1920; larger frames are refused), ``max_frame_bytes`` (1 500 000),
``min_side`` (32), ``work_width``/``work_height`` (640×480; larger frames are downscaled before
detection), ``queue_size`` (2; ``video_queue_frames`` is read too), ``max_frame_age_seconds`` (10).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable, Optional

from core.clock import Clock
from core.priority import lower_thread_priority
from core.events import CheatSignal
from core.interfaces import CheatDetector, CheatKind
from core.media_remote import MediaUnavailable, RemoteFrameError
from core.timeutil import utcnow

log = logging.getLogger("mianshi.cheat")

# The monitor's own kind: the page reports it (client_event), no detector does.
TAB_HIDDEN = CheatKind("tab_hidden", "检测到切换页面或窗口，请保持在面试页面。", "切换了页面")


def declared_kinds(detectors: list[CheatDetector]) -> dict[str, CheatKind]:
    """Every kind the detectors declare (their ``kinds``), and ``tab_hidden``, by name. A kind that
    two detectors declare must be declared alike; ``ValueError`` says which differ."""
    kinds = {TAB_HIDDEN.name: TAB_HIDDEN}
    for detector in detectors:
        for kind in getattr(detector, "kinds", ()) or ():
            if not isinstance(kind, CheatKind) or not (kind.name and kind.text and kind.label):
                raise ValueError(f"cheat detector {detector.name!r}: kinds must be CheatKind(name, text, label), "
                                 f"got {kind!r}")
            known = kinds.get(kind.name)
            if known is not None and known != kind:
                raise ValueError(f"cheat kind {kind.name!r} is declared differently by detector "
                                 f"{detector.name!r} ({kind}) and before it ({known})")
            kinds[kind.name] = kind
    return kinds


def frame_limits(settings: dict | None) -> dict:
    """The ``[cheat]`` frame limits ``analyse_frame`` applies (defaults: ``core/frames.py``)."""
    from core import frames as vu
    s = dict(settings or {})
    return {"max_frame_bytes": int(s.get("max_frame_bytes", vu.DEFAULT_MAX_FRAME_BYTES)),
            "max_width": int(s.get("max_width", vu.DEFAULT_MAX_WIDTH)),
            "max_height": int(s.get("max_height", vu.DEFAULT_MAX_HEIGHT)),
            "min_side": int(s.get("min_side", vu.DEFAULT_MIN_SIDE)),
            "work_width": int(s.get("work_width", vu.DEFAULT_WORK_WIDTH)),
            "work_height": int(s.get("work_height", vu.DEFAULT_WORK_HEIGHT))}


def analyse_frame(detectors: list[CheatDetector], states: dict[str, dict], jpeg: bytes, limits: dict,
                  frame_kinds: tuple[str, ...]) -> tuple[list[CheatSignal], float, int]:
    """Blocking: decode and validate one JPEG (``core.frames.FrameError`` when unusable), run every
    detector with its per-session ``states[name]`` -> (signals, milliseconds, detectors that failed).
    A signal of a kind no detector declares is ignored. Used by ``CheatMonitor`` and by the media
    server (``media_server.py``)."""
    from core import frames as vu
    t0 = time.perf_counter()
    image = vu.decode_frame(jpeg, max_bytes=limits["max_frame_bytes"], max_width=limits["max_width"],
                            max_height=limits["max_height"], min_side=limits["min_side"])
    image = vu.fit_for_detection(image, limits["work_width"], limits["work_height"])
    signals: list[CheatSignal] = []
    errors = 0
    for detector in detectors:
        try:
            out = detector.detect(image, states.setdefault(detector.name, {}))
        except Exception:
            log.exception("cheat detector %s failed", detector.name)
            errors += 1
            continue
        for sig in out or []:
            if sig.kind is not None and sig.kind not in frame_kinds:
                log.warning("detector %s returned kind %r that it does not declare in its kinds; ignored",
                            detector.name, sig.kind)
                continue
            signals.append(sig)
    return signals, (time.perf_counter() - t0) * 1000, errors


class VisionPool:
    """The process-wide thread pool for frame decoding and detection. Its threads run at a lower
    CPU priority (``nice``, default +10) than the rest of the process."""

    def __init__(self, workers: int = 1, opencv_threads: int | None = 1, nice: int = 10) -> None:
        if int(workers) < 1:
            raise ValueError("vision workers must be >= 1")
        self.workers = int(workers)
        self.nice = int(nice)
        if opencv_threads is not None:
            import cv2
            # One OpenCV thread per call: parallelism comes from the pool, bounded by ``workers``.
            cv2.setNumThreads(int(opencv_threads))
        self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vision",
                                           initializer=lower_thread_priority, initargs=(self.nice,))
        self.closed = False

    async def run(self, fn: Callable, *args):
        if self.closed:
            raise RuntimeError("vision pool is closed")
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        self.closed = True
        self.executor.shutdown(wait=False, cancel_futures=True)


class CheatMonitor:
    def __init__(self, detectors: list[CheatDetector], pool: VisionPool, clock: Clock,
                 on_episode: Callable[[dict], Awaitable[None]],
                 on_frame_error: Callable[[str], Awaitable[None]],
                 settings: dict | None = None,
                 on_episode_end: Optional[Callable[[dict], Awaitable[None]]] = None,
                 kinds: dict[str, CheatKind] | None = None, remote=None) -> None:
        """``remote``: a ``core.media_remote.MediaClient`` that analyses the frames instead of
        ``pool`` (``[media] url`` with ``vision = true``)."""
        from core import frames as vu

        s = dict(settings or {})
        self.detectors = list(detectors)
        self.kinds = kinds if kinds is not None else declared_kinds(self.detectors)
        self.frame_kinds = tuple(k for k in self.kinds if k != TAB_HIDDEN.name)
        self.pool = pool
        self.remote = remote
        self.clock = clock
        self.on_episode = on_episode
        self.on_frame_error = on_frame_error
        self.on_episode_end = on_episode_end
        self.last_frame: bytes | None = None
        self.consecutive_frames = int(s.get("consecutive_frames", 3))
        self.clear_frames = int(s.get("clear_frames", 2))
        if self.consecutive_frames < 1 or self.clear_frames < 1:
            raise ValueError("[cheat] consecutive_frames and clear_frames must be >= 1")
        self.limits = frame_limits(s)
        self.max_frame_bytes = self.limits["max_frame_bytes"]
        self.queue_size = max(1, int(s.get("queue_size", s.get("video_queue_frames", 2))))
        self.max_frame_age = float(s.get("max_frame_age_seconds", 10.0))
        self._vu = vu
        self._queue: deque[tuple[bytes, float, str]] = deque()
        self._worker: asyncio.Task | None = None
        self._states: dict[str, dict] = {d.name: {} for d in self.detectors}
        self._hits: dict[str, int] = {}
        self._clears: dict[str, int] = {}
        self._run_start: dict[str, str] = {}
        self._clear_start: dict[str, str] = {}
        self._open: dict[str, dict] = {}
        self._closed = False
        self.episodes: list[dict] = []            # every episode of this session, in order
        self.stats = {"frames_received": 0, "frames_processed": 0, "frames_dropped": 0,
                      "frames_invalid": 0, "detector_errors": 0, "episodes": 0,
                      "last_frame_ms": 0.0, "remote_errors": 0}

    # -- input -------------------------------------------------------------------------------------
    async def submit_frame(self, jpeg: bytes) -> None:
        """Queue one JPEG frame; returns at once. A full queue drops its oldest frame."""
        if self._closed:
            return
        self.stats["frames_received"] += 1
        if not jpeg or len(jpeg) > self.max_frame_bytes:
            # refused before queueing: no reason to hold an oversized buffer
            self.stats["frames_invalid"] += 1
            text = ("视频帧为空" if not jpeg else
                    f"视频帧过大（{len(jpeg)} 字节，上限 {self.max_frame_bytes} 字节）")
            await self._call(self.on_frame_error, text)
            return
        self._queue.append((bytes(jpeg), self.clock.now(), utcnow()))
        while len(self._queue) > self.queue_size:
            self._queue.popleft()
            self.stats["frames_dropped"] += 1
        self._ensure_worker()

    async def client_event(self, event: str) -> None:
        """``tab_hidden`` opens a tab_hidden episode at once (if none is open); ``tab_visible``
        closes it."""
        if event not in ("tab_hidden", "tab_visible"):
            raise ValueError(f"unknown client event {event!r}")
        if self._closed:
            return
        kind = TAB_HIDDEN.name
        if event == "tab_hidden":
            if kind in self._open:
                return
            await self._open_episode(kind, utcnow(), 0, "client", {"event": event})
        elif kind in self._open:
            await self._close_episode(kind, utcnow())

    async def drain(self) -> None:
        """Wait until every queued frame has been processed (or dropped)."""
        while True:
            worker = self._worker
            if worker is None or worker.done():
                if not self._queue or self._closed:
                    return
                self._ensure_worker()
                continue
            await asyncio.wait({worker})

    async def aclose(self) -> None:
        """Stop: drop queued frames, wait for the frame in progress, close open episodes."""
        if self._closed:
            return
        self._closed = True
        self.stats["frames_dropped"] += len(self._queue)
        self._queue.clear()
        worker = self._worker
        if worker is not None and not worker.done():
            try:
                await asyncio.wait_for(asyncio.shield(worker), 5.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                worker.cancel()
        now = utcnow()
        for kind in list(self._open):
            await self._close_episode(kind, now, reason="session_end")

    @property
    def open_episodes(self) -> dict[str, dict]:
        return dict(self._open)

    # -- processing --------------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="cheat-monitor")

    async def _work(self) -> None:
        while self._queue and not self._closed:
            jpeg, t_arrived, wall = self._queue.popleft()
            if self.clock.now() - t_arrived > self.max_frame_age:
                self.stats["frames_dropped"] += 1
                continue
            try:
                if self.remote is not None:
                    signals, ms = await self._analyse_remote(jpeg)
                else:
                    signals, ms = await self.pool.run(self._analyse, jpeg)
            except (self._vu.FrameError, RemoteFrameError) as exc:
                self.stats["frames_invalid"] += 1
                await self._call(self.on_frame_error, exc.text)
                continue
            except MediaUnavailable:
                # logged by the client (once per distinct failure); the frame goes unanalysed
                self.stats["remote_errors"] += 1
                self.stats["frames_dropped"] += 1
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cheat detection failed on a frame")
                self.stats["detector_errors"] += 1
                continue
            self.stats["frames_processed"] += 1
            self.stats["last_frame_ms"] = round(ms, 2)
            self.last_frame = jpeg          # the frame whose signals open an episode (its evidence)
            if self._closed:
                return
            await self._merge(signals, wall)

    def _analyse(self, jpeg: bytes) -> tuple[list[CheatSignal], float]:
        """Blocking, in the vision pool: decode, validate, run every detector."""
        signals, ms, errors = analyse_frame(self.detectors, self._states, jpeg, self.limits, self.frame_kinds)
        self.stats["detector_errors"] += errors
        return signals, ms

    async def _analyse_remote(self, jpeg: bytes) -> tuple[list[CheatSignal], float]:
        """The media server runs the detectors; their states travel with the frame."""
        names = [d.name for d in self.detectors]
        signals, states, ms, errors = await self.remote.analyse(jpeg, names, self._states)
        self.stats["detector_errors"] += errors
        for name in names:
            if isinstance(states.get(name), dict):
                self._states[name] = states[name]
        kept = []
        for sig in signals:
            if sig.detector not in self._states or (sig.kind is not None and sig.kind not in self.frame_kinds):
                log.warning("media server returned a signal of detector %r kind %r that is not configured "
                            "here; ignored", sig.detector, sig.kind)
                continue
            kept.append(sig)
        return kept, ms

    async def _merge(self, signals: list[CheatSignal], wall: str) -> None:
        if not signals:
            return                          # no detector had evidence either way (e.g. no mesh)
        best: dict[str, CheatSignal] = {}
        for sig in signals:
            if sig.kind and (sig.kind not in best or sig.score > best[sig.kind].score):
                best[sig.kind] = sig
        for kind, sig in best.items():
            self._clears[kind] = 0
            self._clear_start.pop(kind, None)
            hits = self._hits.get(kind, 0) + 1
            self._hits[kind] = hits
            if hits == 1:
                self._run_start[kind] = wall
            if kind in self._open:
                self._open[kind]["frames"] += 1
            elif hits >= self.consecutive_frames:
                await self._open_episode(kind, self._run_start.get(kind, wall), hits, sig.detector,
                                         dict(sig.detail, score=round(float(sig.score), 3)))
        for kind in self.frame_kinds:
            if kind in best:
                continue
            self._hits[kind] = 0
            if kind in self._open:
                clears = self._clears.get(kind, 0) + 1
                self._clears[kind] = clears
                if clears == 1:
                    self._clear_start[kind] = wall
                if clears >= self.clear_frames:
                    await self._close_episode(kind, self._clear_start.get(kind, wall))

    async def _open_episode(self, kind: str, started_at: str, frames: int, detector: str,
                            detail: dict) -> None:
        declared = self.kinds[kind]
        record = {"kind": kind, "text": declared.text, "label": declared.label, "started_at": started_at,
                  "frames": frames, "detector": detector, "detail": detail}
        self._open[kind] = record
        self.episodes.append(record)
        self.stats["episodes"] += 1
        await self._call(self.on_episode, record)

    async def _close_episode(self, kind: str, ended_at: str, reason: str | None = None) -> None:
        record = self._open.pop(kind, None)
        self._clears[kind] = 0
        self._clear_start.pop(kind, None)
        if record is None:
            return
        record["ended_at"] = ended_at
        if reason:
            record["end_reason"] = reason
        if self.on_episode_end is not None:
            await self._call(self.on_episode_end, record)

    @staticmethod
    async def _call(callback, *args) -> None:
        try:
            await callback(*args)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("cheat monitor callback failed")
