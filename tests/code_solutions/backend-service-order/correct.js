const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const n = d[0], m = d[1];
const depsOf = Array.from({ length: n + 1 }, () => []);
const indeg = new Array(n + 1).fill(0);
for (let i = 0; i < m; i++) { const a = d[2 + 2 * i], b = d[3 + 2 * i]; depsOf[b].push(a); indeg[a]++; }
const done = new Array(n + 1).fill(false);
const order = [];
for (let step = 0; step < n; step++) {
  let pick = -1;
  for (let v = 1; v <= n; v++) if (!done[v] && indeg[v] === 0) { pick = v; break; }
  if (pick < 0) break;
  done[pick] = true; order.push(pick);
  for (const a of depsOf[pick]) indeg[a]--;
}
console.log(order.length === n ? order.join(" ") : "IMPOSSIBLE");
