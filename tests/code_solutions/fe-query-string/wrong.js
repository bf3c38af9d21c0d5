// wrong: splits each pair on every "=", so values containing "=" are cut
const url = require("fs").readFileSync(0, "utf8").split("\n")[0].trim().split("#")[0];
const q = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
const dec = (s) => decodeURIComponent(s.replace(/\+/g, " "));
const params = new Map();
for (const piece of q.split("&")) {
  if (!piece) continue;
  const [k0, v0] = piece.split("=");
  const k = dec(k0), v = v0 === undefined ? "" : dec(v0);
  if (!params.has(k)) params.set(k, []);
  params.get(k).push(v);
}
const keys = [...params.keys()].sort();
console.log(keys.length ? keys.map((k) => `${k}=${params.get(k).join(",")}`).join("\n") : "(empty)");
