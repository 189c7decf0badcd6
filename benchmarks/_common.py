"""Shared by the benchmarks: run a child process and measure exactly it (wall, rusage, machine noise)."""

from __future__ import annotations

import compileall
import hashlib
import importlib.util
import os
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

CHILD_TIMEOUT = 1800.0


def _busy_cpu() -> float:
    """CPU seconds the whole machine has spent in user, nice and system mode since boot (interrupt time
    is left out: loopback traffic of the run itself lands there)."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2]) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def settle(max_wait: float, window: float = 0.5, threshold: float = 0.25) -> float:
    """Wait (at most ``max_wait`` s) for a ``window`` in which the rest of the machine uses under
    ``threshold`` of one CPU; returns the seconds waited (other work on a 2-core box swamps the figures)."""
    started = time.monotonic()
    while time.monotonic() - started < max_wait:
        busy0, own0 = _busy_cpu(), _own_cpu()
        time.sleep(window)
        if _busy_cpu() - busy0 - (_own_cpu() - own0) < threshold * window:
            break
    return time.monotonic() - started


def run_child(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, int, str, str, Any, float]:
    """Run ``cmd``; returns (wall seconds, exit code, stdout, stderr, rusage of exactly that child, CPU
    seconds used meanwhile by processes other than the child and this one, i.e. noise)."""
    os.sync()  # writeback left by the previous run must not be billed to this one
    busy0, own0 = _busy_cpu(), _own_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True
    )
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=lambda s, b: b.append(s.read()), args=(proc.stdout, out), daemon=True),
        threading.Thread(target=lambda s, b: b.append(s.read()), args=(proc.stderr, err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    killer = threading.Timer(CHILD_TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        killer.cancel()
    wall = time.perf_counter() - started
    foreign = max(0.0, _busy_cpu() - busy0 - (_own_cpu() - own0) - usage.ru_utime - usage.ru_stime)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    proc.stdout.close()
    proc.stderr.close()
    stdout, stderr = (b"".join(part).decode(errors="replace") for part in (out, err))
    return wall, proc.returncode, stdout, stderr, usage, foreign


def write_random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` in 1 MiB chunks; returns their sha256."""
    digest = hashlib.sha256()
    left = size
    with path.open("wb") as handle:
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            digest.update(chunk)
            handle.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def git_state() -> str | None:
    """The checkout's short HEAD, with ``+dirty`` when hubmirror/ has uncommitted changes (None outside git):
    printed with every benchmark's figures so they can be traced to the code measured."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "hubmirror"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{'+dirty' if dirty else ''}" if head else None


def compile_hubmirror() -> None:
    """Byte-compile the hubmirror package the children import (its own __pycache__, as an install has).

    With ``PYTHONDONTWRITEBYTECODE=1`` and a source checkout, every child would otherwise recompile hubmirror
    (~0.15 s) while the peer, compiled in site-packages at install time, pays nothing.
    """
    spec = importlib.util.find_spec("hubmirror")
    if spec is None or spec.origin is None:
        raise RuntimeError("hubmirror is not importable from this interpreter")
    compileall.compile_dir(Path(spec.origin).parent, quiet=1)
