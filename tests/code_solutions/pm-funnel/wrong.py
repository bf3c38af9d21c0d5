# wrong: ignores the order of events (a user who paid before viewing still counts)
import sys
from collections import defaultdict

lines = sys.stdin.read().split("\n")
steps = lines[0].split()
index = {s: i for i, s in enumerate(steps)}
n = int(lines[1])
done = defaultdict(set)
for line in lines[2:2 + n]:
    user, step, t = line.split()
    if step in index:
        done[user].add(index[step])
reached = [0] * len(steps)
for got in done.values():
    k = 0
    while k in got:
        k += 1
    for i in range(k):
        reached[i] += 1
for i, s in enumerate(steps):
    if i == 0:
        conv = "-"
    else:
        conv = f"{reached[i] * 100 // reached[i - 1]}%" if reached[i - 1] else "0%"
    print(f"{s} {reached[i]} {conv}")
