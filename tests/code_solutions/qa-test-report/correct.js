const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const n = Number(d[0]);
const stats = new Map();
for (let i = 0; i < n; i++) {
  const suite = d[1 + 4 * i], status = d[3 + 4 * i];
  if (!stats.has(suite)) stats.set(suite, { PASS: 0, FAIL: 0, SKIP: 0 });
  stats.get(suite)[status]++;
}
const row = (name, s) => {
  const run = s.PASS + s.FAIL;
  const rate = run ? `${Math.floor((s.PASS * 100) / run)}%` : "N/A";
  return `${name} ${s.PASS + s.FAIL + s.SKIP} ${s.PASS} ${s.FAIL} ${s.SKIP} ${rate}`;
};
const g = { PASS: 0, FAIL: 0, SKIP: 0 };
const out = [];
for (const suite of [...stats.keys()].sort()) {
  const s = stats.get(suite);
  out.push(row(suite, s));
  for (const k of Object.keys(g)) g[k] += s[k];
}
out.push(row("TOTAL", g));
console.log(out.join("\n"));
