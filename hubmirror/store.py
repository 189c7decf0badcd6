"""The content-addressed blob store under ``home/``: layout, the one blob writer, locks, temp sweeping.

Bytes enter ``blobs/`` only through :class:`BlobWriter` (temp → hash while writing → verify → fsync →
chmod 0444 → rename → fsync dir). This module knows nothing about repos, HTTP or SQL.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import filelock

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from .errors import IntegrityError, LockTimeoutError, StoreError
from .hashing import CHUNK, git_blob_header
from .paths import blob_relpath, is_sha256

logger = logging.getLogger(__name__)

LAYOUT_VERSION = 1
STALE_TMP_SECONDS = 7 * 24 * 3600
STALE_LOCK_SECONDS = 24 * 3600
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")  # lock and resume names: never a path
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by hubmirror.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


@dataclass(frozen=True)
class Expected:
    """What the bytes were promised to be; any field left None is not checked."""

    size: int | None = None
    sha256: str | None = None
    git_sha1: str | None = None


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    git_sha1: str | None
    fetched: bool  # False when an identical blob was already stored


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain(name: str) -> str:
    if not _PLAIN_NAME.fullmatch(name):
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def _disk_error(exc: OSError, what: str) -> StoreError:
    if exc.errno == errno.ENOSPC:
        return StoreError(f"disk full while writing {what}; free space and run again "
                          "(partial downloads are kept and resume)")
    return StoreError(f"cannot write {what}: {exc.strerror or exc}")


def _remove_older(entries: Iterable[Path], cutoff: float) -> int:
    removed = 0
    for entry in entries:
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


class Store:
    """A hubmirror home directory. Creating one lays out the directories and checks ``VERSION``."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home).expanduser().absolute()
        self.tmp_dir = self.home / "tmp"
        self.locks_dir = self.home / "locks"
        self.index_path = self.home / "index.sqlite"
        self._init_layout()

    def _init_layout(self) -> None:
        try:
            for sub in ("blobs/sha256", "tmp", "locks"):
                (self.home / sub).mkdir(parents=True, exist_ok=True)
            tag = self.home / "CACHEDIR.TAG"
            if not tag.exists():
                tag.write_text(CACHEDIR_TAG)
            version_file = self.home / "VERSION"
            if version_file.exists():
                found = int(version_file.read_text().strip() or "0")
                if found > LAYOUT_VERSION:
                    raise StoreError(
                        f"{self.home} has store layout {found}, newer than this hubmirror "
                        f"understands ({LAYOUT_VERSION}); upgrade hubmirror")
            else:
                version_file.write_text(f"{LAYOUT_VERSION}\n")
        except OSError as exc:
            raise _disk_error(exc, f"the store at {self.home}") from exc

    # -- addresses -------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        return self.home / blob_relpath(sha256)

    def has_blob(self, sha256: str) -> bool:
        return is_sha256(sha256) and self.blob_path(sha256).is_file()

    # -- writing ---------------------------------------------------------------------------------
    def writer(self, expected: Expected, *, resume_key: str | None = None) -> BlobWriter:
        """A writer for one blob. With ``resume_key`` the temp file has a stable name (resumable across
        processes; the caller holds :meth:`lock` for that key); without, a unique one."""
        return BlobWriter(self, expected, resume_key)

    def ingest_file(self, source: Path, expected: Expected | None = None) -> BlobInfo:
        """Copy a local file into the store through the one writer (used by import and push)."""
        size = source.stat().st_size
        expected = expected or Expected(size=size)
        with self.writer(Expected(size, expected.sha256, expected.git_sha1)) as writer, \
                source.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                writer.write(chunk)
            return writer.commit()

    # -- locks -----------------------------------------------------------------------------------
    @contextmanager
    def lock(self, name: str, timeout: float = 600.0) -> Iterator[None]:
        """An inter-process lock under ``home/locks``. Locks stop duplicate work; correctness comes from
        atomic renames, so a lock that does not hold (NFS) costs bandwidth, never data."""
        lock = filelock.FileLock(str(self.locks_dir / f"{_plain(name)}.lock"), timeout=timeout)
        try:
            lock.acquire()
        except filelock.Timeout as exc:
            raise LockTimeoutError(
                f"another hubmirror process has held lock '{name}' for over {timeout:.0f}s "
                f"({self.locks_dir}); wait for it, or remove the lock file if that process is gone") from exc
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def blob_lock(self, key: str) -> Iterator[None]:
        """The per-blob download lock, taken once per file fetched: a bare ``flock`` (about 30x cheaper
        than a FileLock, which measured 25% of a 500-small-file sync). It waits as long as the holder
        works; a holder that dies releases it with its file descriptors."""
        if fcntl is None:  # no flock on this platform
            with self.lock(f"dl-{key}"):
                yield
            return
        fd = os.open(self.locks_dir / f"dl-{_plain(key)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def write_lock(self, timeout: float = 600.0):
        """The one-writer-at-a-time lock around index changes."""
        return self.lock("index-write", timeout)

    # -- maintenance -----------------------------------------------------------------------------
    def sweep_tmp(self, max_age: float = STALE_TMP_SECONDS) -> int:
        """Delete temp files untouched for ``max_age`` seconds; returns how many were removed."""
        removed = _remove_older(self.tmp_dir.iterdir(), time.time() - max_age)
        # Per-blob download locks are one empty file per blob ever fetched; old ones go too. Removing one
        # that is held at that moment can only make two processes fetch the same blob (bandwidth).
        removed += _remove_older(self.locks_dir.glob("dl-*.lock"), time.time() - STALE_LOCK_SECONDS)
        if removed:
            logger.info("swept %d stale temp/lock file(s) from %s", removed, self.home)
        return removed

    def partial_size(self, resume_key: str) -> int:
        path = self.tmp_dir / f"{_plain(resume_key)}.partial"
        return path.stat().st_size if path.exists() else 0


class BlobWriter:
    """Streams bytes to a temp file in ``home/tmp`` while hashing them; :meth:`commit` publishes.

    A resumable writer re-hashes the bytes already in its partial file when opened, so what is resumed
    is verified together with what is appended. Use as a context manager: leaving without commit keeps a
    resumable partial file (for the next run) and deletes a unique one.
    """

    def __init__(self, store: Store, expected: Expected, resume_key: str | None) -> None:
        self.store, self.expected = store, expected
        self.resumable = resume_key is not None
        name = f"{_plain(resume_key)}.partial" if resume_key is not None else f"{uuid.uuid4().hex}.tmp"
        self.tmp_path = store.tmp_dir / name
        self._committed = False
        try:
            self._handle = self.tmp_path.open("ab" if self.resumable else "xb")
        except OSError as exc:
            raise _disk_error(exc, str(self.tmp_path)) from exc
        self._reset_hashes()
        if self.resumable and self._handle.tell():
            self._rehash_existing()

    @property
    def expected_size(self) -> int | None:
        return self.expected.size

    def _reset_hashes(self) -> None:
        self.offset = 0
        self._sha256 = hashlib.sha256()
        size = self.expected.size
        self._sha1 = (hashlib.sha1(git_blob_header(size))
                      if self.expected.git_sha1 is not None and size is not None else None)

    def _rehash_existing(self) -> None:
        have = self._handle.tell()
        if self.expected.size is not None and have > self.expected.size:
            self.restart()
            return
        with self.tmp_path.open("rb") as existing:
            while chunk := existing.read(CHUNK):
                self._update(chunk)

    def _update(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        if self._sha1 is not None:
            self._sha1.update(chunk)
        self.offset += len(chunk)

    def restart(self) -> None:
        """Throw away what was written (e.g. the server ignored our Range) and start from byte 0."""
        self._handle.seek(0)
        self._handle.truncate()
        self._reset_hashes()

    def write(self, chunk: bytes) -> None:
        if self.expected.size is not None and self.offset + len(chunk) > self.expected.size:
            self.discard(keep_partial=False)
            raise IntegrityError(f"received more than the promised {self.expected.size} bytes")
        try:
            self._handle.write(chunk)
        except OSError as exc:
            raise _disk_error(exc, str(self.tmp_path)) from exc
        self._update(chunk)

    def commit(self) -> BlobInfo:
        """Verify size and hashes, make the bytes durable and move them to their blob address.

        Raises :class:`IntegrityError` (temp file deleted) on any mismatch, :class:`StoreError` on I/O.
        """
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise _disk_error(exc, str(self.tmp_path)) from exc
        finally:
            self._handle.close()
        sha256 = self._sha256.hexdigest()
        git_sha1 = self._sha1.hexdigest() if self._sha1 is not None else None
        problem = None
        if self.expected.size is not None and self.offset != self.expected.size:
            problem = f"size {self.offset} != promised {self.expected.size}"
        elif self.expected.sha256 is not None and sha256 != self.expected.sha256:
            problem = f"sha256 {sha256} != promised {self.expected.sha256}"
        elif self.expected.git_sha1 is not None and git_sha1 != self.expected.git_sha1:
            problem = f"git sha1 {git_sha1} != promised {self.expected.git_sha1}"
        if problem:
            self.tmp_path.unlink(missing_ok=True)
            raise IntegrityError(f"content mismatch ({problem}); nothing was stored")
        final = self.store.blob_path(sha256)
        fetched = not final.exists()
        try:
            if fetched:
                parent_existed = final.parent.exists()
                final.parent.mkdir(parents=True, exist_ok=True)
                if not parent_existed:
                    _fsync_dir(final.parent.parent)
                os.chmod(self.tmp_path, 0o444)
                os.replace(self.tmp_path, final)
                _fsync_dir(final.parent)
            else:
                self.tmp_path.unlink(missing_ok=True)
        except OSError as exc:
            raise _disk_error(exc, str(final)) from exc
        self._committed = True
        return BlobInfo(sha256=sha256, size=self.offset, git_sha1=git_sha1, fetched=fetched)

    def discard(self, *, keep_partial: bool) -> None:
        if not self._handle.closed:
            self._handle.close()
        if not (keep_partial and self.resumable):
            self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._committed:
            self.discard(keep_partial=True)
