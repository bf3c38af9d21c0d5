"""AsrScheduler: finals are never behind partials; partials are coalesced or skipped under load."""
import asyncio
import threading
import time

import pytest

from core.speech import AsrScheduler


def blocker(event: threading.Event, log: list, name: str):
    def fn():
        log.append(("start", name))
        event.wait(10)
        log.append(("end", name))
        return name
    return fn


def work(log: list, name: str, seconds: float = 0.01):
    def fn():
        log.append(("run", name))
        time.sleep(seconds)
        return name
    return fn


async def test_finals_run_before_waiting_partials():
    s = AsrScheduler(workers=1)
    gate, log = threading.Event(), []
    busy = asyncio.ensure_future(s.run_final(blocker(gate, log, "busy")))
    await asyncio.sleep(0.05)
    p = asyncio.ensure_future(s.run_partial("a", work(log, "partial-a")))
    await asyncio.sleep(0.01)
    f = asyncio.ensure_future(s.run_final(work(log, "final")))
    await asyncio.sleep(0.01)
    gate.set()
    assert await busy == "busy"
    assert await f == "final"
    assert await p == "partial-a"
    runs = [name for kind, name in log if kind == "run"]
    assert runs == ["final", "partial-a"]
    s.close()


async def test_partials_are_skipped_while_finals_wait_and_coalesced_per_key():
    s = AsrScheduler(workers=1)
    gate, log = threading.Event(), []
    busy = asyncio.ensure_future(s.run_final(blocker(gate, log, "busy")))
    await asyncio.sleep(0.05)
    first = asyncio.ensure_future(s.run_partial("k", work(log, "p1")))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(s.run_partial("k", work(log, "p2")))    # replaces p1
    await asyncio.sleep(0.01)
    assert await first is None
    waiting_final = asyncio.ensure_future(s.run_final(work(log, "f")))
    await asyncio.sleep(0.01)
    assert await s.run_partial("other", work(log, "p3")) is None           # a final is waiting
    gate.set()
    assert await waiting_final == "f" and await second == "p2"
    assert [n for k, n in log if k == "run"] == ["f", "p2"]
    assert s.stats["partials_coalesced"] == 1 and s.stats["partials_skipped"] == 1
    s.close()


async def test_errors_reach_the_caller_and_close_releases_partials():
    s = AsrScheduler(workers=2)

    def boom():
        raise RuntimeError("model failed")
    with pytest.raises(RuntimeError, match="model failed"):
        await s.run_final(boom)
    assert await s.run_vad(lambda x: x + 1, 1) == 2
    s.close()
    assert await s.run_partial("k", lambda: 1) is None
    with pytest.raises(RuntimeError):
        await s.run_final(lambda: 1)
    with pytest.raises(ValueError):
        AsrScheduler(workers=0)


async def test_one_worker_stays_free_for_finals():
    s = AsrScheduler(workers=2)
    gate, log = threading.Event(), []
    p1 = asyncio.ensure_future(s.run_partial("a", blocker(gate, log, "pa")))
    await asyncio.sleep(0.05)
    p2 = asyncio.ensure_future(s.run_partial("b", work(log, "pb")))     # waits: lane is full
    await asyncio.sleep(0.1)
    assert ("run", "pb") not in log
    t0 = time.monotonic()
    assert await s.run_final(work(log, "f")) == "f"                     # runs at once on the free worker
    assert time.monotonic() - t0 < 1.0
    gate.set()
    assert await p1 == "pa" and await p2 == "pb"
    s.close()


async def test_prefinals_run_after_finals_and_before_partials():
    s = AsrScheduler(workers=1)
    gate, log = threading.Event(), []
    busy = asyncio.ensure_future(s.run_final(blocker(gate, log, "busy")))
    await asyncio.sleep(0.05)
    p = asyncio.ensure_future(s.run_partial("a", work(log, "partial")))
    await asyncio.sleep(0.01)
    pre = asyncio.ensure_future(s.run_prefinal("a", work(log, "prefinal")))
    await asyncio.sleep(0.01)
    f = asyncio.ensure_future(s.run_final(work(log, "final")))
    await asyncio.sleep(0.01)
    gate.set()
    assert await busy == "busy" and await f == "final" and await pre == "prefinal"
    assert await p == "partial"
    assert [n for k, n in log if k == "run"] == ["final", "prefinal", "partial"]
    s.close()


async def test_prefinals_are_skipped_while_finals_wait_and_can_be_withdrawn():
    s = AsrScheduler(workers=1)
    gate, log = threading.Event(), []
    busy = asyncio.ensure_future(s.run_final(blocker(gate, log, "busy")))
    await asyncio.sleep(0.05)
    first = asyncio.ensure_future(s.run_prefinal("k", work(log, "pre1")))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(s.run_prefinal("k", work(log, "pre2")))    # replaces pre1
    await asyncio.sleep(0.01)
    assert await first is None
    assert s.withdraw_prefinal("k") is True                                   # speech resumed
    assert await second is None
    assert s.withdraw_prefinal("k") is False
    waiting = asyncio.ensure_future(s.run_final(work(log, "f")))
    await asyncio.sleep(0.01)
    assert await s.run_prefinal("other", work(log, "pre3")) is None           # a final is waiting
    gate.set()
    assert await busy == "busy" and await waiting == "f"
    assert [n for k, n in log if k == "run"] == ["f"]
    assert s.stats["prefinals_withdrawn"] == 2 and s.stats["prefinals_skipped"] == 1
    s.close()


async def test_partials_stop_while_other_work_keeps_a_worker_busy():
    """With two workers a partial starts only when the other worker is idle, whatever keeps it
    busy (here a pre-final): under load partials are what gives way."""
    s = AsrScheduler(workers=2)
    gate, log = threading.Event(), []
    pre = asyncio.ensure_future(s.run_prefinal("a", blocker(gate, log, "pre")))
    await asyncio.sleep(0.05)
    p = asyncio.ensure_future(s.run_partial("b", work(log, "pb")))
    await asyncio.sleep(0.2)
    assert ("run", "pb") not in log
    assert await s.run_final(work(log, "f")) == "f"                 # a final still runs at once
    gate.set()
    assert await pre == "pre" and await p == "pb"
    assert s.busy_seconds["prefinal"] > 0.2 and s.busy_seconds["final"] > 0
    s.close()
