// wrong: plain string sort ("1.10" before "1.9")
const lines = require("fs").readFileSync(0, "utf8").split("\n");
const n = Number(lines[0]);
console.log(lines.slice(1, 1 + n).map((s) => s.trim()).sort().join("\n"));
