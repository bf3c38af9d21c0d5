import sys

data = sys.stdin.read().split()
wait, n = int(data[0]), int(data[1])
ts = list(map(int, data[2:2 + n]))
fires = [ts[i] + wait for i in range(n) if i == n - 1 or ts[i + 1] >= ts[i] + wait]
print(" ".join(map(str, fires)))
