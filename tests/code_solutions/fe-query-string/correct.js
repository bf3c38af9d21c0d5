const url = require("fs").readFileSync(0, "utf8").split("\n")[0].trim().split("#")[0];
const q = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
const dec = (s) => decodeURIComponent(s.replace(/\+/g, " "));
const params = new Map();
for (const piece of q.split("&")) {
  if (!piece) continue;
  const i = piece.indexOf("=");
  const k = dec(i < 0 ? piece : piece.slice(0, i));
  const v = i < 0 ? "" : dec(piece.slice(i + 1));
  if (!params.has(k)) params.set(k, []);
  params.get(k).push(v);
}
const keys = [...params.keys()].sort();
console.log(keys.length ? keys.map((k) => `${k}=${params.get(k).join(",")}`).join("\n") : "(empty)");
