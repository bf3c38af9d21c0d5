// wrong: default sort() compares numbers as strings
const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const n = d[0];
const starts = [], ends = [];
for (let i = 0; i < n; i++) { starts.push(d[1 + 2 * i]); ends.push(d[2 + 2 * i]); }
starts.sort(); ends.sort();
let j = 0, cur = 0, best = 0;
for (let i = 0; i < n; i++) {
  while (j < n && ends[j] <= starts[i]) { j++; cur--; }
  cur++; if (cur > best) best = cur;
}
console.log(String(best));
