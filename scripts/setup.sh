#!/usr/bin/env bash
# Create .venv with the pinned CPU build of torch and mitodet installed (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f .venv/.mitodet-setup-ok ] || [ pyproject.toml -nt .venv/.mitodet-setup-ok ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # Pin the CPU build: a looser requirement pulls a multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch .venv/.mitodet-setup-ok
fi
