"""Writing many blobs with one durability barrier per batch instead of two fsyncs per file.

Every blob is still verified before it gets its name. On disk the order keeps the store's promise that a
file at a blob's address is complete even after a power cut: write all temp files → sync the filesystem
(the bytes are durable) → rename them into place → sync again (the names are durable) → only then may the
index name them. On S3 the verified temp files are uploaded (several at once), each object complete when it
appears. A crash before the end leaves temp files (swept later) or blobs no index names (gc removes them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ..hashing import CHUNK
from ..models import Readable
from ._interface import Blobs
from ._writer import BlobInfo, BlobWriter, Expected


class BlobBatch:
    """Blobs written together: :meth:`add` verifies each one, :meth:`flush` makes them all durable and
    named. Leaving without flushing deletes what was staged. Several threads may :meth:`add` at once, and
    one may :meth:`flush` meanwhile (a push copies many files in parallel and makes the first ones durable
    while the last arrive); :meth:`discard` runs once they are done."""

    def __init__(self, tmp_dir: Path, blobs: Blobs, max_files: int = 4096, max_bytes: int = 1024**3) -> None:
        self.tmp_dir, self._blobs = tmp_dir, blobs
        self.max_files, self.max_bytes = max_files, max_bytes
        self._staged: list[tuple[BlobWriter, BlobInfo]] = []
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def full(self) -> bool:
        return len(self._staged) >= self.max_files or self._bytes >= self.max_bytes

    def add(self, source: Readable, expected: Expected, on_bytes: Callable[[int], None] | None = None) -> BlobInfo:
        """Copy ``source`` to a temp file while hashing it; raises IntegrityError (nothing kept) on a mismatch."""
        # Not streamed: the flush publishes the temp file (streaming too sent a big blob to S3 twice and left
        # its multipart upload open).
        writer = BlobWriter(self.tmp_dir, self._blobs, expected, None, stream=False)
        try:
            while chunk := source.read(CHUNK):
                writer.write(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
            info = writer.finish(durable=False)
        except BaseException:
            writer.discard(keep_partial=False)
            raise
        with self._lock:
            self._staged.append((writer, info))
            self._bytes += info.size
        return info

    def flush(self) -> list[BlobInfo]:
        """Make every staged blob durable under its name; returns them (in the order they were added). It
        takes what is staged when it begins: an add finishing meanwhile waits for the next flush. A failure
        deletes what this flush took (a blob already named stays: verified, content-addressed)."""
        with self._lock:
            staged, self._staged, self._bytes = self._staged, [], 0
        if not staged:
            return []
        try:
            self._blobs.publish([(writer.tmp_path, info.sha256) for writer, info in staged], durable=False)
        except BaseException:
            for writer, _ in staged:
                writer.discard(keep_partial=False)
            raise
        for writer, _ in staged:
            writer.published()
        return [info for _, info in staged]

    def discard(self) -> None:
        for writer, _ in self._staged:
            writer.discard(keep_partial=False)
        self._staged, self._bytes = [], 0

    def __enter__(self) -> BlobBatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()
