"""ASR plugin "openai_asr": recognition served by another process through the OpenAI audio
transcription API (``POST {base_url}/audio/transcriptions``), spoken by FunASR's ``funasr-server``
(Paraformer / SenseVoice, CPU or GPU), ``faster-whisper-server``, vLLM's Whisper serving and hosted
services alike. Select it with ``[engine] asr = "openai_asr"``; settings in ``[plugins.openai_asr]``.

The VAD stays local (``[engine] vad``): an utterance is cut here and sent whole.

* Finals: the utterance as a 16 kHz mono WAV, with the interview's context (the question, the resume
  terms and, optionally, a few domain-lexicon terms) as ``prompt`` and, when ``hotword_field`` names
  one, as that extra form field (for servers that take hotwords; ``funasr-server``'s OpenAI route has
  none and ignores the prompt, ``faster-whisper-server`` uses the prompt as Whisper's initial prompt).
* Partials: the utterance so far is re-transcribed at most every ``partial_interval_seconds`` of new
  audio (0: no partials). A partial is skipped - never queued - when ``max_concurrency`` requests are
  already in flight, or while the server is failing (``cooldown_seconds`` after a failure), so finals
  never wait behind partials and, under load, the partial cadence degrades first.
* The text gets the same post-processing as the local plugins: simplified characters, repetition and
  prompt-echo removal, and the sound-alike correction towards the context terms and the domain
  lexicon (``plugins/_term_fix.py``); the pipeline then writes numbers in one form (``core/itn.py``).
* Failures (server down, timeout, HTTP error, an answer that is not the API's JSON or is implausibly
  long for the audio): a final raises ``RemoteAsrError`` after ``retries`` retries; the speech
  pipeline then reports the utterance as failed (``AsrFailed``: the client gets an ``error``, the
  transcript keeps an empty entry marked ``asr_failed``) and the session goes on. A failed partial is
  dropped and counted.

``stats()`` counts requests, failures and skips and keeps recent latencies (the benchmarks read it).
"""
from __future__ import annotations

import collections
import io
import json
import logging
import os
import threading
import time
import wave
from urllib.parse import urlparse

import numpy as np

from core.clock import Clock, SystemClock
from core.hookspecs import hookimpl
from core.interfaces import AsrContext, PluginContext
from core.settings import Setting, apply, declare
from plugins._speech_util import (build_prompt, collapse_repetitions, dbfs, is_hallucination,
                                  strip_prompt_echo, strip_restart, tidy)
from plugins._term_fix import fix_terms

log = logging.getLogger("mianshi.asr.openai")

SAMPLE_RATE = 16_000
DEFAULT_PROMPT = "以下是普通话的面试回答。"
NAME = "openai_asr"

DEFAULTS = {
    "base_url": Setting(None, str),        # e.g. "http://10.0.0.5:8000/v1" (required)
    "api_key_env": "MIANSHI_ASR_API_KEY",  # the key is read from this environment variable ("" = none)
    "model": "whisper-1",                  # funasr-server maps whisper-1 to the model it loaded
    "language": "zh",                      # "" = let the server detect it
    "timeout_seconds": Setting(10.0, minimum=0.1),          # per request (finals)
    "partial_timeout_seconds": Setting(3.0, minimum=0.1),   # per request (partials: not retried)
    "retries": Setting(1, minimum=0),      # retries of a final after a connection error, timeout, 429/5xx
    "partial_interval_seconds": Setting(1.0, minimum=0.0),  # new audio between two remote partials (0 = none)
    "max_concurrency": Setting(4, minimum=1),               # requests in flight at once (per process)
    "cooldown_seconds": Setting(5.0, minimum=0.0),          # no partials this long after a failure
    "use_context": True,                   # question + resume terms as prompt (and hotwords)
    "hotword_field": "",                   # extra form field for hotwords, e.g. "hotwords" ("" = none)
    "lexicon_prompt_terms": Setting(0, minimum=0),          # domain-lexicon terms added to the prompt
    "term_fix": True,                      # sound-alike spans -> context terms (plugins/_term_fix.py)
    "lexicon": True,                       # ... and -> domain lexicon terms
    "min_dbfs": -50.0,                     # quieter utterances are not sent (no text)
    "max_chars_per_second": Setting(15.0, minimum=1.0),     # a longer answer is garbage (refused)
}
SETTINGS = declare(DEFAULTS)


class RemoteAsrError(RuntimeError):
    """The remote recogniser gave no usable answer. ``reason``: unreachable, timeout, http_<status>,
    bad_response or busy."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"remote ASR {reason}" + (f": {detail}" if detail else ""))
        self.reason = reason


def wav_bytes(pcm: np.ndarray) -> bytes:
    """16 kHz mono s16le PCM as a WAV file."""
    if pcm.dtype != np.int16:
        pcm = np.clip(np.asarray(pcm, np.float32) * 32768.0, -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.astype("<i2", copy=False).tobytes())
    return buf.getvalue()


def parse_answer(body: bytes, content_type: str) -> str:
    """The ``text`` of a transcription answer (JSON ``{"text": ...}``; a JSON string is accepted,
    as some servers send for ``response_format=text``). Anything else is ``RemoteAsrError``."""
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RemoteAsrError("bad_response", f"not JSON ({content_type or 'no content type'}, "
                                             f"{len(body)} bytes)") from None
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return obj["text"]
    if isinstance(obj, str):
        return obj
    raise RemoteAsrError("bad_response", "JSON without a text field")


class _Stats:
    KEYS = ("requests", "finals_ok", "finals_failed", "partials_ok", "partials_failed",
            "partials_skipped_interval", "partials_skipped_busy", "partials_skipped_down",
            "retries", "silent_skipped")

    def __init__(self, keep: int = 2000) -> None:
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(self.KEYS, 0)
        self.latency = {"final": collections.deque(maxlen=keep), "partial": collections.deque(maxlen=keep)}
        self.failures: collections.Counter = collections.Counter()

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def snapshot(self) -> dict:
        with self.lock:
            return {**self.counts, "failures": dict(self.failures),
                    "latency_s": {k: list(v) for k, v in self.latency.items()}}


def _whole_body_transport(**kwargs):
    """An httpx transport that sends each request body in one piece. httpx streams a multipart
    upload part by part (a boundary, the part's headers, its value, for each field of the form):
    ~22 socket writes for one utterance, 2 once joined; the client's CPU per request fell from 0.84
    to 0.69 ms against a local server (the rest is mostly the kernel sending the WAV)."""
    import httpx

    class WholeBodyTransport(httpx.HTTPTransport):
        def handle_request(self, request):
            request.read()                  # joined: the request now streams its body in one piece
            return super().handle_request(request)

    return WholeBodyTransport(**kwargs)


class OpenAiAsr:
    name = NAME

    def __init__(self, settings: dict | None = None, clock: Clock | None = None) -> None:
        self.settings = s = apply(f"[plugins.{NAME}]", SETTINGS, settings)
        url = (s["base_url"] or "").strip().rstrip("/")
        parsed = urlparse(url)
        if not url or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"[plugins.{NAME}] base_url must be the server's http(s) URL ending in /v1, "
                             f"e.g. \"http://127.0.0.1:8000/v1\" (got {s['base_url']!r})")
        self.base_url = url
        self.clock = clock or SystemClock()
        key = os.environ.get(s["api_key_env"], "") if s["api_key_env"] else ""
        import httpx
        import openai
        # retries are ours (finals only, never partials); the client's own would sleep between them
        self.client = openai.OpenAI(base_url=url, api_key=key or "not-needed", max_retries=0,
                                    http_client=httpx.Client(transport=_whole_body_transport(
                                        limits=httpx.Limits(max_connections=int(s["max_concurrency"]) + 2))))
        self._slots = threading.BoundedSemaphore(int(s["max_concurrency"]))
        self._down_until = float("-inf")          # clock time until which partials are not sent
        self._stats = _Stats()

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "OpenAiAsr":
        return cls(ctx.settings, ctx.clock)

    def open_stream(self) -> "OpenAiAsrStream":
        return OpenAiAsrStream(self)

    def stats(self) -> dict:
        return self._stats.snapshot()

    def summary(self) -> dict:
        """The counts and request latency p50/p95 in ms (``GET /-/stats`` reports it as ``asr``)."""
        from core.loopmon import percentile
        st = self.stats()
        lat = st.pop("latency_s")
        for kind, values in lat.items():
            st[f"{kind}_ms_p50"] = round(percentile(values, 50) * 1000, 1)
            st[f"{kind}_ms_p95"] = round(percentile(values, 95) * 1000, 1)
        return st

    def reset_stats(self) -> None:
        self._stats = _Stats()

    def close(self) -> None:
        self.client.close()

    # --- one request ----------------------------------------------------------------------------
    def prompt(self, context: AsrContext | None) -> tuple[str, list[str]]:
        """(prompt, hotword terms) for ``context``."""
        s = self.settings
        if not s["use_context"] or context is None:
            return DEFAULT_PROMPT, []
        terms = [t.strip() for t in context.terms if t and t.strip()]
        if int(s["lexicon_prompt_terms"]) > 0:
            from plugins._lexicon import prompt_terms
            terms = prompt_terms(context.domain, context.question + "".join(context.hints),
                                 int(s["lexicon_prompt_terms"])) + terms
        return build_prompt(context.question, terms, DEFAULT_PROMPT), terms

    def _request(self, audio: bytes, prompt: str, hotwords: list[str], timeout: float) -> str:
        s = self.settings
        extra = {s["hotword_field"]: " ".join(hotwords)} if s["hotword_field"] and hotwords else None
        import openai
        self._stats.add("requests")
        try:
            raw = self.client.audio.transcriptions.with_raw_response.create(
                model=s["model"], file=("utterance.wav", audio, "audio/wav"), response_format="json",
                prompt=prompt, timeout=timeout,
                **({"language": s["language"]} if s["language"] else {}),
                **({"extra_body": extra} if extra else {}))
        except openai.APITimeoutError:
            raise RemoteAsrError("timeout", f"no answer within {timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise RemoteAsrError("unreachable", str(exc.__cause__ or exc)) from None
        except openai.APIStatusError as exc:
            raise RemoteAsrError(f"http_{exc.status_code}", str(exc.message)[:200]) from None
        resp = raw.http_response
        return parse_answer(resp.content, resp.headers.get("content-type", ""))

    def transcribe(self, pcm: np.ndarray, context: AsrContext | None, *, final: bool) -> str:
        """Text of one utterance (so far); "" for silence. Raises ``RemoteAsrError`` (finals, after
        the retries) - a partial is tried once, with its own shorter timeout."""
        s = self.settings
        if pcm.size < SAMPLE_RATE // 10 or dbfs(pcm) < float(s["min_dbfs"]):
            self._stats.add("silent_skipped")
            return ""
        prompt, hotwords = self.prompt(context)
        audio = wav_bytes(pcm)
        attempts = 1 + (int(s["retries"]) if final else 0)
        timeout = float(s["timeout_seconds" if final else "partial_timeout_seconds"])
        t0 = time.perf_counter()
        for attempt in range(attempts):
            try:
                text = self._request(audio, prompt, hotwords, timeout)
                limit = float(s["max_chars_per_second"]) * pcm.size / SAMPLE_RATE + 20
                if len(text) > limit:
                    raise RemoteAsrError("bad_response", f"{len(text)} characters for "
                                                         f"{pcm.size / SAMPLE_RATE:.1f} s of audio")
                break
            except RemoteAsrError as exc:
                with self._stats.lock:
                    self._stats.failures[exc.reason] += 1
                self._down_until = self.clock.now() + float(s["cooldown_seconds"])
                retriable = exc.reason in ("unreachable", "timeout", "http_429") or exc.reason.startswith("http_5")
                if attempt + 1 >= attempts or not retriable:
                    raise
                self._stats.add("retries")
                log.warning("%s; retrying", exc)
        with self._stats.lock:
            self._stats.latency["final" if final else "partial"].append(time.perf_counter() - t0)
        return self.clean(text, context, prompt)

    def clean(self, text: str, context: AsrContext | None, prompt: str) -> str:
        text = tidy(text)
        text = collapse_repetitions(text)
        text = strip_prompt_echo(text, [p for p in (context.question if context else "", prompt,
                                                    DEFAULT_PROMPT) if p])
        text = tidy(strip_restart(text))
        if is_hallucination(text):
            return ""
        return self.fix_terms(text, context)

    def fix_terms(self, text: str, context: AsrContext | None) -> str:
        """The sound-alike correction towards the context terms and the domain lexicon."""
        s = self.settings
        if s["use_context"] and s["term_fix"] and context is not None:
            return fix_terms(text, context, lexicon=bool(s["lexicon"]))
        return text

    # --- admission ----------------------------------------------------------------------------
    def try_slot(self) -> bool:
        """A request slot for a partial: only if one is free now and the server is not failing."""
        if self.clock.now() < self._down_until:
            self._stats.add("partials_skipped_down")
            return False
        if not self._slots.acquire(blocking=False):
            self._stats.add("partials_skipped_busy")
            return False
        return True

    def wait_slot(self) -> None:
        """A request slot for a final: waits for one (at most the final's own timeout)."""
        if not self._slots.acquire(timeout=float(self.settings["timeout_seconds"])):
            with self._stats.lock:
                self._stats.failures["busy"] += 1
            raise RemoteAsrError("busy", f"{self.settings['max_concurrency']} requests still in flight")

    def release_slot(self) -> None:
        self._slots.release()


class OpenAiAsrStream:
    """Per-session state: how much of the current utterance the last remote partial covered."""

    def __init__(self, engine: OpenAiAsr) -> None:
        self.engine = engine
        self._sent = 0            # samples of the current utterance covered by the last partial request

    def partial(self, pcm: np.ndarray, context: AsrContext) -> str | None:
        """Re-transcribe the utterance so far, or None (skipped: cadence, busy, server failing,
        or the request failed)."""
        e = self.engine
        interval = float(e.settings["partial_interval_seconds"])
        if interval <= 0:
            return None
        if pcm.size < self._sent:
            self._sent = 0                        # a new utterance (its final was not asked)
        if self._sent and pcm.size - self._sent < interval * SAMPLE_RATE:
            e._stats.add("partials_skipped_interval")
            return None
        if not e.try_slot():
            return None
        try:
            self._sent = pcm.size
            text = e.transcribe(pcm, context, final=False)
        except RemoteAsrError as exc:
            e._stats.add("partials_failed")
            log.info("partial dropped: %s", exc)
            return None
        finally:
            e.release_slot()
        e._stats.add("partials_ok")
        return text

    def final(self, pcm: np.ndarray, context: AsrContext) -> str:
        e = self.engine
        self._sent = 0
        try:
            e.wait_slot()
            try:
                text = e.transcribe(pcm, context, final=True)
            finally:
                e.release_slot()
        except RemoteAsrError:
            e._stats.add("finals_failed")
            raise
        e._stats.add("finals_ok")
        return text


@hookimpl
def register_asr(register):
    register(NAME, OpenAiAsr.from_context, settings=SETTINGS)
