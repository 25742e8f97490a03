#!/usr/bin/env bash
# Tools the test suite uses when present (each test skips with a message without them):
# Debian's chromium (headless browser test of the HTML reports and their viewer), poppler-utils
# (pdftotext/pdftoppm: the one-page PDF's text) and the npm bids-validator (derivative and phantom
# datasets), the latter into .tools/ (git-ignored); with BIDS_FCD_FIREFOX=1 also firefox-esr and
# xvfb (the viewer in Firefox; node >= 20 drives it).
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v pdftotext >/dev/null 2>&1 || missing="$missing poppler-utils"
# Opt-in (about 100 MB): Firefox on a virtual display for tests/reports/test_firefox.py.
if [ "${BIDS_FCD_FIREFOX:-0}" = 1 ]; then
  command -v firefox-esr >/dev/null 2>&1 || command -v firefox >/dev/null 2>&1 || missing="$missing firefox-esr"
  command -v Xvfb >/dev/null 2>&1 || missing="$missing xvfb"
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) || status=1
  else
    echo "not installed (needs root and apt-get):$missing"; status=1
  fi
fi
if command -v npm >/dev/null 2>&1; then
  [ -x .tools/node_modules/.bin/bids-validator ] || \
    npm install --prefix .tools --no-audit --no-fund --silent bids-validator@1.15.0 >/dev/null || status=1
else
  echo "bids-validator: npm not found"; status=1
fi
exit $status
