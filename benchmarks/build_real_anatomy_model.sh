#!/usr/bin/env bash
# The real-anatomy model, its normative reference and its benchmark, from the project's 20 real brains' label maps
# (shared/anatomy; the split is fixed in bids_fcd/phantom/real_anatomy.py: train 01-08, reference 09-14,
# development 15-17, held-out test 18-20). Every brain the model sees, every reference control and every test
# participant is built from a real brain's folding, not from the one symmetric template.
#   1. a small BIDS phantom of the training anatomies (its first three participants are used: the real
#      preprocessing path) plus 32 domain-randomised brains of the training anatomies made on the model grid;
#   2. `bids-fcd train --preset fine-compact` (6 epochs; the fine grid with a compact classifier);
#   3. `bids-fcd benchmark` on a development cohort of the development anatomies, against a reference of 20
#      controls of the reference anatomies (mixed 3D / 2D FLAIR), for the shipped template model and this one,
#      with the T1w condition native and mirror; RUN/bench-<model>-<t1>/reference is each one's reference;
#   4. the held-out cohort of the test anatomies with the shipped default.
# Usage: bash benchmarks/build_real_anatomy_model.sh [RUN_DIR] [ANATOMY_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-real-anatomy-build}"
ANATOMY="${2:-../shared/anatomy}"
BIN="${BIDS_FCD_VENV:-.venv}/bin/bids-fcd"
mkdir -p "$RUN"
[ -e "$RUN/train-ph/dataset_description.json" ] || "$BIN" phantom "$RUN/train-ph" --n-fcd 8 --n-hc 4 --seed 301 \
  --size mixed --anatomy "$ANATOMY" --anatomy-split train
[ -e "$RUN/model/SHA256SUMS" ] || "$BIN" train "$RUN/train-ph" "$RUN/model" --preset fine-compact --epochs 6 \
  --phantom-brains 32 --phantom-brain-seed 502 --anatomy "$ANATOMY" --anatomy-split train \
  --participant-label 00001 00002 00003 --work-dir "$RUN/work-train" --max-minutes 45 --seed 0 --skip-bids-validation
# the development cohort and its reference are written and preprocessed once (by the first benchmark) and shared
DEV=(--anatomy "$ANATOMY" --anatomy-split development --n-fcd 6 --n-hc 3 --n-reference 20 --phantom-seed 601
     --reference-seed 501 --lesions stratified --size mixed)
"$BIN" benchmark "$RUN/bench-shipped-mirror" "${DEV[@]}"
for run in shipped-native real-native real-mirror; do
  out="$RUN/bench-$run"
  mkdir -p "$out"
  for d in bids ref-bids work ref-work; do [ -e "$out/$d" ] || ln -s "../bench-shipped-mirror/$d" "$out/$d"; done
  model=(); [ "${run%%-*}" = real ] && model=(--model "$RUN/model")
  "$BIN" benchmark "$out" "${DEV[@]}" "${model[@]}" --t1-condition "${run##*-}"
done
# the held-out cohort: the test anatomies (18-20), never seen by training, reference or any choice; 12 FCD + 8
# controls, scored once against the same 20 reference-split controls (their preprocessing is shared)
HELD=(--anatomy "$ANATOMY" --anatomy-split test --n-fcd 12 --n-hc 8 --n-reference 20 --phantom-seed 701
      --reference-seed 501 --lesions stratified --size mixed)
mkdir -p "$RUN/heldout-shipped-mirror"
for d in ref-bids ref-work; do [ -e "$RUN/heldout-shipped-mirror/$d" ] || ln -s "../bench-shipped-mirror/$d" "$RUN/heldout-shipped-mirror/$d"; done
"$BIN" benchmark "$RUN/heldout-shipped-mirror" "${HELD[@]}"
# the shipped model with its shipped reference (template controls) on the real-anatomy cohort: across sources
.venv/bin/python benchmarks/cross_source.py "$RUN/bench-shipped-mirror" --reference bids_fcd/models/phantom-default/reference \
  --json "$RUN/cross-source-shipped.json"
.venv/bin/python benchmarks/detection_by_size.py "$RUN"/bench-* --json "$RUN/detection-by-size.json"
