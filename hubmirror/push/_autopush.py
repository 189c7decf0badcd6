"""Watch-folder auto push: settled folders become outbox jobs; a worker drains the outbox.

The outbox lives in the index (SQLite), so a job survives restarts and crashes; a failed push stays
queued and is retried with capped exponential backoff, its error visible in ``hubmirror status``. A job
pushes the folder as it is when the job runs, so a re-run after a crash pushes nothing twice.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path

from ..config import WatchSpec
from ..errors import HubMirrorError
from ..index import PushBook, PushJob
from ._pusher import Pusher
from ._watcher import FolderWatcher

logger = logging.getLogger(__name__)


class AutoPush:
    def __init__(
        self,
        pusher: Pusher,
        specs: list[WatchSpec],
        *,
        retry_min: float = 5.0,
        retry_max: float = 300.0,
        settle: float = 1.0,
    ) -> None:
        self.pusher = pusher
        self.book = PushBook(pusher.index)
        self.specs = {self._key(s): s for s in specs}
        self.retry_min, self.retry_max = retry_min, retry_max
        self.watcher = FolderWatcher(specs, self._enqueue, settle=settle)
        self._orphans: set[int] = set()  # ids of jobs whose target left the config (warned about)

    @staticmethod
    def _key(spec: WatchSpec) -> tuple[str, str, str, str]:
        return str(spec.path.resolve()), spec.repo, spec.type, spec.revision

    def _enqueue(self, spec: WatchSpec) -> None:
        folder, repo, repo_type, revision = self._key(spec)
        with self.pusher.store.write_lock():
            self.book.enqueue(folder, repo, repo_type, revision, time.time())

    def run(self, stop: threading.Event, poll: float = 0.2) -> None:
        """Watch and push until ``stop`` is set. Pending jobs from earlier runs go first."""
        pending = self.book.jobs()
        if pending:
            logger.info("%d push job(s) waiting in the outbox from an earlier run", len(pending))
        self.watcher.start()
        try:
            while not stop.is_set():
                self.watcher.poll()
                self.drain_once()
                stop.wait(poll)
        finally:
            self.watcher.stop()

    def drain_once(self) -> int:
        """Run every due job once; returns how many pushes succeeded."""
        done = 0
        for job in self.book.jobs(due_before=time.time()):
            spec = self.specs.get((job.folder, job.repo, job.type, job.revision))
            if spec is None:
                if job.id not in self._orphans:  # once, not on every poll
                    self._orphans.add(job.id)
                    logger.warning(
                        "outbox job for %s → %s is no longer in the config's watch list; kept", job.folder, job.repo
                    )
                continue
            done += self._run_job(job, spec)
        return done

    def _run_job(self, job: PushJob, spec: WatchSpec) -> int:
        try:
            result = self.pusher.push(
                Path(job.folder),
                spec.repo,
                repo_type=spec.type,
                revision=spec.revision,
                message=spec.message,
                private=spec.private,
                create=spec.create,
                delete_remote=spec.delete_remote,
                add_model_card=spec.add_model_card,
            )
        except (HubMirrorError, OSError) as exc:
            # Nothing is dropped: the job stays, with its error, until a retry succeeds.
            wait = min(self.retry_max, self.retry_min * 2**job.attempts) * (0.8 + 0.4 * random.random())
            with self.pusher.store.write_lock():
                self.book.job_failed(job, f"{type(exc).__name__}: {exc}", time.time() + wait)
            logger.error(
                "push of %s → %s failed (attempt %d): %s; retrying in %.0fs",
                job.folder,
                job.repo,
                job.attempts + 1,
                exc,
                wait,
            )
            return 0
        with self.pusher.store.write_lock():
            self.book.job_done(job, result.commit, result.files_uploaded, result.bytes_uploaded)
        return 1
