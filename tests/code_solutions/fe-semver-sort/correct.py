import sys

lines = sys.stdin.read().split("\n")
n = int(lines[0])
versions = [lines[1 + i].strip() for i in range(n)]


def key(v):
    parts = [int(x) for x in v.split(".")]
    return parts + [0] * (4 - len(parts))


print("\n".join(sorted(versions, key=key)))
