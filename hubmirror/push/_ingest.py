"""Copying the files a push sends into the store, overlapping the upload, made durable together.

Bytes enter the store only through the store's batch writer (verified against the hashes the push diffed
with); this module decides nothing about what a commit holds.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import IntegrityError
from ..home import stored_blobs
from ..hub import LocalFile
from ..index import Index
from ..store import Expected, Store

logger = logging.getLogger(__name__)

INGEST_WORKERS = 8
ALONE_BYTES = 8 * 1024 * 1024  # larger copies are stored on their own, at once, while the upload runs


class Ingester:
    """Copies files into the store on a few threads from the moment a push knows what it sends, so the
    copying overlaps the upload. Small copies wait in one batch and are made durable together by
    :meth:`stored` (one barrier for the lot instead of two fsyncs per file: a first push of hundreds of
    small files was bound by them); large ones are stored on their own at once. A blob stored for a push
    that then fails is harmless: content-addressed and verified, the next attempt reuses it; a copy never
    flushed is deleted on exit."""

    def __init__(self, store: Store, index: Index) -> None:
        self.store, self.index = store, index
        self.pool = ThreadPoolExecutor(max_workers=INGEST_WORKERS, thread_name_prefix="push-ingest")
        self.settler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-settle")
        self.batch = store.batch()
        self.jobs: dict[str, Future[bool]] = {}
        self.settling: list[Future[set[str]]] = []
        self.present: set[str] = set()

    def start(self, files: list[LocalFile]) -> None:
        """Start copying those of ``files`` the store lacks (known blobs are not copied again)."""
        wanted = {f.sha256: f for f in files if f.sha256 not in self.jobs and f.sha256 not in self.present}
        self.present |= stored_blobs(self.store, self.index, wanted)
        for sha256, f in wanted.items():
            if sha256 not in self.present:
                self.jobs[sha256] = self.pool.submit(self._copy, f)

    def _copy(self, f: LocalFile) -> bool:
        """False if the file changed since it was hashed (the mirror then takes the pushed bytes from
        upstream)."""
        expected = Expected(f.size, f.sha256, f.git_sha1)
        try:
            if f.size >= ALONE_BYTES:
                # Durable now (its fsync overlaps the upload instead of lengthening the barrier after the
                # commit; in object storage it streams as it is read).
                self.store.ingest_file(f.source, expected)
            else:
                with f.source.open("rb") as handle:
                    self.batch.add(handle, expected)
            return True
        except IntegrityError as exc:
            logger.info(
                "%s changed after it was pushed (%s); the mirror takes the pushed bytes from upstream", f.path, exc
            )
            return False

    def settle_soon(self) -> None:
        """Make the copies started so far durable in the background, once they are done: a push calls it
        before its commit request, so the barrier overlaps the server's work instead of following it (a
        blob named before the commit exists is harmless: the push holds the gc guard, and an unrecorded
        blob is gc's to drop if the commit fails)."""
        jobs, self.jobs = self.jobs, {}
        self.settling.append(self.settler.submit(self._settle, jobs))

    def _settle(self, jobs: dict[str, Future[bool]]) -> set[str]:
        copied = {sha256 for sha256, job in jobs.items() if job.result()}
        self.batch.flush()
        return copied

    def stored(self) -> set[str]:
        """Wait for every copy and make them durable under their names; returns the sha256s of the started
        files that the store now holds (those whose file changed since it was hashed are missing). Raises
        StoreError or OSError (nothing of the failed batch is named then)."""
        self.settle_soon()  # what was started since
        settling, self.settling = self.settling, []
        for done in settling:
            self.present |= done.result()
        return set(self.present)

    def __enter__(self) -> Ingester:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.settler.shutdown(wait=True, cancel_futures=True)
        self.batch.discard()
