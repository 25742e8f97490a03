#!/usr/bin/env bash
# Quick start, part 1: install, then make a tiny phantom cohort and run the participant and group levels
# on it with the shipped default model. Outputs: demo-out/derivatives (BIDS derivatives, HTML reports,
# group_summary.tsv/json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
OUT="${1:-demo-out}"
rm -rf "$OUT"
exec "${BIDS_FCD_VENV:-.venv}/bin/bids-fcd" demo "$OUT"
