import json
import sys

obj = json.loads(sys.stdin.read())
out = []


def walk(value, path):
    if isinstance(value, dict) and value:
        for k, v in value.items():
            walk(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            walk(v, f"{path}.{i}" if path else str(i))
    else:
        out.append((path, json.dumps(value, ensure_ascii=False, separators=(",", ":"))))


walk(obj, "")
for path, text in sorted(out):
    print(f"{path}={text}")
