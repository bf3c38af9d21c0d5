"""TTS ``openai``: any OpenAI-compatible ``/v1/audio/speech`` endpoint (hosted or a local voice server).

Settings (``[plugins.openai]``): ``base_url`` (required: without it the engine is unavailable),
``model``, ``voice``, ``api_key_env`` (the key's environment variable), ``response_format`` (``pcm``:
raw s16le mono at ``sample_rate``; or ``wav``), ``sample_rate`` (24000, of pcm answers),
``timeout_seconds`` (per sentence), ``max_retries`` (after a timeout, a connection error, 429 or 5xx),
``backoff_seconds`` (first retry delay, doubled). A sentence that still fails raises, so the engine
falls back to the next ``[engine] tts`` entry (e.g. the embedded voice), then to text only.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import wave

from core.hookspecs import hookimpl
from core.interfaces import TtsAudio
from core.settings import Setting

log = logging.getLogger("mianshi.tts.openai")


def wav_to_pcm(data: bytes) -> TtsAudio:
    """Mono (or the first channel of) 16-bit WAV -> TtsAudio; a clear error for anything else."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"WAV with {8 * w.getsampwidth()}-bit samples (16-bit expected)")
            frames = w.readframes(w.getnframes())
            channels, rate = w.getnchannels(), w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"the endpoint's answer is not a WAV file: {exc}") from None
    if channels > 1:
        import numpy as np
        frames = np.frombuffer(frames, "<i2").reshape(-1, channels)[:, 0].tobytes()
    return TtsAudio(frames, rate)


class OpenAISpeech:
    name = "openai"

    def __init__(self, settings: dict) -> None:
        import openai  # lazily: a server without this engine never needs it
        base_url = settings.get("base_url")
        if not base_url:
            raise ValueError("[plugins.openai] base_url is not set")
        self.model = str(settings.get("model", "tts-1"))
        self.voice = str(settings.get("voice", "alloy"))
        self.format = str(settings.get("response_format", "pcm"))
        if self.format not in ("pcm", "wav"):
            raise ValueError(f"[plugins.openai] response_format must be pcm or wav, not {self.format!r}")
        self.sample_rate = int(settings.get("sample_rate", 24000))
        self.retries = max(0, int(settings.get("max_retries", 1)))
        self.backoff = float(settings.get("backoff_seconds", 0.5))
        timeout = float(settings.get("timeout_seconds", 10.0))
        key = os.environ.get(str(settings.get("api_key_env", "MIANSHI_TTS_API_KEY"))) or "none"
        self._openai = openai
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)
        self.requests = 0

    def _retryable(self, exc: Exception) -> bool:
        o = self._openai
        if isinstance(exc, (o.APITimeoutError, o.APIConnectionError, o.RateLimitError)):
            return True
        return isinstance(exc, o.APIStatusError) and exc.status_code >= 500

    async def synthesize(self, text: str) -> TtsAudio:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            self.requests += 1
            try:
                response = await self._client.audio.speech.create(model=self.model, voice=self.voice, input=text,
                                                                  response_format=self.format)
                data = response.content
                break
            except Exception as exc:
                if attempt >= self.retries or not self._retryable(exc):
                    raise
                log.info("speech request failed (%s), retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
        if self.format == "wav":
            return wav_to_pcm(data)
        if len(data) % 2:
            raise ValueError("the endpoint's pcm answer is not whole 16-bit samples")
        return TtsAudio(data, self.sample_rate)

    async def aclose(self) -> None:
        await self._client.close()


SETTINGS = {"base_url": Setting(None, str), "model": "tts-1", "voice": "alloy", "api_key_env": "MIANSHI_TTS_API_KEY",
            "response_format": Setting("pcm", choices=("pcm", "wav")), "sample_rate": Setting(24000, minimum=8000),
            "timeout_seconds": Setting(10.0, minimum=0.1), "max_retries": Setting(1, minimum=0),
            "backoff_seconds": Setting(0.5, minimum=0)}


@hookimpl
def register_tts(register):
    register("openai", lambda ctx: OpenAISpeech(ctx.settings), settings=SETTINGS)
