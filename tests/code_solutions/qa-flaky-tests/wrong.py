# wrong: a case that always fails is reported as flaky too
import sys
from collections import defaultdict
from fractions import Fraction

data = sys.stdin.read().split()
n = int(data[0])
runs = defaultdict(lambda: [0, 0])
for i in range(n):
    name, result = data[1 + 2 * i], data[2 + 2 * i]
    runs[name][1] += 1
    if result == "FAIL":
        runs[name][0] += 1
flaky = [(name, f, r) for name, (f, r) in runs.items() if f > 0]
flaky.sort(key=lambda x: (-Fraction(x[1], x[2]), x[0]))
if not flaky:
    print("NONE")
for name, f, r in flaky:
    print(f"{name} {f}/{r}")
