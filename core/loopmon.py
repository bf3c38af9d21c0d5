"""Event-loop lag: how late a periodic wake-up runs. Audio is handled on the loop, so its lag is the
extra latency every session sees; ``GET /-/stats`` reports it (and the benchmarks read it there)."""
from __future__ import annotations

import asyncio
import collections
import time


def percentile(values, q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[index]


class LoopLagMonitor:
    def __init__(self, interval: float = 0.01, window: int = 6000) -> None:
        self.interval = interval
        self.samples: collections.deque[float] = collections.deque(maxlen=window)
        self._task: asyncio.Task | None = None
        # called with every sample (the engine's partial cadence, core/cadence.py)
        self.listeners: list = []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-monitor")

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = max(0.0, time.perf_counter() - before - self.interval)
            self.samples.append(lag)
            for listener in self.listeners:
                listener(lag)

    def reset(self) -> None:
        self.samples.clear()

    def snapshot(self) -> dict:
        values = list(self.samples)
        return {"samples": len(values),
                "lag_ms_p50": round(percentile(values, 50) * 1000, 2),
                "lag_ms_p99": round(percentile(values, 99) * 1000, 2),
                "lag_ms_max": round(max(values, default=0.0) * 1000, 2)}

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``; elsewhere a no-op).
    Audio buffers, decoded frames and model activations are freed by Python but glibc keeps the
    pages in its per-thread arenas; with many threads that shows as RSS that only grows."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False


def rss_bytes() -> int:
    """Resident memory of this process (Linux)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        import os
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
