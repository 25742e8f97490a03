#!/usr/bin/env bash
# Tools the test suite uses when present (each test skips with a message without them):
# Debian's chromium (headless browser test of the HTML reports) and the npm bids-validator
# (derivative and phantom datasets), the latter into .tools/ (git-ignored).
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || status=1
  else
    echo "chromium: not installed (needs root and apt-get)"; status=1
  fi
fi
if command -v npm >/dev/null 2>&1; then
  [ -x .tools/node_modules/.bin/bids-validator ] || \
    npm install --prefix .tools --no-audit --no-fund --silent bids-validator@1.15.0 >/dev/null || status=1
else
  echo "bids-validator: npm not found"; status=1
fi
exit $status
