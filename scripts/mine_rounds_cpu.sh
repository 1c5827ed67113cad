#!/usr/bin/env bash
# One hard-negative-mining round on the CPU, continuing a run (GPU-trained or not), as the bundled
# pair got them: `mitodet mine hard` finds the run model's false detections on its training images,
# adds them as windows, and trains on from its best.pt for at most MINUTES minutes on one thread,
# with online hard negatives (the hardest 20 % of negative cells) in each batch's loss.
# The new run is RUN/round1 (its best.pt, metrics.csv, ...); run this again on it for the next round.
# Usage: scripts/mine_rounds_cpu.sh RUN [MINUTES]       Env: PY (.venv/bin/python)
set -eu
RUN=$1; MIN=${2:-60}
PY=${PY:-.venv/bin/python}
OMP_NUM_THREADS=1 exec "$PY" -m mitodet mine hard "$RUN" --rounds 1 --drop-quantile 0.5 --patience 1 \
  --max-minutes "$MIN" --quiet --set device=cpu --set sampling.batch_size=16 \
  --set train.steps_per_epoch=100 --set train.epochs=1000 --set val.every=2 --set optim.lr=0.01 \
  --set optim.cycle_epochs=12 --set dense.hard_negative_fraction=0.2
