"""A hubmirror home on local disk: its layout (``VERSION``, ``CACHEDIR.TAG``, ``blobs/``, ``tmp/``,
``locks/``), which blob backend holds its blobs, the inter-process locks, and sweeping stale temp files.

Blobs are files under ``blobs/`` (:class:`DiskBlobs`), or objects in an S3-compatible bucket
(:class:`S3Blobs`, chosen by ``store.url`` in the config and recorded in ``home/store.json`` by the first
write command, so that commands given only the home find them). Bytes reach either only through
:class:`BlobWriter`. This module knows nothing about repos, HTTP or SQL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import filelock

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from ..errors import IntegrityError, LockTimeoutError, StoreError
from ..hashing import CHUNK
from ._batch import BlobBatch
from ._disk import DiskBlobs
from ._files import disk_error, plain_name, remove_older
from ._interface import Blobs, StoredBlob
from ._writer import BlobInfo, BlobWriter, Expected

if TYPE_CHECKING:
    from ._s3 import S3Blobs

Lease = Callable[[float], AbstractContextManager[None]]  # held with a timeout: see Store.use_lease

logger = logging.getLogger(__name__)

LAYOUT_VERSION = 1
STALE_TMP_SECONDS = 7 * 24 * 3600
STALE_LOCK_SECONDS = 24 * 3600
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by hubmirror.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


def open_s3_blobs(url: str, endpoint_url: str | None) -> S3Blobs:
    """The S3 backend (boto3 loads only now: the default install has none)."""
    try:
        from ._s3 import S3Blobs, S3Location
    except ImportError as exc:
        raise StoreError(
            f"the blobs are in object storage ({url}) but boto3 is not installed: pip install 'hubmirror[scale]'"
        ) from exc
    try:
        where = S3Location.parse(url, endpoint_url)
    except ValueError as exc:
        raise StoreError(f"{url} is not a store URL: {exc}") from exc
    return S3Blobs(where)


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

    def __init__(
        self, home: Path, *, create: bool = True, store_url: str | None = None, endpoint_url: str | None = None
    ) -> None:
        self.home = Path(home).expanduser().absolute()
        self.tmp_dir = self.home / "tmp"
        self.locks_dir = self.home / "locks"
        self.index_path = self.home / "index.sqlite"
        # Where the index is when it is not index.sqlite (a database URL without password): binds the blobs
        # here to the one index that names them.
        self.index_url_path = self.home / "index.url"
        self.store_url_path = self.home / "store.json"
        # The writer lease of an index shared by several machines (see write_lock); None: the file lock is all.
        self.lease: Lease | None = None
        self.gc_lease: Callable[[bool], Lease | None] | None = None  # the gc guard across machines (gc_guard)
        if create or (store_url is not None and not self.exists(self.home)):
            # (a serve replica's first start on a new machine: with blobs and index elsewhere, the home only
            # keeps temp files and locks, so laying it out changes nothing anyone else reads)
            self._init_layout()
        else:
            self._check_existing()
        self._remote = self._choose_blobs(store_url, endpoint_url, record=create)
        self._blobs: Blobs | None = DiskBlobs(self.home) if self._remote is None else None
        self._blobs_lock = threading.Lock()

    @staticmethod
    def exists(home: Path) -> bool:
        """True if ``home`` holds a store (its ``VERSION`` or its index)."""
        home = Path(home)
        return (home / "VERSION").exists() or (home / "index.sqlite").exists() or (home / "store.json").exists()

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

    # -- blobs (delegated to the backend) ------------------------------------------------------------
    def has_blob(self, sha256: str) -> bool:
        return self.blobs.exists(sha256)

    def blob_size(self, sha256: str) -> int | None:
        """The stored blob's size; None when it is not stored."""
        return self.blobs.size(sha256)

    def open_blob(self, sha256: str) -> BinaryIO:
        """A seekable reader of a stored blob (FileNotFoundError when it is not stored)."""
        return self.blobs.open(sha256)

    def read_blob(self, sha256: str) -> bytes:
        """A small stored blob's bytes (cards, configs, diffs: callers check the size first)."""
        with self.open_blob(sha256) as handle:
            return handle.read()

    def blob_file_name(self, sha256: str) -> str | None:
        """:meth:`blob_file` as a string, for loops over many blobs."""
        return self.blobs.file_name(sha256)

    def blob_file(self, sha256: str) -> Path | None:
        """The blob's file on this machine when blobs are local files (links, sendfile), else None."""
        return self.blobs.file_path(sha256)

    def has_any_blob(self) -> bool:
        """True if the store holds at least one blob (cheap: stops at the first)."""
        return self.blobs.has_any()

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob (names that are not hashes are skipped)."""
        return self.blobs.iter_blobs()

    def copy_blob(self, sha256: str, target: Path) -> None:
        """Put a verified copy of a stored blob at ``target`` (temp file beside it → hash → fsync → rename):
        how views and bundles get files on this machine from a store in object storage.

        Raises FileNotFoundError when the blob is not stored, IntegrityError when the bytes read do not
        hash to ``sha256``, StoreError when ``target`` cannot be written."""
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        digest = hashlib.sha256()
        try:
            with self.open_blob(sha256) as source, tmp.open("xb") as sink:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
            if digest.hexdigest() != sha256:
                raise IntegrityError(f"blob {sha256} read from {self.blobs.location} hashes to {digest.hexdigest()}")
            os.replace(tmp, target)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            # a missing blob stays FileNotFoundError; a missing target folder or any other OS error is the disk's
            blob_missing = isinstance(exc, FileNotFoundError) and target.parent.is_dir()
            if isinstance(exc, OSError) and not blob_missing:
                raise disk_error(exc, str(target)) from exc
            raise

    @property
    def read_only(self) -> bool:
        """True when the store's filesystem is mounted read-only or this user cannot write the store."""
        try:
            if os.statvfs(self.home).f_flag & os.ST_RDONLY:
                return True
        except OSError:
            return True
        return not os.access(self.home, os.W_OK)

    # -- writing ---------------------------------------------------------------------------------
    def writer(self, expected: Expected, *, resume_key: str | None = None) -> BlobWriter:
        """A writer for one blob. With ``resume_key`` the temp file has a stable name (resumable across
        processes; the caller holds :meth:`blob_lock` for that key); without, a unique one."""
        return BlobWriter(self.tmp_dir, self.blobs, expected, resume_key)

    def batch(self, **limits: int) -> BlobBatch:
        """A batch of blobs made durable together (imports): see :class:`BlobBatch`."""
        return BlobBatch(self.tmp_dir, self.blobs, **limits)

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

    def use_lease(self, lease: Lease | None, gc_lease: Callable[[bool], Lease | None] | None = None) -> None:
        """Take ``lease`` (called with the timeout) inside every :meth:`write_lock` from now on, and
        ``gc_lease(exclusive)`` inside every :meth:`gc_guard`: the index gives them when writers and gc on
        other machines must be excluded too."""
        self.lease, self.gc_lease = lease, gc_lease

    # -- where the blobs are -----------------------------------------------------------------------
    @property
    def blobs(self) -> Blobs:
        """The blob backend, opened on first use: a command that needs only the index (an unchanged sync,
        a dry run, status) never loads the object-store client."""
        if self._blobs is None:
            with self._blobs_lock:
                if self._blobs is None:
                    assert self._remote is not None
                    self._blobs = open_s3_blobs(*self._remote)
        return self._blobs

    @property
    def blobs_local(self) -> bool:
        """True when blobs are files under the home (hard-linkable, servable with sendfile)."""
        return self._remote is None

    def _choose_blobs(
        self, store_url: str | None, endpoint_url: str | None, *, record: bool
    ) -> tuple[str, str | None] | None:
        """Where the blobs are, as (store URL, endpoint) or None for ``home/blobs``: the configured place
        (checked against what this home recorded), else the recorded one, else the home."""
        recorded = self.recorded_store()
        wanted = (store_url, endpoint_url) if store_url is not None else recorded
        if store_url is not None and recorded is not None and recorded != wanted:
            raise StoreError(
                f"the store at {self.home} keeps its blobs in {recorded[0]} (endpoint {recorded[1] or 'AWS'}), not "
                f"{store_url} (endpoint {endpoint_url or 'AWS'}) as the config says: its index names those blobs; "
                "fix store: in the config, or give this bucket a home of its own"
            )
        if wanted is None:
            return None
        if recorded is None and DiskBlobs(self.home).has_any():
            raise StoreError(
                f"the store at {self.home} keeps its blobs in {self.home / 'blobs'}, not {wanted[0]}: a store does "
                "not move its blobs in place; carry it over with 'hubmirror export' and 'hubmirror import' into a "
                "home whose config names the bucket"
            )
        if record and recorded is None:
            open_s3_blobs(*wanted).check()  # a missing bucket or a refusal fails now, before it is recorded
            self._record_store(*wanted)
        return wanted

    def recorded_store(self) -> tuple[str, str | None] | None:
        """The (store URL, endpoint URL) recorded in ``store.json``; None when the blobs are in the home."""
        try:
            data = json.loads(self.store_url_path.read_text(encoding="utf-8"))
            return str(data["url"]), (None if data.get("endpoint_url") is None else str(data["endpoint_url"]))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{self.store_url_path} is damaged ({exc}); it names the bucket holding this store's blobs: restore "
                'it (JSON: {"url": "s3://bucket/prefix", "endpoint_url": ...})'
            ) from exc

    def _record_store(self, url: str, endpoint_url: str | None) -> None:
        tmp = self.store_url_path.with_name(f".store.json.{os.getpid()}")
        try:
            tmp.write_text(json.dumps({"url": url, "endpoint_url": endpoint_url}) + "\n", encoding="utf-8")
            os.replace(tmp, self.store_url_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise disk_error(exc, str(self.store_url_path)) from exc

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
        blob it relies on deleted; gc waits until they are done. The lock file excludes processes of this
        machine; with an index shared by several machines, its gc lease (see :meth:`use_lease`) the others."""
        with self._local_gc_guard(exclusive, timeout):
            lease = self.gc_lease(exclusive) if self.gc_lease is not None else None
            if lease is None:
                yield
                return
            with lease(timeout):
                yield

    @contextmanager
    def _local_gc_guard(self, exclusive: bool, timeout: float) -> Iterator[None]:
        """The gc guard among this machine's processes: a shared or exclusive ``flock``. On a read-only
        store nothing can be deleted (and no lock file created): a no-op."""
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
        """Remove a blob (gone already is fine)."""
        self.blobs.delete(sha256)

    def quarantine(self, sha256: str) -> str | None:
        """Move a damaged blob aside into ``quarantine/`` (kept for inspection); returns where."""
        return self.blobs.quarantine(sha256, time.strftime("%Y%m%dT%H%M%S"))

    # -- maintenance -----------------------------------------------------------------------------
    def sweep_tmp(self, max_age: float = STALE_TMP_SECONDS) -> int:
        """Delete temp files untouched for ``max_age`` seconds; returns how many were removed."""
        removed = remove_older(self.tmp_dir.iterdir(), time.time() - max_age)
        # Per-blob download locks are one empty file per blob ever fetched; old ones go too. Removing one
        # that is held at that moment can only make two processes fetch the same blob (bandwidth).
        removed += remove_older(self.locks_dir.glob("dl-*.lock"), time.time() - STALE_LOCK_SECONDS)
        # (a day: an upload of a very large blob over a slow link may take hours, and it is not ours to stop)
        removed += self.blobs.sweep(time.time() - STALE_LOCK_SECONDS)
        if removed:
            logger.info("swept %d stale temp/lock file(s) from %s", removed, self.home)
        return removed
