// wrong: stops at the first broken rule instead of listing all of them
const lines = require("fs").readFileSync(0, "utf8").split("\n");
const n = Number(lines[0]);
const out = [];
for (let i = 0; i < n; i++) {
  const p = (lines[1 + i] || "").replace(/\r$/, "");
  const checks = [["R1", p.length >= 8 && p.length <= 20], ["R2", /[A-Z]/.test(p)], ["R3", /[a-z]/.test(p)],
    ["R4", /[0-9]/.test(p)], ["R5", /[!@#$%^&*]/.test(p)], ["R6", !p.includes(" ")], ["R7", !/(.)\1\1/.test(p)]];
  const bad = checks.find(([, ok]) => !ok);
  out.push(bad ? bad[0] : "OK");
}
console.log(out.join("\n"));
