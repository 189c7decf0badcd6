"""Mirror sync: the repos a config lists, from upstream into the store and index, verified and resumable."""

from __future__ import annotations

from ._report import NullObserver, RevisionResult, SyncObserver, SyncReport
from ._syncer import Syncer

__all__ = ["NullObserver", "RevisionResult", "SyncObserver", "SyncReport", "Syncer"]
