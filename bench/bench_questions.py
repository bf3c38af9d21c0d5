"""Question bank timing: bank load and question selection per interview.

Run: .venv/bin/python bench/bench_questions.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plugins.question_bank import POSITION_TYPES, Bank, select_questions  # noqa: E402
from tests.test_question_bank import RESUMES, interview  # noqa: E402


def main() -> None:
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        bank = Bank.load()
        loads.append((time.perf_counter() - t0) * 1000)
    total = sum(len(v) for v in bank.questions.values())
    print(f"bank: {total} questions ({', '.join(f'{p} {len(bank.questions[p])}' for p in POSITION_TYPES)})")
    print(f"load: median {statistics.median(loads):.1f} ms")
    for count in (5, 10):
        times = []
        for i in range(200):
            ptype = POSITION_TYPES[i % 5]
            t0 = time.perf_counter()
            qs = select_questions(bank, RESUMES[ptype], interview(ptype, f"b{i}"), count)
            times.append((time.perf_counter() - t0) * 1000)
            assert len(qs) == count
        times.sort()
        print(f"select count={count}: median {statistics.median(times):.2f} ms, "
              f"p95 {times[int(len(times) * 0.95)]:.2f} ms over {len(times)} interviews")


if __name__ == "__main__":
    main()
