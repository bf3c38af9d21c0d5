"""The web tier's side of a media server (``media_server.py``): cheat detection on video frames and
Opus encoding of recordings done by another process, usually on another machine, so that the
instance that holds the WebSockets spends its cores on the audio path (README, "Media server").

Selected with ``[media] url``; unset, both run in this process as before (``core/cheat.py``
``VisionPool``, ``core/recording.py`` ``MediaEncoder``). What goes remote is chosen with
``[media] vision`` and ``[media] recordings``.

Failures never stop a session:

- a frame the server cannot analyse in ``timeout_seconds`` (down, slow, busy, a garbled answer) is
  dropped unanalysed and counted (``CheatMonitor.stats["remote_errors"]``); during
  ``cooldown_seconds`` after a failure frames are dropped without a request (the server is not
  flooded while it recovers). Detection is not moved back onto the web tier: that is the load the
  media server exists to take away.
- an utterance the server cannot encode is encoded here instead (``MediaEncoder``, low priority,
  bounded): a recording is evidence.

The protocol (JSON unless said otherwise; ``Authorization: Bearer <key>`` when the server has a key):

- ``GET  /v1/media/info`` -> ``{"detectors": {name: [kind, ...]}, "audio": {"format": "ogg/opus",
  "sample_rate": 16000}, "workers": {...}}``
- ``POST /v1/vision/analyse`` ``{"jpeg": base64, "detectors": [name, ...], "states": {name: {...}}}``
  -> ``{"signals": [{"detector", "kind", "score", "detail"}], "states": {...}, "ms": float,
  "detector_errors": int}``; 422 ``{"error": "frame_invalid", "message": <Chinese text>}`` for a
  frame that cannot be used; 404 for a detector the server does not run; 503 when it is busy.
  Detector state (baselines) travels with every request, so the server keeps none and any of several
  servers behind a balancer can take any frame; a detector run remotely keeps JSON-serialisable
  state.
- ``POST /v1/audio/encode?sample_rate=16000`` (body: s16le mono PCM) -> ``audio/ogg`` bytes.

No sanic, no motor: aiohttp's client (fewer CPU microseconds per request on the event loop than
httpx, which matters at a hundred frames a second).
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any

import numpy as np

from core.events import CheatSignal

log = logging.getLogger("mianshi.media")

INFO_PATH = "/v1/media/info"
ANALYSE_PATH = "/v1/vision/analyse"
ENCODE_PATH = "/v1/audio/encode"


class MediaUnavailable(RuntimeError):
    """The media server did not do the work (down, slow, busy, refused, or answered garbage)."""


class RemoteFrameError(ValueError):
    """The media server says the frame itself is unusable; ``text`` is for the client."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def signals_to_json(signals: list[CheatSignal]) -> list[dict]:
    return [{"detector": s.detector, "kind": s.kind, "score": float(s.score), "detail": s.detail}
            for s in signals]


def signals_from_json(items: Any) -> list[CheatSignal]:
    if not isinstance(items, list):
        raise ValueError("signals must be a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("detector"), str):
            raise ValueError(f"bad signal {item!r}")
        kind = item.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise ValueError(f"bad signal kind {kind!r}")
        detail = item.get("detail") or {}
        if not isinstance(detail, dict):
            raise ValueError("signal detail must be an object")
        out.append(CheatSignal(item["detector"], kind, float(item.get("score", 1.0)), detail))
    return out


class MediaClient:
    """ONE per process. ``analyse`` a frame, ``encode`` audio; both raise ``MediaUnavailable`` when
    the server did not do it (``RemoteFrameError`` for a frame it refuses)."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout_seconds: float = 5.0,
                 encode_timeout_seconds: float = 20.0, max_concurrency: int = 32,
                 cooldown_seconds: float = 5.0, clock=None) -> None:
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError(f"[media] url must be an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self.api_key = api_key or None
        self.timeout = float(timeout_seconds)
        self.encode_timeout = float(encode_timeout_seconds)
        self.max_concurrency = max(1, int(max_concurrency))
        self.cooldown = float(cooldown_seconds)
        self._now = clock.now if clock is not None else time.monotonic
        self._session = None
        self._cool_until = float("-inf")
        self.stats = {"frames_sent": 0, "frames_analysed": 0, "frames_refused": 0, "frame_failures": 0,
                      "frames_skipped_cooldown": 0, "audio_sent": 0, "audio_encoded": 0,
                      "audio_failures": 0, "last_error": None}

    @classmethod
    def from_config(cls, config: dict, clock=None) -> "MediaClient | None":
        """The client ``[media]`` asks for, or None (no url: everything in this process)."""
        import os
        m = config.get("media", {}) or {}
        if not m.get("url"):
            return None
        env = config.get("_env") or os.environ
        key = env.get(str(m.get("api_key_env", "MIANSHI_MEDIA_API_KEY")))
        return cls(str(m["url"]), api_key=key, timeout_seconds=float(m.get("timeout_seconds", 5.0)),
                   encode_timeout_seconds=float(m.get("encode_timeout_seconds", 20.0)),
                   max_concurrency=int(m.get("max_concurrency", 32)),
                   cooldown_seconds=float(m.get("cooldown_seconds", 5.0)), clock=clock)

    def _http(self):
        import aiohttp
        if self._session is None or self._session.closed:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._session = aiohttp.ClientSession(
                headers=headers, connector=aiohttp.TCPConnector(limit=self.max_concurrency))
        return self._session

    def cooling(self) -> bool:
        return self._now() < self._cool_until

    def _failed(self, what: str, exc: BaseException | str) -> MediaUnavailable:
        self._cool_until = self._now() + self.cooldown
        text = f"media server {what}: {exc}"
        if self.stats["last_error"] != text:
            log.warning("%s (frames are dropped, recordings encoded here, for %.0f s)", text, self.cooldown)
        self.stats["last_error"] = text
        return MediaUnavailable(text)

    async def _post(self, path: str, what: str, timeout: float, **kwargs) -> tuple[int, bytes, str]:
        import aiohttp
        try:
            async with self._http().post(self.url + path, timeout=aiohttp.ClientTimeout(total=timeout),
                                         **kwargs) as resp:
                return resp.status, await resp.read(), resp.headers.get("Content-Type", "")
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            raise self._failed(what, f"no answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise self._failed(what, str(exc) or type(exc).__name__) from None

    async def info(self) -> dict:
        import aiohttp
        try:
            async with self._http().get(self.url + INFO_PATH,
                                        timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                if resp.status != 200:
                    raise self._failed("info", f"HTTP {resp.status}")
                return await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise self._failed("info", str(exc) or type(exc).__name__) from None

    async def analyse(self, jpeg: bytes, detectors: list[str], states: dict) -> tuple[list[CheatSignal], dict, float, int]:
        """(signals, new states, server ms, detector errors) of one frame."""
        if self.cooling():
            self.stats["frames_skipped_cooldown"] += 1
            raise MediaUnavailable("media server cooling down after a failure")
        self.stats["frames_sent"] += 1
        body = json.dumps({"jpeg": base64.b64encode(jpeg).decode("ascii"), "detectors": detectors,
                           "states": states}, ensure_ascii=False, separators=(",", ":"))
        status, data, _ = await self._post(ANALYSE_PATH, "vision", self.timeout, data=body,
                                           headers={"Content-Type": "application/json"})
        if status == 422:
            self.stats["frames_refused"] += 1
            try:
                text = json.loads(data)["message"]
            except (ValueError, KeyError, TypeError):
                text = "视频帧无法解析"
            raise RemoteFrameError(str(text))
        if status != 200:
            self.stats["frame_failures"] += 1
            raise self._failed("vision", f"HTTP {status}: {data[:200]!r}")
        try:
            reply = json.loads(data)
            signals = signals_from_json(reply["signals"])
            new_states = reply["states"]
            if not isinstance(new_states, dict):
                raise ValueError("states must be an object")
            ms = float(reply.get("ms", 0.0))
            errors = int(reply.get("detector_errors", 0))
        except (ValueError, KeyError, TypeError) as exc:
            self.stats["frame_failures"] += 1
            raise self._failed("vision", f"garbled answer ({exc})") from None
        self.stats["frames_analysed"] += 1
        return signals, new_states, ms, errors

    async def encode(self, samples: np.ndarray, sample_rate: int = 16000) -> bytes:
        """Ogg/Opus of int16 mono samples."""
        if self.cooling():
            raise MediaUnavailable("media server cooling down after a failure")
        self.stats["audio_sent"] += 1
        pcm = np.ascontiguousarray(samples, dtype="<i2").tobytes()
        status, data, ctype = await self._post(f"{ENCODE_PATH}?sample_rate={int(sample_rate)}", "audio",
                                               self.encode_timeout, data=pcm,
                                               headers={"Content-Type": "application/octet-stream"})
        if status != 200 or not data.startswith(b"OggS") or "ogg" not in ctype:
            self.stats["audio_failures"] += 1
            raise self._failed("audio", f"HTTP {status} {ctype!r}: {data[:80]!r}")
        self.stats["audio_encoded"] += 1
        return data

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
