#!/usr/bin/env bash
# Train every model behind docs/default-model.md on one GPU in one go (~8 minutes on an H100/H200):
#   ca-rgb, ca-od            the bundled default models (P4 'fast', CA-RGB / CA-OD protocol)
#   plain-ca-rgb             the non-equivariant ablation (plain-fast, same FLOPs)
#   paper-ca-rgb             the paper's 73-layer configuration, for comparison
#   loso-<scanner>-<proto>   leave-one-scanner-out models (3 scanners x 2 protocols)
# Each pipeline is `mitodet train` followed by `mitodet mine hard` (hard-negative mining rounds).
# All pipelines share the GPU concurrently (the models are small).
#
# Usage: scripts/train_bundled.sh OUT_DIR [--set key=value ...]     (extra --set go to every `train`)
# Env:   PY (python3) DEVICE (cuda) AMP (bf16) TRAIN_MIN (3) HARD_MIN (1.25, per round)
#        HARD_ROUNDS (2) ONLY (regex of pipeline names to run; default all)
set -u
OUT=$1; shift
EXTRA=("$@")
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}; AMP=${AMP:-bf16}
TRAIN_MIN=${TRAIN_MIN:-3}; HARD_MIN=${HARD_MIN:-1.25}; HARD_ROUNDS=${HARD_ROUNDS:-2}; ONLY=${ONLY:-.}
mkdir -p "$OUT"

pipeline() {
  local name=$1 cfg=$2; shift 2
  [[ $name =~ $ONLY ]] || return 0
  local t0=$SECONDS
  { $PY -m mitodet.cli.main train "$cfg" --run-dir "$OUT/$name" --max-minutes "$TRAIN_MIN" --quiet \
        --set device="$DEVICE" --set train.amp="$AMP" "${EXTRA[@]}" "$@" &&
    $PY -m mitodet.cli.main mine hard "$OUT/$name" --rounds "$HARD_ROUNDS" --drop-quantile 0.5 \
        --patience "$HARD_ROUNDS" --max-minutes "$HARD_MIN" --quiet; } > "$OUT/$name.log" 2>&1
  echo "$name exit=$? seconds=$((SECONDS - t0))" >> "$OUT/status.txt"
}

pipeline ca-rgb configs/default-ca-rgb.yaml &
pipeline ca-od configs/default-ca-od.yaml &
pipeline plain-ca-rgb configs/default-ca-rgb.yaml --set model.name=plain-fast &
pipeline paper-ca-rgb configs/paper-ca-rgb.yaml &
for scanner in "Hamamatsu XR" "Hamamatsu S360" "Aperio CS2"; do
  tag=$(echo "$scanner" | tr ' ' '-' | tr 'A-Z' 'a-z')
  pipeline "loso-$tag-ca-rgb" configs/default-ca-rgb.yaml --set "data.exclude.scanner=[$scanner]" &
  pipeline "loso-$tag-ca-od" configs/default-ca-od.yaml --set "data.exclude.scanner=[$scanner]" &
done
wait
cat "$OUT/status.txt"
