#!/usr/bin/env bash
# The bundled atypical classifier on one CPU thread (~35 minutes), resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
RUN=training-state/atypical
if [ -f "$RUN/last.pt" ]; then
  exec .venv/bin/mitodet train-atypical --resume "$RUN"
fi
exec .venv/bin/mitodet train-atypical configs/atypical.yaml --run-dir "$RUN"
