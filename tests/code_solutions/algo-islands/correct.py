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
            for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if 0 <= nx < r and 0 <= ny < c and grid[nx][ny] == "1":
                    grid[nx][ny] = "0"
                    stack.append((nx, ny))
print(count)
