#!/usr/bin/env bash
# Install what is missing, then serve on 0.0.0.0:8000 (PORT, MIANSHI_DATA_DIR, MONGODB_URI... see README).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/bootstrap.sh
# glibc gives every thread that allocates its own heap arena (up to 8 per core); the ASR, vision and
# blocking thread pools then keep freed memory in a dozen arenas. Two arenas keep the resident size
# flat over a day of sessions (README, "Reliability"); set MALLOC_ARENA_MAX yourself to override.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec "$ROOT/.venv/bin/python" sanic_app.py "$@"
