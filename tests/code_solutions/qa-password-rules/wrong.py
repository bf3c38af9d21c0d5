# wrong: strips the password, so leading/trailing spaces are neither counted nor reported
import sys

lines = sys.stdin.read().split("\n")
n = int(lines[0])
SPECIAL = set("!@#$%^&*")
for i in range(n):
    p = (lines[1 + i] if 1 + i < len(lines) else "").strip()
    bad = []
    if not 8 <= len(p) <= 20:
        bad.append("R1")
    if not any(ch.isupper() for ch in p):
        bad.append("R2")
    if not any(ch.islower() for ch in p):
        bad.append("R3")
    if not any(ch.isdigit() for ch in p):
        bad.append("R4")
    if not any(ch in SPECIAL for ch in p):
        bad.append("R5")
    if " " in p:
        bad.append("R6")
    if any(p[j] == p[j + 1] == p[j + 2] for j in range(len(p) - 2)):
        bad.append("R7")
    print(",".join(bad) if bad else "OK")
