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
import dataclasses
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable


from core import events as ev
from core.clock import Clock, SystemClock
from core.config import data_dir
from core.interfaces import AsrContext, InterviewStore, LeaseLost, PluginContext
from core.phase import INPUTS, Phase, transition_text
from core.plugins import PluginError, builtin_modules_for, check_plugin_tables, collect, describe, make_plugin_manager
from core.settings import SettingsError
from core.timeutil import utcnow

log = logging.getLogger("mianshi.engine")

Send = Callable[[dict], Awaitable[None]]


class SessionError(Exception):
    """``create_stream`` cannot be honoured; ``text`` goes back in an ``error`` message."""

    def __init__(self, text: str, field: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.field = field


class EngineStartError(RuntimeError):
    pass


END_TEXT = "面试结束，感谢您的参与！评估报告正在生成，稍后可在报告页查看。"
TAKEN_OVER_TEXT = "该面试已在新的连接中继续，本连接将关闭"
CLOSE_TAKEN_OVER = 4409          # WebSocket close code of a connection whose interview moved on
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
        self.vad = None
        self.asr = None
        self.question_sources: list = []
        self.scorers: list = []
        self.detectors: list = []
        self.code_runner = None
        self.code_runner_problem: str | None = None
        self.tts = None                               # core.tts.TtsService, or None: no voice
        self.cheat_kinds: dict = {}                  # name -> core.interfaces.CheatKind
        self.asr_scheduler = None
        self.vision_pool = None
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
                "tts": [cfg["tts"]] if isinstance(cfg.get("tts"), str) and cfg["tts"] else list(cfg.get("tts") or [])}

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
        except PluginError as exc:
            raise EngineStartError(str(exc)) from None
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
            from core.speech import AsrScheduler
            self.asr_scheduler = AsrScheduler(workers=int(cfg.get("asr_workers", 2)))
        if self.detectors:
            from core.cheat import VisionPool, declared_kinds
            try:
                self.cheat_kinds = declared_kinds(self.detectors)
            except ValueError as exc:
                raise EngineStartError(str(exc)) from None
            self.vision_pool = VisionPool(workers=int(cfg.get("vision_workers", 1)))
        from core.report import ReportService
        self.reports = ReportService(self.scorers, self.store, self.clock, self.config.get("report", {}),
                                     sections=self.report_sections, owner=f"{self.instance_id}:report")
        await self.reports.resume_pending()
        self.started = True

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
        for obj in [self.asr, self.vad, self.code_runner, self.tts, *self.question_sources, *self.scorers]:
            closer = getattr(obj, "aclose", None)
            if closer is not None:
                await closer()
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
                "asr": dict(self.asr_scheduler.stats) if self.asr_scheduler is not None else None,
                "tts": dict(self.tts.stats) if self.tts is not None else None}

    def _track_closing(self, coro, name: str) -> asyncio.Task:
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
                          epoch=int(interview["lease_epoch"]), hangup=hangup)
        if request.tts:
            from core.tts import SessionVoice
            session.voice = SessionVoice(session, self.tts, self.config.get("tts", {}))
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
            held = {iid: s.epoch for iid, s in self.sessions.items() if s.epoch is not None and s._closing is None}
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

    def _forget(self, session: "Session") -> None:
        if self.sessions.get(session.interview_id) is session:
            del self.sessions[session.interview_id]
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


class _PhaseCtx:
    """The ``core.phase.PhaseContext`` a session gives to each of its phases."""

    def __init__(self, session: "Session", name: str, settings: dict, state: dict, phase) -> None:
        self._session = session
        self.name = name
        self.input = phase.input          # sent with the phase's interview messages (and its title)
        self.title = phase.title
        self.settings = settings
        self.state = state
        engine = session.engine
        self.interview_id = session.interview_id
        self.interview = session.interview
        self.resume = session.resume
        self.clock = engine.clock
        self.timing = engine.timing
        self.question_sources = engine.question_sources
        self.code_runner = engine.code_runner
        self.code_runner_problem = engine.code_runner_problem

    async def send(self, message: dict) -> None:
        await self._session.send(message)

    async def say(self, text: str, **extra: Any) -> None:
        await self._session.say(self.name, text, input=self.input, phase_title=self.title or None, **extra)

    async def save(self) -> None:
        await self._session.store_update(set_fields={f"phase_state.{self.name}": self.state})

    async def store(self, *, set_fields: dict | None = None, push: dict | None = None) -> None:
        await self._session.store_update(set_fields=set_fields, push=push)

    def set_asr_context(self, context: AsrContext) -> None:
        self._session.asr_context = context
        if self._session.speech is not None:
            self._session.speech.set_context(context)

    def prepare_speech(self, text: str) -> None:
        if self._session.voice is not None:
            self._session.voice.prefetch(text)

    def background(self, coro, name: str, finish_on_close: bool = False) -> asyncio.Task:
        task = self._session.spawn(coro, name)
        if finish_on_close:
            self._session.must_finish.add(task)
            task.add_done_callback(self._session.must_finish.discard)
        return task

    async def finish(self) -> None:
        self._session.request_advance()


class Session:
    def __init__(self, engine: Engine, user_id: str, interview: dict, resume: dict, send: Send, *,
                 stream_id: str | None = None, epoch: int | None = None, hangup=None) -> None:
        self.engine = engine
        self.user_id = user_id
        self.interview = interview
        self.resume = resume
        self.interview_id = str(interview.get("id") or interview.get("_id"))
        self.resume_id = int(resume.get("resume_id") or resume.get("id") or 0)
        self.stream_id = stream_id or uuid.uuid4().hex
        self.epoch = epoch                     # lease epoch: fences every write of this session
        self._hangup = hangup
        self._closing: asyncio.Task | None = None
        self._send = send
        self.events: asyncio.Queue = asyncio.Queue()
        self.tasks: set[asyncio.Task] = set()
        self.must_finish: set[asyncio.Task] = set()
        self._writes: set[asyncio.Task] = set()          # store writes in flight
        self.phases: list = []
        self.contexts: list[_PhaseCtx] = []
        self.index = 0
        self.finished = False
        self.closed = False
        self._advance = False
        self._tick_pending = False
        self.asr_context = AsrContext()
        self.speech = None
        self.cheat = None
        self.voice = None                      # core.tts.SessionVoice when create_stream asked for tts
        self._cheat_indexes: dict[int, int] = {}
        self._cheat_count = len(interview.get("cheat_events") or [])

    # -- plumbing -----------------------------------------------------------------------------------
    def spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.interview_id}:{name}")
        self.tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("session task %s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def send(self, message: dict) -> None:
        if self.closed:
            return
        try:
            await self._send(message)       # the web layer's send serialises writes (api/ws.py)
        except Exception as exc:  # the connection is gone; state is in the store
            log.info("send failed for %s: %s", self.interview_id, exc)

    async def send_message(self, message: dict) -> None:
        """An ``interview_message``: as it is, or (sessions with ``tts``) with its ``message_id``,
        followed by its voice."""
        if self.voice is None:
            await self.send(message)
            return
        tagged = self.voice.tag(message)
        await self.send(tagged)
        self.voice.speak(tagged["message_id"], message["text"])

    async def store_update(self, *, set_fields: dict | None = None, push: dict | None = None) -> None:
        fields = dict(set_fields or {})
        fields["updated_at"] = utcnow()
        await self._fenced(self.engine.store.update_interview(self.interview_id, set_fields=fields, push=push,
                                                              epoch=self.epoch))

    async def _fenced(self, write) -> None:
        """Await a write fenced by the lease; a refused one ends this session (it was taken over).
        The write runs as a task of its own: a caller cancelled while waiting (a closing session's
        flush that ran out of time) does not cancel it, and closing waits for it (``_writes``)."""
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(_write_done(self._writes))
        try:
            await asyncio.shield(task)
        except LeaseLost:
            self.begin_close("lost")
            raise

    @property
    def phase(self):
        return self.phases[self.index] if not self.finished and self.index < len(self.phases) else None

    @property
    def ctx(self) -> _PhaseCtx | None:
        return self.contexts[self.index] if not self.finished and self.index < len(self.contexts) else None

    def request_advance(self) -> None:
        self._advance = True

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        engine = self.engine
        stored_states = self.interview.get("phase_state") or {}
        for name, factory in engine.phase_factories:
            phase = factory.create()
            self.phases.append(phase)
            settings = engine.plugin_context(name).settings
            self.contexts.append(_PhaseCtx(self, name, settings, dict(stored_states.get(name) or {}), phase))
        if engine.asr is not None:
            from core.speech import SpeechPipeline
            # [limits] audio_queue_frames bounds the per-session audio queue ([speech] queue_frames wins)
            speech = {"queue_frames": engine.limits.get("audio_queue_frames", 500), **engine.config.get("speech", {})}
            self.speech = SpeechPipeline(engine.vad, engine.asr, engine.asr_scheduler, engine.clock,
                                         self.on_speech_event, speech)
        if engine.detectors:
            from core.cheat import CheatMonitor
            self.cheat = CheatMonitor(engine.detectors, engine.vision_pool, engine.clock,
                                      on_episode=self.on_cheat_episode,
                                      on_frame_error=self.on_frame_error,
                                      settings={"video_queue_frames": engine.limits.get("video_queue_frames", 2),
                                                **engine.config.get("cheat", {})},
                                      on_episode_end=self.on_cheat_episode_end, kinds=engine.cheat_kinds)
        stored_phase = self.interview.get("phase")
        names = [name for name, _ in engine.phase_factories]
        fresh = stored_phase not in names
        if fresh:
            self.index = 0
            await self.store_update(set_fields={"status": "in_progress", "resume_id": self.resume_id,
                                                "started_at": utcnow(), "phase": names[0]})
            self.interview["status"] = "in_progress"
        else:
            self.index = names.index(stored_phase)
        for phase, ctx in zip(self.phases, self.contexts):
            if phase is not self.phases[self.index]:
                await phase.prepare(ctx)
        if self.voice is not None:             # the fixed transition texts, ready before they are said
            for i in range(1, len(self.phases)):
                self.voice.prefetch(transition_text(self.phases[i - 1], self.phases[i]))
        self.spawn(self._loop(), "events")
        self.spawn(self._ticker(), "ticker")
        if fresh:
            await self._enter(self.index)
        else:
            current = self.interview.get("current_message")
            if current:
                await self.send_message(current)
            await self.phases[self.index].on_resume(self.contexts[self.index])
        await self._run_transitions()

    async def _enter(self, index: int) -> None:
        self.index = index
        name = self.contexts[index].name
        await self.store_update(set_fields={"phase": name},
                                push={"phase_history": {"phase": name, "at": utcnow()}})
        self.interview["phase"] = name
        self.engine.emit(self.interview_id, "phase", {"phase": name, "at": utcnow()})
        text = transition_text(self.phases[index - 1] if index > 0 else None, self.phases[index])
        if text:
            await self.contexts[index].say(text)
        await self.phases[index].on_enter(self.contexts[index])

    async def _run_transitions(self) -> None:
        while self._advance and not self.finished:
            self._advance = False
            phase, ctx = self.phases[self.index], self.contexts[self.index]
            await phase.on_exit(ctx)
            await ctx.save()
            if self.index + 1 < len(self.phases):
                await self._enter(self.index + 1)
            else:
                await self._finish_interview()

    async def _finish_interview(self) -> None:
        self.finished = True
        message = ev.interview_message("end", END_TEXT, input="none")
        await self.store_update(set_fields={"status": "finished", "phase": "end", "finished_at": utcnow(),
                                            "current_message": message, "report_status": "pending"},
                                push={"phase_history": {"phase": "end", "at": utcnow()}})
        await self.send_message(message)
        self.engine.emit(self.interview_id, "end", {"at": utcnow()})
        self.engine.reports.schedule(self.interview_id)

    async def close(self, reason: str = "closed") -> None:
        """End the session: ``closed`` (the connection ended) and ``shutdown`` finish what was heard
        and store it; ``takeover`` (a new connection on this instance) does too, then tells this
        client and hangs up; ``lost`` (the lease went to another connection, maybe on another
        instance) writes nothing more. Idempotent, and not cancellable half way: the work runs in
        a task of its own that the caller only waits for."""
        await asyncio.shield(self.begin_close(reason))

    def begin_close(self, reason: str) -> asyncio.Task:
        if self._closing is None:
            self._closing = self.engine._track_closing(self._close(reason), f"{self.interview_id}:close")
        return self._closing

    async def _close(self, reason: str) -> None:
        lost = reason == "lost"
        try:
            if reason in ("takeover", "lost"):
                await _quietly(asyncio.wait_for(self.send(ev.error(TAKEN_OVER_TEXT, code=CLOSE_TAKEN_OVER)), 2.0), "telling the client")
            if not lost:
                await self._finish_pending()
            self.closed = True
            if self.speech is not None:
                await _quietly(self.speech.aclose(), "closing the speech pipeline")
            if self.cheat is not None:
                await _quietly(self.cheat.aclose(), "closing the cheat monitor")
            await self._cancel_tasks()
            if not lost:
                if self.ctx is not None:
                    await _quietly(self.ctx.save(), "saving the phase state")
                if self.epoch is not None:
                    await _quietly(self.engine.store.release_lease(self.interview_id, self.epoch), "releasing the lease")
        finally:
            self.closed = True
            self.engine._forget(self)
            if reason in ("takeover", "lost") and self._hangup is not None:
                # not awaited here: a new connection waiting for this close must not wait for a
                # dead peer's closing handshake
                self.engine._track_closing(_quietly(self._hangup(CLOSE_TAKEN_OVER, "taken over"),
                                                    "closing the connection"), f"{self.interview_id}:hangup")

    async def _finish_pending(self) -> None:
        """Flush what has been heard and let it reach the phase and the store."""
        if self.speech is not None:
            try:
                await asyncio.wait_for(self._flush_speech(), 30)
            except Exception:
                log.exception("flushing speech on close failed")
        try:
            await asyncio.wait_for(self._drain_events(), 10)
        except asyncio.TimeoutError:
            pass
        if self.must_finish:
            await asyncio.wait(list(self.must_finish), timeout=60)
        if self._writes:
            # a backed-up database delays a closing session; it does not lose what it heard
            await asyncio.wait(list(self._writes), timeout=self.engine.close_write_wait)

    async def _cancel_tasks(self) -> None:
        while self.tasks:
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _flush_speech(self) -> None:
        """Finish what has been heard: process queued audio, close an open utterance, wait for
        its final."""
        await self.speech.drain()
        if self.speech.speaking:
            await self.speech.end_of_stream()
            await self.speech.drain()

    async def _drain_events(self) -> None:
        await self.events.join()

    # -- inputs -------------------------------------------------------------------------------------
    async def handle(self, message) -> None:
        """A parsed client message after ``create_stream``; ignored once the session is ending
        (what it heard until then is being flushed)."""
        if self._closing is not None:
            return
        if isinstance(message, ev.AudioFrame):
            if self.speech is None:
                await self.send(ev.error("服务器未启用语音识别，请使用文字作答（text_answer）"))
                return
            if message.pcm:
                await self.speech.feed(message.pcm)
            if message.end:
                await self.speech.end_of_stream()
        elif isinstance(message, ev.VideoFrame):
            if self.cheat is not None:
                await self.cheat.submit_frame(message.jpeg)
        elif isinstance(message, ev.ClientEvent):
            if self.cheat is not None:
                await self.cheat.client_event(message.event)
        elif isinstance(message, ev.EndAnswer):
            # the utterance in progress, and finals still being recognised, belong to this answer
            if self.speech is not None:
                self.spawn(self._end_answer_after_flush(), "end-answer")
            else:
                self.events.put_nowait(message)
        elif isinstance(message, ev.TextAnswer):
            await self.record_utterance(message.text, "text", None, None)
            self.events.put_nowait(message)
        elif isinstance(message, ev.CodeSubmit):
            self.events.put_nowait(message)
        elif isinstance(message, ev.TtsPlayback):
            if self.voice is None:
                await self.send(ev.error("tts_playback 需要在 create_stream 中设置 \"tts\": true", field="type"))
            else:
                await self.voice.on_playback(message)

    async def _end_answer_after_flush(self) -> None:
        await self._flush_speech()
        self.events.put_nowait(ev.EndAnswer())

    async def on_speech_event(self, event) -> None:
        if self.voice is not None:      # speech heard while the interviewer speaks: held, dropped or a barge-in
            await self.voice.hear(event, self._speech_event)
        else:
            await self._speech_event(event)

    async def _speech_event(self, event) -> None:
        if isinstance(event, ev.Transcript):
            if event.text:
                await self.send(ev.asr_result(event.text, event.is_final))
            if event.is_final and event.text:
                await self.record_utterance(event.text, "speech", event.audio_start, event.audio_end)
        elif isinstance(event, ev.AsrFailed):      # said so; the utterance is kept, marked, with no text
            await self.send(ev.asr_failed(event.reason))
            await self.record_utterance("", "speech", event.audio_start, event.audio_end, asr_failed=event.reason)
        self.events.put_nowait(event)

    async def record_utterance(self, text: str, source: str, t_start: float | None, t_end: float | None,
                               **marks: Any) -> None:
        ctx, phase = self.ctx, self.phase
        # which of its prompts the candidate is answering: the phase says (its ``attribution``)
        where = dict(phase.attribution(ctx)) if phase is not None else {}
        entry = {**where, "phase": ctx.name if ctx is not None else "end", "text": text, "source": source,
                 "t_start": t_start, "t_end": t_end, "at": utcnow(), **marks}
        await self._fenced(self.engine.store.append_transcript(self.interview_id, [entry], epoch=self.epoch))
        self.engine.emit(self.interview_id, "utterance", entry)

    async def on_cheat_episode(self, record: dict) -> None:
        await self.send(ev.cheat_detected(record["kind"], record["text"]))
        self._cheat_indexes[id(record)] = self._cheat_count
        self._cheat_count += 1
        await self.store_update(push={"cheat_events": dict(record, phase=self.ctx.name if self.ctx else "end")})
        self.engine.emit(self.interview_id, "cheat", record)

    async def on_cheat_episode_end(self, record: dict) -> None:
        position = self._cheat_indexes.pop(id(record), None)
        if position is None:
            return
        await self.store_update(set_fields={f"cheat_events.{position}.ended_at": record.get("ended_at"),
                                            f"cheat_events.{position}.frames": record.get("frames")})

    async def on_frame_error(self, text: str) -> None:
        await self.send(ev.error(text))

    # -- the phase loop -------------------------------------------------------------------------------
    async def say(self, phase_name: str, text: str, **extra: Any) -> None:
        question = extra.pop("question", None)
        message = ev.interview_message(phase_name, text, **extra)
        set_fields = {"current_message": message}
        push = None
        if question is not None:
            record = dataclasses.asdict(question)
            record.update(index=extra.get("question_index"), phase=phase_name, asked_at=utcnow())
            push = {"questions": record}
        await self.store_update(set_fields=set_fields, push=push)
        self.interview["current_message"] = message
        await self.send_message(message)
        if question is not None:
            self.engine.emit(self.interview_id, "question", push["questions"])

    async def _loop(self) -> None:
        while True:
            event = await self.events.get()
            try:
                if isinstance(event, ev.Tick):
                    self._tick_pending = False
                phase, ctx = self.phase, self.ctx
                if phase is None:
                    if isinstance(event, (ev.EndAnswer, ev.TextAnswer, ev.CodeSubmit)):
                        await self.send(ev.error("面试已结束"))
                    continue
                await phase.on_event(ctx, event)
                await self._run_transitions()
            except asyncio.CancelledError:
                raise
            except LeaseLost:       # taken over: the session is closing and says so itself
                pass
            except Exception:
                log.exception("phase %s failed on %r", self.ctx.name if self.ctx else "?", type(event).__name__)
                await self.send(ev.error("服务器处理该消息时出错，面试将继续"))
            finally:
                self.events.task_done()

    async def _ticker(self) -> None:
        tick = float(self.engine.timing.get("tick_seconds", 0.25))
        clock = self.engine.clock
        while True:
            await clock.sleep(tick)
            if not self._tick_pending:
                self._tick_pending = True
                self.events.put_nowait(ev.Tick(clock.now()))


def _write_done(writes: set):
    def done(task: asyncio.Task) -> None:
        writes.discard(task)
        if not task.cancelled() and task.exception() is not None \
                and not isinstance(task.exception(), LeaseLost):
            log.warning("a session write failed: %s", task.exception())
    return done


async def _quietly(awaitable, what: str) -> None:
    """Cleanup steps: one failing (a refused write, a closed socket) must not stop the others."""
    try:
        await awaitable
    except LeaseLost:
        pass
    except Exception as exc:
        log.info("%s failed: %s", what, exc)
