"""The index: what the store holds (repos, commits, files, refs, blobs), sync history and the push outbox,
in SQLite. All SQL of hubmirror lives in this part."""

from __future__ import annotations

from ._pushbook import PushBook
from ._records import PushJob, StoreStats, SyncRunRecord
from ._sqlite import NEXT_SYNC_KEY, Index, open_index

__all__ = ["NEXT_SYNC_KEY", "Index", "PushBook", "PushJob", "StoreStats", "SyncRunRecord", "open_index"]
