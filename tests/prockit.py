"""Running ``python -m hubmirror`` as real processes in tests: start, read output, stop by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without HUBMIRROR_*, HF_* and TRANSFORMERS_* settings (each test
    sets what it means), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_", "TRANSFORMERS_"))}
    env.update(extra)
    return env


def watchdog(pid: int, root: Path, stop_timeout: float) -> subprocess.Popen[bytes]:
    """A process that stops ``pid`` (SIGTERM, then SIGKILL after ``stop_timeout``) and removes ``root`` once
    this test process is gone, however it ended: a kit's normal teardown does it first; the watchdog is for a
    test run killed outright."""
    script = (
        f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
        f"kill -TERM {pid} 2>/dev/null; i=0; "
        f"while kill -0 {pid} 2>/dev/null && [ $i -lt {int(stop_timeout)} ]; do sleep 1; i=$((i+1)); done; "
        f"kill -KILL {pid} 2>/dev/null; rm -rf {root}"
    )
    return subprocess.Popen(
        ["sh", "-c", script], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def end_process(
    proc: subprocess.Popen[bytes] | None, guard: subprocess.Popen[bytes] | None, stop_timeout: float
) -> None:
    """SIGTERM ``proc`` by its PID, SIGKILL if it lingers; then end its watchdog (its work is done)."""
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=stop_timeout)
    if guard is not None and guard.poll() is None:
        guard.kill()
        guard.wait(timeout=stop_timeout)


class KitServer:
    """A server process a test kit started, with a temp dir of its own and a :func:`watchdog`: subclasses
    start ``proc`` and call :meth:`_start_watchdog`; :meth:`stop` ends it by its PID and removes the dir."""

    log_name = "server.log"
    start_timeout = 30.0
    stop_timeout = 10.0

    def __init__(self, prefix: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    def _launch(self, argv: Callable[[int], list[str]], what: str, env: dict[str, str] | None = None) -> None:
        """Start ``argv(port)`` on a free port (in its own session: a Ctrl-C meant for pytest must not stop
        it before the teardown does) and wait until :meth:`_answers`; three tries, as the free port may be
        taken between probe and bind. RuntimeError with the server's log if it never answers."""
        last = ""
        for _attempt in range(3):
            self.port = free_port()
            args = argv(self.port)
            with (self.root / self.log_name).open("wb") as log:
                self.proc = subprocess.Popen(
                    args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root, start_new_session=True
                )
            self._watchdog = watchdog(self.proc.pid, self.root, self.stop_timeout)
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._answers():
                    return
                time.sleep(0.05)
            last = self.log()
            self._end_process()
        raise RuntimeError(f"{what} did not start on 127.0.0.1:{self.port}:\n{last[-3000:]}")

    def _answers(self) -> bool:
        """True once the server serves requests."""
        raise NotImplementedError

    def _end_process(self) -> None:
        end_process(self.proc, self._watchdog, self.stop_timeout)

    def stop(self) -> None:
        self._end_process()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        """What the server printed."""
        path = self.root / self.log_name
        return path.read_text(errors="replace") if path.exists() else ""


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
