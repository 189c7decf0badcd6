"""Where verified blobs live: the interface both backends implement.

A backend only ever receives bytes that :class:`~hubmirror.store.BlobWriter` has already verified (size,
sha256, git sha1) in a temp file under ``home/tmp``; :meth:`Blobs.publish` makes them visible at the blob's
address, which from then on always holds complete, verified bytes. Two backends: :class:`DiskBlobs`
(``home/blobs/``, the default) and :class:`S3Blobs` (an S3-compatible bucket and prefix).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class StoredBlob:
    """One blob as the backend lists it."""

    sha256: str
    size: int
    mtime: float  # when it was stored (gc keeps young unreferenced blobs: an upload may await its commit)


class StreamedUpload(Protocol):
    """A blob's bytes sent to the backend as they are written; visible only after :meth:`complete`."""

    def feed(self, data: bytes) -> None: ...

    def complete(self) -> None: ...

    def abort(self) -> None: ...


class Blobs(Protocol):
    """The blob addresses of one store."""

    location: str  # how messages name where the blobs are (a directory, or s3://bucket/prefix)
    local: bool  # blobs are files on this machine (hard-linkable into views, servable with sendfile)

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int | None:
        """The stored blob's size, None when it is not stored."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """A seekable binary reader of a stored blob; FileNotFoundError when it is not stored."""
        ...

    def file_path(self, sha256: str) -> Path | None:
        """The blob's file on this machine (local backends only), else None."""
        ...

    def file_name(self, sha256: str) -> str | None:
        """:meth:`file_path` as a string (cheaper, for loops over many blobs)."""
        ...

    def begin_upload(self, sha256: str, size: int) -> StreamedUpload | None:
        """An upload the writer feeds while bytes arrive (so sending overlaps receiving), for a blob whose
        hash is known in advance; None when the backend gains nothing from it (a local disk, a small blob)."""
        ...

    def publish(self, items: Sequence[tuple[Path, str]], *, durable: bool) -> None:
        """Make each verified temp file (path, sha256) visible at its address, and remove the temp file.

        ``durable`` (one blob): make it durable before returning; otherwise the caller made the temp files
        durable already (a batch) and the backend makes the names durable once, at the end."""
        ...

    def iter_blobs(self) -> Iterator[StoredBlob]: ...

    def has_any(self) -> bool: ...

    def sweep(self, cutoff: float) -> int:
        """Remove what crashed writers left in the backend before ``cutoff`` (a time); returns how many."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove a blob (gone already is fine). Only gc and repair delete."""
        ...

    def quarantine(self, sha256: str, stamp: str) -> str | None:
        """Move a damaged blob aside (kept for inspection); returns where, None when it was gone."""
        ...
