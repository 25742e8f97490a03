#!/usr/bin/env bash
# Rebuild the masked-diffusion (inpainting) model that BENCHMARKS.md measures (not shipped):
# 8 preprocessed phantom participants (seed 301) + 160 domain-randomised grid brains (seed 500), the lobe
# classifier taken from the shipped model. Usage: bash benchmarks/build_inpaint_model.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-inpaint-build}"
BIN="${BIDS_FCD_VENV:-.venv}/bin/bids-fcd"
mkdir -p "$RUN"
[ -e "$RUN/train-bids" ] || "$BIN" phantom "$RUN/train-bids" --n-fcd 6 --n-hc 2 --seed 301 --size mixed
"$BIN" train "$RUN/train-bids" "$RUN/model" --preset inpaint --participant-label $(seq -f "%05g" 1 8) \
  --phantom-brains 160 --phantom-brain-seed 500 --classifier-from phantom-default --max-minutes 45 \
  --work-dir "$RUN/work" --skip-bids-validation
echo "model in $RUN/model; score it with: bids-fcd benchmark OUT --model $RUN/model --sampler-preset patched"
