"""BlobRecorder: download threads record blob rows in group commits, and none returns before its own row is
in the index (the crash tests rely on that: a killed run re-downloads at most one file per thread).

A real SQLite index, real threads; the failing index is an Index whose writes raise (a full disk, say).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hubmirror.errors import StoreError
from hubmirror.index import open_index
from hubmirror.models import BlobRecord
from hubmirror.sync._recorder import BlobRecorder

pytestmark = pytest.mark.timeout(60)


def row(i: int) -> BlobRecord:
    return BlobRecord(hashlib.sha256(b"%d" % i).hexdigest(), i, hashlib.sha1(b"%d" % i).hexdigest())


def test_every_row_is_committed_before_record_returns_and_writes_are_grouped(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    with open_index(path) as index:
        local = threading.local()
        opened = []
        transactions = 0
        count_lock = threading.Lock()

        def index_for_thread():
            nonlocal transactions
            if not hasattr(local, "index"):
                local.index = index.for_thread(durable=False)
                opened.append(local.index)
                add = local.index.add_blobs

                def counted(rows):
                    nonlocal transactions
                    with count_lock:
                        transactions += 1
                    add(rows)

                local.index.add_blobs = counted
            return local.index

        recorder = BlobRecorder(index_for_thread)

        def record_then_look(i: int) -> bool:
            recorder.record(row(i))
            with sqlite3.connect(path) as other:  # another connection sees it at once: it was committed
                return other.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (row(i).sha256,)).fetchone() is not None

        with ThreadPoolExecutor(16) as pool:
            seen = list(pool.map(record_then_look, range(400)))
        for other in opened:
            other.close()
        assert all(seen)
        assert all(index.has_blob(row(i).sha256) for i in range(400))
        assert transactions < 400  # rows that arrived while one thread wrote went in together


def test_a_failed_group_fails_every_caller_whose_row_was_in_it() -> None:
    release = threading.Event()
    calls = []

    class FullDisk:
        def add_blobs(self, rows):
            calls.append(list(rows))
            release.wait(5)  # hold the first write so that the other rows pile up into the next group
            raise StoreError("disk full while writing the index")

    recorder = BlobRecorder(lambda: FullDisk())  # type: ignore[arg-type,return-value]
    errors: list[str] = []

    def record(i: int) -> None:
        try:
            recorder.record(row(i))
        except StoreError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    threads[0].start()
    while not calls:
        threading.Event().wait(0.01)
    for thread in threads[1:]:
        thread.start()
    for _ in range(500):  # until the 7 rows wait for the held write (the recorder's queue, looked at directly)
        if len(recorder._pending) == 7:
            break
        threading.Event().wait(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 8 and all("disk full" in e for e in errors)
    assert len(calls) == 2 and len(calls[0]) == 1 and len(calls[1]) == 7  # the 7 waiting rows: one group
