"""Benchmark of the code sandbox (plugins/sandbox_bwrap.py).

    .venv/bin/python bench/bench_sandbox.py [--runs 20] [--submissions 6]

Prints:
  1. start-up overhead: median wall time of a trivial program run directly vs. through the sandbox
     (bwrap + setpriv + nice + prlimit), for Python and Node;
  2. submissions per second: whole submissions of a bank problem (every visible and hidden case,
     judged as the code phase does) with max_concurrent = 1, 2 and 4;
  3. event-loop lag (max of 10 ms ticks) while a fork bomb and a CPU burner run.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.interfaces import RunLimits  # noqa: E402
from phases.code import ProblemBank, judge  # noqa: E402
from plugins.sandbox_bwrap import BubblewrapRunner  # noqa: E402

SOLUTIONS = ROOT / "tests" / "code_solutions"
LIMITS = RunLimits(cpu_seconds=2, wall_seconds=5, memory_mb=256, max_processes=32, max_output_bytes=65536)


def direct(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True,
                       env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})   # the sandbox's environment
        times.append((time.perf_counter() - t) * 1000)
    return times


async def sandboxed(runner, language: str, code: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = await runner.run(language, code, "", LIMITS)
        assert out.exit_code == 0, out
        times.append((time.perf_counter() - t) * 1000)
    return times


async def submissions_per_second(problem: dict, language: str, code: str, concurrency: int, count: int):
    runner = BubblewrapRunner({"max_concurrent": concurrency})
    runner.check()
    cases = problem["examples"] + problem["hidden"]

    async def one():
        outcomes = await asyncio.gather(*(runner.run(language, code, c["input"], LIMITS) for c in cases))
        assert all(judge(o, c["output"], LIMITS)[0] for o, c in zip(outcomes, cases))

    await one()                                   # warm caches
    t = time.perf_counter()
    # several sessions submitting at once: all submissions in flight together
    await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.perf_counter() - t
    return count / elapsed, count * len(cases) / elapsed


async def loop_lag(seconds: float) -> float:
    """Max lag of 10 ms ticks with nothing of ours running (the machine's own noise)."""
    lags: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        await asyncio.sleep(0.01)
        lags.append(time.monotonic() - t - 0.01)
    return max(lags) * 1000


async def loop_lag_under_attack(runner) -> tuple[float, float]:
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker():
        while not stop.is_set():
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t - 0.01)

    task = asyncio.ensure_future(ticker())
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    t = time.monotonic()
    await asyncio.gather(runner.run("python", bomb, "", RunLimits(1, 2, 128, 16, 10000)),
                         runner.run("python", "while True:\n    pass", "", RunLimits(1, 2, 128, 16, 10000)))
    took = time.monotonic() - t
    stop.set()
    await task
    return max(lags) * 1000, took


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--submissions", type=int, default=6)
    args = ap.parse_args()
    runner = BubblewrapRunner({"max_concurrent": 1})
    problem_why = runner.check()
    if problem_why:
        raise SystemExit(f"sandbox cannot run: {problem_why}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (shared, busy machine)")
    print()
    print("| program | direct median ms | sandboxed median ms | overhead ms | sandboxed p90 ms |")
    print("|---|---|---|---|---|")
    for lang, argv, code in (("python", ["/usr/bin/python3", "-I", "-B", "-c", "pass"], "pass"),
                             ("javascript", ["/usr/bin/node", "-e", "0"], "0")):
        d, s = [], []
        for _ in range(args.runs):          # interleaved, so that load changes hit both alike
            d += direct(argv, 1)
            s += await sandboxed(runner, lang, code, 1)
        p90 = sorted(s)[int(len(s) * 0.9) - 1]
        print(f"| {lang} empty program | {statistics.median(d):.1f} | {statistics.median(s):.1f} | "
              f"{statistics.median(s) - statistics.median(d):.1f} | {p90:.1f} |")
    print()
    bank = ProblemBank.load()
    print("| submission | cases | max_concurrent | submissions/s | cases/s |")
    print("|---|---|---|---|---|")
    for pid, lang, name in (("backend-lru-cache", "python", "correct.py"),
                            ("backend-lru-cache", "javascript", "correct.js")):
        problem = bank.by_id[pid]
        code = (SOLUTIONS / pid / name).read_text(encoding="utf-8")
        n_cases = len(problem["examples"]) + len(problem["hidden"])
        for conc in (1, 2, 4):
            sps, cps = await submissions_per_second(problem, lang, code, conc, args.submissions)
            print(f"| {pid} ({lang}) | {n_cases} | {conc} | {sps:.2f} | {cps:.1f} |")
    print()
    for _ in range(2):
        idle = await loop_lag(3.0)
        attack_runner = BubblewrapRunner({"max_concurrent": 2})
        attack_runner.check()               # the start-up check, as the engine does at start
        lag, took = await loop_lag_under_attack(attack_runner)
        print(f"fork bomb + CPU burner (1 s CPU / 2 s wall limits): both stopped after {took:.2f} s; "
              f"max event-loop lag meanwhile {lag:.1f} ms (3 s with nothing running just before: {idle:.1f} ms)")


if __name__ == "__main__":
    asyncio.run(main())
