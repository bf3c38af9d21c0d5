"""The interviewer's voice: sentences, synthesis with fallback and caching, and per-session playback.

``TtsService`` (one per process) holds the engines of ``[engine] tts`` in order of preference and a
cache of synthesised sentences, so that a text asked for ahead of time (the next question, while the
candidate answers) costs nothing when it is said. ``SessionVoice`` (one per session whose
``create_stream`` carried ``"tts": true``) tags each ``interview_message`` with a ``message_id``,
streams its audio as ``tts_audio`` messages, follows the client's ``tts_playback`` reports (or the
audio's own length when the client reports nothing) and tells the phase when the interviewer starts
and stops speaking (``VoiceStarted`` / ``VoiceEnded``), so turn timers count from the end of playback.
It also gates speech heard while the voice plays: an utterance shorter than ``barge_in_seconds`` is
dropped (echo, "嗯"), a sustained one is a barge-in: ``tts_stop`` is sent and the speech is the answer.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field

from core import events as ev
from core.interfaces import TtsAudio

log = logging.getLogger("mianshi.tts")

_SENTENCE_END = re.compile(r"[^。！？；!?;\n]*(?:[。！？；!?;]+[”’」』）)]*|\n|$)")
_CLAUSE_END = re.compile(r"[，、,：:]")


def spoken_part(text: str, max_chars: int = 200) -> str:
    """What is read aloud of a message: its first paragraph, whole sentences up to ``max_chars``
    (a code problem's statement is shown, only its title line is spoken)."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    if len(first) <= max_chars:
        return first
    out = ""
    for start, end in _sentence_spans(first, max_chars):
        if end > max_chars and out:
            break
        out = first[:end]
    return out or first[:max_chars]


def _sentence_spans(text: str, max_sentence_chars: int) -> list[tuple[int, int]]:
    spans = []
    for m in _SENTENCE_END.finditer(text):
        a, b = m.start(), m.end()
        if b <= a:
            continue
        # a long sentence is cut at its clauses so that its first audio comes sooner
        while b - a > max_sentence_chars:
            cut = None
            for c in _CLAUSE_END.finditer(text, a, b):
                if c.end() - a > max_sentence_chars:
                    break
                cut = c.end()
            if cut is None or cut >= b:
                break
            spans.append((a, cut))
            a = cut
        spans.append((a, b))
    return spans


@dataclass(frozen=True)
class Sentence:
    index: int
    start: int          # character offsets in the message text
    end: int
    text: str


def split_sentences(text: str, max_sentence_chars: int = 40) -> list[Sentence]:
    """The sentences of ``text`` with their offsets; pieces without a letter or digit are skipped."""
    out = []
    for a, b in _sentence_spans(text, max_sentence_chars):
        piece = text[a:b]
        if any(ch.isalnum() for ch in piece):
            out.append(Sentence(len(out), a, b, piece.strip()))
    return out


class TtsUnavailable(RuntimeError):
    """No engine could synthesise a sentence."""


class TtsService:
    """The engines of ``[engine] tts`` in order, with fallback, in-flight sharing and an LRU cache."""

    def __init__(self, engines: list, *, cache_sentences: int = 256) -> None:
        self.engines = list(engines)
        self.cache: OrderedDict[str, TtsAudio] = OrderedDict()
        self.cache_size = cache_sentences
        self.inflight: dict[str, asyncio.Future] = {}
        self.stats = {"synthesised": 0, "cache_hits": 0, "fallbacks": 0, "failures": 0,
                      "audio_seconds": 0.0}

    @property
    def names(self) -> list[str]:
        return [getattr(e, "name", type(e).__name__) for e in self.engines]

    async def sentence(self, text: str) -> TtsAudio:
        """The audio of one sentence: from the cache, from a synthesis already running, or from the
        first engine that succeeds. Raises ``TtsUnavailable`` when all fail."""
        cached = self.cache.get(text)
        if cached is not None:
            self.cache.move_to_end(text)
            self.stats["cache_hits"] += 1
            return cached
        running = self.inflight.get(text)
        if running is None:
            running = asyncio.ensure_future(self._synthesize(text))
            self.inflight[text] = running
            running.add_done_callback(lambda _f, t=text: self.inflight.pop(t, None))
        return await asyncio.shield(running)

    async def _synthesize(self, text: str) -> TtsAudio:
        errors = []
        for i, engine in enumerate(self.engines):
            try:
                audio = await engine.synthesize(text)
            except Exception as exc:  # the next engine, then text only
                errors.append(f"{getattr(engine, 'name', '?')}: {exc}")
                log.warning("tts %s failed on %r: %s", getattr(engine, "name", "?"), text[:40], exc)
                continue
            if not isinstance(audio, TtsAudio) or audio.sample_rate <= 0 or len(audio.pcm) % 2:
                errors.append(f"{getattr(engine, 'name', '?')}: returned no valid PCM")
                continue
            if i:
                self.stats["fallbacks"] += 1
            self.stats["synthesised"] += 1
            self.stats["audio_seconds"] += audio.seconds
            self.cache[text] = audio
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
            return audio
        self.stats["failures"] += 1
        raise TtsUnavailable("; ".join(errors) or "no tts engine")

    def prefetch(self, text: str, max_chars: int = 200, max_sentence_chars: int = 40) -> None:
        """Synthesise ``text`` in the background (the next question while the candidate answers)."""
        for s in split_sentences(spoken_part(text, max_chars), max_sentence_chars):
            if s.text not in self.cache and s.text not in self.inflight:
                task = asyncio.ensure_future(self.sentence(s.text))
                task.add_done_callback(_consume)

    async def aclose(self) -> None:
        for engine in self.engines:
            closer = getattr(engine, "aclose", None)
            if closer is not None:
                try:
                    await closer()
                except Exception as exc:
                    log.info("closing tts %s failed: %s", getattr(engine, "name", "?"), exc)


def _consume(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()       # a failed prefetch is retried (and reported) when the text is said


@dataclass
class _Playback:
    message_id: str
    text: str
    task: asyncio.Task | None = None
    watchdog: asyncio.Task | None = None
    announced: bool = False          # VoiceStarted sent to the phase
    queued_at: float | None = None   # clock time its audio would start on a client that plays in order
    duration: float = 0.0            # seconds of audio sent
    sent_all: bool = False
    client_started: float | None = None
    ended: bool = False


@dataclass
class _Held:
    start: float                    # audio_start of the utterance held back
    events: list = field(default_factory=list)
    timer: asyncio.Task | None = None


class SessionVoice:
    """The voice of one session (see the module doc). ``service`` None: the server has no voice; the
    client speaks the text itself and its ``tts_playback`` reports still hold the timers."""

    def __init__(self, session, service: TtsService | None, settings: dict) -> None:
        self.session = session
        self.service = service
        self.clock = session.engine.clock
        self.barge_in_seconds = float(settings.get("barge_in_seconds", 1.0))
        self.grace = float(settings.get("playback_grace_seconds", 3.0))
        self.chunk_seconds = float(settings.get("chunk_seconds", 0.5))
        self.max_chars = int(settings.get("max_spoken_chars", 200))
        self.max_sentence_chars = int(settings.get("max_sentence_chars", 40))
        self.chars_per_second = float(settings.get("client_chars_per_second", 4.0))
        self.playing: dict[str, _Playback] = {}
        self._count = 0
        self._cursor = float("-inf")     # estimated end of the client's playback queue
        self._held: _Held | None = None
        self._dropped: set[float] = set()
        self._gate = asyncio.Lock()
        self.barge_ins = 0

    # -- speaking ---------------------------------------------------------------------------------
    def tag(self, message: dict) -> dict:
        self._count += 1
        return {**message, "message_id": f"{self.session.stream_id[:8]}-{self._count}"}

    def speak(self, message_id: str, text: str) -> None:
        p = _Playback(message_id, spoken_part(text, self.max_chars))
        self.playing[message_id] = p
        if self.service is not None and p.text:
            self._announce(p)
            p.task = self.session.spawn(self._stream(p), f"tts:{message_id}")

    def prefetch(self, text: str) -> None:
        if self.service is not None:
            self.service.prefetch(text, self.max_chars, self.max_sentence_chars)

    def _announce(self, p: _Playback) -> None:
        if not p.announced:
            p.announced = True
            self.session.events.put_nowait(ev.VoiceStarted(p.message_id, self.clock.now()))

    async def _stream(self, p: _Playback) -> None:
        sentences = split_sentences(p.text, self.max_sentence_chars)
        pending = [asyncio.ensure_future(self.service.sentence(s.text)) for s in sentences]
        seq = 0
        rate = 24000
        closed = False
        try:
            for i, (s, fut) in enumerate(zip(sentences, pending)):
                try:
                    audio = await fut
                except TtsUnavailable:
                    continue            # this sentence stays text only
                rate = audio.sample_rate
                step = max(2, int(self.chunk_seconds * rate) * 2)
                pieces = [audio.pcm[k:k + step] for k in range(0, len(audio.pcm), step)] or [b""]
                for k, piece in enumerate(pieces):
                    if p.queued_at is None:
                        p.queued_at = max(self.clock.now(), self._cursor)
                    closed = i == len(sentences) - 1 and k == len(pieces) - 1
                    await self.session.send(ev.tts_audio(p.message_id, seq, rate, piece, closed,
                                                         sentence=s.index, char_start=s.start, char_end=s.end))
                    seq += 1
                    p.duration += len(piece) / 2 / rate
            if not closed:              # the last sentence could not be synthesised: close the stream
                await self.session.send(ev.tts_audio(p.message_id, seq, rate, b"", True))
        finally:
            for fut in pending:
                fut.cancel()
        p.sent_all = True
        if p.queued_at is None:
            p.queued_at = self.clock.now()
        self._cursor = p.queued_at + p.duration
        if not p.ended:
            p.watchdog = self.session.spawn(self._watch(p), f"tts-watch:{p.message_id}")

    async def _watch(self, p: _Playback) -> None:
        """End the playback when the client says nothing: at the audio's end (from the client's
        ``started`` when it reported one, plus ``playback_grace_seconds`` for its ``finished``)."""
        while not p.ended:
            if p.client_started is not None:
                target = p.client_started + p.duration + self.grace
            else:
                target = (p.queued_at or self.clock.now()) + p.duration
            now = self.clock.now()
            if now >= target:
                self._end(p, "estimated")
                return
            await self.clock.sleep(target - now)

    def _end(self, p: _Playback, reason: str) -> None:
        if p.ended:
            return
        p.ended = True
        self.playing.pop(p.message_id, None)
        current = asyncio.current_task()
        for task in (p.task, p.watchdog):
            if task is not None and task is not current and not task.done():
                task.cancel()
        now = self.clock.now()
        if reason != "estimated":
            self._cursor = now if not self.playing else self._cursor
        if p.announced:
            self.session.events.put_nowait(ev.VoiceEnded(p.message_id, now, reason))

    async def on_playback(self, message: ev.TtsPlayback) -> None:
        p = self.playing.get(message.message_id)
        if p is None:
            return                       # already ended (barge-in, estimate) or unknown: nothing to do
        if message.event == "started":
            p.client_started = self.clock.now()
            if not p.announced:          # no server voice: the client speaks the text itself
                self._announce(p)
                p.duration = len(p.text) / self.chars_per_second
                p.sent_all = True
                p.watchdog = self.session.spawn(self._watch(p), f"tts-watch:{p.message_id}")
        else:
            self._end(p, message.event)

    def stop_all(self, reason: str) -> list[str]:
        stopped = []
        for p in list(self.playing.values()):
            if p.announced:
                stopped.append(p.message_id)
            self._end(p, reason)
        return stopped

    # -- speech heard while the voice plays -----------------------------------------------------------
    def speaking(self) -> bool:
        return any(p.announced for p in self.playing.values())

    async def hear(self, event, deliver) -> None:
        """Pass a speech event to ``deliver`` (the session's normal path), hold it, or drop it."""
        async with self._gate:
            start = getattr(event, "audio_start", None)
            if isinstance(event, (ev.Transcript, ev.AsrFailed)) and start in self._dropped:
                if event.is_final:
                    self._dropped.discard(start)
                return
            held = self._held
            if held is not None:
                held.events.append(event)
                if isinstance(event, ev.SpeechEnded):       # short: echo or a filler word
                    self._held = None
                    if held.timer is not None:
                        held.timer.cancel()
                    self._dropped.add(held.start)
                    if len(self._dropped) > 32:
                        self._dropped.pop()
                return
            if isinstance(event, ev.SpeechStarted) and self.speaking():
                self._held = _Held(event.audio_start, [event])
                self._held.timer = self.session.spawn(self._barge_timer(self._held, deliver), "barge-in")
                return
        await deliver(event)

    async def _barge_timer(self, held: _Held, deliver) -> None:
        await self.clock.sleep(self.barge_in_seconds)
        async with self._gate:
            if self._held is not held:
                return
            self._held = None
            stopped = self.stop_all("barge_in")
            if stopped:
                self.barge_ins += 1
            for message_id in stopped:
                await self.session.send(ev.tts_stop(message_id))
            for event in held.events:
                await deliver(event)
