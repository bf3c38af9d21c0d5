// wrong: the cohort is the day of the user's first line in the input, not the earliest day
const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const n = Number(d[0]);
const days = new Map(), firstSeen = new Map();
for (let i = 0; i < n; i++) {
  const u = d[1 + 2 * i], day = Number(d[2 + 2 * i]);
  if (!days.has(u)) { days.set(u, new Set()); firstSeen.set(u, day); }
  days.get(u).add(day);
}
const cohorts = new Map();
for (const [u, active] of days) {
  const first = firstSeen.get(u);
  if (!cohorts.has(first)) cohorts.set(first, [0, 0]);
  const c = cohorts.get(first);
  c[0]++; if (active.has(first + 1)) c[1]++;
}
console.log([...cohorts.keys()].sort((a, b) => a - b)
  .map((day) => { const [nw, kept] = cohorts.get(day); return `${day} ${nw} ${kept} ${Math.floor((kept * 100) / nw)}%`; })
  .join("\n"));
