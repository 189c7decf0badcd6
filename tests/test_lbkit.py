"""The load-balancer kit (tests/lbkit.py) gives what the tests of several mirrors behind one URL rely on:
requests spread over every backend, a killed backend costs clients no error, and the health-check path is
the one asked for."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from lbkit import balancer
from prockit import free_port, wait_for


class Backend:
    """A tiny HTTP server (``python -m http.server``) in a subprocess, serving ``who`` = its name."""

    def __init__(self, root: Path, name: str, healthy: bool = True) -> None:
        self.name = name
        self.dir = root / name
        self.dir.mkdir()
        (self.dir / "who").write_text(name)
        if healthy:
            (self.dir / "health").write_text("ok")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1", "--directory", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # one log line per health check, 5 a second
        )
        wait_for(self._accepts, 30, f"backend {name} listening on {self.port}", self.proc)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[list[Backend]]:
    """Two backends, ``a`` and ``b`` (both healthy); any still running at teardown is killed by its PID."""
    started: list[Backend] = []
    try:
        started.append(Backend(tmp_path, "a"))
        started.append(Backend(tmp_path, "b"))
        yield started
    finally:
        for backend in started:
            backend.kill()


def who(client: httpx2.Client, url: str) -> str:
    response = client.get(url + "/who")
    assert response.status_code == 200, response.text
    return response.text


def test_requests_reach_every_backend_then_the_survivor(backends: list[Backend]) -> None:
    a, b = backends
    with balancer([a.address, b.address]) as lb, httpx2.Client(timeout=30) as client:
        assert lb.url.startswith("http://127.0.0.1:")
        seen = [who(client, lb.url) for _ in range(10)]
        assert sorted(set(seen)) == ["a", "b"]
        assert seen.count("a") == seen.count("b") == 5  # round-robin

        b.kill()
        # at once, before the health check has noticed: a request that meets b is retried on a
        assert [who(client, lb.url) for _ in range(20)] == ["a"] * 20
        wait_for(lambda: "mirrors/b1 is DOWN" in lb.log(), 5, "HAProxy to mark b down")
        assert [who(client, lb.url) for _ in range(10)] == ["a"] * 10


def test_health_check_uses_the_given_path(tmp_path: Path) -> None:
    up, sick = Backend(tmp_path, "up"), Backend(tmp_path, "sick", healthy=False)  # sick has no /health: 404
    try:
        with balancer([up.address, sick.address], check_path="/health") as lb, httpx2.Client(timeout=30) as client:
            wait_for(lambda: "mirrors/b1 is DOWN" in lb.log(), 5, "HAProxy to mark the backend without /health down")
            assert "404" in lb.log()
            assert [who(client, lb.url) for _ in range(10)] == ["up"] * 10
    finally:
        up.kill()
        sick.kill()


def test_bad_arguments_are_refused() -> None:
    from lbkit import render_config

    with pytest.raises(ValueError, match="at least one backend"):
        render_config(1, [], "/")
    with pytest.raises(ValueError, match="check_path"):
        render_config(1, ["127.0.0.1:1"], "/a b")
