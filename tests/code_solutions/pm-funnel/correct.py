import sys
from collections import defaultdict

lines = sys.stdin.read().split("\n")
steps = lines[0].split()
index = {s: i for i, s in enumerate(steps)}
n = int(lines[1])
events = defaultdict(list)
for line in lines[2:2 + n]:
    user, step, t = line.split()
    if step in index:
        events[user].append((int(t), index[step]))
reached = [0] * len(steps)
for evs in events.values():
    evs.sort()
    k = 0
    for _, s in evs:
        if k < len(steps) and s == k:
            k += 1
    for i in range(k):
        reached[i] += 1
for i, s in enumerate(steps):
    if i == 0:
        conv = "-"
    else:
        conv = f"{reached[i] * 100 // reached[i - 1]}%" if reached[i - 1] else "0%"
    print(f"{s} {reached[i]} {conv}")
