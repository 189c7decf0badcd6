"""The index: what the store holds (repos, commits, files, refs, blobs), sync history and the push outbox,
in SQLite. All SQL of hubmirror lives in this part."""

from __future__ import annotations

from ._base import utcnow
from ._history import NEXT_SYNC_KEY
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
from ._sqlite import Index, open_index

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
    "PushBook",
    "PushJob",
    "StoreStats",
    "SyncRunRecord",
    "open_index",
    "utcnow",
]
