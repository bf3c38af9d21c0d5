import sys

data = sys.stdin.read().split()
days, n = int(data[0]), int(data[1])
pairs = set()
for i in range(n):
    pairs.add((data[2 + 2 * i], int(data[3 + 2 * i])))
mau = len({u for u, _ in pairs})
dau100 = len(pairs) * 100 // days
stick = len(pairs) * 10000 // (days * mau)
print(f"{dau100 // 100}.{dau100 % 100:02d}")
print(mau)
print(f"{stick // 100}.{stick % 100:02d}%")
