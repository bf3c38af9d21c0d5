// wrong: array elements are written with brackets, a[0] instead of a.0
const obj = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = [];
function walk(v, path) {
  if (Array.isArray(v) && v.length) v.forEach((x, i) => walk(x, `${path}[${i}]`));
  else if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length)
    for (const k of Object.keys(v)) walk(v[k], path ? `${path}.${k}` : k);
  else out.push([path, JSON.stringify(v)]);
}
walk(obj, "");
out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
console.log(out.map(([p, t]) => `${p}=${t}`).join("\n"));
