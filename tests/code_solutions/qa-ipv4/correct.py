import sys

lines = sys.stdin.read().split("\n")
n = int(lines[0])
for i in range(n):
    s = lines[1 + i].rstrip("\r") if 1 + i < len(lines) else ""
    parts = s.split(".")
    ok = len(parts) == 4 and all(
        1 <= len(p) <= 3 and all("0" <= ch <= "9" for ch in p) and (p == "0" or p[0] != "0") and int(p) <= 255
        for p in parts)
    print("YES" if ok else "NO")
