import sys
from collections import defaultdict, deque

data = sys.stdin.read().split()
w, k, n = int(data[0]), int(data[1]), int(data[2])
allowed = defaultdict(deque)
out = []
for i in range(n):
    t, user = int(data[3 + 2 * i]), data[4 + 2 * i]
    q = allowed[user]
    while q and q[0] <= t - w:
        q.popleft()
    if len(q) < k:
        q.append(t)
        out.append("ALLOW")
    else:
        out.append("DENY")
print("\n".join(out))
