#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv with the pinned dependencies and bids-fcd itself.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${BIDS_FCD_VENV:-.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# The CPU build of torch first and pinned: an unpinned torch would pull several GB of CUDA packages.
"$VENV/bin/python" -m pip install -q torch==2.13.0
"$VENV/bin/python" -m pip install -q -r requirements.lock
"$VENV/bin/python" -m pip install -q --no-deps -e .
