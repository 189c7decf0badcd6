"""Writing many blobs with one durability barrier per batch instead of two fsyncs per file.

Every blob is still verified before it gets its name. The order keeps the store's promise that a file at a
blob's address is complete even after a power cut: write all temp files → sync the filesystem (the bytes
are durable) → rename them into place → sync again (the names are durable) → only then may the index name
them. A crash before the end leaves temp files (swept later) or unnamed-by-the-index blobs (gc removes them).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable
from pathlib import Path

from ..hashing import CHUNK
from ..models import Readable
from ._files import disk_error
from ._writer import BlobInfo, BlobWriter, Expected

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


class BlobBatch:
    """Blobs written together: :meth:`add` verifies each one, :meth:`flush` makes them all durable and
    named. Leaving without flushing deletes what was staged."""

    def __init__(
        self, tmp_dir: Path, blob_path: Callable[[str], Path], max_files: int = 4096, max_bytes: int = 1024**3
    ) -> None:
        self.tmp_dir, self._blob_path = tmp_dir, blob_path
        self.max_files, self.max_bytes = max_files, max_bytes
        self._staged: list[tuple[BlobWriter, BlobInfo]] = []
        self._bytes = 0

    @property
    def full(self) -> bool:
        return len(self._staged) >= self.max_files or self._bytes >= self.max_bytes

    def add(self, source: Readable, expected: Expected, on_bytes: Callable[[int], None] | None = None) -> BlobInfo:
        """Copy ``source`` to a temp file while hashing it; raises IntegrityError (nothing kept) on a mismatch."""
        writer = BlobWriter(self.tmp_dir, self._blob_path, expected, None)
        try:
            while chunk := source.read(CHUNK):
                writer.write(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
            info = writer.finish(durable=False)
        except BaseException:
            writer.discard(keep_partial=False)
            raise
        self._staged.append((writer, info))
        self._bytes += info.size
        return info

    def flush(self) -> list[BlobInfo]:
        """Make every staged blob durable under its name; returns them (in the order they were added)."""
        if not self._staged:
            return []
        sync_filesystem(self.tmp_dir)
        for writer, info in self._staged:
            writer.publish(info, durable=False)
        sync_filesystem(self.tmp_dir)
        done = [info for _, info in self._staged]
        self._staged, self._bytes = [], 0
        return done

    def discard(self) -> None:
        for writer, _ in self._staged:
            writer.discard(keep_partial=False)
        self._staged, self._bytes = [], 0

    def __enter__(self) -> BlobBatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()
