"""A hubmirror home on local disk: its layout (``VERSION``, ``CACHEDIR.TAG``, ``blobs/``, ``tmp/``,
``locks/``), blob addresses, the inter-process locks, and sweeping stale temp files.

Bytes enter ``blobs/`` only through :class:`BlobWriter`. This module knows nothing about repos, HTTP or SQL.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import filelock

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from ..errors import LockTimeoutError, StoreError
from ..hashing import CHUNK
from ..paths import blob_relpath, is_sha256
from ._batch import BlobBatch
from ._files import disk_error, plain_name, remove_older
from ._writer import BlobInfo, BlobWriter, Expected

logger = logging.getLogger(__name__)

LAYOUT_VERSION = 1
STALE_TMP_SECONDS = 7 * 24 * 3600
STALE_LOCK_SECONDS = 24 * 3600
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by hubmirror.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


def read_layout_version(home: Path) -> int | None:
    """The number in ``home/VERSION`` (None when there is none); a damaged file is a StoreError."""
    version_file = home / "VERSION"
    try:
        text = version_file.read_text(encoding="ascii", errors="strict").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(
            f"{version_file} is damaged or unreadable ({exc}); it should hold the store layout "
            f"number ({LAYOUT_VERSION}): restore it, then run 'hubmirror verify'"
        ) from exc
    if not text.isdigit() or len(text) > 6:
        raise StoreError(
            f"{version_file} is damaged: expected the store layout number ({LAYOUT_VERSION}), "
            f"found {text[:40]!r}; restore it, then run 'hubmirror verify'"
        )
    return int(text)


class Store:
    """A hubmirror home directory.

    ``create=True`` (write commands) lays out the directories; ``create=False`` (read commands) only opens
    an existing store and writes nothing (a missing one is a StoreError). Either way a newer ``VERSION``
    is refused."""

    def __init__(self, home: Path, *, create: bool = True) -> None:
        self.home = Path(home).expanduser().absolute()
        self.tmp_dir = self.home / "tmp"
        self.locks_dir = self.home / "locks"
        self.index_path = self.home / "index.sqlite"
        # Where the index is when it is not index.sqlite (a database URL without password): binds the blobs
        # here to the one index that names them.
        self.index_url_path = self.home / "index.url"
        self.blobs_dir = self.home / "blobs" / "sha256"
        # The writer lease of an index shared by several machines (see write_lock); None: the file lock is all.
        self.lease: Callable[[float], AbstractContextManager[None]] | None = None
        if create:
            self._init_layout()
        else:
            self._check_existing()

    @staticmethod
    def exists(home: Path) -> bool:
        """True if ``home`` holds a store (its ``VERSION`` or its index)."""
        home = Path(home)
        return (home / "VERSION").exists() or (home / "index.sqlite").exists()

    def _check_version(self) -> int | None:
        found = read_layout_version(self.home)
        if found is not None and found > LAYOUT_VERSION:
            raise StoreError(
                f"{self.home} has store layout {found}, newer than this hubmirror understands "
                f"({LAYOUT_VERSION}); upgrade hubmirror"
            )
        return found

    def _check_existing(self) -> None:
        self._check_version()
        if not self.exists(self.home):
            what = "does not exist" if not self.home.exists() else "holds no hubmirror store"
            raise StoreError(
                f"{self.home} {what}: give the store with --home or $HUBMIRROR_HOME (or home: in "
                "the config), or create one with 'hubmirror sync' or 'hubmirror import'"
            )

    def _init_layout(self) -> None:
        if self.home.exists() and not self.home.is_dir():
            raise StoreError(f"{self.home} is a file, not a store directory; choose another home")
        found = self._check_version()
        try:
            for sub in ("blobs/sha256", "tmp", "locks"):
                (self.home / sub).mkdir(parents=True, exist_ok=True)
            tag = self.home / "CACHEDIR.TAG"
            if not tag.exists():
                tag.write_text(CACHEDIR_TAG)
            if found is None:
                (self.home / "VERSION").write_text(f"{LAYOUT_VERSION}\n")
        except OSError as exc:
            raise disk_error(exc, f"the store at {self.home}") from exc

    # -- addresses -------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        return self.home / blob_relpath(sha256)

    def has_blob(self, sha256: str) -> bool:
        return is_sha256(sha256) and self.blob_path(sha256).is_file()

    def has_any_blob(self) -> bool:
        """True if ``blobs/`` holds at least one file (cheap: stops at the first)."""
        try:
            for sub in os.scandir(self.blobs_dir):
                if sub.is_dir() and any(True for _ in os.scandir(sub.path)):
                    return True
        except FileNotFoundError:
            return False
        return False

    @property
    def read_only(self) -> bool:
        """True when the store's filesystem is mounted read-only or this user cannot write the store."""
        try:
            if os.statvfs(self.home).f_flag & os.ST_RDONLY:
                return True
        except OSError:
            return True
        return not os.access(self.home, os.W_OK)

    def iter_blobs(self) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """Every blob file on disk, as (sha256 its name claims, its directory entry: ``.path``, ``.stat()``);
        names that are not hashes are skipped. Plain ``os`` calls: a store holds hundreds of thousands."""
        try:
            subdirs = sorted(os.scandir(self.blobs_dir), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for sub in subdirs:
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                if is_sha256(entry.name) and entry.name[:2] == sub.name and entry.is_file(follow_symlinks=False):
                    yield entry.name, entry

    # -- writing ---------------------------------------------------------------------------------
    def writer(self, expected: Expected, *, resume_key: str | None = None) -> BlobWriter:
        """A writer for one blob. With ``resume_key`` the temp file has a stable name (resumable across
        processes; the caller holds :meth:`blob_lock` for that key); without, a unique one."""
        return BlobWriter(self.tmp_dir, self.blob_path, expected, resume_key)

    def batch(self, **limits: int) -> BlobBatch:
        """A batch of blobs made durable together (imports): see :class:`BlobBatch`."""
        return BlobBatch(self.tmp_dir, self.blob_path, **limits)

    def ingest_file(self, source: Path, expected: Expected | None = None) -> BlobInfo:
        """Copy a local file into the store through the one writer (used by imports and push)."""
        size = source.stat().st_size
        expected = expected or Expected(size=size)
        with self.writer(Expected(size, expected.sha256, expected.git_sha1)) as writer, source.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                writer.write(chunk)
            return writer.commit()

    # -- locks -----------------------------------------------------------------------------------
    @contextmanager
    def lock(self, name: str, timeout: float = 600.0) -> Iterator[None]:
        """An inter-process lock under ``home/locks``. Locks stop duplicate work; correctness comes from
        atomic renames, so a lock that does not hold (NFS) costs bandwidth, never data."""
        lock = filelock.FileLock(str(self.locks_dir / f"{plain_name(name)}.lock"), timeout=timeout)
        try:
            lock.acquire()
        except filelock.Timeout as exc:
            raise LockTimeoutError(
                f"another hubmirror process has held lock '{name}' for over {timeout:.0f}s "
                f"({self.locks_dir}); wait for it, or remove the lock file if that process is gone"
            ) from exc
        except OSError as exc:
            raise disk_error(exc, f"the lock file {self.locks_dir / name}.lock") from exc
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
        try:
            fd = os.open(self.locks_dir / f"dl-{plain_name(key)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise disk_error(exc, f"a download lock in {self.locks_dir}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextmanager
    def write_lock(self, timeout: float = 600.0) -> Iterator[None]:
        """The one-writer-at-a-time lock around index changes: the file lock under ``locks/`` (writers on
        this machine), then, when the index is shared by several machines, its writer lease (see
        :meth:`use_lease`)."""
        with self.lock("index-write", timeout):
            if self.lease is None:
                yield
                return
            with self.lease(timeout):
                yield

    def use_lease(self, lease: Callable[[float], AbstractContextManager[None]] | None) -> None:
        """Take ``lease`` (called with the timeout) inside every :meth:`write_lock` from now on: the index
        gives one when writers on other machines must be excluded too."""
        self.lease = lease

    # -- where the index is -----------------------------------------------------------------------
    def recorded_index_url(self) -> str | None:
        """The index location recorded in ``index.url`` (None when the index is ``index.sqlite``)."""
        try:
            text = self.index_url_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read {self.index_url_path} ({exc}); restore it or remove it") from exc
        return text or None

    def record_index_url(self, url: str) -> None:
        """Record where the index is (a URL without password), atomically."""
        tmp = self.index_url_path.with_name(f".index.url.{os.getpid()}")
        try:
            tmp.write_text(url + "\n", encoding="utf-8")
            os.replace(tmp, self.index_url_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise disk_error(exc, str(self.index_url_path)) from exc

    @contextmanager
    def gc_guard(self, *, exclusive: bool = False, timeout: float = 3600.0) -> Iterator[None]:
        """Shared by everything that adds blobs before the index names them (sync, push, import) or reads
        them in bulk (export); exclusive for what deletes them (gc, repair). A shared holder never sees a
        blob it relies on deleted; gc waits until they are done. On a read-only store nothing can be deleted
        (and no lock file created): a no-op."""
        if self.read_only and not exclusive:
            yield
            return
        if fcntl is None:  # no flock: an exclusive file lock is the best we have
            with self.lock("gc", timeout):
                yield
            return
        try:
            fd = os.open(self.locks_dir / "gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise disk_error(exc, f"the gc lock in {self.locks_dir}") from exc
        try:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        who = "a sync, push, import or export" if exclusive else "gc or a repair"
                        raise LockTimeoutError(
                            f"{who} of {self.home} has been running for over {timeout:.0f}s; try again when it is done"
                        ) from None
                    time.sleep(0.2)
            yield
        finally:
            os.close(fd)

    # -- deleting (gc and repair only) ------------------------------------------------------------
    def delete_blob(self, sha256: str) -> None:
        """Remove a blob file (gone already is fine)."""
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        path = os.path.join(self.blobs_dir, sha256[:2], sha256)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise disk_error(exc, path) from exc

    def quarantine(self, sha256: str) -> Path | None:
        """Move a damaged blob out of ``blobs/`` into ``quarantine/`` (kept for inspection); returns where."""
        source = self.blob_path(sha256)
        target = self.home / "quarantine" / f"{sha256}.{time.strftime('%Y%m%dT%H%M%S')}"
        try:
            target.parent.mkdir(exist_ok=True)
            os.replace(source, target)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise disk_error(exc, str(target)) from exc
        return target

    # -- maintenance -----------------------------------------------------------------------------
    def sweep_tmp(self, max_age: float = STALE_TMP_SECONDS) -> int:
        """Delete temp files untouched for ``max_age`` seconds; returns how many were removed."""
        removed = remove_older(self.tmp_dir.iterdir(), time.time() - max_age)
        # Per-blob download locks are one empty file per blob ever fetched; old ones go too. Removing one
        # that is held at that moment can only make two processes fetch the same blob (bandwidth).
        removed += remove_older(self.locks_dir.glob("dl-*.lock"), time.time() - STALE_LOCK_SECONDS)
        if removed:
            logger.info("swept %d stale temp/lock file(s) from %s", removed, self.home)
        return removed
