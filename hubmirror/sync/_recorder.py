"""Group commit of downloaded blobs' index rows.

Each download thread records its blob before it lets go of the blob's download lock, so that a killed run or
a concurrent process finds it (a small file is known only by its git sha1 through its row). With a
transaction per file from every thread, the threads queued on SQLite's single writer lock, whose busy
handler sleeps for milliseconds at a time. Here one thread at a time writes: whatever rows arrived while it
did go into the next transaction together, and every caller returns only once its own row is committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..errors import StoreError
from ..index import Index
from ..models import BlobRecord


class BlobRecorder:
    """Commits blob rows in groups; :meth:`record` blocks until the caller's row is in the index."""

    def __init__(self, index_for_thread: Callable[[], Index]) -> None:
        self._index_for_thread = index_for_thread
        self._cond = threading.Condition()
        self._pending: list[BlobRecord] = []
        self._next_group = 0  # the group rows added now will be written in
        self._done = -1  # every group up to this one has been written (or failed); below next - 1: one is writing
        self._failures: dict[int, str] = {}  # group → why it failed (read by its waiting callers)

    def record(self, row: BlobRecord) -> None:
        with self._cond:
            self._pending.append(row)
            group = self._next_group
            while self._done < group and self._done < self._next_group - 1:
                self._cond.wait()
            if self._done >= group:
                if group in self._failures:
                    raise StoreError(self._failures[group])
                return
            # no one is writing and our row is still pending: write this group ourselves
            rows, self._pending = self._pending, []
            self._next_group += 1
        failure: str | None = None
        try:
            self._index_for_thread().add_blobs(rows)
        except BaseException as exc:
            failure = str(exc) or type(exc).__name__  # the callers whose rows were in this group raise it too
            raise
        finally:
            with self._cond:
                if failure is not None:
                    self._failures[group] = failure
                self._done = group
                self._cond.notify_all()
