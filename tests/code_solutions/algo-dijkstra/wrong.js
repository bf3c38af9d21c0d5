// wrong: breadth-first search by number of roads, summing the weights along the first path found
const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const n = d[0], m = d[1];
const adj = Array.from({ length: n + 1 }, () => []);
for (let i = 0; i < m; i++) {
  const u = d[2 + 3 * i], v = d[3 + 3 * i], w = d[4 + 3 * i];
  adj[u].push([v, w]); adj[v].push([u, w]);
}
const dist = new Array(n + 1).fill(-1);
dist[1] = 0;
const q = [1];
for (let h = 0; h < q.length; h++) {
  const u = q[h];
  for (const [v, w] of adj[u]) if (dist[v] < 0) { dist[v] = dist[u] + w; q.push(v); }
}
console.log(String(dist[n]));
