#!/usr/bin/env bash
# The 2 mm model shipped as bids_fcd/models/phantom-default until 2026-12-06 (the shipped model is now the 1.5 mm
# one of benchmarks/build_fine_model.sh), rebuilt from scratch on CPU with the seeds it used:
# a training phantom (seed 300), the networks, and the normative reference from 40 separate
# phantom controls (seed 401) with its leave-one-out cluster calibration. The held-out benchmark
# cohorts (seeds 2027, 2031) are never touched here. Usage: bash benchmarks/build_default_model.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-model-build}"
BIN="${BIDS_FCD_VENV:-.venv}/bin/bids-fcd"
mkdir -p "$RUN"
[ -e "$RUN/train-ph" ] || "$BIN" phantom "$RUN/train-ph" --n-fcd 12 --n-hc 4 --seed 300 --size mixed
[ -e "$RUN/ref-ph" ] || "$BIN" phantom "$RUN/ref-ph" --n-fcd 0 --n-hc 40 --seed 401 --size mixed
"$BIN" train "$RUN/train-ph" "$RUN/model" --preset default --epochs 12 --max-minutes 26 --seed 0 \
  --participant-label $(seq -f "%05g" 1 16) --work-dir "$RUN/work" --skip-bids-validation
"$BIN" reference "$RUN/ref-ph" "$RUN/model/reference" --model "$RUN/model" --work-dir "$RUN/work-ref"
echo "model in $RUN/model"
