const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const n = Number(d[0]);
const runs = new Map();
for (let i = 0; i < n; i++) {
  const name = d[1 + 2 * i], res = d[2 + 2 * i];
  if (!runs.has(name)) runs.set(name, [0, 0]);
  const r = runs.get(name); r[1]++; if (res === "FAIL") r[0]++;
}
const flaky = [...runs].filter(([, [f, r]]) => f > 0 && f < r);
// compare fail ratios exactly: f1/r1 > f2/r2  <=>  f1*r2 > f2*r1
flaky.sort((a, b) => b[1][0] * a[1][1] - a[1][0] * b[1][1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
console.log(flaky.length ? flaky.map(([name, [f, r]]) => `${name} ${f}/${r}`).join("\n") : "NONE");
