# wrong: diagonal neighbours join islands too (8-connectivity)
import sys

lines = sys.stdin.read().split()
r, c = int(lines[0]), int(lines[1])
grid = [list(row) for row in lines[2:2 + r]]
count = 0
for i in range(r):
    for j in range(c):
        if grid[i][j] != "1":
            continue
        count += 1
        grid[i][j] = "0"
        stack = [(i, j)]
        while stack:
            x, y = stack.pop()
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    nx, ny = x + dx, y + dy
                    if 0 <= nx < r and 0 <= ny < c and grid[nx][ny] == "1":
                        grid[nx][ny] = "0"
                        stack.append((nx, ny))
print(count)
