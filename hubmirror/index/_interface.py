"""The one interface both index backends implement (``_sqlite``, ``_postgres``): the query groups over the
backend's connection, plus transactions, change detection, a connection per thread and the writer lease."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager

from ._discussions import DiscussionQueries
from ._history import HistoryQueries
from ._repos import RepoQueries
from ._transfer import TransferQueries
from ._upkeep import UpkeepQueries

# A lease taken around every index write of a writer (sync, push, import, gc): called with a timeout in
# seconds; raises LockTimeoutError when another writer holds it longer.
Lease = Callable[[float], AbstractContextManager[None]]


class Index(RepoQueries, DiscussionQueries, HistoryQueries, TransferQueries, UpkeepQueries, ABC):
    """An open index of one store (either backend). Open with :func:`open_index`; close when done."""

    location: str  # what messages call it: a file path, or a database URL without its password
    read_only: bool
    empty: bool = False  # a database with no schema yet, opened without creating one (PostgreSQL)

    @abstractmethod
    def atomic(self) -> AbstractContextManager[None]:
        """One write transaction; nested calls join the outer one. Writers run one at a time, so a
        read-then-write inside never acts on a snapshot another writer moved past."""

    @abstractmethod
    def data_version(self) -> int:
        """A number that changes whenever the index changes (any process's commit): readers cache until then."""

    @abstractmethod
    def for_thread(self, *, durable: bool = True) -> Index:
        """Another connection to the same index, for another thread. ``durable=False`` lets the backend
        trade the newest commits on power loss (never consistency) for speed: for rows that are cheap to
        redo, like the blob rows a sync's download threads write."""

    def writer_lease(self) -> Lease | None:
        """The lease that makes writers on different machines take turns, or None when the store's own
        file lock is enough (an index on local disk)."""
        return None

    def gc_lease(self, exclusive: bool) -> Lease | None:
        """The gc guard across machines: shared by writers that add blobs before naming them, exclusive for
        gc; None when the store's own lock file is enough (an index on local disk)."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
