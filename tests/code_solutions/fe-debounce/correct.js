const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const wait = d[0], n = d[1], ts = d.slice(2, 2 + n);
const fires = [];
for (let i = 0; i < n; i++) if (i === n - 1 || ts[i + 1] >= ts[i] + wait) fires.push(ts[i] + wait);
console.log(fires.join(" "));
