#!/usr/bin/env bash
# Install everything (scripts/bootstrap.sh, then the test-only extras) and run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k resumes). Exit code: pytest's; "no tests
# collected" (5) is a failure.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/bootstrap.sh || exit $?
if [ -x scripts/install_test_extras.sh ]; then
    ./scripts/install_test_extras.sh || exit $?
elif [ -f scripts/install_test_extras.sh ]; then
    bash scripts/install_test_extras.sh || exit $?
fi
"$ROOT/.venv/bin/python" -m pytest tests -q "$@"
code=$?
if [ "$code" -eq 5 ]; then
    echo "test.sh: no tests were collected" >&2
    exit 5
fi
exit "$code"
