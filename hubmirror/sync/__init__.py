"""Mirror sync: the repos a config lists, from upstream into the store and index, verified and resumable."""

from __future__ import annotations

from ._pull import PULL_FILTER, PulledRevision, Puller
from ._report import NullObserver, RevisionResult, SyncObserver, SyncReport
from ._syncer import Syncer

__all__ = [
    "PULL_FILTER",
    "NullObserver",
    "PulledRevision",
    "Puller",
    "RevisionResult",
    "SyncObserver",
    "SyncReport",
    "Syncer",
]
