"""The phase protocol.

An interview is a sequence of phases (``[engine] phases`` in plugins.toml). A phase plugin registers a
factory through ``register_phases``; the engine creates one ``Phase`` object per session and drives it
with typed events, in the manner of livekit agents' tasks:

* ``on_enter(ctx)``  — the phase starts (first time only). Typically ``await ctx.say(...)``.
* ``on_resume(ctx)`` — a reconnecting client resumed an interview standing in this phase. The engine
  has already re-sent the last ``interview_message``; rebuild timers here, send nothing twice.
* ``on_event(ctx, event)`` — every event while the phase is current: ``Transcript`` (partial and
  final), ``SpeechStarted``, ``SpeechEnded``, ``EndAnswer``, ``TextAnswer``, ``CodeSubmit`` and
  ``Tick`` (the engine's timer, from the injected clock).
* ``on_exit(ctx)``   — the phase is over (it called ``ctx.finish()``).

A phase keeps everything it needs to resume in ``ctx.state`` (a JSON-able dict) and persists it with
``await ctx.save()``; the engine persists it also on each phase change.
"""
from __future__ import annotations

from typing import Any, Awaitable, Protocol

from core.clock import Clock
from core.interfaces import AsrContext, CodeRunner, QuestionSource


class PhaseContext(Protocol):
    interview_id: str
    interview: dict           # the stored interview (position, company, ...)
    resume: dict              # the chosen resume
    clock: Clock
    timing: dict              # [timing] of plugins.toml
    settings: dict            # this phase's [plugins.<phase name>] table
    state: dict               # this phase's persisted state
    question_sources: list[QuestionSource]
    code_runner: CodeRunner | None

    async def send(self, message: dict) -> None:
        """Send a message to the client (not remembered for resume)."""

    async def say(self, text: str, **extra: Any) -> None:
        """Send ``interview_message(phase=<this phase>, text, **extra)``, store it as the current
        message (re-sent on reconnect) and, with ``question=<Question>``, record the question asked.
        Final utterances and typed answers are stored by the engine itself, as they arrive."""

    async def save(self) -> None:
        """Persist ``state`` now."""

    async def store(self, *, set_fields: dict | None = None, push: dict | None = None) -> None:
        """Write phase data (code submissions, ...) to the interview record at once."""

    def set_asr_context(self, context: AsrContext) -> None:
        """Bias speech recognition towards the current question and the resume's terms."""

    def background(self, coro: Awaitable[Any], name: str, finish_on_close: bool = False) -> None:
        """Run a task tied to the session. It is cancelled when the session closes, unless
        ``finish_on_close``: then closing waits for it (up to a minute), so work whose result is
        stored (a code submission) is not lost when the connection drops."""

    async def finish(self) -> None:
        """This phase is done: the engine calls ``on_exit`` and enters the next phase."""


class Phase(Protocol):
    name: str

    async def on_enter(self, ctx: PhaseContext) -> None: ...

    async def on_resume(self, ctx: PhaseContext) -> None: ...

    async def on_event(self, ctx: PhaseContext, event: Any) -> None: ...

    async def on_exit(self, ctx: PhaseContext) -> None: ...


class PhaseFactory(Protocol):
    def create(self) -> Phase:
        """A fresh Phase object for one interview session."""
