"""The phase protocol: the one place a phase author reads.

An interview is a sequence of phases (``[engine] phases`` in plugins.toml). A phase plugin registers a
``PhaseFactory`` subclass through ``register_phases``; the engine builds the factory once per process
(``factory_class(ctx: PluginContext)``) and calls ``factory.create()`` once per session for a fresh
``Phase``. Subclass ``Phase`` and override only what you need: every method has a no-op default.

The engine drives a phase with typed events (``core.events``), one at a time, in the manner of
livekit agents' tasks:

* ``prepare(ctx)``   — the session started and this phase is not the current one: start background
  work it will need (the question phase plans its questions during the intro).
* ``on_enter(ctx)``  — the phase starts (first time only). The engine has already said the
  transition text (the previous phase's ``closing`` + this phase's ``opening``).
* ``on_resume(ctx)`` — a reconnecting client resumed an interview standing in this phase. The engine
  has already re-sent the last ``interview_message``; rebuild timers here, send nothing twice.
* ``on_event(ctx, event)`` — every event while the phase is current: ``Transcript`` (partial and
  final), ``SpeechStarted``, ``SpeechEnded``, ``EndAnswer``, ``TextAnswer``, ``CodeSubmit``,
  ``VoiceStarted`` / ``VoiceEnded`` (the interviewer's voice plays one of the phase's messages, for
  clients that asked for it; ``core.turns.Turn`` holds its silence timer meanwhile) and ``Tick`` (the
  engine's timer, from the injected clock).
* ``on_exit(ctx)``   — the phase is over (it called ``ctx.finish()``).
* ``attribution(ctx)`` — which of the phase's prompts the candidate is answering right now: a dict
  stored on every transcript entry (final utterance or typed answer) that arrives while the phase
  is current, e.g. ``{"prompt_index": 2}``. Its ``report_section`` reads them back.

Class attributes, all data (nothing outside the phase knows it by name):

* ``input`` — what the client should offer while the phase runs: ``"speech"`` (microphone, the
  "回答完毕" button and typed answers), ``"code"`` (the code editor) or ``"none"``. Sent as the
  additive field ``input`` of every ``interview_message`` of the phase.
* ``title`` — the phase's Chinese name (the page's phase label, the report section's heading).
* ``opening`` / ``closing`` — transition texts: entering phase B after phase A, the engine says
  ``f"{A.closing}，{B.opening}"`` (just ``B.opening`` when A has no closing; nothing when B has no
  opening). The built-ins give the guide's texts: "自我介绍结束，下面开始问问题。", "问答环节结束，下面进入代码题环节。".

A phase keeps everything it needs to resume in ``ctx.state`` (a JSON-able dict) and persists it with
``await ctx.save()``; the engine persists it also on each phase change.

What the phase contributes to the report is its factory's ``report_section(record)``: called when
the report is written (possibly in another process, long after the session), with the stored
interview and its transcript; it returns a section ``{"title", "items": [{"prompt", "answer",
"evidence": [...]}, ...]}`` that every scorer scores and the report page renders, or None.
"""
from __future__ import annotations

from typing import Any, Awaitable, Protocol

from core.clock import Clock
from core.interfaces import AsrContext, CodeRunner, PluginContext, QuestionSource

INPUTS = ("speech", "code", "none")


class PhaseContext(Protocol):
    """What a phase gets from the engine (``ctx``), one per phase per session."""
    name: str                 # the phase's registered name
    interview_id: str
    interview: dict           # the stored interview (position, company, ...)
    resume: dict              # the chosen resume
    clock: Clock
    timing: dict              # [timing] of plugins.toml
    settings: dict            # this phase's [plugins.<phase name>] table
    state: dict               # this phase's persisted state
    question_sources: list[QuestionSource]
    code_runner: CodeRunner | None
    code_runner_problem: str | None     # why the code runner cannot run, or None

    async def send(self, message: dict) -> None:
        """Send a message to the client (not remembered for resume)."""

    async def say(self, text: str, **extra: Any) -> None:
        """Send ``interview_message(phase=<this phase>, text, input=<its input>, **extra)``, store it
        as the current message (re-sent on reconnect) and, with ``question=<Question>``, record the
        question asked. Final utterances and typed answers are stored by the engine itself, as they
        arrive, with this phase's ``attribution``."""

    async def save(self) -> None:
        """Persist ``state`` now."""

    async def store(self, *, set_fields: dict | None = None, push: dict | None = None) -> None:
        """Write phase data (code submissions, ...) to the interview record at once."""

    def set_asr_context(self, context: AsrContext) -> None:
        """Bias speech recognition towards the current question and the resume's terms."""

    def prepare_speech(self, text: str) -> None:
        """A text the phase will probably say next (the next question): its voice is synthesised
        now, so that it starts at once when said. Does nothing without a voice."""

    def background(self, coro: Awaitable[Any], name: str, finish_on_close: bool = False):
        """Run a task tied to the session and return it. It is cancelled when the session closes,
        unless ``finish_on_close``: then closing waits for it (up to a minute), so work whose result
        is stored (a code submission) is not lost when the connection drops."""

    async def finish(self) -> None:
        """This phase is done: the engine calls ``on_exit`` and enters the next phase."""


class Phase:
    """Base class of a phase: no-op defaults, override what you need."""
    name: str = ""
    input: str = "speech"
    title: str = ""
    opening: str = ""
    closing: str = ""

    def __init__(self, settings: dict | None = None) -> None:
        self.settings = settings or {}       # the phase's [plugins.<name>] table

    async def prepare(self, ctx: PhaseContext) -> None:
        return None

    async def on_enter(self, ctx: PhaseContext) -> None:
        return None

    async def on_resume(self, ctx: PhaseContext) -> None:
        return None

    async def on_event(self, ctx: PhaseContext, event: Any) -> None:
        return None

    async def on_exit(self, ctx: PhaseContext) -> None:
        return None

    def attribution(self, ctx: PhaseContext) -> dict:
        return {}


class PhaseFactory:
    """Base class of what ``register_phases`` registers: built once per process with the plugin's
    context, ``create()`` once per session. Set ``phase_class`` or override ``create``."""
    phase_class: type[Phase] | None = None

    def __init__(self, ctx: PluginContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

    def create(self) -> Phase:
        if self.phase_class is None:
            raise NotImplementedError(f"{type(self).__name__}: set phase_class or override create()")
        return self.phase_class(self.settings)

    def report_section(self, record: dict) -> dict | None:
        return None


def transition_text(previous: Phase | None, entering: Phase) -> str:
    """What the engine says when ``entering`` starts after ``previous`` (see the module doc)."""
    if not entering.opening:
        return ""
    if previous is not None and previous.closing:
        return f"{previous.closing}，{entering.opening}"
    return entering.opening
