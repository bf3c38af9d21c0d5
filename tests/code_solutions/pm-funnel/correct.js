const lines = require("fs").readFileSync(0, "utf8").split("\n");
const steps = lines[0].trim().split(/\s+/);
const idx = new Map(steps.map((s, i) => [s, i]));
const n = Number(lines[1]);
const ev = new Map();
for (let i = 0; i < n; i++) {
  const [u, step, t] = lines[2 + i].trim().split(/\s+/);
  if (!idx.has(step)) continue;
  if (!ev.has(u)) ev.set(u, []);
  ev.get(u).push([Number(t), idx.get(step)]);
}
const reached = new Array(steps.length).fill(0);
for (const list of ev.values()) {
  list.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let k = 0;
  for (const [, s] of list) if (k < steps.length && s === k) k++;
  for (let i = 0; i < k; i++) reached[i]++;
}
console.log(steps.map((s, i) => {
  const conv = i === 0 ? "-" : reached[i - 1] ? `${Math.floor((reached[i] * 100) / reached[i - 1])}%` : "0%";
  return `${s} ${reached[i]} ${conv}`;
}).join("\n"));
