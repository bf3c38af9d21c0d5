const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const n = d[0], m = d[1];
const adj = Array.from({ length: n + 1 }, () => []);
for (let i = 0; i < m; i++) {
  const u = d[2 + 3 * i], v = d[3 + 3 * i], w = d[4 + 3 * i];
  adj[u].push([v, w]); adj[v].push([u, w]);
}
const dist = new Array(n + 1).fill(Infinity);
const done = new Array(n + 1).fill(false);
dist[1] = 0;
for (;;) {
  let u = -1;
  for (let v = 1; v <= n; v++) if (!done[v] && dist[v] < Infinity && (u < 0 || dist[v] < dist[u])) u = v;
  if (u < 0) break;
  done[u] = true;
  for (const [v, w] of adj[u]) if (dist[u] + w < dist[v]) dist[v] = dist[u] + w;
}
console.log(String(dist[n] === Infinity ? -1 : dist[n]));
