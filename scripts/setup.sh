#!/usr/bin/env bash
# Create .venv with the pinned CPU build of torch and mitodet installed (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The CPU build of torch comes from PyTorch's own CPU index (a plain "torch" from PyPI is a
# multi-GB CUDA build); everything else from PyPI. Override with TORCH_INDEX=... for a mirror.
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f .venv/.mitodet-setup-ok ] || [ pyproject.toml -nt .venv/.mitodet-setup-ok ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q --retries 0 --timeout 30 "torch==2.13.0+cpu" \
    --index-url "$TORCH_INDEX" --extra-index-url https://pypi.org/simple 2>&1 | grep -v "^WARNING: Retrying" || true
  .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.endswith('+cpu') else 1)" \
    || { echo "setup: the CPU build of torch 2.13.0 did not install (see above)" >&2; exit 1; }
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch .venv/.mitodet-setup-ok
fi
