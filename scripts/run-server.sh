#!/usr/bin/env bash
# Install what is missing, then serve on 0.0.0.0:8000 (PORT, MIANSHI_DATA_DIR, MONGODB_URI... see README).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/bootstrap.sh
exec "$ROOT/.venv/bin/python" sanic_app.py "$@"
