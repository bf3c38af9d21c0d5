import sys

data = sys.stdin.read().split()
n = int(data[0])
users = {"A": {}, "B": {}}
for i in range(n):
    user, group, conv = data[1 + 3 * i], data[2 + 3 * i], data[3 + 3 * i]
    users[group][user] = users[group].get(user, False) or conv == "1"
res = {}
for g in ("A", "B"):
    total = len(users[g])
    conv = sum(users[g].values())
    bp = conv * 10000 // total
    res[g] = (total, conv)
    print(f"{g} {total} {conv} {bp // 100}.{bp % 100:02d}%")
(ta, ca), (tb, cb) = res["A"], res["B"]
if ca * tb > cb * ta:
    print("WINNER A")
elif cb * ta > ca * tb:
    print("WINNER B")
else:
    print("TIE")
