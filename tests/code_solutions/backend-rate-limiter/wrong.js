// wrong: the window is closed at both ends (a request exactly W seconds old still counts)
const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const w = Number(d[0]), k = Number(d[1]), n = Number(d[2]);
const allowed = new Map();
const out = [];
for (let i = 0; i < n; i++) {
  const t = Number(d[3 + 2 * i]), user = d[4 + 2 * i];
  const q = (allowed.get(user) || []).filter((x) => x >= t - w);
  allowed.set(user, q);
  if (q.length < k) { q.push(t); out.push("ALLOW"); } else out.push("DENY");
}
console.log(out.join("\n"));
