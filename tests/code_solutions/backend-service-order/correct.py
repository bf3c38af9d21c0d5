import heapq
import sys

data = sys.stdin.read().split()
n, m = int(data[0]), int(data[1])
deps_of = [[] for _ in range(n + 1)]
indeg = [0] * (n + 1)
for i in range(m):
    a, b = int(data[2 + 2 * i]), int(data[3 + 2 * i])
    deps_of[b].append(a)
    indeg[a] += 1
heap = [v for v in range(1, n + 1) if indeg[v] == 0]
heapq.heapify(heap)
order = []
while heap:
    v = heapq.heappop(heap)
    order.append(v)
    for a in deps_of[v]:
        indeg[a] -= 1
        if indeg[a] == 0:
            heapq.heappush(heap, a)
print(" ".join(map(str, order)) if len(order) == n else "IMPOSSIBLE")
