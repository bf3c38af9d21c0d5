// wrong: throttle instead of debounce (fires on the first event of each window)
const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const wait = d[0], n = d[1], ts = d.slice(2, 2 + n);
const fires = [];
let last = -Infinity;
for (let i = 0; i < n; i++) if (ts[i] >= last + wait) { last = ts[i]; fires.push(ts[i] + wait); }
console.log(fires.join(" "));
