"""The one blob writer: temp file → hash while writing → verify → fsync → publish (on disk: chmod 0444 →
rename → fsync dir; on S3: upload with checksums to the final key).

Nothing else writes a blob address. A mismatch deletes the temp file and raises
:class:`IntegrityError`; a disk error is one :class:`StoreError` (a second error while cleaning up never
replaces it).
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import IntegrityError
from ..hashing import CHUNK, git_blob_header
from ._files import disk_error, plain_name
from ._interface import Blobs, StreamedUpload

WRITEBACK_BYTES = 64 * 1024 * 1024  # a big blob starts going to disk every this many bytes, while it downloads


def _writeback(fd: int) -> None:
    """Flush what was written so far to disk (the final fsync then has only the tail left); an error here is
    the final fsync's to report."""
    try:
        os.fdatasync(fd)
    except OSError:
        pass


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


class BlobWriter:
    """Streams bytes to a temp file in ``tmp_dir`` while hashing them; :meth:`commit` publishes.

    A resumable writer re-hashes the bytes already in its partial file when opened, so what is resumed
    is verified together with what is appended. Use as a context manager: leaving without commit keeps a
    resumable partial file (for the next run) and deletes a unique one.
    """

    def __init__(
        self, tmp_dir: Path, blobs: Blobs, expected: Expected, resume_key: str | None, *, stream: bool = True
    ) -> None:
        self.expected, self._blobs = expected, blobs
        self.resumable = resume_key is not None
        name = f"{plain_name(resume_key)}.partial" if resume_key is not None else f"{uuid.uuid4().hex}.tmp"
        self.tmp_path = tmp_dir / name
        self._committed = False
        self._unflushed = 0  # bytes written since the last background writeback started
        self._writeback: threading.Thread | None = None
        try:
            self._handle = self.tmp_path.open("ab" if self.resumable else "xb")
        except OSError as exc:
            raise disk_error(exc, str(self.tmp_path)) from exc
        self._upload: StreamedUpload | None = None
        self._reset_hashes()
        if self.resumable and self._handle.tell():
            self._rehash_existing()
        # Sent while it arrives when the hash is known (LFS files): the object appears only at commit, after
        # the whole blob verified. A resumed partial is sent after commit instead (its first bytes came earlier).
        # (``stream=False``: a batch publishes the temp file itself, so nothing is sent while it arrives)
        if stream and self.offset == 0 and expected.sha256 is not None and expected.size is not None:
            try:
                self._upload = blobs.begin_upload(expected.sha256, expected.size)
            except BaseException:
                self._close_quietly()
                raise

    @property
    def expected_size(self) -> int | None:
        return self.expected.size

    def _reset_hashes(self) -> None:
        self.offset = 0
        self._sha256 = hashlib.sha256()
        size = self.expected.size
        self._sha1 = (
            hashlib.sha1(git_blob_header(size)) if self.expected.git_sha1 is not None and size is not None else None
        )

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
        self._abort_upload()
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
            raise disk_error(exc, str(self.tmp_path)) from exc
        self._update(chunk)
        if self._upload is not None:
            self._upload.feed(chunk)
        elif self._blobs.local:
            self._unflushed += len(chunk)
            if self._unflushed >= WRITEBACK_BYTES:
                self._start_writeback()

    def _start_writeback(self) -> None:
        """Overlap the durability barrier with the download: without this, a 512 MiB blob's whole fsync
        (about 0.3 s here) came after its last byte. One writeback at a time; skipped while one runs."""
        if self._writeback is not None and self._writeback.is_alive():
            return
        self.flush()
        self._unflushed = 0
        self._writeback = threading.Thread(
            target=_writeback, args=(self._handle.fileno(),), name="blob-writeback", daemon=True
        )
        self._writeback.start()

    def _wait_writeback(self) -> None:
        """Before the file descriptor is closed (or reused): the writeback thread must be done with it."""
        if self._writeback is not None:
            self._writeback.join()
            self._writeback = None

    def flush(self) -> None:
        """Hand what was written so far to the OS (no fsync), so a reader of ``tmp_path`` sees it."""
        try:
            self._handle.flush()
        except OSError as exc:
            raise disk_error(exc, str(self.tmp_path)) from exc

    def _close(self, durable: bool) -> None:
        self._wait_writeback()
        try:
            self._handle.flush()
            if durable:
                os.fsync(self._handle.fileno())
        except OSError as exc:
            self._close_quietly()
            raise disk_error(exc, str(self.tmp_path)) from exc
        try:
            self._handle.close()
        except OSError as exc:
            raise disk_error(exc, str(self.tmp_path)) from exc

    def _close_quietly(self) -> None:
        """Close after a failure: the buffered bytes cannot be written either (ENOSPC again); the first
        error is the one to report."""
        self._wait_writeback()
        try:
            self._handle.close()
        except OSError:
            pass

    def commit(self) -> BlobInfo:
        """Verify size and hashes, make the bytes durable and publish them at their blob address.

        Raises :class:`IntegrityError` (temp file deleted) on any mismatch, :class:`StoreError` on I/O.
        """
        info = self.finish(durable=self._blobs.local)
        if self._upload is not None:
            self._upload.complete()
            self._upload = None
            self.tmp_path.unlink(missing_ok=True)
            self._committed = True
        else:
            self.publish(info, durable=True)
        return info

    def problem(self) -> str | None:
        """What keeps the bytes written so far from being the promised blob; None when they are exactly it.
        (Checked by :meth:`finish`; pull-through asks earlier, to hand a client the last byte before fsync.)"""
        if self.expected.size is not None and self.offset != self.expected.size:
            return f"size {self.offset} != promised {self.expected.size}"
        sha256 = self._sha256.hexdigest()
        if self.expected.sha256 is not None and sha256 != self.expected.sha256:
            return f"sha256 {sha256} != promised {self.expected.sha256}"
        git_sha1 = self._sha1.hexdigest() if self._sha1 is not None else None
        if self.expected.git_sha1 is not None and git_sha1 != self.expected.git_sha1:
            return f"git sha1 {git_sha1} != promised {self.expected.git_sha1}"
        return None

    def finish(self, *, durable: bool) -> BlobInfo:
        """Close the temp file (fsync'd when ``durable``) and check size and hashes; the bytes stay in the
        temp file until :meth:`publish`. A mismatch deletes it and raises :class:`IntegrityError`."""
        self._close(durable)
        sha256 = self._sha256.hexdigest()
        git_sha1 = self._sha1.hexdigest() if self._sha1 is not None else None
        problem = self.problem()
        if problem:
            self.tmp_path.unlink(missing_ok=True)
            raise IntegrityError(f"content mismatch ({problem}); nothing was stored")
        # (in object storage "fetched" means "sent": asking first would cost a request per blob, and callers
        # only write blobs the index does not name)
        fetched = not self._blobs.exists(sha256) if self._blobs.local else True
        return BlobInfo(sha256=sha256, size=self.offset, git_sha1=git_sha1, fetched=fetched)

    def publish(self, info: BlobInfo, *, durable: bool) -> None:
        """Publish the verified temp file at its blob address (or drop it if the blob exists).

        ``durable``: the backend makes it durable now. Without, the caller's batch publishes it together
        with others (see :class:`BlobBatch`) and marks it published with :meth:`published`."""
        self._blobs.publish([(self.tmp_path, info.sha256)], durable=durable)
        self._committed = True

    def published(self) -> None:
        """The batch published this writer's temp file: leaving must not delete anything."""
        self._committed = True

    def _abort_upload(self) -> None:
        if self._upload is not None:
            upload, self._upload = self._upload, None
            upload.abort()

    def discard(self, *, keep_partial: bool) -> None:
        self._abort_upload()
        if not self._handle.closed:
            self._close_quietly()
        if not (keep_partial and self.resumable):
            self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._committed:
            self.discard(keep_partial=True)
