#!/usr/bin/env bash
# Rebuild models/phantom-default from scratch on CPU with the seeds the shipped model used (issue #17):
#  1. the lobe classifier, trained as before #17 (the `default` preset on the seed-300 phantom; its UNet is
#     not shipped);
#  2. the masked (inpainting) diffusion UNet (`inpaint` preset) on 8 preprocessed phantom participants
#     (seed 301) plus 160 domain-randomised brains made on the model grid (seed 500), the classifier from 1;
#  3. the normative reference from 40 separate phantom controls (seed 401, mixed 3D/2D FLAIR) with its
#     leave-one-out cluster calibration.
# The held-out benchmark cohort (seed 2031) and the validation cohort (seed 2030) are never touched here.
# Usage: bash benchmarks/build_default_model.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-model-build}"
BIN="${BIDS_FCD_VENV:-.venv}/bin/bids-fcd"
mkdir -p "$RUN"
[ -e "$RUN/train-ph" ] || "$BIN" phantom "$RUN/train-ph" --n-fcd 12 --n-hc 4 --seed 300 --size mixed
[ -e "$RUN/train-bids" ] || "$BIN" phantom "$RUN/train-bids" --n-fcd 6 --n-hc 2 --seed 301 --size mixed
[ -e "$RUN/ref-ph" ] || "$BIN" phantom "$RUN/ref-ph" --n-fcd 0 --n-hc 40 --seed 401 --size mixed --lesions stratified
"$BIN" train "$RUN/train-ph" "$RUN/classifier-model" --preset default --epochs 12 --max-minutes 26 --seed 0 \
  --participant-label $(seq -f "%05g" 1 16) --work-dir "$RUN/work" --skip-bids-validation
"$BIN" train "$RUN/train-bids" "$RUN/model" --preset inpaint --participant-label $(seq -f "%05g" 1 8) \
  --phantom-brains 160 --phantom-brain-seed 500 --classifier-from "$RUN/classifier-model" --max-minutes 45 \
  --work-dir "$RUN/work" --skip-bids-validation
"$BIN" reference "$RUN/ref-ph" "$RUN/model/reference" --model "$RUN/model" --work-dir "$RUN/work-ref"
echo "model in $RUN/model (copy it to models/phantom-default)"
