const lines = require("fs").readFileSync(0, "utf8").split("\n");
const n = Number(lines[0]);
const out = [];
for (let i = 0; i < n; i++) {
  const p = (lines[1 + i] || "").replace(/\r$/, "");
  const bad = [];
  if (p.length < 8 || p.length > 20) bad.push("R1");
  if (!/[A-Z]/.test(p)) bad.push("R2");
  if (!/[a-z]/.test(p)) bad.push("R3");
  if (!/[0-9]/.test(p)) bad.push("R4");
  if (!/[!@#$%^&*]/.test(p)) bad.push("R5");
  if (p.includes(" ")) bad.push("R6");
  if (/(.)\1\1/.test(p)) bad.push("R7");
  out.push(bad.length ? bad.join(",") : "OK");
}
console.log(out.join("\n"));
