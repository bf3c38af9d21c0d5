# wrong: treats the intervals as closed, so a meeting ending at t clashes with one starting at t
import sys

data = sys.stdin.read().split()
n = int(data[0])
events = []
for i in range(n):
    s, e = int(data[1 + 2 * i]), int(data[2 + 2 * i])
    events.append((s, -1))
    events.append((e, 1))
events.sort()
cur = best = 0
for _, delta in events:
    cur -= delta
    best = max(best, cur)
print(best)
