const t = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const r = Number(t[0]), c = Number(t[1]);
const g = t.slice(2, 2 + r).map((row) => row.split(""));
let count = 0;
for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) {
  if (g[i][j] !== "1") continue;
  count++; g[i][j] = "0";
  const st = [[i, j]];
  while (st.length) {
    const [x, y] = st.pop();
    for (const [nx, ny] of [[x + 1, y], [x - 1, y], [x, y + 1], [x, y - 1]]) {
      if (nx >= 0 && nx < r && ny >= 0 && ny < c && g[nx][ny] === "1") { g[nx][ny] = "0"; st.push([nx, ny]); }
    }
  }
}
console.log(String(count));
