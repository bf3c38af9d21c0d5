"""When does the candidate's turn (self-introduction or an answer) end?

The rules of api.md, shared by the intro and question phases: a turn ends
* after ``silence_seconds`` without speech (measured from the later of the turn's start and the last
  speech activity, never while the candidate is speaking),
* on a final transcript containing the done phrase ("说完了"),
* on ``end_answer`` (the "回答完毕" button).
A typed ``text_answer`` adds text to the turn; it is ended by ``end_answer`` or by the done phrase.
With the interviewer's voice (``tts``) the silence is counted from the end of playback: while a
message is being spoken (``VoiceStarted`` .. ``VoiceEnded``) the timer does not run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.events import (EndAnswer, SpeechEnded, SpeechStarted, TextAnswer, Tick, Transcript, VoiceEnded,
                         VoiceStarted)


@dataclass
class Turn:
    silence_seconds: float
    done_phrase: str
    last_activity: float = 0.0
    speaking: bool = False
    texts: list[str] = field(default_factory=list)
    voices: set[str] = field(default_factory=set)     # messages being spoken to the candidate

    def start(self, now: float) -> None:
        self.last_activity = now
        self.speaking = False
        self.texts = []

    def restart_timer(self, now: float) -> None:
        """After a reconnect: the candidate gets the full silence allowance again."""
        self.last_activity = now
        self.speaking = False

    @property
    def answer(self) -> str:
        return "".join(self.texts)

    def feed(self, event, now: float) -> str | None:
        """Apply one event at clock time ``now``; return why the turn ended ("done_phrase",
        "end_answer", "silence") or None."""
        if isinstance(event, SpeechStarted):
            self.speaking = True
            self.last_activity = event.t
        elif isinstance(event, SpeechEnded):
            self.speaking = False
            self.last_activity = max(self.last_activity, event.t)
        elif isinstance(event, Transcript):
            self.last_activity = max(self.last_activity, event.t)
            if event.is_final and event.text:
                self.texts.append(event.text)
                if self.done_phrase and self.done_phrase in event.text:
                    return "done_phrase"
        elif isinstance(event, TextAnswer):
            self.texts.append(event.text)
            self.last_activity = max(self.last_activity, now)
            if self.done_phrase and self.done_phrase in event.text:
                return "done_phrase"
        elif isinstance(event, EndAnswer):
            return "end_answer"
        elif isinstance(event, VoiceStarted):
            self.voices.add(event.message_id)
        elif isinstance(event, VoiceEnded):
            self.voices.discard(event.message_id)
            self.last_activity = max(self.last_activity, event.t)
        elif isinstance(event, Tick):
            if not self.speaking and not self.voices and event.t - self.last_activity >= self.silence_seconds:
                return "silence"
        return None
