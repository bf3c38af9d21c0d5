# wrong: empty objects and arrays are dropped instead of printed as {} and []
import json
import sys

obj = json.loads(sys.stdin.read())
out = []


def walk(value, path):
    if isinstance(value, dict):
        for k, v in value.items():
            walk(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            walk(v, f"{path}.{i}" if path else str(i))
    else:
        out.append((path, json.dumps(value, ensure_ascii=False)))


walk(obj, "")
for path, text in sorted(out):
    print(f"{path}={text}")
