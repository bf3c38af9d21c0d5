"""The partial cadence under the web tier's own load.

Audio is handled on the event loop, so the loop's lag (core/loopmon.py: how late a 10 ms timer
wakes) is the extra latency every session's audio sees. Partials are the work a busy server can do
without: each is a recognition request (remote or a local worker), its post-processing and a
message to the page. ``PartialCadence`` turns the lag into a *stretch* of the partial interval: a
second whose lag p90 is above ``target_lag_s`` multiplies the stretch by ``grow`` (up to
``max_stretch``); a second under half the target divides it by ``relax`` (down to 1). The speech
pipeline then waits ``stretch`` times ``partial_interval_s`` of new speech between two partials, so
the cadence degrades smoothly as the server fills and comes back when it empties. Finals and
pre-finals are never stretched (core/speech.py).

It is fed one lag sample at a time and reads only the injected clock, so its rule is tested without
sleeping (tests/test_partial_cadence.py).
"""
from __future__ import annotations

from core.clock import Clock
from core.loopmon import percentile


class PartialCadence:
    def __init__(self, clock: Clock, target_lag_s: float = 0.015, max_stretch: float = 8.0,
                 window_s: float = 1.0, grow: float = 1.5, relax: float = 1.25) -> None:
        if max_stretch < 1.0:
            raise ValueError("max_stretch must be >= 1")
        if grow <= 1.0 or relax <= 1.0:
            raise ValueError("grow and relax must be > 1")
        self.clock = clock
        self.target_lag_s = float(target_lag_s)        # 0 = off: the stretch stays 1
        self.max_stretch = float(max_stretch)
        self.window_s = float(window_s)
        self.grow = float(grow)
        self.relax = float(relax)
        self.stretch = 1.0
        self._window: list[float] = []
        self._window_start: float | None = None        # also the last judgement's time
        self.stats = {"windows": 0, "raised": 0, "lowered": 0, "stretched_seconds": 0.0,
                      "max_stretch_seen": 1.0}

    @property
    def enabled(self) -> bool:
        return self.target_lag_s > 0

    def observe(self, lag_s: float) -> None:
        """One lag sample (seconds). Every ``window_s`` of the clock the window is judged."""
        if not self.enabled:
            return
        now = self.clock.now()
        if self._window_start is None:
            self._window_start = now
        self._window.append(max(0.0, float(lag_s)))
        if now - self._window_start >= self.window_s:
            self._judge(percentile(self._window, 90), now)
            self._window = []
            self._window_start = now

    def _judge(self, late: float, now: float) -> None:
        self.stats["windows"] += 1
        before = self.stretch
        if late > self.target_lag_s:
            self.stretch = min(self.max_stretch, self.stretch * self.grow)
        elif late < self.target_lag_s / 2:
            self.stretch = max(1.0, self.stretch / self.relax)
        if self.stretch > before:
            self.stats["raised"] += 1
        elif self.stretch < before:
            self.stats["lowered"] += 1
        self.stats["max_stretch_seen"] = max(self.stats["max_stretch_seen"], self.stretch)
        if before > 1.0:                    # stretched since the last judgement
            self.stats["stretched_seconds"] += now - self._window_start

    def snapshot(self) -> dict:
        """The current stretch and its history (``GET /-/stats`` reports it as ``partial_cadence``)."""
        stretched = self.stats["stretched_seconds"]
        if self.stretch > 1.0:
            stretched += self.clock.now() - self._window_start
        return {**self.stats, "stretch": round(self.stretch, 3), "stretched_seconds": round(stretched, 2),
                "max_stretch_seen": round(self.stats["max_stretch_seen"], 3),
                "target_lag_ms": round(self.target_lag_s * 1000, 1)}
