#!/usr/bin/env bash
# An installed wheel finds its model (issue #18): build the bids-fcd wheel, install it, and nothing else of
# this checkout, into a fresh virtual environment outside the checkout, then run `bids-fcd --version`, a
# phantom and `bids-fcd participant` with the shipped default model (no --model, no BIDS_FCD_MODELS) from
# a folder outside the checkout.
#
#   bash scripts/wheel-smoke.sh [WORK_DIR]      (default: a new folder under /tmp; a few minutes on 2 CPUs)
#
# The dependencies (torch, antspyx, ...) are reused from the checkout's virtual environment
# (BIDS_FCD_VENV, default .venv) through a .pth file: only bids-fcd itself comes from the wheel (the check
# below fails if Python imports bids_fcd from anywhere else). tests/test_wheel.py does the quick part
# (--version and a model load) in the test suite.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${BIDS_FCD_VENV:-$REPO/.venv}"
WORK="${1:-$(mktemp -d /tmp/bids-fcd-wheel.XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
case "$WORK/" in "$REPO"/*) echo "WORK_DIR must lie outside the checkout $REPO" >&2; exit 2 ;; esac

echo "== building the wheel into $WORK/dist"
"$VENV/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$REPO"
WHEEL="$(ls "$WORK"/dist/bids_fcd-*.whl)"
echo "   $(basename "$WHEEL"): $(du -h "$WHEEL" | cut -f1)"

echo "== a fresh virtual environment in $WORK/venv with the wheel only"
"$VENV/bin/python" -c 'import sys; print(sys._base_executable)' > "$WORK/python"
"$(cat "$WORK/python")" -m venv --without-pip "$WORK/venv"
SITE="$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
DEPS="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$DEPS" > "$SITE/zz-bids-fcd-dependencies.pth"   # appended after the venv's own site-packages
"$VENV/bin/python" -m pip --python "$WORK/venv/bin/python" install -q --no-deps --no-index "$WHEEL"

cd "$WORK"   # outside the checkout: nothing of it is on sys.path
unset BIDS_FCD_MODELS BIDS_FCD_WORK_DIR PYTHONPATH
PKG="$("$WORK/venv/bin/python" -c 'import bids_fcd, pathlib; print(pathlib.Path(bids_fcd.__file__).parent)')"
case "$PKG" in
  "$WORK"/venv/*) echo "   bids_fcd imported from $PKG" ;;
  *) echo "bids_fcd was imported from $PKG, not from the wheel in $WORK/venv" >&2; exit 1 ;;
esac
BIN="$WORK/venv/bin/bids-fcd"
"$BIN" --version

echo "== the shipped model from the installed package"
"$WORK/venv/bin/python" - <<'EOF'
import torch
from bids_fcd.nets.checkpoint import load_model
m = load_model(None, torch.device("cpu"))
print(f"   model {m.name} ({m.sha256[:12]}) from {m.path}")
assert "/venv/" in str(m.path), m.path
EOF

echo "== bids-fcd participant on a demo phantom (one participant)"
rm -rf "$WORK/bids" "$WORK/out" "$WORK/bids-fcd-work"
"$BIN" phantom "$WORK/bids" --n-fcd 1 --n-hc 0 --seed 1234
"$BIN" "$WORK/bids" "$WORK/out" participant --participant-label 00001 --skip-bids-validation
test -s "$WORK/out/sub-00001/log/sub-00001_manifest.json"
N="$(find "$WORK/out/sub-00001" -type f | wc -l)"
echo "== ok: $N files under $WORK/out/sub-00001, made by the installed wheel with its own model"
