// wrong: rounds the rate with toFixed(2) instead of truncating it
const d = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const n = Number(d[0]);
const users = { A: new Map(), B: new Map() };
for (let i = 0; i < n; i++) {
  const u = d[1 + 3 * i], g = d[2 + 3 * i], c = d[3 + 3 * i] === "1";
  users[g].set(u, (users[g].get(u) || false) || c);
}
const out = [], res = {};
for (const g of ["A", "B"]) {
  const total = users[g].size;
  let conv = 0; for (const v of users[g].values()) if (v) conv++;
  res[g] = [total, conv];
  out.push(`${g} ${total} ${conv} ${((conv * 100) / total).toFixed(2)}%`);
}
const [ta, ca] = res.A, [tb, cb] = res.B;
out.push(ca * tb > cb * ta ? "WINNER A" : cb * ta > ca * tb ? "WINNER B" : "TIE");
console.log(out.join("\n"));
