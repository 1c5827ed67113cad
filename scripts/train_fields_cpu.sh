#!/usr/bin/env bash
# Issue #17 on a CPU: keep the fields pair (configs/fields-ca-{rgb,od}.yaml) training in the
# background on ONE thread, CA-RGB and CA-OD taking turns in chunks of $CHUNK minutes. The runs
# live in training-state/ (committed), so any machine with ../shared/data resumes them:
#   nohup scripts/train_fields_cpu.sh > runs/fields-cpu.log 2>&1 &
# A run that ran out of patience (val.patience) stops at once when resumed; the loop ends when
# both have.
set -uo pipefail
cd "$(dirname "$0")/.."
CHUNK=${CHUNK:-30}
STATE=${STATE:-training-state}
[ -x .venv/bin/mitodet ] || { echo "error: .venv/bin/mitodet not found; run make setup first" >&2; exit 1; }
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
for round in $(seq 1 "${ROUNDS:-1000}"); do
  finished=0
  for p in ca-rgb ca-od; do
    run=$STATE/fields-$p
    if [ -f "$run/patience-exhausted" ]; then finished=$((finished + 1)); continue; fi
    echo "== round $round: $p ($(date -u +%H:%M))"
    if [ -f "$run/last.pt" ]; then
      .venv/bin/mitodet train --resume "$run" --max-minutes "$CHUNK" --quiet
    else
      .venv/bin/mitodet train "configs/fields-$p.yaml" --run-dir "$run" --force --max-minutes "$CHUNK" --quiet
    fi
    # data paths relative to the project root, so the committed state resumes on any machine
    sed -i -E "s#/[^ '\"]*/shared/data/#../shared/data/#; s#$(pwd)/##" "$run/config.yaml"
  done
  [ "$finished" -ge 2 ] && break
done
