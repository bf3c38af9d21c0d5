const lines = require("fs").readFileSync(0, "utf8").split("\n");
const n = Number(lines[0]);
const part = /^(0|[1-9][0-9]{0,2})$/;
const out = [];
for (let i = 0; i < n; i++) {
  const s = (lines[1 + i] || "").replace(/\r$/, "");
  const p = s.split(".");
  out.push(p.length === 4 && p.every((x) => part.test(x) && Number(x) <= 255) ? "YES" : "NO");
}
console.log(out.join("\n"));
