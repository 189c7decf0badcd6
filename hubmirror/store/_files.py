"""Small filesystem helpers of the store: directory fsync, plain names, disk errors, stale-file sweeping."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import StoreError

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")  # lock and resume names: never a path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain_name(name: str) -> str:
    if not _PLAIN_NAME.fullmatch(name):
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def disk_error(exc: OSError, what: str) -> StoreError:
    """One line for a failed write: disk full, read-only filesystem, permissions, anything else."""
    if exc.errno == errno.ENOSPC:
        return StoreError(
            f"disk full while writing {what}; free space and run again (partial downloads are kept and resume)"
        )
    if exc.errno == errno.EROFS:
        return StoreError(
            f"cannot write {what}: the store is on a read-only filesystem (only read commands work there)"
        )
    return StoreError(f"cannot write {what}: {exc.strerror or exc}")


def remove_older(entries: Iterable[Path], cutoff: float) -> int:
    removed = 0
    for entry in entries:
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
