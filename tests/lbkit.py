"""A throwaway HTTP load balancer for the tests: HAProxy (``/usr/sbin/haproxy -db``, foreground) on a free
loopback port, round-robin over the given backends, so tests can put several mirrors behind one URL the way
a site would and kill one of them.

* Health checks are fast (every 200 ms, down after 1 failure, up after 1 success): a killed backend is out of
  rotation within ~1 s, and a request that meets it before then is retried on another one (``retries 3``,
  ``option redispatch 1``), so a client sees no error.
* Client and server timeouts are 60 s: a large download through the balancer is not cut off.
* Missing HAProxy fails the tests that need it (never a skip). HAProxy is stopped by its PID when the
  ``balancer()`` block ends (SIGTERM, then SIGKILL), and a watchdog process stops it too if the test process
  dies first.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prockit import KitServer

HAPROXY = Path(os.environ.get("HUBMIRROR_TEST_HAPROXY", "/usr/sbin/haproxy"))

CONFIG = """\
global
    maxconn 2000

defaults
    mode http
    timeout connect 1s
    # large downloads: a client or a backend may be quiet for a while between chunks
    timeout client 60s
    timeout server 60s
    timeout check 1s
    retries 3
    # every retry goes to another server: the default (-1) retries the same one until the last retry, which
    # costs up to "timeout connect" per retry when a backend hangs instead of refusing
    option redispatch 1

frontend mirrors
    bind 127.0.0.1:{port}
    default_backend mirrors

backend mirrors
    balance roundrobin
    option httpchk GET {check_path}
{servers}
"""


def missing_binary() -> str | None:
    """Why a balancer cannot be started here, or None."""
    if not HAPROXY.is_file():
        return (
            f"HAProxy is needed by these tests and {HAPROXY} is missing: install it (apt-get install haproxy; "
            "scripts/setup.sh --test does it as root) or set HUBMIRROR_TEST_HAPROXY to its path"
        )
    return None


def render_config(port: int, backends: list[str], check_path: str) -> str:
    """HAProxy's config for ``backends`` (``host:port`` each) behind 127.0.0.1:``port``."""
    if not backends:
        raise ValueError("a balancer needs at least one backend")
    if not check_path.startswith("/") or any(c.isspace() for c in check_path):
        raise ValueError(f"check_path must be a path without spaces, got {check_path!r}")
    servers = "\n".join(
        f"    server b{n} {address} check inter 200ms fall 1 rise 1" for n, address in enumerate(backends)
    )
    return CONFIG.format(port=port, check_path=check_path, servers=servers)


class LB(KitServer):
    """One running HAProxy; ``url`` is where clients send requests."""

    log_name = "haproxy.log"

    def __init__(self, backends: list[str], check_path: str = "/") -> None:
        self.backends = list(backends)
        self.check_path = check_path
        super().__init__("hubmirror-lb-")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LB:
        """Start HAProxy and wait until it accepts connections; raises RuntimeError (with its log) if not."""

        def argv(port: int) -> list[str]:
            config = self.root / "haproxy.cfg"
            config.write_text(render_config(port, self.backends, self.check_path))
            return [str(HAPROXY), "-db", "-f", str(config)]

        self._launch(argv, "HAProxy")
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False


@contextmanager
def balancer(backends: list[str], check_path: str = "/") -> Iterator[LB]:
    """A running HAProxy over ``backends`` (``host:port`` each), health-checked with ``GET check_path``;
    stopped when the block ends. A missing binary or a failed start fails the test (never a skip)."""
    why = missing_binary()
    if why:
        pytest.fail(why, pytrace=False)
    lb = LB(backends, check_path)
    try:
        lb.start()
    except (RuntimeError, OSError) as exc:
        lb.stop()
        pytest.fail(f"could not start HAProxy: {exc}", pytrace=False)
    try:
        yield lb
    finally:
        lb.stop()


if __name__ == "__main__":  # a manual check: python tests/lbkit.py HOST:PORT...
    with balancer(sys.argv[1:] or ["127.0.0.1:9"]) as running:
        print(running.url, file=sys.stderr)
        time.sleep(1)
        print(running.log(), file=sys.stderr)
