#!/usr/bin/env bash
# Set up .venv and run both workflows on a copy of examples/demo with the OFFLINE MOCK
# provider (no network, no API keys, no real LLM). Each run starts over in .demo/
# (git-ignored), so nothing piles up in /tmp; the previous demo's output is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agentos needs Python 3.11 or later")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
work="$PWD/.demo"
rm -rf "$work"
mkdir -p "$work"
cp -r examples/demo "$work/demo"
export AGENTOS_HOME="${AGENTOS_HOME:-$work/agentos-home}"
export AGENTOS_MOCK_LATENCY="${AGENTOS_MOCK_LATENCY:-0.3}"
echo "Demo workspace: $work/demo   AGENTOS_HOME: $AGENTOS_HOME   provider: mock (OFFLINE MOCK)"
echo
set +e
.venv/bin/lld-workflow --repo "$work/demo" --all --parallel 3 --provider mock
lld=$?
echo
.venv/bin/issue-workflow --repo "$work/demo" --all --parallel --provider mock
issue=$?
set -e
echo
echo "lld-workflow exited $lld (1 is expected: demo issue #9 has an invalid spec on purpose);"
echo "issue-workflow exited $issue. LLDs: $work/demo/docs/lld/active/  new issues: $work/demo/issues/"
[ "$lld" -le 1 ] && [ "$issue" -eq 0 ]
