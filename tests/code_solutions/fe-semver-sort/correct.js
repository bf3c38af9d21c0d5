const lines = require("fs").readFileSync(0, "utf8").split("\n");
const n = Number(lines[0]);
const vs = lines.slice(1, 1 + n).map((s) => s.trim());
const cmp = (a, b) => {
  const x = a.split(".").map(Number), y = b.split(".").map(Number);
  for (let i = 0; i < 4; i++) { const d = (x[i] || 0) - (y[i] || 0); if (d) return d; }
  return 0;
};
console.log(vs.sort(cmp).join("\n"));
