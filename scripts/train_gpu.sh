#!/usr/bin/env bash
# Every model of the model report, trained side by side on ONE GPU for MINUTES minutes each
# (dense mode, `fast` P4 network; ~9 minutes of a lent H100 in all):
#   ca-rgb, ca-od              the default pair (configs/dense-ca-{rgb,od}.yaml)
#   loso-<scanner>-<proto>     leave-one-scanner-out (3 MIDOG 2021 scanners x 2 protocols)
#   abl-*                      one change each against ca-rgb: no resampling to 0.25 µm/px,
#                              no AtNorM-MD, the mild colour augmentation, the paper's patch mode
# Data come from .device/shared/data (scripts/device_pack.py); results go to OUT_DIR/<name>/.
# Usage: scripts/train_gpu.sh OUT_DIR [MINUTES]     Env: PY (python3) DEVICE (cuda) ONLY (regex) EXTRA
set -u
OUT=$1; MIN=${2:-7}
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}; ONLY=${ONLY:-.}
DATA=${DATA:-$PWD/.device/shared/data}
mkdir -p "$OUT/configs"
for c in configs/dense-ca-rgb.yaml configs/dense-ca-od.yaml; do  # the configs, reading the pack
  sed -e "s#\.\./shared/data#$DATA#g" -e 's#\(tissue/monuseg/[^ ]*\)\.tif#\1.webp#' "$c" > "$OUT/configs/$(basename "$c")"
done
RGB=$OUT/configs/dense-ca-rgb.yaml; OD=$OUT/configs/dense-ca-od.yaml
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
GPU=(--set device="$DEVICE" --set sampling.batch_size=64 --set train.steps_per_epoch=100 --set train.epochs=1000
     --set val.every=2 --max-minutes "$MIN" --quiet)
read -ra EXTRA <<< "${EXTRA:-}"  # more --set for every job (e.g. a dry run on the CPU)
GPU+=("${EXTRA[@]}")
MILD=(--set augment.rgb.scale=0.08 --set augment.rgb.mix=0.02 --set augment.rgb.bias=0.03 --set augment.scale=0
      --set augment.stain.p=0 --set augment.blur.p=0 --set augment.sharpen.p=0 --set augment.resample.p=0)

job() {
  local name=$1 cfg=$2; shift 2
  [[ $name =~ $ONLY ]] || return 0
  local t0=$SECONDS
  $PY -m mitodet.cli.main train "$cfg" --run-dir "$OUT/$name" "${GPU[@]}" "$@" > "$OUT/$name.log" 2>&1
  echo "$name exit=$? seconds=$((SECONDS - t0))" >> "$OUT/status.txt"
}

job ca-rgb "$RGB" &
job ca-od "$OD" &
for scanner in "Hamamatsu XR" "Hamamatsu S360" "Aperio CS2"; do
  tag=$(echo "$scanner" | tr ' ' '-' | tr 'A-Z' 'a-z')
  job "loso-$tag-ca-rgb" "$RGB" --set "data.exclude.scanner=[$scanner]" &
  job "loso-$tag-ca-od" "$OD" --set "data.exclude.scanner=[$scanner]" &
done
job abl-no-resample "$RGB" --set data.resample=false &
job abl-no-atnorm "$RGB" --set data.atnorm=null &
job abl-mild-colour "$RGB" "${MILD[@]}" &
job abl-patch "$RGB" --set train.mode=patch --set sampling.batch_size=128 --set data.border=39 &
wait
cat "$OUT/status.txt"
