"""Running ``python -m hubmirror`` as real processes in tests: start, read output, stop by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without HUBMIRROR_*, HF_* and TRANSFORMERS_* settings (each test
    sets what it means), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_", "TRANSFORMERS_"))}
    env.update(extra)
    return env


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """Starts ``python -m hubmirror`` processes and guarantees each is ended (by its PID) at teardown."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        n = len(self.started)
        with (self.logdir / f"p{n}.out").open("wb") as out, (self.logdir / f"p{n}.err").open("wb") as err:
            # the child has its own copies of the descriptors
            proc = subprocess.Popen(
                [sys.executable, "-m", "hubmirror", *args], stdout=out, stderr=err, env=env or clean_env()
            )
        self.started.append(proc)
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> tuple[str, str]:
        n = self.started.index(proc)
        return (
            (self.logdir / f"p{n}.out").read_text(errors="replace"),
            (self.logdir / f"p{n}.err").read_text(errors="replace"),
        )

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> int:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=30)

    def terminate(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took to exit)."""
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            pytest.fail(f"no exit within {timeout}s of SIGTERM; stderr:\n{self.output(proc)[1][-3000:]}")
        return code, time.monotonic() - started

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy (returned); fail on timeout or if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process exited ({proc.returncode}) before: {what}")
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for: {what}")
