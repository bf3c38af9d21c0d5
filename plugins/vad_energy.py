"""VAD plugin "energy": a light energy + zero-crossing voice-activity detector with hangover.

No model, ~microseconds per 10 ms frame: a fallback for machines where FunASR cannot load, and a
deterministic VAD for tests. A 10 ms frame counts as speech when its level is above both an
absolute floor (``min_dbfs``) and the adaptive noise floor + ``margin_db`` (or a little less when the
zero-crossing rate says it is a fricative). Speech starts after ``start_ms`` of speech frames within
a ``start_window_ms`` window (reported ``preroll_ms`` earlier); it ends after ``end_silence_ms`` of
non-speech (the hangover), reported ``tail_ms`` after the last speech frame.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from core.settings import apply, declare
from core.hookspecs import hookimpl
from core.interfaces import PluginContext, VadEvent
from core.speech import frame_levels_db

FRAME = 160  # 10 ms at 16 kHz

DEFAULTS = {
    "min_dbfs": -48.0,         # absolute floor: quieter frames are never speech
    "margin_db": 12.0,         # above the adaptive noise floor
    "zcr_margin_db": 6.0,      # fricatives: high ZCR frames need only this margin
    "zcr_threshold": 0.25,
    "start_ms": 120,           # speech frames needed ...
    "start_window_ms": 200,    # ... within this window to start a segment
    "end_silence_ms": 800,     # hangover: silence that ends a segment
    "preroll_ms": 200,         # reported start is this much before the first speech frame
    "tail_ms": 100,            # reported end is this much after the last speech frame
    "max_segment_s": 60.0,     # a longer segment is cut here
}
SETTINGS = declare(DEFAULTS)


class EnergyVad:
    name = "energy"
    inline = True          # microseconds per frame: the speech pipeline calls it on the event loop

    def __init__(self, settings: dict | None = None) -> None:
        self.settings = apply("[plugins.energy]", SETTINGS, settings)

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "EnergyVad":
        return cls(ctx.settings)

    def open_stream(self) -> "EnergyVadStream":
        return EnergyVadStream(self.settings)


class EnergyVadStream:
    def __init__(self, s: dict) -> None:
        self.s = s
        self._rest = np.zeros(0, np.int16)
        self._frames = 0                      # frames consumed
        self._noise = -70.0
        self._window: deque[bool] = deque(maxlen=max(1, int(s["start_window_ms"]) // 10))
        self._need = max(1, int(s["start_ms"]) // 10)
        self._hang = max(1, int(s["end_silence_ms"]) // 10)
        self._in_speech = False
        self._seg_start = 0                   # frame index
        self._last_speech = -1                # frame index of the last speech frame
        self._last_end_sample = 0
        self._silent_run = 0

    @staticmethod
    def _features(data: np.ndarray, n: int) -> tuple[list[float], list[float]]:
        """Level (dBFS) and zero-crossing rate of each of the ``n`` 10 ms frames, in one numpy pass."""
        levels = frame_levels_db(data[:n * FRAME], FRAME)
        signs = np.signbit(data[:n * FRAME].reshape(n, FRAME))
        zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / (FRAME - 1)
        return levels.tolist(), zcr.tolist()

    def _is_speech(self, level: float, zcr: float) -> bool:
        s = self.s
        floor = float(s["min_dbfs"])
        speech = level > floor and (level > self._noise + float(s["margin_db"]) or
                                    (zcr > float(s["zcr_threshold"]) and
                                     level > self._noise + float(s["zcr_margin_db"])))
        if not speech:
            # the noise floor falls fast and rises slowly
            rate = 0.3 if level < self._noise else 0.02
            self._noise += rate * (level - self._noise)
            self._noise = max(-90.0, min(self._noise, floor))
        return speech

    def accept(self, pcm: np.ndarray) -> list[VadEvent]:
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16:
            raise TypeError("VAD expects int16 PCM")
        data = np.concatenate([self._rest, pcm.reshape(-1)]) if self._rest.size else pcm.reshape(-1)
        n = len(data) // FRAME
        self._rest = data[n * FRAME:].copy()
        events: list[VadEvent] = []
        s = self.s
        levels, zcrs = self._features(data, n) if n else ([], [])
        for i in range(n):
            idx = self._frames
            self._frames += 1
            speech = self._is_speech(levels[i], zcrs[i])
            if not self._in_speech:
                self._window.append(speech)
                if speech and sum(self._window) >= self._need:
                    first = idx - len(self._window) + 1 + self._window.index(True)
                    start = max(self._last_end_sample, (first - int(s["preroll_ms"]) // 10) * FRAME, 0)
                    self._in_speech = True
                    self._seg_start = start // FRAME
                    self._last_speech = idx
                    self._silent_run = 0
                    events.append(VadEvent("start", start))
            else:
                if speech:
                    self._last_speech = idx
                    self._silent_run = 0
                else:
                    self._silent_run += 1
                too_long = (idx - self._seg_start) * FRAME >= float(s["max_segment_s"]) * 16000
                if self._silent_run >= self._hang or too_long:
                    events.append(self._close(idx + 1))
        return events

    def _close(self, frames_seen: int) -> VadEvent:
        end = min((self._last_speech + 1 + int(self.s["tail_ms"]) // 10) * FRAME,
                  frames_seen * FRAME + self._rest.size)
        self._in_speech = False
        self._window.clear()
        self._silent_run = 0
        self._last_end_sample = end
        return VadEvent("end", end)

    def finish(self) -> list[VadEvent]:
        if self._in_speech:
            return [self._close(self._frames)]
        return []


@hookimpl
def register_vad(register):
    register("energy", EnergyVad.from_context, settings=SETTINGS)
