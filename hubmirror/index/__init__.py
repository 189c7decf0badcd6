"""The index: what the store holds (repos, commits, files, refs, blobs), sync history and the push outbox,
in SQLite (the default) or PostgreSQL. All SQL of hubmirror lives in this part."""

from __future__ import annotations

from ._base import utcnow
from ._history import NEXT_SYNC_KEY
from ._interface import Index, Lease
from ._open import display_location, is_index_url, open_index
from ._pushbook import PushBook
from ._records import (
    BlobUse,
    CommitInfo,
    CommitKey,
    Discussion,
    DiscussionEvent,
    ExportRecord,
    FullCommit,
    PushJob,
    StoreStats,
    SyncRunRecord,
)

__all__ = [
    "NEXT_SYNC_KEY",
    "BlobUse",
    "CommitInfo",
    "CommitKey",
    "Discussion",
    "DiscussionEvent",
    "ExportRecord",
    "FullCommit",
    "Index",
    "Lease",
    "PushBook",
    "PushJob",
    "StoreStats",
    "SyncRunRecord",
    "display_location",
    "is_index_url",
    "open_index",
    "utcnow",
]
