"""Commands that send local folders upstream: ``push`` (once) and ``watch`` (every settled change)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..config import validate_repo_id
from ..errors import ConfigError
from ._common import State, errors, load, print_json, stop_on_signals

if TYPE_CHECKING:
    pass


def push(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A model folder, e.g. save_pretrained output.")],
    repo: Annotated[str, typer.Option("--repo", help="Target repo id upstream (org/name).")],
    repo_type: Annotated[str, typer.Option("--type", "-t", help="model or dataset.")] = "model",
    revision: Annotated[str, typer.Option("--revision", "-r", help="Branch to commit to.")] = "main",
    message: Annotated[str, typer.Option("-m", "--message", help="Commit summary.")] = "Upload with hubmirror",
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    create: Annotated[bool, typer.Option("--create", help="Create the repo if it does not exist.")] = False,
    delete_remote: Annotated[
        bool, typer.Option("--delete-remote", help="Delete remote files that are not in the folder.")
    ] = False,
    add_model_card: Annotated[
        bool, typer.Option("--add-model-card", help="Add a minimal README.md card when neither side has one.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable result.")] = False,
) -> None:
    """Push what changed in FOLDER to the upstream repo as one commit (nothing changed: no commit)."""
    from ..mirror import Mirror
    from ..units import human_size

    state: State = ctx.obj
    with errors():
        try:
            validate_repo_id(repo)
        except ValueError as exc:
            raise typer.BadParameter(f"--repo {repo!r}: {exc}") from exc
        config = load(state)
        with Mirror(config.home, backends=config.backends) as mirror, Mirror.client_for(config) as client:
            result = mirror.pusher(client).push(
                folder,
                repo,
                repo_type=repo_type,
                revision=revision,
                message=message,
                private=private,
                create=create,
                delete_remote=delete_remote,
                add_model_card=add_model_card,
            )
        if as_json:
            data = asdict(result)
            data.pop("pushed_files")
            print_json(data)
            return
        for line in result.skipped + result.warnings:
            typer.echo(f"warning: {line}", err=True)
        if result.status == "up to date":
            typer.echo(f"{repo}@{revision} is up to date ({result.files_hashed} files hashed)")
        else:
            typer.echo(
                f"pushed {result.files_uploaded} files ({human_size(result.bytes_uploaded)}, "
                f"{result.lfs_uploaded} by LFS), deleted {len(result.deleted)}: {result.url}"
            )


def watch(
    ctx: typer.Context,
    retry_min: Annotated[float, typer.Option(help="First retry delay after a failed push, seconds.")] = 5.0,
    retry_max: Annotated[float, typer.Option(help="Longest retry delay, seconds.")] = 300.0,
) -> None:
    """Watch the config's watch: folders and push each settled change; runs until SIGINT/SIGTERM.

    Failed pushes stay in the outbox (in the index) and are retried with backoff, across restarts."""
    from ..mirror import Mirror
    from ..push import AutoPush  # watchdog is loaded only by the commands that watch

    state: State = ctx.obj
    with errors():
        config = load(state)
        if not config.watch:
            raise ConfigError(
                "the config has no watch: entries; add one (see config/hubmirror.example.yaml)", file=str(config.path)
            )
        with Mirror(config.home, backends=config.backends) as mirror, Mirror.client_for(config) as client:
            runner = AutoPush(mirror.pusher(client), list(config.watch), retry_min=retry_min, retry_max=retry_max)
            with stop_on_signals() as stop:
                runner.run(stop)
