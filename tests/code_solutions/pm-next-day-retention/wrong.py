# wrong: a user counts as retained if active on any later day, not only the next day
import sys
from collections import defaultdict

data = sys.stdin.read().split()
n = int(data[0])
days = defaultdict(set)
for i in range(n):
    days[data[1 + 2 * i]].add(int(data[2 + 2 * i]))
cohorts = defaultdict(lambda: [0, 0])
for user, active in days.items():
    first = min(active)
    cohorts[first][0] += 1
    if len(active) > 1:
        cohorts[first][1] += 1
for day in sorted(cohorts):
    new, kept = cohorts[day]
    print(f"{day} {new} {kept} {kept * 100 // new}%")
