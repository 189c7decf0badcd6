"""Commands that fill and describe the mirror: ``sync`` (once or on a schedule), ``lock``, ``status``."""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..config import Config, parse_duration
from ..errors import ConfigError
from ._common import (
    State,
    backends_of,
    config_and_home,
    errors,
    load,
    print_json,
    progress_bar,
    stop_on_signals,
)

if TYPE_CHECKING:
    from ..sync import SyncReport

logger = logging.getLogger(__name__)


def sync(
    ctx: typer.Context,
    repos: Annotated[
        list[str] | None, typer.Argument(help="Only these repos (as listed in the config). Default: all.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show what would be fetched (files, bytes, bytes already present); write nothing."
        ),
    ] = False,
    locked: Annotated[
        bool,
        typer.Option("--locked", help="Fetch exactly what hubmirror.lock pins; fail if upstream cannot provide it."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
    progress: Annotated[bool, typer.Option(help="Progress bar on a terminal.")] = True,
    every: Annotated[
        str | None, typer.Option("--every", help="Keep syncing at this interval (6h, 30m, 90s) until SIGINT/SIGTERM.")
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option("--cron", help="Keep syncing on this cron schedule ('0 3 * * *', local time) until stopped."),
    ] = None,
    scheduled: Annotated[
        bool, typer.Option("--scheduled", help="Keep syncing on the config's sync.every / sync.cron until stopped.")
    ] = False,
) -> None:
    """Mirror the repos the config lists into the store. Exit 0 only when every repo revision synced.

    With --every/--cron/--scheduled it keeps running with the same REPO, --locked and --dry-run choices:
    runs never overlap (a slot that falls due during a run is skipped and logged), and SIGTERM stops it
    cleanly with exit code 0."""
    from ._render import print_report

    state: State = ctx.obj
    with errors():
        config = load(state)
        if repos:
            config.select(repos)  # an unknown name fails now, not at the first scheduled run
        if every is not None or cron is not None or scheduled:
            _sync_on_schedule(
                config, repos or (), every, cron, dry_run=dry_run, locked=locked, as_json=as_json, progress=progress
            )
            return
        if not config.repos:
            _nothing_to_sync(config, as_json)
            return
        report = _sync_once(config, repos or (), dry_run=dry_run, locked=locked, as_json=as_json, progress=progress)
        print_json(report.as_dict()) if as_json else print_report(report)
        raise typer.Exit(report.exit_code)


def _nothing_to_sync(config: Config, as_json: bool) -> None:
    from ..sync import SyncReport

    where = config.path or "the config"
    if as_json:
        print_json(SyncReport().as_dict())
    else:
        typer.echo(f"nothing to sync: {where} lists no repos (add them under repos:)")


def _sync_once(
    config: Config, repos: tuple[str, ...] | list[str], *, dry_run: bool, locked: bool, as_json: bool, progress: bool
) -> SyncReport:
    from ..mirror import Mirror

    observer = progress_bar(progress and not as_json)
    if dry_run:
        return _dry_run(config, repos, locked=locked, observer=observer)
    with (
        Mirror(config.home, backends=config.backends) as mirror,
        observer or nullcontext(),
        stop_on_signals() as stop,
    ):
        return mirror.sync(config, repos, locked=locked, observer=observer, stop=stop)


def _dry_run(config: Config, repos: tuple[str, ...] | list[str], *, locked: bool, observer: Any) -> SyncReport:
    from ..mirror import planning_mirror

    with planning_mirror(config.home, config.backends) as mirror, observer or nullcontext(), stop_on_signals() as stop:
        return mirror.sync(config, repos, dry_run=True, locked=locked, observer=observer, stop=stop)


def _sync_on_schedule(
    config: Config,
    repos: tuple[str, ...] | list[str],
    every: str | None,
    cron: str | None,
    *,
    dry_run: bool,
    locked: bool,
    as_json: bool,
    progress: bool,
) -> None:
    from ..cron import check_cron
    from ..schedule import Schedule, schedule_for, scheduled_sync
    from ._render import print_report

    try:
        seconds = parse_duration(every) if every is not None else None
        if cron is not None:
            check_cron(cron)
        schedule: Schedule | None = schedule_for(config, seconds, cron)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if schedule is None:
        raise ConfigError(
            "--scheduled: the config has neither sync.every nor sync.cron; set one, or pass --every/--cron",
            file=str(config.path),
        )

    def show(report: SyncReport) -> None:
        if as_json:
            typer.echo(json.dumps(report.as_dict(), sort_keys=True))  # one line per run
        else:
            print_report(report)

    with stop_on_signals() as stop:
        scheduled_sync(
            config,
            schedule,
            stop,
            show,
            repos=repos,
            locked=locked,
            dry_run=dry_run,
            observer=lambda: progress_bar(progress and not as_json),
        )


def lock(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Sync, then pin every repo revision to its commit and every file to its sha256 in hubmirror.lock."""
    from ..mirror import Mirror
    from ._render import print_report

    state: State = ctx.obj
    with errors():
        config = load(state)
        observer = progress_bar(not as_json)
        with Mirror(config.home, backends=config.backends) as mirror, observer or nullcontext():
            report, path = mirror.lock(config, observer=observer)
        if as_json:
            print_json({**report.as_dict(), "lock_file": str(path) if path else None})
        else:
            print_report(report)
            typer.echo(f"wrote {path}" if path else "lock file not written: some repos failed to sync")
        raise typer.Exit(report.exit_code)


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable status.")] = False,
) -> None:
    """What is mirrored: repos, revisions → commits, sizes, dedupe savings, recent sync runs."""
    from ..mirror import Mirror
    from ._cmd_upkeep import retention_of
    from ._render import print_status

    state: State = ctx.obj
    with errors():
        config, home = config_and_home(state)
        with Mirror(home, write=False, backends=backends_of(config)) as mirror:
            data = mirror.status(retention=retention_of(config))
        if as_json:
            print_json(data)
            return
        print_status(data)
