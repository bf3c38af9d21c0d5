# wrong: repeated events of a user on the same day are counted as several active users
import sys

data = sys.stdin.read().split()
days, n = int(data[0]), int(data[1])
users = set(data[2 + 2 * i] for i in range(n))
mau = len(users)
dau100 = n * 100 // days
stick = n * 10000 // (days * mau)
print(f"{dau100 // 100}.{dau100 % 100:02d}")
print(mau)
print(f"{stick // 100}.{stick % 100:02d}%")
