#!/usr/bin/env bash
# Set up .venv and run the whole test suite: ruff, mypy, then pytest.
# Needs only Python 3.11+ and the package registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agentos needs Python 3.11 or later")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# The suite starts hundreds of agentos processes. Where PYTHONDONTWRITEBYTECODE is set, none
# of them caches its bytecode, and each one compiled src/ again (~0.3 s of CPU per CLI run):
# compile it once here. Python ignores a cached file whose source has changed.
.venv/bin/python -m compileall -q src
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
