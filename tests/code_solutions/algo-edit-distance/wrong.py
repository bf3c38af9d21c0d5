# wrong: forgets substitution (only insertions and deletions)
import sys

lines = sys.stdin.read().split("\n")
a, b = lines[0].strip(), lines[1].strip()
prev = list(range(len(b) + 1))
for i, ca in enumerate(a, 1):
    cur = [i] + [0] * len(b)
    for j, cb in enumerate(b, 1):
        cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] if ca == cb else 10 ** 9)
    prev = cur
print(prev[len(b)])
