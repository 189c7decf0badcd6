"""Commands for using the mirror with no network: ``resolve``, ``hf-cache``, ``env``, ``import-hf-cache``."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import StoreError
from ._common import State, errors, home_of, place_of, print_json
from ._lookup import dataset_hint, resolve_path

if TYPE_CHECKING:
    pass


def resolve(
    ctx: typer.Context,
    repo: Annotated[str, typer.Argument(help="Repo id as listed (or an old name it had).")],
    filename: Annotated[str | None, typer.Argument(help="A file in the repo; omit for the snapshot folder.")] = None,
    revision: Annotated[
        str, typer.Option("--revision", "-r", help="Branch, tag, full commit sha or a unique sha prefix (≥ 7).")
    ] = "main",
    repo_type: Annotated[str, typer.Option("--type", "-t", help="model or dataset.")] = "model",
) -> None:
    """Print the local path of a mirrored snapshot (or one file of it). Never touches the network.

    The snapshot folder loads with from_pretrained(path), a dataset's with datasets.load_dataset(path) (the
    call is printed on stderr; -q leaves it out). Exit 4 when it is not mirrored."""
    state: State = ctx.obj
    with errors():
        home, backends = place_of(state)
        path = resolve_path(home, repo, filename, revision, repo_type, backends)
        typer.echo(str(path))
        if repo_type == "dataset" and not filename and not state.quiet:
            typer.echo(dataset_hint(repo, path), err=True)


def hf_cache(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to lay out the view (e.g. ~/.cache/huggingface/hub). Default: HOME/hf/hub."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """(Re)build an HF-cache view of the mirror and print its path; HF_HUB_CACHE can point at it."""
    from ..mirror import Mirror

    state: State = ctx.obj
    if directory is not None and directory.exists() and not directory.is_dir():
        raise typer.BadParameter(f"{directory} exists and is not a directory", param_hint="--dir")
    with errors():
        home, backends = place_of(state)
        mirror = Mirror(home, write=False, backends=backends)
    with errors(), mirror:
        report = mirror.build_view(directory)
        if as_json:
            print_json(
                {
                    "path": str(report.root),
                    "repos": report.repos,
                    "snapshots": report.snapshots,
                    "link_mode": report.link_mode,
                    "problems": report.problems,
                }
            )
            return
        for problem in report.problems:
            typer.echo(f"warning: {problem}", err=True)
        typer.echo(
            f"{report.repos} repos, {report.snapshots} snapshots; blobs: {_HOW[report.link_mode]} the store",
            err=True,
        )
        typer.echo(str(report.root))


_HOW = {"hardlink": "hard links to", "symlink": "symbolic links to", "copy": "verified copies from"}


def env(ctx: typer.Context) -> None:
    """Print shell exports that make unmodified huggingface_hub/transformers code load from the mirror
    offline: eval "$(hubmirror env)"."""
    from ..mirror import Mirror

    state: State = ctx.obj
    with errors(), Mirror(home_of(state), write=False) as mirror:
        root = mirror.view.root
        if not root.is_dir():
            if mirror.store.read_only:
                raise StoreError(
                    f"the store at {mirror.home} is read-only and holds no HF-cache view: lay one out "
                    "elsewhere with 'hubmirror hf-cache --dir DIR' and set HF_HUB_CACHE=DIR"
                )
            mirror.build_view()
        typer.echo(f"export HF_HUB_CACHE={shlex.quote(str(root))}")
        typer.echo("export HF_HUB_OFFLINE=1")
        typer.echo("export HF_HUB_DISABLE_TELEMETRY=1")


def import_hf_cache(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="A huggingface_hub cache dir (the one holding models--*).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable report.")] = False,
) -> None:
    """Bring an existing huggingface_hub cache into the store, verifying every file against its hash."""
    from ..mirror import Mirror
    from ..units import human_size

    state: State = ctx.obj
    with errors():
        home, backends = place_of(state)
        with Mirror(home, backends=backends) as mirror:
            report = mirror.import_hf_cache(directory)
            if as_json:
                print_json(report.as_dict())
            else:
                for line in report.skipped:
                    typer.echo(f"skipped: {line}")
                typer.echo(
                    f"imported {report.commits_imported} snapshots ({report.files_imported} new files, "
                    f"{human_size(report.bytes_imported)}), {report.commits_present} already mirrored, "
                    f"{human_size(report.bytes_saved)} already in the store, {report.refs} refs"
                )
