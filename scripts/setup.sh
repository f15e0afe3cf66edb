#!/usr/bin/env bash
# Installs everything the tutor and its tests need into the current Python environment, idempotently.
# torch/torchvision first and pinned: on our CPU machines these exact builds lie on local disk, so pip
# takes them from there instead of downloading another multi-GB build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
quiet=(-q --disable-pip-version-check --no-input)

"$PY" -c 'import torch, torchvision' 2>/dev/null || "$PY" -m pip install "${quiet[@]}" torch==2.14.1 torchvision==0.29.1
"$PY" -m pip install "${quiet[@]}" -e ".[test]"

# The browser test drives Debian's Chromium through Playwright (Playwright's own browser download
# cannot run on machines without internet, so we never call `playwright install`).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  else
    echo "setup: chromium not found; install it (Debian: sudo apt-get install chromium) or the browser test will skip" >&2
  fi
fi
