const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const n = d[0];
const tails = [];
for (let i = 1; i <= n; i++) {
  const x = d[i];
  let lo = 0, hi = tails.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (tails[mid] < x) lo = mid + 1; else hi = mid; }
  tails[lo] = x;
}
console.log(String(tails.length));
