"""The content-addressed blob store of a hubmirror home: one blob per sha256, written only by the one blob
writer, in the home (``blobs/``) or in an S3-compatible bucket; plus the home's layout, locks and temp files."""

from __future__ import annotations

from ._batch import BlobBatch
from ._interface import Blobs, StoredBlob
from ._layout import CACHEDIR_TAG, LAYOUT_VERSION, Store, read_layout_version
from ._writer import BlobInfo, BlobWriter, Expected

__all__ = [
    "CACHEDIR_TAG",
    "LAYOUT_VERSION",
    "BlobBatch",
    "BlobInfo",
    "BlobWriter",
    "Blobs",
    "Expected",
    "Store",
    "StoredBlob",
    "read_layout_version",
]
