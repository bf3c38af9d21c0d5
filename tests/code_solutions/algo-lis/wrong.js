// wrong: longest run of consecutive increasing elements (substring, not subsequence)
const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const n = d[0];
let best = 1, cur = 1;
for (let i = 2; i <= n; i++) { cur = d[i] > d[i - 1] ? cur + 1 : 1; if (cur > best) best = cur; }
console.log(String(best));
