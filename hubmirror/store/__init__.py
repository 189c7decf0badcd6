"""The content-addressed blob store under a hubmirror home: one file per sha256, written only by the one
blob writer, plus the home's layout, locks and temp files."""

from __future__ import annotations

from ._batch import BlobBatch
from ._layout import CACHEDIR_TAG, LAYOUT_VERSION, Store, read_layout_version
from ._writer import BlobInfo, BlobWriter, Expected

__all__ = [
    "CACHEDIR_TAG",
    "LAYOUT_VERSION",
    "BlobBatch",
    "BlobInfo",
    "BlobWriter",
    "Expected",
    "Store",
    "read_layout_version",
]
