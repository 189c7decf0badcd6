"""Scheduled sync: run a job every N seconds or on a cron schedule, with jitter, never overlapping.

A slot that falls due while the previous run is still going is skipped (and logged), not queued. Another
process syncing the same store at that moment also makes the slot skip (a lock, taken without waiting).
The next planned run is written to the index, so ``hubmirror status`` can show it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime

from ..cron import check_cron, next_cron_time
from ..errors import LockTimeoutError
from ..index import NEXT_SYNC_KEY, Index
from ..store import Store

logger = logging.getLogger(__name__)


class Schedule:
    def __init__(self, every: float | None = None, cron: str | None = None, jitter: float = 0.0) -> None:
        if (every is None) == (cron is None):
            raise ValueError("a schedule needs exactly one of every or cron")
        if every is not None and not every > 0:  # 0 would make the skip loop below spin forever
            raise ValueError(f"every must be greater than 0 seconds, got {every:g}")
        self.every = every
        if cron is not None:
            check_cron(cron)
        self.cron = cron
        self.jitter = jitter

    def next_after(self, moment: float) -> float:
        """The next slot strictly after ``moment`` (epoch seconds), plus up to ``jitter`` seconds."""
        if self.every is not None:
            base = moment + self.every
        else:
            assert self.cron is not None
            base = next_cron_time(self.cron, moment)
        return base + (random.uniform(0, self.jitter) if self.jitter else 0.0)

    def describe(self) -> str:
        return f"every {self.every:g}s" if self.every is not None else f"cron '{self.cron}'"


def run_scheduled(
    job: Callable[[], object],
    schedule: Schedule,
    store: Store,
    index: Index,
    stop: threading.Event,
    *,
    run_first: bool = True,
    record: bool = True,
) -> int:
    """Run ``job`` on ``schedule`` until ``stop`` is set; returns how many runs happened.

    ``record=False`` (dry runs) writes nothing: no next-run time in the index, no lock file."""
    runs = 0
    due = time.time() if run_first else schedule.next_after(time.time())
    logger.info("scheduled sync %s; first run at %s", schedule.describe(), _iso(due))
    while not stop.is_set():
        if record:
            with store.write_lock():
                index.set_meta(NEXT_SYNC_KEY, _iso(due))
        if stop.wait(max(0.0, due - time.time())):
            break
        started = time.time()
        try:
            with store.lock("scheduled-sync", timeout=0) if record else nullcontext():
                runs += 1
                job()
        except LockTimeoutError:
            logger.warning("scheduled sync skipped: another hubmirror sync of %s is still running", store.home)
        due = schedule.next_after(started)
        skipped = 0
        while due <= time.time():  # slots that fell due while that run was going are skipped
            skipped += 1
            due = schedule.next_after(due)
        if skipped:
            logger.warning("skipped %d scheduled run(s) that fell due while the previous run was going", skipped)
    if record:
        with store.write_lock():
            index.set_meta(NEXT_SYNC_KEY, None)
    return runs


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
