"""The default blob backend: one read-only file per sha256 under ``home/blobs/sha256/ab/``.

Publishing is a rename of the verified temp file (same filesystem) followed by the directory fsyncs that
make the name durable; a batch replaces the per-file fsyncs with one filesystem sync before the renames
(the bytes) and one after (the names).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ..paths import is_sha256
from ._files import disk_error, fsync_dir
from ._interface import StoredBlob

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_syncfs = getattr(_libc, "syncfs", None)


def sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding ``path`` (``syncfs``; ``sync`` where there is no syncfs)."""
    if _syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise disk_error(OSError(err, os.strerror(err)), f"the store at {path}")
    finally:
        os.close(fd)


class DiskBlobs:
    """Blobs as files under ``home`` (``home/blobs/sha256``)."""

    local = True

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "blobs" / "sha256"
        self.location = self._root = str(self.root)

    def path(self, sha256: str) -> Path:
        return Path(self.file_name(sha256))

    def file_name(self, sha256: str) -> str:
        """The blob's path as a string (views link hundreds of thousands: pathlib would dominate)."""
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return f"{self._root}/{sha256[:2]}/{sha256}"

    def file_path(self, sha256: str) -> Path | None:
        return self.path(sha256)

    def exists(self, sha256: str) -> bool:
        return is_sha256(sha256) and self.path(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def begin_upload(self, sha256: str, size: int) -> None:
        return None  # the temp file is renamed into place: nothing to overlap

    def publish(self, items: Sequence[tuple[Path, str]], *, durable: bool) -> None:
        if not items:
            return
        if not durable:
            sync_filesystem(items[0][0].parent)  # the temp files' bytes, before any gets a name
        for tmp_path, sha256 in items:
            self._rename(tmp_path, sha256, durable=durable)
        if not durable:
            sync_filesystem(self.root)  # the names

    def _rename(self, tmp_path: Path, sha256: str, *, durable: bool) -> None:
        final = self.path(sha256)
        try:
            if final.exists():
                tmp_path.unlink(missing_ok=True)
                return
            parent_existed = final.parent.exists()
            final.parent.mkdir(parents=True, exist_ok=True)
            if durable and not parent_existed:
                fsync_dir(final.parent.parent)
            os.chmod(tmp_path, 0o444)
            os.replace(tmp_path, final)
            if durable:
                fsync_dir(final.parent)
        except OSError as exc:
            raise disk_error(exc, str(final)) from exc

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every blob file, by plain ``os`` calls (a store holds hundreds of thousands); names that are not
        hashes are skipped, and a file removed while listing is simply not listed."""
        try:
            with os.scandir(self.root) as listing:
                subdirs = sorted(listing, key=lambda e: e.name)
        except FileNotFoundError:
            return
        for sub in subdirs:
            if not sub.is_dir(follow_symlinks=False):
                continue
            with os.scandir(sub.path) as entries:
                found = list(entries)
            for entry in found:
                if is_sha256(entry.name) and entry.name[:2] == sub.name and entry.is_file(follow_symlinks=False):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    yield StoredBlob(entry.name, st.st_size, st.st_mtime)

    def has_any(self) -> bool:
        try:
            with os.scandir(self.root) as subdirs:
                for sub in subdirs:
                    if sub.is_dir():
                        with os.scandir(sub.path) as entries:
                            if any(True for _ in entries):
                                return True
        except FileNotFoundError:
            return False
        return False

    def sweep(self, cutoff: float) -> int:
        return 0  # a crashed writer leaves temp files in home/tmp only (Store.sweep_tmp removes them)

    def delete(self, sha256: str) -> None:
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        path = os.path.join(self.root, sha256[:2], sha256)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise disk_error(exc, path) from exc

    def quarantine(self, sha256: str, stamp: str) -> str | None:
        source = self.path(sha256)
        target = self.home / "quarantine" / f"{sha256}.{stamp}"
        try:
            target.parent.mkdir(exist_ok=True)
            os.replace(source, target)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise disk_error(exc, str(target)) from exc
        return str(target)
