"""One interview connection: ``Session`` and the parts it is made of, one job each.

* ``SessionTasks``  — the session's background tasks: named after the interview, logged when they
  fail, cancelled together on close; those that must finish (a code run whose result is stored) are
  waited for instead.
* ``SessionWriter`` — every write of the session, fenced by its lease epoch. Each write runs as a
  task of its own, so a caller cancelled while waiting does not cancel it and closing waits for it;
  a refused write means the interview was taken over and ends the session. It also keeps where each
  cheat episode sits in the stored list, so that its end lands on it.
* ``SessionInputs`` — what the client streams: audio to the speech pipeline, frames and client
  events to the cheat monitor, typed answers, code, end-of-answer and playback reports to the event
  queue; finals and typed answers are recorded as they arrive.
* ``PhaseRunner``   — the phases: their contexts (``PhaseCtx``, the ``core.phase.PhaseContext``),
  the event loop that hands one event at a time to the current phase, the ticker, transitions and
  the interview's end.
* ``Session``       — puts them together for ``Engine.open_session``: starting, the client's
  messages, and closing (flush what was heard, let it reach the phase and the store, release the
  lease).

Nothing here imports sanic or motor: the web layer passes ``send`` and the store is the engine's.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from core import events as ev
from core.interfaces import AsrContext, InterviewStore, LeaseLost
from core.phase import transition_text
from core.recording import Recorder
from core.timeutil import utcnow

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger("mianshi.session")

Send = Callable[[dict], Awaitable[None]]

END_TEXT = "面试结束，感谢您的参与！评估报告正在生成，稍后可在报告页查看。"
TAKEN_OVER_TEXT = "该面试已在新的连接中继续，本连接将关闭"
CLOSE_TAKEN_OVER = 4409          # WebSocket close code of a connection whose interview moved on
NO_SPEECH_TEXT = "服务器未启用语音识别，请使用文字作答（text_answer）"
NO_VOICE_TEXT = "tts_playback 需要在 create_stream 中设置 \"tts\": true"
PHASE_FAILED_TEXT = "服务器处理该消息时出错，面试将继续"
ENDED_TEXT = "面试已结束"


class SessionTasks:
    """The background tasks of one session (see the module doc)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.running: set[asyncio.Task] = set()
        self.must_finish: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self.running)

    def spawn(self, coro, name: str, finish_on_close: bool = False) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.prefix}:{name}")
        self.running.add(task)
        task.add_done_callback(self._done)
        if finish_on_close:
            self.must_finish.add(task)
            task.add_done_callback(self.must_finish.discard)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self.running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session task %s failed", task.get_name(), exc_info=task.exception())

    async def finish(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for the tasks that must finish."""
        if self.must_finish:
            await asyncio.wait(list(self.must_finish), timeout=timeout)

    async def cancel_all(self) -> None:
        while self.running:
            tasks = list(self.running)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class SessionWriter:
    """The session's writes to the store (see the module doc). ``on_lost`` is called when the store
    refuses a write because the lease moved on."""

    def __init__(self, store: InterviewStore, interview_id: str, epoch: int | None,
                 on_lost: Callable[[], Any], cheat_events: int = 0) -> None:
        self.store = store
        self.interview_id = interview_id
        self.epoch = epoch
        self._on_lost = on_lost
        self._in_flight: set[asyncio.Task] = set()
        self._cheat_positions: dict[int, int] = {}       # id(episode record) -> index in cheat_events
        self._cheat_count = cheat_events

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def _fenced(self, write: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(write)
        self._in_flight.add(task)
        task.add_done_callback(self._write_done)
        try:
            await asyncio.shield(task)
        except LeaseLost:
            self._on_lost()
            raise

    def track(self, task: asyncio.Task) -> None:
        """A write that runs on its own (a recording): closing waits for it like the others."""
        self._in_flight.add(task)
        task.add_done_callback(self._write_done)

    def _write_done(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None \
                and not isinstance(task.exception(), LeaseLost):
            log.warning("a session write failed: %s", task.exception())

    async def update(self, *, set_fields: dict | None = None, push: dict | None = None) -> None:
        fields = dict(set_fields or {})
        fields["updated_at"] = utcnow()
        await self._fenced(self.store.update_interview(self.interview_id, set_fields=fields, push=push,
                                                       epoch=self.epoch))

    async def append_transcript(self, entry: dict) -> int:
        """Store a transcript entry; returns its position."""
        task = asyncio.ensure_future(self.store.append_transcript(self.interview_id, [entry], epoch=self.epoch))
        await self._fenced(task)
        return task.result()

    async def update_transcript_entry(self, position: int, fields: dict) -> None:
        await self._fenced(self.store.update_transcript_entry(self.interview_id, position, fields, epoch=self.epoch))

    async def cheat_started(self, record: dict, phase: str) -> None:
        self._cheat_positions[id(record)] = self._cheat_count
        self._cheat_count += 1
        await self.update(push={"cheat_events": dict(record, phase=phase)})

    async def cheat_ended(self, record: dict) -> None:
        position = self._cheat_positions.pop(id(record), None)
        if position is None:
            return
        await self.update(set_fields={f"cheat_events.{position}.ended_at": record.get("ended_at"),
                                      f"cheat_events.{position}.frames": record.get("frames")})

    async def wait(self, timeout: float) -> None:
        """Wait for the writes still in flight: a backed-up database delays a closing session; it
        does not lose what it heard."""
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=timeout)

    async def release_lease(self) -> None:
        if self.epoch is not None:
            await self.store.release_lease(self.interview_id, self.epoch)


class PhaseCtx:
    """The ``core.phase.PhaseContext`` a session gives to each of its phases."""

    def __init__(self, runner: "PhaseRunner", name: str, settings: dict, state: dict, phase) -> None:
        self._runner = runner
        self.name = name
        self.input = phase.input          # sent with the phase's interview messages (and its title)
        self.title = phase.title
        self.settings = settings
        self.state = state
        engine = runner.engine
        self.interview_id = runner.interview_id
        self.interview = runner.interview
        self.resume = runner.resume
        self.clock = engine.clock
        self.timing = engine.timing
        self.question_sources = engine.question_sources
        self.code_runner = engine.code_runner
        self.code_runner_problem = engine.code_runner_problem

    async def send(self, message: dict) -> None:
        await self._runner.send(message)

    async def say(self, text: str, **extra: Any) -> None:
        await self._runner.say(self.name, text, input=self.input, phase_title=self.title or None, **extra)

    async def save(self) -> None:
        await self._runner.writer.update(set_fields={f"phase_state.{self.name}": self.state})

    async def store(self, *, set_fields: dict | None = None, push: dict | None = None) -> None:
        await self._runner.writer.update(set_fields=set_fields, push=push)

    def set_asr_context(self, context: AsrContext) -> None:
        self._runner.inputs.set_asr_context(context)

    def prepare_speech(self, text: str) -> None:
        if self._runner.voice is not None:
            self._runner.voice.prefetch(text)

    def background(self, coro, name: str, finish_on_close: bool = False) -> asyncio.Task:
        return self._runner.tasks.spawn(coro, name, finish_on_close=finish_on_close)

    async def finish(self) -> None:
        self._runner.request_advance()


class PhaseRunner:
    """The phases of one session (see the module doc). ``send`` sends a message; ``send_message``
    sends an ``interview_message`` (with its voice, for sessions that asked for one)."""

    def __init__(self, engine: "Engine", interview: dict, resume: dict, *, writer: SessionWriter,
                 tasks: SessionTasks, send: Send, send_message: Send) -> None:
        self.engine = engine
        self.interview = interview
        self.resume = resume
        self.interview_id = writer.interview_id
        self.writer = writer
        self.tasks = tasks
        self.send = send
        self._send_message = send_message
        self.inputs: SessionInputs | None = None
        self.voice = None
        self.events: asyncio.Queue = asyncio.Queue()
        self.phases: list = []
        self.contexts: list[PhaseCtx] = []
        self.index = 0
        self.finished = False
        self._advance = False
        self._tick_pending = False

    @property
    def phase(self):
        return self.phases[self.index] if not self.finished and self.index < len(self.phases) else None

    @property
    def ctx(self) -> PhaseCtx | None:
        return self.contexts[self.index] if not self.finished and self.index < len(self.contexts) else None

    @property
    def current_name(self) -> str:
        ctx = self.ctx
        return ctx.name if ctx is not None else "end"

    def attribution(self) -> dict:
        """Where an utterance arriving now belongs: the current phase and which of its prompts it
        answers (the phase's ``attribution``)."""
        phase, ctx = self.phase, self.ctx
        where = dict(phase.attribution(ctx)) if phase is not None else {}
        return {**where, "phase": self.current_name}

    def request_advance(self) -> None:
        self._advance = True

    def post(self, event) -> None:
        self.events.put_nowait(event)

    async def start(self) -> None:
        """Build the phases, enter the stored phase (or the first), and start the loop and ticker."""
        engine = self.engine
        stored_states = self.interview.get("phase_state") or {}
        for name, factory in engine.phase_factories:
            phase = factory.create()
            self.phases.append(phase)
            settings = engine.plugin_context(name).settings
            self.contexts.append(PhaseCtx(self, name, settings, dict(stored_states.get(name) or {}), phase))
        names = [name for name, _ in engine.phase_factories]
        fresh = self.interview.get("phase") not in names
        if fresh:
            self.index = 0
            await self.writer.update(set_fields={"status": "in_progress",
                                                 "resume_id": int(self.resume.get("resume_id") or self.resume.get("id") or 0),
                                                 "started_at": utcnow(), "phase": names[0]})
            self.interview["status"] = "in_progress"
        else:
            self.index = names.index(self.interview["phase"])
        for phase, ctx in zip(self.phases, self.contexts):
            if phase is not self.phases[self.index]:
                await phase.prepare(ctx)
        if self.voice is not None:             # the fixed transition texts, ready before they are said
            for i in range(1, len(self.phases)):
                self.voice.prefetch(transition_text(self.phases[i - 1], self.phases[i]))
        self.tasks.spawn(self._loop(), "events")
        self.tasks.spawn(self._ticker(), "ticker")
        if fresh:
            await self._enter(self.index)
        else:
            current = self.interview.get("current_message")
            if current:
                await self._send_message(current)
            await self.phases[self.index].on_resume(self.contexts[self.index])
        await self._run_transitions()

    async def save_state(self) -> None:
        if self.ctx is not None:
            await self.ctx.save()

    async def _enter(self, index: int) -> None:
        self.index = index
        name = self.contexts[index].name
        await self.writer.update(set_fields={"phase": name}, push={"phase_history": {"phase": name, "at": utcnow()}})
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
        await self.writer.update(set_fields={"status": "finished", "phase": "end", "finished_at": utcnow(),
                                             "current_message": message, "report_status": "pending"},
                                 push={"phase_history": {"phase": "end", "at": utcnow()}})
        await self._send_message(message)
        self.engine.emit(self.interview_id, "end", {"at": utcnow()})
        self.engine.reports.schedule(self.interview_id)

    async def say(self, phase_name: str, text: str, **extra: Any) -> None:
        question = extra.pop("question", None)
        message = ev.interview_message(phase_name, text, **extra)
        push = None
        if question is not None:
            record = dataclasses.asdict(question)
            record.update(index=extra.get("question_index"), phase=phase_name, asked_at=utcnow())
            push = {"questions": record}
        await self.writer.update(set_fields={"current_message": message}, push=push)
        self.interview["current_message"] = message
        await self._send_message(message)
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
                        await self.send(ev.error(ENDED_TEXT))
                    continue
                await phase.on_event(ctx, event)
                await self._run_transitions()
            except asyncio.CancelledError:
                raise
            except LeaseLost:       # taken over: the session is closing and says so itself
                pass
            except Exception:
                log.exception("phase %s failed on %r", self.current_name, type(event).__name__)
                await self.send(ev.error(PHASE_FAILED_TEXT))
            finally:
                self.events.task_done()

    async def _ticker(self) -> None:
        tick = float(self.engine.timing.get("tick_seconds", 0.25))
        clock = self.engine.clock
        while True:
            await clock.sleep(tick)
            if not self._tick_pending:
                self._tick_pending = True
                self.post(ev.Tick(clock.now()))


class SessionInputs:
    """What the client streams (see the module doc). ``record(text, source, t_start, t_end)`` stores
    a final or typed answer; speech events reach the phases through ``post``."""

    def __init__(self, engine: "Engine", *, send: Send, post: Callable[[Any], None], tasks: SessionTasks,
                 record: Callable[..., Awaitable[int]], amend: Callable[[int, dict], Awaitable[None]],
                 on_episode, on_episode_end, send_corrections: bool = False) -> None:
        self.send = send
        self.post = post
        self.tasks = tasks
        self.record = record
        self.amend = amend
        self.voice = None
        self.recorder = None                # core.recording.Recorder: keeps the audio for recordings
        # with correctors, speech events reach the phase through one ordered queue: a final waits for
        # its correction (stored raw first), and what was heard after it waits behind it
        self.corrections = engine.corrections
        self.send_corrections = send_corrections
        self._ordered: asyncio.Queue | None = None
        self.asr_context = AsrContext()
        self.speech = None
        self.cheat = None
        if engine.asr is not None:
            from core.speech import SpeechPipeline
            # [limits] audio_queue_frames bounds the per-session audio queue ([speech] queue_frames wins)
            speech = {"queue_frames": engine.limits.get("audio_queue_frames", 500), **engine.config.get("speech", {})}
            self.speech = SpeechPipeline(engine.vad, engine.asr, engine.asr_scheduler, engine.clock,
                                         self.on_speech_event, speech)
        if engine.detectors:
            from core.cheat import CheatMonitor
            self.cheat = CheatMonitor(engine.detectors, engine.vision_pool, engine.clock,
                                      on_episode=on_episode, on_frame_error=self._frame_error,
                                      settings={"video_queue_frames": engine.limits.get("video_queue_frames", 2),
                                                **engine.config.get("cheat", {})},
                                      on_episode_end=on_episode_end, kinds=engine.cheat_kinds,
                                      remote=engine.vision_remote)

    def set_asr_context(self, context: AsrContext) -> None:
        self.asr_context = context
        if self.speech is not None:
            self.speech.set_context(context)

    async def handle(self, message) -> None:
        if isinstance(message, ev.AudioFrame):
            if self.speech is None:
                await self.send(ev.error(NO_SPEECH_TEXT))
                return
            if message.pcm:
                await self.speech.feed(message.pcm)
                if self.recorder is not None:
                    self.recorder.feed(message.pcm)
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
                self.tasks.spawn(self._end_answer_after_flush(), "end-answer")
            else:
                self.post(message)
        elif isinstance(message, ev.TextAnswer):
            await self.record(message.text, "text", None, None)
            self.post(message)
        elif isinstance(message, ev.CodeSubmit):
            self.post(message)
        elif isinstance(message, ev.TtsPlayback):
            if self.voice is None:
                await self.send(ev.error(NO_VOICE_TEXT, field="type"))
            else:
                await self.voice.on_playback(message)

    async def _end_answer_after_flush(self) -> None:
        await self.flush_speech()
        self.post(ev.EndAnswer())

    async def on_speech_event(self, event) -> None:
        if self.voice is not None:      # speech heard while the interviewer speaks: held, dropped or a barge-in
            await self.voice.hear(event, self._speech_event)
        else:
            await self._speech_event(event)

    async def _speech_event(self, event) -> None:
        if isinstance(event, ev.Transcript) and event.text:
            await self.send(ev.asr_result(event.text, event.is_final))
        elif isinstance(event, ev.AsrFailed):      # said so; the utterance is kept, marked, with no text
            await self.send(ev.asr_failed(event.reason))
        if self.corrections is not None:
            if self._ordered is None:
                self._ordered = asyncio.Queue()
                self.tasks.spawn(self._correct_in_order(), "corrections")
            self._ordered.put_nowait(event)
            return
        self.post(await self._store_heard(event))

    async def _store_heard(self, event):
        """Store a final (corrected first, with correctors) or an utterance the recogniser failed
        on; returns the event the phase gets."""
        if isinstance(event, ev.Transcript) and event.is_final and event.text:
            if self.corrections is not None:
                return await self._corrected(event)
            await self.record(event.text, "speech", event.audio_start, event.audio_end)
        elif isinstance(event, ev.AsrFailed):
            await self.record("", "speech", event.audio_start, event.audio_end, asr_failed=event.reason)
        return event

    async def _correct_in_order(self) -> None:
        queue = self._ordered
        while True:
            event = await queue.get()
            try:
                event = await self._store_heard(event)
                self.post(event)
            except asyncio.CancelledError:
                raise
            except LeaseLost:           # taken over: the session is closing
                pass
            except Exception:
                log.exception("correcting a final failed")
                self.post(event)
            finally:
                queue.task_done()

    async def _corrected(self, event: ev.Transcript) -> ev.Transcript:
        """Store the final as heard, ask the correctors, store what they and the guard decided."""
        position = await self.record(event.text, "speech", event.audio_start, event.audio_end)
        outcome = await self.corrections.correct(event.text, self.asr_context)
        if outcome.corrector is not None or outcome.refused:
            await self.amend(position, outcome.record())
        if not outcome.changed:
            return event
        if self.send_corrections:
            await self.send(ev.asr_correction(outcome.text, outcome.raw_text))
        return dataclasses.replace(event, text=outcome.text)

    async def _frame_error(self, text: str) -> None:
        await self.send(ev.error(text))

    async def flush_speech(self) -> None:
        """Finish what has been heard: process queued audio, close an open utterance, wait for its
        final."""
        if self.speech is None:
            return
        await self.speech.drain()
        if self.speech.speaking:
            await self.speech.end_of_stream()
            await self.speech.drain()
        if self._ordered is not None:
            await self._ordered.join()          # and their corrections

    async def aclose(self) -> None:
        if self.speech is not None:
            await _quietly(self.speech.aclose(), "closing the speech pipeline")
        if self.cheat is not None:
            await _quietly(self.cheat.aclose(), "closing the cheat monitor")


class Session:
    """One interview connection (see the module doc), made by ``Engine.open_session``."""

    def __init__(self, engine: "Engine", user_id: str, interview: dict, resume: dict, send: Send, *,
                 stream_id: str | None = None, epoch: int | None = None, hangup=None, tts: bool = False,
                 corrections: bool = False) -> None:
        self.engine = engine
        self.user_id = user_id
        self.interview = interview
        self.resume = resume
        self.interview_id = str(interview.get("id") or interview.get("_id"))
        self.stream_id = stream_id or uuid.uuid4().hex
        self.epoch = epoch                     # lease epoch: fences every write of this session
        self._hangup = hangup
        self._closing: asyncio.Task | None = None
        self._send = send
        self.closed = False
        self.work = SessionTasks(self.interview_id)
        self.writer = SessionWriter(engine.store, self.interview_id, epoch, lambda: self.begin_close("lost"),
                                    cheat_events=len(interview.get("cheat_events") or []))
        self.runner = PhaseRunner(engine, interview, resume, writer=self.writer, tasks=self.work,
                                  send=self.send, send_message=self.send_message)
        self.inputs = SessionInputs(engine, send=self.send, post=self.runner.post, tasks=self.work,
                                    record=self.record_utterance, amend=self.writer.update_transcript_entry,
                                    on_episode=self.on_cheat_episode, on_episode_end=self.writer.cheat_ended,
                                    send_corrections=corrections)
        self.runner.inputs = self.inputs
        self.recorder = self.inputs.recorder = Recorder.for_session(self)   # utterance ids, recordings, frames
        self.voice = None                      # core.tts.SessionVoice when create_stream asked for tts
        if tts:
            from core.tts import SessionVoice
            self.voice = SessionVoice(self, engine.tts, engine.config.get("tts", {}))
            self.runner.voice = self.inputs.voice = self.voice

    # -- what others read ---------------------------------------------------------------------------
    @property
    def events(self) -> asyncio.Queue:
        """The events the current phase handles, one at a time."""
        return self.runner.events

    @property
    def tasks(self) -> set[asyncio.Task]:
        return self.work.running

    @property
    def speech(self):
        return self.inputs.speech

    @property
    def cheat(self):
        return self.inputs.cheat

    @property
    def asr_context(self) -> AsrContext:
        return self.inputs.asr_context

    @property
    def closing(self) -> bool:
        """Closing has begun (or is over)."""
        return self._closing is not None

    def spawn(self, coro, name: str) -> asyncio.Task:
        return self.work.spawn(coro, name)

    async def hangup(self, code: int, reason: str) -> None:
        """Close the connection (the web layer's ``hangup``), if it gave one."""
        if self._hangup is not None:
            await self._hangup(code, reason)

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

    # -- what the session records -------------------------------------------------------------------
    async def record_utterance(self, text: str, source: str, t_start: float | None, t_end: float | None,
                               **marks: Any) -> int:
        """Store a final or typed answer where the current phase says it belongs (``marks``: e.g.
        ``asr_failed``, why a heard utterance has no text); its position."""
        entry = {**self.runner.attribution(), "text": text, "source": source,
                 "utterance_id": self.recorder.utterance(t_start, t_end),
                 "t_start": t_start, "t_end": t_end, "at": utcnow(), **marks}
        position = await self.writer.append_transcript(entry)
        self.engine.emit(self.interview_id, "utterance", entry)
        return position

    async def on_cheat_episode(self, record: dict) -> None:
        record["frame_id"] = self.recorder.frame(getattr(self.cheat, "last_frame", None))
        await self.send(ev.cheat_detected(record["kind"], record["text"]))
        await self.writer.cheat_started(record, self.runner.current_name)
        self.engine.emit(self.interview_id, "cheat", record)

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.runner.start()

    async def handle(self, message) -> None:
        """A parsed client message after ``create_stream``; ignored once the session is ending
        (what it heard until then is being flushed)."""
        if self._closing is None:
            try:
                await self.inputs.handle(message)
            except LeaseLost:
                # the message's write met another connection's lease before the heartbeat did: the
                # session is closing as "lost" and tells the client and hangs up (4409) itself; the
                # connection must not end first as if the client had left
                pass

    async def close(self, reason: str = "closed") -> None:
        """End the session: ``closed`` (the connection ended) and ``shutdown`` finish what was heard
        and store it; ``takeover`` (a new connection on this instance) does too, then tells this
        client and hangs up; ``lost`` (the lease went to another connection, maybe on another
        instance) writes nothing more. Idempotent, and not cancellable half way: the work runs in
        a task of its own that the caller only waits for."""
        await asyncio.shield(self.begin_close(reason))

    def begin_close(self, reason: str) -> asyncio.Task:
        if self._closing is None:
            self._closing = self.engine.track_closing(self._close(reason), f"{self.interview_id}:close")
        return self._closing

    async def _close(self, reason: str) -> None:
        lost = reason == "lost"
        try:
            if reason in ("takeover", "lost"):
                await _quietly(asyncio.wait_for(self.send(ev.error(TAKEN_OVER_TEXT, code=CLOSE_TAKEN_OVER)), 2.0),
                               "telling the client")
            if not lost:
                await self._finish_pending()
            self.closed = True
            await self.inputs.aclose()
            await self.work.cancel_all()
            if not lost:
                await _quietly(self.runner.save_state(), "saving the phase state")
                await _quietly(self.writer.release_lease(), "releasing the lease")
        finally:
            self.closed = True
            self.engine.forget_session(self)
            if reason in ("takeover", "lost") and self._hangup is not None:
                # not awaited here: a new connection waiting for this close must not wait for a
                # dead peer's closing handshake
                self.engine.track_closing(_quietly(self._hangup(CLOSE_TAKEN_OVER, "taken over"),
                                                   "closing the connection"), f"{self.interview_id}:hangup")

    async def _finish_pending(self) -> None:
        """Flush what has been heard and let it reach the phase and the store. The flush waits as
        long as the writes may (``close_write_wait_seconds``): its last step is the final's write,
        and a loaded database is no reason to lose the answer's last utterance (a 30 s cut did,
        under churn on a slow machine)."""
        if self.speech is not None:
            try:
                await asyncio.wait_for(self.inputs.flush_speech(), self.engine.close_write_wait)
            except Exception:
                log.exception("flushing speech on close failed")
        try:
            await asyncio.wait_for(self.runner.events.join(), 10)
        except asyncio.TimeoutError:
            pass
        await self.work.finish(60)
        await self.writer.wait(self.engine.close_write_wait)


async def _quietly(awaitable, what: str) -> None:
    """Cleanup steps: one failing (a refused write, a closed socket) must not stop the others."""
    try:
        await awaitable
    except LeaseLost:
        pass
    except Exception as exc:
        log.info("%s failed: %s", what, exc)
