// wrong: sorted by name only, ignoring the failure ratio
const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const n = Number(d[0]);
const runs = new Map();
for (let i = 0; i < n; i++) {
  const name = d[1 + 2 * i], res = d[2 + 2 * i];
  if (!runs.has(name)) runs.set(name, [0, 0]);
  const r = runs.get(name); r[1]++; if (res === "FAIL") r[0]++;
}
const flaky = [...runs].filter(([, [f, r]]) => f > 0 && f < r).sort((a, b) => (a[0] < b[0] ? -1 : 1));
console.log(flaky.length ? flaky.map(([name, [f, r]]) => `${name} ${f}/${r}`).join("\n") : "NONE");
