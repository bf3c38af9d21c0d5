"""The interview engine.

``Engine`` is built once per process: it loads the plugins (``core.plugins``), builds what
plugins.toml selects (phases, VAD, ASR, question sources, scorers, cheat detectors, the code runner)
and owns the shared thread pools. ``Engine.open_session`` gives a ``Session`` per interview
connection: it feeds audio to the speech pipeline, frames to the cheat monitor, and turns
everything into typed events handled one at a time by the current phase. Every final utterance,
question, phase change and cheat episode is written to the store the moment it happens, so a new
connection resumes the interview where it stood.

The engine never imports sanic or motor: the web layer passes ``send`` (an async callable taking a
message dict) and the store (``core.interfaces.InterviewStore``).
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable


from core import events as ev
from core.clock import Clock, SystemClock
from core.config import data_dir
from core.interfaces import InterviewStore, PluginContext
from core.phase import INPUTS, Phase
from core.media_remote import MediaClient
from core.recording import MediaEncoder
from core.plugins import PluginError, builtin_modules_for, check_plugin_tables, collect, describe, make_plugin_manager
from core.session import Send, Session
from core.settings import SettingsError

log = logging.getLogger("mianshi.engine")



class SessionError(Exception):
    """``create_stream`` cannot be honoured; ``text`` goes back in an ``error`` message."""

    def __init__(self, text: str, field: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.field = field


class EngineStartError(RuntimeError):
    pass


OPTIONAL_KINDS = ("question_source", "scorer")


class Engine:
    def __init__(self, config: dict, *, store: InterviewStore, clock: Clock | None = None,
                 extra_plugins: tuple = (), load_entry_points: bool = True) -> None:
        self.config = config
        self.store = store
        self.clock = clock or SystemClock()
        self.extra_plugins = tuple(extra_plugins)
        self.load_entry_points = load_entry_points
        self.engine_cfg: dict = config.get("engine", {})
        self.timing: dict = config.get("timing", {})
        self.limits: dict = config.get("limits", {})
        self.pm = None
        self.registries: dict = {}
        self.plugin_settings: dict[str, dict] = {}     # [plugins.<name>] checked and with defaults
        self.active: dict[str, list[str]] = {}
        self.unavailable: dict[str, str] = {}
        self.phase_factories: list[tuple[str, Any]] = []
        self.phase_catalog: list[dict] = []          # {"name", "title", "input"} of each phase, in order
        self.vad = None
        self.asr = None
        self.question_sources: list = []
        self.scorers: list = []
        self.detectors: list = []
        self.code_runner = None
        self.code_runner_problem: str | None = None
        self.tts = None                               # core.tts.TtsService, or None: no voice
        self.corrections = None                       # core.correction.Corrections, or None: finals as heard
        self.cheat_kinds: dict = {}                  # name -> core.interfaces.CheatKind
        self.asr_scheduler = None
        self.partial_cadence = None     # stretches the partial interval under load (core/cadence.py)
        self.vision_pool = None
        self._vision_ended = {"received": 0, "processed": 0, "dropped": 0, "invalid": 0}
        # recordings' encoding: low-priority threads, bounded backlog (core/recording.py)
        # a media server for detection and encoding ([media] url; None: both in this process)
        self.media = MediaClient.from_config(config, clock=self.clock)
        media_cfg = config.get("media", {}) or {}
        self.vision_remote = self.media if self.media is not None and media_cfg.get("vision", True) else None
        self.media_encoder = MediaEncoder.from_settings(
            config.get("recordings", {}),
            remote=self.media if self.media is not None and media_cfg.get("recordings", True) else None)
        self.reports = None
        self.executor = ThreadPoolExecutor(max_workers=int(self.engine_cfg.get("blocking_workers", 4)),
                                           thread_name_prefix="mianshi-blocking")
        self.sessions: dict[str, Session] = {}
        self.closing: set[asyncio.Task] = set()      # sessions being closed (cleanup runs to the end)
        self._trimmed_at = float("-inf")
        # Who writes an interview: "<instance>:<stream>" in its lease (README, "Several instances").
        self.instance_id = (config.get("_env", {}).get("MIANSHI_INSTANCE_ID") or uuid.uuid4().hex[:12])
        self.lease_ttl = float(self.engine_cfg.get("lease_ttl_seconds", 10.0))
        self.lease_check = float(self.engine_cfg.get("lease_check_seconds", 1.0))
        self.lease_renew = max(self.lease_check, self.lease_ttl / 3)
        # how long a closing session waits for its writes still in flight (a slow database)
        self.close_write_wait = float(self.engine_cfg.get("close_write_wait_seconds", 600.0))
        self._lease_task: asyncio.Task | None = None
        self._open_locks: dict[str, tuple[asyncio.Lock, int]] = {}   # interview id -> (lock, users)
        self.started = False

    # -- building ---------------------------------------------------------------------------------
    def plugin_context(self, name: str) -> PluginContext:
        settings = self.plugin_settings.get(name)
        if settings is None:
            settings = self.config.get("plugins", {}).get(name, {}) or {}
        return PluginContext(name=name, settings=settings, config=self.config,
                             data_dir=data_dir(self.config), clock=self.clock)

    async def _build(self, kind: str, name: str):
        registration = self.registries[kind].get(name)
        obj = await asyncio.get_running_loop().run_in_executor(
            self.executor, registration.factory, self.plugin_context(name))
        self.active.setdefault(kind, []).append(name)
        return obj

    async def _build_optional(self, kind: str, name: str):
        try:
            return await self._build(kind, name)
        except Exception as exc:  # an optional component that cannot start is reported, not fatal
            self.unavailable[f"{kind}:{name}"] = str(exc)
            log.warning("%s %r unavailable: %s", kind, name, exc)
            return None

    def selected(self) -> dict[str, list[str]]:
        """What plugins.toml selects, by kind (only the built-in modules providing it are imported)."""
        cfg = self.engine_cfg
        speech = bool(cfg.get("vad") and cfg.get("asr"))
        return {"phase": list(cfg.get("phases", ["intro", "question", "code"])),
                "vad": [cfg["vad"]] if speech else [], "asr": [cfg["asr"]] if speech else [],
                "question_source": list(cfg.get("question_sources", ["bank"])),
                "scorer": list(cfg.get("scorers", ["heuristic"])),
                "cheat_detector": list(cfg.get("cheat_detectors", [])),
                "code_runner": [cfg["code_runner"]] if cfg.get("code_runner") else [],
                "tts": [cfg["tts"]] if isinstance(cfg.get("tts"), str) and cfg["tts"] else list(cfg.get("tts") or []),
                "corrector": list(cfg.get("correctors", ["llm"])) if speech else []}

    async def start(self) -> None:
        selected = self.selected()
        self.pm = make_plugin_manager(list(self.extra_plugins), load_entry_points=self.load_entry_points,
                                      default_plugins=builtin_modules_for(selected))
        self.registries = collect(self.pm)
        cfg = self.engine_cfg
        try:
            self.plugin_settings = check_plugin_tables(self.registries, self.config.get("plugins", {}) or {})
        except SettingsError as exc:
            raise EngineStartError(str(exc)) from None
        try:
            for name in selected["phase"]:
                factory = await self._build("phase", name)
                probe = factory.create()
                if not isinstance(probe, Phase) or getattr(probe, "input", None) not in INPUTS:
                    raise PluginError(f"phase {name!r}: create() must return a core.phase.Phase instance whose "
                                      f"input is one of {', '.join(INPUTS)} (got {type(probe).__name__})")
                self.phase_factories.append((name, factory))
                self.phase_catalog.append({"name": name, "title": probe.title or name, "input": probe.input})
            for vad, asr in zip(selected["vad"], selected["asr"]):       # both or neither
                self.vad = await self._build("vad", vad)
                self.asr = await self._build("asr", asr)
            for name in selected["question_source"]:
                source = await self._build_optional("question_source", name)
                if source is not None:
                    self.question_sources.append(source)
            for name in selected["scorer"]:
                scorer = await self._build_optional("scorer", name)
                if scorer is not None:
                    self.scorers.append(scorer)
            for name in selected["cheat_detector"]:
                self.detectors.append(await self._build("cheat_detector", name))
            for name in selected["code_runner"]:
                self.code_runner = await self._build("code_runner", name)
                self.code_runner_problem = self.code_runner.check()
                if self.code_runner_problem:
                    log.error("THE CODE SANDBOX CANNOT RUN: %s — code submissions will be refused "
                              "until this is fixed.", self.code_runner_problem)
            voices = []
            for name in selected["tts"]:
                voice = await self._build_optional("tts", name)
                if voice is not None:
                    voices.append(voice)
            correctors = []
            for name in selected["corrector"]:
                corrector = await self._build_optional("corrector", name)
                if corrector is not None and getattr(corrector, "available", True):
                    correctors.append(corrector)
                elif corrector is not None:
                    await _aclose(corrector)
        except PluginError as exc:
            raise EngineStartError(str(exc)) from None
        if correctors:
            from core.correction import Corrections
            correction = self.config.get("correction", {})
            self.corrections = Corrections(correctors, timeout=float(correction.get("timeout_seconds", 2.0)),
                                           max_change=float(correction.get("max_change", 0.34)))
            log.info("recognised finals are corrected by: %s", ", ".join(c.name for c in correctors))
        if voices:
            from core.tts import TtsService
            self.tts = TtsService(voices, cache_sentences=int(self.config.get("tts", {}).get("cache_sentences", 256)))
            log.info("the interviewer's voice: %s", ", ".join(self.tts.names))
        elif selected["tts"]:
            log.warning("THE SERVER HAS NO VOICE: no tts engine of [engine] tts could start (%s); clients "
                        "that ask for tts get text only (the page falls back to the browser's voice)",
                        "; ".join(f"{k}: {v}" for k, v in self.unavailable.items() if k.startswith("tts:")))
        else:
            log.info("the server has no voice ([engine] tts is empty)")
        if not self.question_sources:
            raise EngineStartError("no question source could start; check [engine] question_sources")
        if self.asr is not None:
            from core.cadence import PartialCadence
            from core.speech import DEFAULT_SETTINGS as SPEECH_DEFAULTS, AsrScheduler
            speech = {**SPEECH_DEFAULTS, **self.config.get("speech", {})}
            self.partial_cadence = PartialCadence(self.clock, float(speech["partial_load_lag_ms"]) / 1000,
                                                  float(speech["partial_max_stretch"]))
            self.asr_scheduler = AsrScheduler(workers=int(cfg.get("asr_workers", 2)),
                                              cadence=self.partial_cadence)
        if self.detectors:
            from core.cheat import VisionPool, declared_kinds
            try:
                self.cheat_kinds = declared_kinds(self.detectors)
            except ValueError as exc:
                raise EngineStartError(str(exc)) from None
            self.vision_pool = VisionPool(workers=int(cfg.get("vision_workers", 1)))
            if self.vision_remote is not None:
                await self._check_media_server()
        from core.report import ReportService
        self.reports = ReportService(self.scorers, self.store, self.clock, self.config.get("report", {}),
                                     sections=self.report_sections, owner=f"{self.instance_id}:report")
        await self.reports.resume_pending()
        self.started = True

    async def _check_media_server(self) -> None:
        """The media server must run every configured detector, declaring the same kinds. One that
        cannot be reached now is not fatal (frames are dropped until it answers; README, "Media
        server")."""
        from core.media_remote import MediaUnavailable
        try:
            info = await self.media.info()
        except MediaUnavailable as exc:
            log.warning("%s; cheat detection waits for it", exc)
            return
        remote = info.get("detectors") if isinstance(info, dict) else None
        if not isinstance(remote, dict):
            raise EngineStartError(f"media server {self.media.url}: GET /v1/media/info has no detectors")
        for detector in self.detectors:
            mine = sorted(k.name for k in getattr(detector, "kinds", ()) or ())
            theirs = remote.get(detector.name)
            if theirs is None:
                raise EngineStartError(f"media server {self.media.url} does not run cheat detector "
                                       f"{detector.name!r} (it runs: {', '.join(sorted(remote)) or 'none'})")
            if sorted(theirs) != mine:
                raise EngineStartError(f"cheat detector {detector.name!r} declares kinds {mine} here but "
                                       f"{sorted(theirs)} on the media server {self.media.url}")

    async def close(self) -> None:
        """Server shutdown: every session is ended as if its connection closed (what was heard is
        flushed and stored), all at once; then the shared parts stop."""
        for session in list(self.sessions.values()):
            session.begin_close("shutdown")
        while self.closing:
            await asyncio.gather(*list(self.closing), return_exceptions=True)
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
        if self.reports is not None:
            await self.reports.aclose()
        if self.asr_scheduler is not None:
            self.asr_scheduler.close()
        if self.vision_pool is not None:
            self.vision_pool.close()
        self.media_encoder.close()
        if self.media is not None:
            await self.media.aclose()
        for obj in [self.asr, self.vad, self.code_runner, self.tts, *self.question_sources, *self.scorers,
                    *(self.corrections.correctors if self.corrections is not None else [])]:
            await _aclose(obj)
        self.executor.shutdown(wait=False, cancel_futures=True)

    def report_sections(self, record: dict) -> list[dict]:
        """What each phase contributes to the report (``PhaseFactory.report_section``), in order."""
        out = []
        for name, factory in self.phase_factories:
            contribute = getattr(factory, "report_section", None)
            try:
                section = contribute(record) if contribute is not None else None
            except Exception:          # one broken phase must not stop the report
                log.exception("report section of phase %s failed", name)
                continue
            if isinstance(section, dict):
                out.append({**section, "phase": name})
        return out

    def stats(self) -> dict:
        """Live sessions and their parts (``GET /-/stats``, benchmarks)."""
        return {"sessions": len(self.sessions), "closing": len(self.closing),
                "speech_streams": sum(1 for s in self.sessions.values() if s.speech is not None),
                "vision_monitors": sum(1 for s in self.sessions.values() if s.cheat is not None),
                "session_tasks": sum(len(s.tasks) for s in self.sessions.values()),
                # JPEGs since the start (ended sessions included): a server short of CPU drops stale
                # frames (the monitors' bounded queues) rather than falling behind; this shows how many
                "vision_frames": {key: ended + sum(s.cheat.stats[f"frames_{key}"] for s in self.sessions.values()
                                                   if s.cheat is not None)
                                  for key, ended in self._vision_ended.items()},
                "asr": dict(self.asr_scheduler.stats) if self.asr_scheduler is not None else None,
                "partial_cadence": self.partial_cadence.snapshot() if self.partial_cadence is not None else None,
                "tts": dict(self.tts.stats) if self.tts is not None else None,
                "corrections": dict(self.corrections.stats) if self.corrections is not None else None,
                "recording_encoder": dict(self.media_encoder.stats),
                "media_server": dict(self.media.stats) if self.media is not None else None}

    def observe_loop_lag(self, lag_s: float) -> None:
        """One event-loop lag sample (core/loopmon.py; the server wires its monitor here)."""
        if self.partial_cadence is not None:
            self.partial_cadence.observe(lag_s)

    def track_closing(self, coro, name: str) -> asyncio.Task:
        """Run a session's cleanup as a task of its own: whoever awaits it may be cancelled (a
        WebSocket handler is, when its socket drops), the cleanup is not."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)
        return task

    def plugins_listing(self) -> dict:
        return {"plugins": describe(self.pm, self.registries, self.active),
                "active": self.active, "unavailable": self.unavailable,
                "sandbox_problem": self.code_runner_problem}

    def emit(self, interview_id: str, kind: str, data: dict) -> None:
        try:
            self.pm.hook.interview_event(interview_id=interview_id, kind=kind, data=data)
        except Exception:  # observers must not break interviews
            log.exception("interview_event hook failed")

    # -- sessions ---------------------------------------------------------------------------------
    async def open_session(self, user_id: str, request: ev.CreateStream, send: Send,
                           hangup: Callable[[int, str], Awaitable[None]] | None = None) -> "Session":
        """A session for ``create_stream``: validates, takes the interview's lease (fencing out any
        earlier connection on any instance) and registers it. ``send(message)`` may be called from
        several tasks at once and must serialise its writes itself (the one lock per connection is
        api/ws.py's); ``hangup(code, reason)`` closes the connection; the session calls it when the
        interview is taken over."""
        iid = request.interview_id
        lock, users = self._open_locks.get(iid, (None, 0))
        lock = lock or asyncio.Lock()
        self._open_locks[iid] = (lock, users + 1)
        try:
            async with lock:
                return await self._open_session_locked(user_id, request, send, hangup)
        finally:
            lock, users = self._open_locks[iid]
            if users <= 1:
                del self._open_locks[iid]          # no entry outlives the calls using it
            else:
                self._open_locks[iid] = (lock, users - 1)

    async def _open_session_locked(self, user_id: str, request: ev.CreateStream, send: Send,
                                   hangup) -> "Session":
        existing = self.sessions.get(request.interview_id)
        if existing is not None:
            if existing.user_id != user_id:
                raise SessionError("面试不存在或无权访问", "interview_id")
            await existing.close("takeover")
        interview = await self.store.load_interview(user_id, request.interview_id)
        if interview is None:
            raise SessionError("面试不存在或无权访问", "interview_id")
        resume = await self.store.load_resume(user_id, request.resume_id)
        if resume is None:
            raise SessionError("简历不存在或无权访问", "resume_id")
        bound = interview.get("resume_id")
        if bound is not None and int(bound) != request.resume_id:
            raise SessionError(f"该面试已使用简历 {bound} 开始，不能更换简历", "resume_id")
        if interview.get("status") == "finished":
            raise SessionError("该面试已结束，请查看面试报告", "interview_id")
        stream_id = uuid.uuid4().hex
        interview = await self.store.take_lease(user_id, request.interview_id, f"{self.instance_id}:{stream_id}",
                                                self.lease_ttl)
        if interview is None:
            raise SessionError("面试不存在或无权访问", "interview_id")
        if interview.get("status") == "finished":       # finished on another instance meanwhile
            raise SessionError("该面试已结束，请查看面试报告", "interview_id")
        session = Session(self, user_id, interview, resume, send, stream_id=stream_id,
                          epoch=int(interview["lease_epoch"]), hangup=hangup, tts=request.tts,
                          corrections=request.asr_corrections)
        self.sessions[request.interview_id] = session
        if self._lease_task is None or self._lease_task.done():
            self._lease_task = asyncio.get_running_loop().create_task(self._lease_monitor(), name="lease-monitor")
        return session

    async def _lease_monitor(self) -> None:
        """One lease check for all of this instance's sessions every ``lease_check_seconds`` (a read
        per shard, not a write per session) and a renewal every ``lease_ttl_seconds / 3``; a session
        whose interview was taken over (on this instance or another) is ended. Runs while sessions
        are open."""
        renewed = self.clock.now()
        while self.sessions:
            await self.clock.sleep(self.lease_check)
            held = {iid: s.epoch for iid, s in self.sessions.items() if s.epoch is not None and not s.closing}
            if not held:
                continue
            try:
                if self.clock.now() - renewed >= self.lease_renew:
                    renewed = self.clock.now()
                    lost = await self.store.renew_leases(held, self.lease_ttl)
                else:
                    lost = await self.store.check_leases(held)
            except Exception as exc:        # the database is unreachable: fenced writes still protect
                log.warning("lease check of %d sessions failed: %s", len(held), exc)
                continue
            for iid in lost:
                session = self.sessions.get(iid)
                if session is not None and session.epoch == held[iid]:
                    session.begin_close("lost")

    def forget_session(self, session: "Session") -> None:
        if self.sessions.get(session.interview_id) is session:
            del self.sessions[session.interview_id]
            if session.cheat is not None:        # its JPEG counts stay in the process's totals
                for key in self._vision_ended:
                    self._vision_ended[key] += session.cheat.stats[f"frames_{key}"]
        self._trim_memory(idle=not self.sessions)

    def _trim_memory(self, idle: bool = False) -> None:
        """A session ended: give the heap's free pages back to the OS (at most every 30 s while
        sessions run; always when the last one has ended)."""
        now = self.clock.now()
        if now - self._trimmed_at < 30.0 and not idle:
            return
        self._trimmed_at = now
        from core.loopmon import release_free_memory
        asyncio.get_running_loop().run_in_executor(self.executor, release_free_memory)


async def _aclose(obj) -> None:
    closer = getattr(obj, "aclose", None)
    if closer is not None:
        await closer()
