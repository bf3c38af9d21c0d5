# wrong: "+" is not decoded as a space
import sys
from urllib.parse import unquote

url = sys.stdin.readline().strip().split("#", 1)[0]
query = url.split("?", 1)[1] if "?" in url else ""
params = {}
for piece in query.split("&"):
    if not piece:
        continue
    key, _, value = piece.partition("=")
    params.setdefault(unquote(key), []).append(unquote(value))
if not params:
    print("(empty)")
for key in sorted(params):
    print(f"{key}={','.join(params[key])}")
