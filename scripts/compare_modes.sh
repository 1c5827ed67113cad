#!/usr/bin/env bash
# Patch mode (the paper's 78 px patches, batches of 128) against dense mode (160 px windows, every
# cell supervised) at EQUAL CPU MINUTES: same data, augmentation, validation and selection, each
# run on one CPU thread for MINUTES minutes, side by side. Results: runs/cpu/{patch,dense}/metrics.csv
# and validation.json; the model report compares them. One cosine cycle spans about the budget
# (measured: ~200 s per dense epoch of 100 steps, ~130 s per patch epoch of 40 steps, with validation).
# Usage: scripts/compare_modes.sh [MINUTES] [CONFIG]     (defaults: 25, configs/dense-ca-rgb.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${1:-25}; CFG=${2:-configs/dense-ca-rgb.yaml}; OUT=${OUT:-runs/cpu}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
common=(--set device=cpu --set val.every=2 --set train.epochs=1000 --max-minutes "$MIN" --quiet)
.venv/bin/mitodet train "$CFG" "${common[@]}" --run-dir "$OUT/dense" --set train.steps_per_epoch=100 --set optim.cycle_epochs=8 \
    > "$OUT/dense.log" 2>&1 &
.venv/bin/mitodet train "$CFG" "${common[@]}" --run-dir "$OUT/patch" --set train.steps_per_epoch=40 --set optim.cycle_epochs=12 \
    --set train.mode=patch --set sampling.batch_size=128 --set data.border=39 > "$OUT/patch.log" 2>&1 &
wait
tail -n 3 "$OUT/dense.log" "$OUT/patch.log"
