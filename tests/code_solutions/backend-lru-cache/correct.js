const lines = require("fs").readFileSync(0, "utf8").split("\n");
const [cap, n] = lines[0].trim().split(/\s+/).map(Number);
const cache = new Map();
const out = [];
for (let i = 1; i <= n; i++) {
  const p = lines[i].trim().split(/\s+/);
  const k = Number(p[1]);
  if (p[0] === "put") {
    cache.delete(k);
    cache.set(k, Number(p[2]));
    if (cache.size > cap) cache.delete(cache.keys().next().value);
  } else if (cache.has(k)) {
    const v = cache.get(k);
    cache.delete(k);
    cache.set(k, v);
    out.push(String(v));
  } else {
    out.push("-1");
  }
}
console.log(out.join("\n"));
