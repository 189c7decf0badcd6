"""Commands that carry a mirror across the air gap: ``export``, ``inventory``, ``import``."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import State, errors, home_of, place_of, print_json, progress_bar

if TYPE_CHECKING:
    pass


def export(
    ctx: typer.Context,
    dest: Annotated[
        str,
        typer.Argument(
            help="A new directory, a file ending in .tar, or - (a tar on standard output, for tape or a diode)."
        ),
    ],
    repos: Annotated[
        list[str] | None, typer.Argument(help="Only these repos. Default: every repo in the store.")
    ] = None,
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            help="What the far side has: its 'hubmirror inventory' file, or an earlier bundle (its "
            "directory, .tar or MANIFEST.json). Only what it lacks is exported.",
        ),
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option("--incremental", help="Export what changed since the last export of this store (one-way links)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable report.")] = False,
) -> None:
    """Write a bundle: the blobs the far side lacks, the records of the exported commits and refs, and a
    manifest with every blob's sha256 and size. Check it anywhere with 'sha256sum -c SHA256SUMS'."""
    from ..mirror import Mirror
    from ..units import human_size

    if since is not None and incremental:
        raise typer.BadParameter("give --since or --incremental, not both")
    state: State = ctx.obj
    with errors():
        observer = progress_bar(not as_json and dest != "-")
        with Mirror(home_of(state), write=False) as mirror, observer or nullcontext():
            report = mirror.export(dest, repos or (), since=since, incremental=incremental, progress=observer)
        to_stderr = dest == "-"  # standard output carries the bundle
        if as_json:
            print_json(report.as_dict(), err=to_stderr)
            return
        for warning in report.warnings:
            typer.echo(f"warning: {warning}", err=True)
        typer.echo(
            f"exported {report.commits} commits of {report.repos} repos: {report.blobs} blobs "
            f"({human_size(report.bytes)}); {report.blobs_skipped} blobs and {report.commits_skipped} commits the "
            f"far side has were left out" + (f" (base: {report.base})" if report.base else " (full bundle)"),
            err=to_stderr,
        )
        typer.echo(f"bundle {report.id} at {dest}, digest {report.digest}", err=to_stderr)


def inventory(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("-o", "--output", help="The file to write (- for standard output).")],
) -> None:
    """Write what this store holds (commits and blob hashes, gzip'd) for the other side's 'export --since'."""
    from ..mirror import Mirror

    state: State = ctx.obj
    with errors(), Mirror(home_of(state), write=False) as mirror:
        if output == "-":
            counts = mirror.inventory(sys.stdout.buffer)
        else:
            target = Path(output)
            with target.open("xb") as handle:
                counts = mirror.inventory(handle)
        typer.echo(
            f"inventory of {counts['commits']} commits and {counts['blobs']} blobs written to {output}",
            err=output == "-",
        )


def import_(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(help="A bundle: its directory, its .tar, or - (a tar on standard input).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable report.")] = False,
) -> None:
    """Bring a bundle in: every blob verified as it is copied, commits published only when complete, refs
    moved last and never back. Safe to repeat and to interrupt. Exit 7 if blobs were damaged or missing,
    4 if the bundle builds on one this store lacks, 11 if a ref was kept over a local commit."""
    from ..mirror import Mirror
    from ..units import human_size

    state: State = ctx.obj
    with errors():
        observer = progress_bar(not as_json)
        home, backends = place_of(state)
        with Mirror(home, backends=backends) as mirror, observer or nullcontext():
            report = mirror.import_bundle(src, progress=observer)
        if as_json:
            print_json(report.as_dict())
        else:
            for line in report.damaged:
                typer.echo(f"DAMAGED    {line}")
            for line in report.diverged:
                typer.echo(f"DIVERGED   {line}")
            for line in report.refs_kept:
                typer.echo(f"kept       {line}")
            again = " (imported before: nothing new)" if report.already_imported and not report.blobs_copied else ""
            typer.echo(
                f"imported bundle {report.id[:12]} of {report.exported_at}{again}: {report.commits_imported} "
                f"commits ({report.commits_present} already here, {report.commits_refused} held back), "
                f"{report.blobs_copied} blobs copied ({human_size(report.bytes_copied)}), "
                f"{report.blobs_present} already here, {report.refs_moved} refs moved"
            )
        raise typer.Exit(report.exit_code)
