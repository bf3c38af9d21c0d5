# wrong: counts event rows instead of distinct users
import sys

data = sys.stdin.read().split()
n = int(data[0])
rows = {"A": [0, 0], "B": [0, 0]}
for i in range(n):
    group, conv = data[2 + 3 * i], data[3 + 3 * i]
    rows[group][0] += 1
    rows[group][1] += conv == "1"
for g in ("A", "B"):
    total, conv = rows[g]
    bp = conv * 10000 // total
    print(f"{g} {total} {conv} {bp // 100}.{bp % 100:02d}%")
(ta, ca), (tb, cb) = rows["A"], rows["B"]
print("WINNER A" if ca * tb > cb * ta else "WINNER B" if cb * ta > ca * tb else "TIE")
