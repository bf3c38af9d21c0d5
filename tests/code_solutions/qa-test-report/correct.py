import sys
from collections import defaultdict

data = sys.stdin.read().split()
n = int(data[0])
stats = defaultdict(lambda: {"PASS": 0, "FAIL": 0, "SKIP": 0})
for i in range(n):
    suite, _case, status, _ms = data[1 + 4 * i:5 + 4 * i]
    stats[suite][status] += 1


def row(name, s):
    total = s["PASS"] + s["FAIL"] + s["SKIP"]
    run = s["PASS"] + s["FAIL"]
    rate = f"{s['PASS'] * 100 // run}%" if run else "N/A"
    return f"{name} {total} {s['PASS']} {s['FAIL']} {s['SKIP']} {rate}"


grand = {"PASS": 0, "FAIL": 0, "SKIP": 0}
for suite in sorted(stats):
    print(row(suite, stats[suite]))
    for k in grand:
        grand[k] += stats[suite][k]
print(row("TOTAL", grand))
