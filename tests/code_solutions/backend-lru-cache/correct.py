import sys
from collections import OrderedDict

lines = sys.stdin.read().split("\n")
cap, n = map(int, lines[0].split())
cache = OrderedDict()
out = []
for line in lines[1:1 + n]:
    p = line.split()
    if p[0] == "put":
        k, v = int(p[1]), int(p[2])
        if k in cache:
            cache.move_to_end(k)
        cache[k] = v
        if len(cache) > cap:
            cache.popitem(last=False)
    else:
        k = int(p[1])
        if k in cache:
            cache.move_to_end(k)
            out.append(str(cache[k]))
        else:
            out.append("-1")
print("\n".join(out))
