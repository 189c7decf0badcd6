"""Commands that keep a store sound: ``verify`` (and repair), ``gc``, ``remove``."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..config import Config, read_lock
from ._common import State, backends_of, config_and_home, errors, print_json, progress_bar

if TYPE_CHECKING:
    from ..maintenance import Retention


def retention_of(config: Config | None) -> Retention:
    """gc's retention: the config's gc: section, and every commit the config or its lock file pins by sha."""
    from ..maintenance import Retention, pinned_commits

    if config is None:
        return Retention()
    entries = [(spec.type, spec.repo, rev) for spec in config.repos for rev in spec.revisions]
    if config.lock_path.exists():
        entries += [(pin.type, pin.repo, pin.commit) for pin in read_lock(config.lock_path)]
    return Retention(config.gc.keep_previous, config.gc.grace, pinned_commits(entries))


def verify(
    ctx: typer.Context,
    repos: Annotated[list[str] | None, typer.Argument(help="Only the blobs these repos use. Default: all.")] = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Move damaged blobs to home/quarantine/, fetch them again (upstream or --from), "
            "restore lost index rows and rebuild broken view entries.",
        ),
    ] = False,
    from_bundle: Annotated[
        Path | None,
        typer.Option("--from", help="With --repair: take damaged blobs from this bundle (directory or .tar)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable report.")] = False,
) -> None:
    """Rehash every blob (on all cores) and check the index and the HF-cache view. Exit 7 when damage is
    found (or remains after --repair), 0 when all is sound (or was repaired)."""
    from ..mirror import Mirror
    from ..units import human_size

    if from_bundle is not None and not repair:
        raise typer.BadParameter("--from needs --repair")
    state: State = ctx.obj
    with errors():
        config, home = config_and_home(state)
        observer = progress_bar(not as_json)
        client = Mirror.client_for(config) if repair and config is not None else None
        with (
            Mirror(home, write=repair, backends=backends_of(config)) as mirror,
            observer or nullcontext(),
            client or nullcontext(),
        ):
            locked = read_lock(config.lock_path) if config is not None and config.lock_path.exists() else []
            report = mirror.verify(
                repos or (), repair=repair, bundle=from_bundle, client=client, progress=observer, locked=locked
            )
        if as_json:
            print_json(report.as_dict())
        else:
            for line in report.lines:
                typer.echo(f"DAMAGED    {line}")
            for line in report.repaired:
                typer.echo(f"repaired   {line}")
            for line in report.unrepaired:
                typer.echo(f"UNREPAIRED {line}")
            verdict = "sound" if report.ok else ("repaired" if report.exit_code == 0 else "damaged")
            typer.echo(f"verified {report.blobs_checked} blobs ({human_size(report.bytes_checked)}): {verdict}")
        raise typer.Exit(report.exit_code)


def gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable report.")] = False,
) -> None:
    """Delete commits that retention (gc.keep_previous) no longer keeps, and blobs no kept commit uses.

    Refs, local (pushed) repos, the lock file and commit shas listed under repos: are always kept. Safe while
    sync, serve, push and import run (it waits for a running sync, push or import to finish)."""
    from ..mirror import Mirror
    from ..units import human_size

    state: State = ctx.obj
    with errors():
        config, home = config_and_home(state)
        with Mirror(home, write=not dry_run, backends=backends_of(config)) as mirror:
            report = mirror.gc(retention_of(config), dry_run=dry_run)
        if as_json:
            print_json(report.as_dict())
            return
        verb = "would drop" if dry_run else "dropped"
        for line in report.dropped:
            typer.echo(f"{verb} {line}")
        typer.echo(
            f"{verb} {report.commits_dropped} commits, kept {report.commits_kept}; "
            f"{'would free' if dry_run else 'freed'} {human_size(report.bytes_freed)} in "
            f"{report.blobs_deleted} blobs ({report.blobs_in_grace} unused blobs kept for the grace period)"
        )


def remove(
    ctx: typer.Context,
    repo: Annotated[str, typer.Argument(help="The repo to drop (or whose revision to drop).")],
    revision: Annotated[
        str | None,
        typer.Option(
            "--revision", "-r", help="Only this branch, tag or commit (a commit also drops the refs naming it)."
        ),
    ] = None,
    repo_type: Annotated[str, typer.Option("--type", "-t", help="model or dataset.")] = "model",
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable report.")] = False,
) -> None:
    """Forget a repo or one revision of it. Its content is freed by the next 'hubmirror gc'."""
    from ..mirror import Mirror

    state: State = ctx.obj
    with errors():
        config, home = config_and_home(state)
        with Mirror(home, backends=backends_of(config)) as mirror:
            report = mirror.remove(repo, repo_type, revision)
        if as_json:
            print_json(report.as_dict())
            return
        what = f"{repo_type} {report.repo}" + (f"@{revision}" if revision else "")
        typer.echo(
            f"removed {what}: {len(report.refs_removed)} refs, {len(report.commits_removed)} commits; "
            "run 'hubmirror gc' to free their content"
        )
        if config is not None and any(s.repo == report.repo and s.type == repo_type for s in config.repos):
            typer.echo(f"warning: {config.path} still lists {report.repo}: the next sync brings it back", err=True)
