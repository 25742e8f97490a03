#!/usr/bin/env bash
# Rebuild the larger stochastic-encoding model that BENCHMARKS.md measures against the
# shipped one: the shipped model's 16 training phantoms (seed 300) + 100 domain-randomised grid brains (seed
# 500), preset `large` (UNet (32, 64, 128, 128), 4.1 M parameters), the lobe classifier taken from the shipped
# model. Then score both with benchmarks/capacity.py. Usage: bash benchmarks/build_large_model.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-large-build}"
BIN="${BIDS_FCD_VENV:-.venv}/bin/bids-fcd"
PY="${BIDS_FCD_VENV:-.venv}/bin/python"
mkdir -p "$RUN"
[ -e "$RUN/train-bids" ] || "$BIN" phantom "$RUN/train-bids" --n-fcd 12 --n-hc 4 --seed 300 --size mixed
"$BIN" train "$RUN/train-bids" "$RUN/model-large" --preset large --participant-label $(seq -f "%05g" 1 16) \
  --phantom-brains 100 --phantom-brain-seed 500 --classifier-from phantom-default --max-minutes 35 --seed 0 \
  --work-dir "$RUN/train-work" --skip-bids-validation
# held-out validation cohort (seed 2030) and reference controls (seed 401), never used for training
[ -e "$RUN/val/bids" ] || "$BIN" phantom "$RUN/val/bids" --n-fcd 6 --n-hc 3 --seed 2030 --size mixed --lesions stratified
[ -e "$RUN/ref/bids" ] || "$BIN" phantom "$RUN/ref/bids" --n-fcd 0 --n-hc 12 --seed 401 --size mixed
"$PY" benchmarks/capacity.py "$RUN/val" phantom-default "$RUN/model-large" --reference "$RUN/ref" \
  --json "$RUN/capacity.json"
