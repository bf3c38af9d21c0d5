# wrong: compares the part lists without padding, so "1.2" sorts before "1.2.0" even though they are equal
import sys

lines = sys.stdin.read().split("\n")
n = int(lines[0])
versions = [lines[1 + i].strip() for i in range(n)]
print("\n".join(sorted(versions, key=lambda v: [int(x) for x in v.split(".")])))
