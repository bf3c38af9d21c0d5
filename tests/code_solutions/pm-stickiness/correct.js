const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const days = Number(d[0]), n = Number(d[1]);
const pairs = new Set(), users = new Set();
for (let i = 0; i < n; i++) { pairs.add(`${d[2 + 2 * i]} ${Number(d[3 + 2 * i])}`); users.add(d[2 + 2 * i]); }
const p = pairs.size, mau = users.size;
const dau100 = Math.floor((p * 100) / days), stick = Math.floor((p * 10000) / (days * mau));
const two = (x) => `${Math.floor(x / 100)}.${String(x % 100).padStart(2, "0")}`;
console.log(`${two(dau100)}\n${mau}\n${two(stick)}%`);
