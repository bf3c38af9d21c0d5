# wrong: a FIFO queue gives a valid order, but not the one with the smallest number first
import sys
from collections import deque

data = sys.stdin.read().split()
n, m = int(data[0]), int(data[1])
deps_of = [[] for _ in range(n + 1)]
indeg = [0] * (n + 1)
for i in range(m):
    a, b = int(data[2 + 2 * i]), int(data[3 + 2 * i])
    deps_of[b].append(a)
    indeg[a] += 1
q = deque(v for v in range(1, n + 1) if indeg[v] == 0)
order = []
while q:
    v = q.popleft()
    order.append(v)
    for a in deps_of[v]:
        indeg[a] -= 1
        if indeg[a] == 0:
            q.append(a)
print(" ".join(map(str, order)) if len(order) == n else "IMPOSSIBLE")
