"""The protocols that plugin factories return (see ``core/hookspecs.py``) and that storage implements.

Blocking methods (model inference, image work) are run by the engine in its thread pools, never on
the event loop; ``async`` methods are awaited by the engine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.clock import Clock
from core.events import CheatSignal


@dataclass
class PluginContext:
    """Handed to every factory. ``settings`` is the plugin's own table in plugins.toml,
    ``[plugins.<name>]`` (``{}`` when absent); ``config`` is the whole parsed configuration."""
    name: str
    settings: dict
    config: dict
    data_dir: Path
    clock: Clock


# --- speech --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VadEvent:
    kind: str        # "start" | "end"
    sample: int      # offset in samples from the start of the stream (16 kHz)


class VadStream(Protocol):
    def accept(self, pcm: np.ndarray) -> list[VadEvent]:
        """Feed int16 mono 16 kHz samples (any length); return the speech starts/ends found. Blocking."""

    def finish(self) -> list[VadEvent]:
        """End of stream: close an open segment (an ``end`` event) if any. Blocking."""

    # Optional, for an ``inline`` VAD: ``async def accept_async(pcm) -> list[VadEvent]``, what
    # ``accept`` returns, awaited on the event loop; the speech pipeline then calls it instead of
    # ``accept``. A model that is cheaper on many streams at once uses it to run the chunks all
    # sessions hand it in one loop turn as one call (plugins/vad_fsmn.py).


class Vad(Protocol):
    name: str
    # optional ``inline = True``: its streams' calls take microseconds, so the speech pipeline makes
    # them on the event loop instead of handing each frame to the VAD thread (the hand-off costs
    # more than such a VAD); a model-based VAD leaves it out

    def open_stream(self) -> VadStream:
        """Per-session streaming state; the model itself is shared."""


@dataclass
class AsrContext:
    """Biasing context the engine hands to ASR: the current question, the resume's terms,
    hints - phrases a good answer is likely to use (the question's reference points) - and the
    position type."""
    question: str = ""
    terms: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    domain: str = ""                   # the interview's position_type (backend, frontend, pm, qa, algo):
                                       # selects the domain lexicon (plugins/_lexicon.py)


class AsrStream(Protocol):
    def partial(self, pcm: np.ndarray, context: AsrContext) -> str:
        """Hypothesis for the utterance so far (``pcm`` is the whole utterance up to now; a streaming
        model may feed only what it has not seen yet). Blocking. May be skipped by the engine."""

    def final(self, pcm: np.ndarray, context: AsrContext) -> str:
        """Final text of the whole utterance, simplified Chinese; resets the stream for the next
        utterance. Returns "" for non-speech. Blocking."""

    # Optional: ``prepare_final(pcm, context) -> str``. A stream that has it is called when the
    # speaker pauses (ahead of partials, skipped under load) to decode the utterance so far as its
    # final would be; ``final`` may then return that result at once if only quiet followed. Its
    # text is shown as the next partial. Streaming models whose final is cheap need not have it.


class AsrEngine(Protocol):
    name: str

    def open_stream(self) -> AsrStream:
        """Per-session state; the model is loaded once per process by the factory."""


# --- questions and reports -----------------------------------------------------------------------
@dataclass
class Question:
    text: str
    kind: str = "fundamental"          # project | skill | fundamental | behavioral | follow_up
    topic: str = ""
    source: str = ""                   # name of the question source
    reference_points: list[str] = field(default_factory=list)   # 要点 a good answer covers (for the report)


@dataclass
class QuestionRequest:
    resume: dict                       # the stored resume (content fields of api.md)
    interview: dict                    # position_name, position_type, company_name, position_description, position_requirements
    count: int = 5


@dataclass
class FollowUpRequest:
    resume: dict
    interview: dict
    question: Question
    answer: str
    history: list[dict]                # earlier {question, answer} pairs


class QuestionSource(Protocol):
    name: str

    async def generate(self, request: QuestionRequest) -> list[Question]:
        """The planned questions for this interview, in Chinese. Raise on failure (the engine falls
        back to the next source)."""

    async def follow_up(self, request: FollowUpRequest) -> str | None:
        """A follow-up question for a shallow answer, or None."""


class Scorer(Protocol):
    name: str

    async def score(self, record: dict) -> dict:
        """Write the report for a finished interview ``record`` (the stored interview with its
        transcript, questions, code submissions and cheat events). Returns the report dict:
        ``{"overall_score", "summary", "questions": [{"index", "question", "answer", "score",
        "good", "missing", "reference_answer"}], "code": {...}, "cheat_events": [...]}``.
        Raise on failure (the engine retries later)."""


# --- vision --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheatKind:
    """A kind of suspicious behaviour. ``text`` is what the candidate is shown in ``cheat_detected``
    (Chinese, a full sentence); ``label`` names it in the report (Chinese, a few characters)."""
    name: str
    text: str
    label: str


class CheatDetector(Protocol):
    name: str
    kinds: tuple[CheatKind, ...]      # every kind this detector may put in a CheatSignal

    def detect(self, image: np.ndarray, state: dict) -> list[CheatSignal]:
        """Inspect one decoded BGR frame. ``state`` is this detector's per-session dict (for
        baselines). Blocking; runs in the engine's vision thread pool."""


# --- code ----------------------------------------------------------------------------------------
@dataclass
class RunLimits:
    cpu_seconds: float = 2.0
    wall_seconds: float = 5.0
    memory_mb: int = 256
    max_processes: int = 32
    max_output_bytes: int = 65536


@dataclass
class RunOutcome:
    stdout: str
    stderr: str
    exit_code: int | None
    wall_ms: float
    timed_out: bool = False
    memory_exceeded: bool = False
    output_truncated: bool = False
    error: str = ""                    # infrastructure error (sandbox could not start)


class CodeRunner(Protocol):
    name: str
    languages: tuple[str, ...]

    async def run(self, language: str, code: str, stdin: str, limits: RunLimits) -> RunOutcome:
        """Run ``code`` with ``stdin`` in isolation. Never raises for candidate errors."""

    def check(self) -> str | None:
        """None when the sandbox can run here, else a message saying what is missing."""


# --- the interviewer's voice (text to speech) ---------------------------------------------------
@dataclass(frozen=True)
class TtsAudio:
    """One synthesised sentence: mono PCM, signed 16-bit little-endian, at ``sample_rate`` Hz."""
    pcm: bytes
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate if self.sample_rate else 0.0


class TtsEngine(Protocol):
    name: str

    async def synthesize(self, text: str) -> TtsAudio:
        """The audio of one sentence (Chinese, already split by the engine; may contain digits and
        Latin letters). Raise on failure: the engine falls back to the next ``[engine] tts`` entry,
        then to text only. Must not block the event loop (run models in a thread or a process)."""

    # Optional: ``async def aclose()`` (stop worker processes, close HTTP clients).


@dataclass(frozen=True)
class CorrectionRequest:
    """One recognised final to correct, with what the candidate is answering."""
    text: str                  # the final as recognised (numbers already in one written form)
    question: str = ""         # the prompt being answered
    terms: list[str] = field(default_factory=list)   # the resume's terms and the question's reference points
    domain: str = ""           # the interview's position_type


class TranscriptCorrector(Protocol):
    name: str

    async def correct(self, request: CorrectionRequest) -> str | None:
        """The corrected text of ``request.text`` (the same text when nothing is wrong), or None
        for no opinion. Raise on failure. The engine runs it under ``[correction] timeout_seconds``
        and keeps the raw text unless ``core.correction.check_correction`` accepts the result
        (sound-alike fixes only: nothing added, dropped or negated, numbers unchanged)."""

    # Optional: ``available`` (False: not configured, skipped at start-up), ``async def aclose()``.


# --- storage (implemented by storage/, which the engine never imports) --------------------------
class LeaseLost(Exception):
    """A write fenced by a lease epoch was refused: another connection (on this instance or any
    other) has taken the interview over since that epoch was granted."""


@runtime_checkable
class InterviewStore(Protocol):
    """Every write a live session makes carries its lease ``epoch`` (from ``take_lease``); the
    database applies it only while the interview's lease still has that epoch, else the write raises
    ``LeaseLost``. ``epoch=None`` is an unfenced write (REST routes, the report service)."""

    async def load_interview(self, user_id: str, interview_id: str) -> dict | None:
        """The interview if it belongs to ``user_id``, else None."""

    async def load_resume(self, user_id: str, resume_id: int) -> dict | None:
        """The resume if it belongs to ``user_id``, else None."""

    async def take_lease(self, user_id: str, interview_id: str, owner: str, ttl_seconds: float) -> dict | None:
        """Make ``owner`` the only writer of the interview: one atomic update that raises the
        lease epoch by one (fencing out every earlier holder, wherever it runs) and returns the
        interview as it stands after it, with ``lease.epoch``; None if not ``user_id``'s."""

    async def check_leases(self, held: dict[str, int]) -> set[str]:
        """Of ``held`` (interview id -> the epoch this instance took), the ids whose lease has
        moved on (or whose interview is gone). The engine asks once per ``lease_check_seconds``
        for all its sessions together."""

    async def renew_leases(self, held: dict[str, int], ttl_seconds: float) -> set[str]:
        """Heartbeat: push the expiry of every lease still held on by ``ttl_seconds``; returns the
        ids no longer held, as ``check_leases`` does."""

    async def release_lease(self, interview_id: str, epoch: int) -> None:
        """Expire the lease now if ``epoch`` still holds it (the session ended)."""

    async def update_interview(self, interview_id: str, *, set_fields: dict | None = None,
                               push: dict[str, Any] | None = None, epoch: int | None = None) -> None:
        """One atomic update of the interview document: ``$set`` of ``set_fields`` and ``$push`` of
        each ``push`` value (a dict, or a list of dicts) onto the named array field."""

    async def append_transcript(self, interview_id: str, entries: list[dict], epoch: int | None = None) -> int:
        """Append final utterances (never partials) to the interview's transcript; returns the
        position of the first of them (0 for the transcript's first entry)."""

    async def update_transcript_entry(self, interview_id: str, position: int, fields: dict,
                                      epoch: int | None = None) -> None:
        """Set ``fields`` on the transcript entry at ``position`` (a correction of a final)."""

    async def load_transcript(self, interview_id: str) -> list[dict]:
        """The whole transcript in order."""
