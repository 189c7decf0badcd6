"""``hubmirror run``: scheduled sync, the folder watchers and the server in one process.

Each part gets its own store/index handles (SQLite connections are per thread). Setting ``stop`` ends
them all cleanly: the running download keeps its partial file for resume, the outbox stays intact.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from ..config import Config
from ..errors import ConfigError, HubMirrorError
from ..mirror import Mirror, planning_mirror
from ..push import AutoPush
from ..sync import SyncReport
from ._schedule import Schedule, run_scheduled

logger = logging.getLogger(__name__)


def schedule_for(config: Config, every: float | None = None, cron: str | None = None) -> Schedule | None:
    """Flags win over the config's sync.every / sync.cron; None when neither asks for a schedule."""
    if every is not None or cron is not None:
        return Schedule(every=every, cron=cron, jitter=config.sync.jitter)
    if config.sync.every is not None or config.sync.cron is not None:
        return Schedule(every=config.sync.every, cron=config.sync.cron, jitter=config.sync.jitter)
    return None


def scheduled_sync(
    config: Config,
    schedule: Schedule,
    stop: threading.Event,
    on_report: Callable[[SyncReport], None] | None = None,
    *,
    repos: Sequence[str] = (),
    locked: bool = False,
    dry_run: bool = False,
    observer: Callable[[], Any] | None = None,
) -> int:
    """Sync (``repos``, or all the config lists) on ``schedule`` until ``stop``; returns the number of runs.

    ``observer`` makes a fresh progress observer (a context manager, or None) per run; ``on_report`` gets
    each run's report (default: a log summary, failures at ERROR: in a service the log is the record)."""
    report_to = on_report or log_report
    with (
        planning_mirror(config.home, config.backends) if dry_run else Mirror(config.home, backends=config.backends)
    ) as mirror:

        def once() -> None:
            watching = observer() if observer is not None else None
            with watching or nullcontext():
                report = mirror.sync(config, repos, dry_run=dry_run, locked=locked, observer=watching, stop=stop)
            report_to(report)

        return run_scheduled(once, schedule, mirror.store, mirror.index, stop, record=not dry_run)


def log_report(report: SyncReport) -> None:
    for result in report.results:
        if not result.ok:
            logger.error("%s failed: %s", result.label, result.error)
    done = sum(1 for r in report.results if r.ok)
    logger.info(
        "sync run: %d/%d repo revisions synced, %d files fetched (%d bytes), %d requests, %.1fs",
        done,
        len(report.results),
        report.totals()["files_fetched"],
        report.totals()["bytes_fetched"],
        report.requests,
        report.duration,
    )


def _watch(config: Config, stop: threading.Event) -> None:
    with Mirror(config.home, backends=config.backends) as mirror, Mirror.client_for(config) as client:
        AutoPush(mirror.pusher(client), list(config.watch)).run(stop)


def run_service(config: Config, stop: threading.Event, *, serve: bool | None = None) -> None:
    """Start what the config asks for (sync schedule, watch entries, a serve: section) until ``stop``."""
    schedule = schedule_for(config)
    serve = config.serve.enabled if serve is None else serve
    if schedule is None and not config.watch and not serve:
        raise ConfigError(
            "nothing to run: the config has no sync.every/sync.cron, no watch: entries and no serve: section",
            file=str(config.path),
        )
    server = None
    if serve:
        from ..serve import BackgroundServer, ServeSettings

        Mirror(config.home, backends=config.backends).close()  # create or check the store before binding
        server = BackgroundServer(config.home, config.serve.host, config.serve.port, ServeSettings.from_config(config))
        server.start()
        logger.info("serving %s on http://%s:%d", config.home, config.serve.host, config.serve.port)
    threads = []
    failures: list[Exception] = []
    if config.watch:
        watcher = threading.Thread(target=_guard, args=(_watch, config, stop, failures), name="hubmirror-watch")
        watcher.start()
        threads.append(watcher)
    try:
        if schedule is not None:
            scheduled_sync(config, schedule, stop)
        else:
            stop.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if server is not None:
            server.stop()
    if failures:  # a non-zero exit, so a supervisor (systemd Restart=on-failure) sees it and restarts
        error = failures[0]
        if isinstance(error, HubMirrorError):
            raise error
        raise HubMirrorError(f"hubmirror run stopped: a part failed ({type(error).__name__}: {error})") from error


def _guard(
    target: Callable[[Config, threading.Event], None], config: Config, stop: threading.Event, failures: list[Exception]
) -> None:
    """A part that dies takes the whole service down (loudly) rather than limping on without it."""
    try:
        target(config, stop)
    except Exception as exc:
        logger.exception("%s stopped with an error; stopping hubmirror run", target.__name__)
        failures.append(exc)
        stop.set()
