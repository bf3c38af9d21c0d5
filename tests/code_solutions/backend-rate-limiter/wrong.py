# wrong: denied requests are counted in the window too
import sys
from collections import defaultdict, deque

data = sys.stdin.read().split()
w, k, n = int(data[0]), int(data[1]), int(data[2])
seen = defaultdict(deque)
out = []
for i in range(n):
    t, user = int(data[3 + 2 * i]), data[4 + 2 * i]
    q = seen[user]
    while q and q[0] <= t - w:
        q.popleft()
    out.append("ALLOW" if len(q) < k else "DENY")
    q.append(t)
print("\n".join(out))
