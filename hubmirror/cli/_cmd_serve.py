"""Long-running commands: ``serve`` (the Hub API over the mirror) and ``run`` (sync schedule, watchers, serve)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import State, backends_of, config_and_home, errors, load, stop_on_signals

if TYPE_CHECKING:
    pass


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind. Default: serve.host (127.0.0.1).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (0: any free one). Default: serve.port (8080).")
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log", help="One line per request on stderr. Default: serve.access_log (off)."
        ),
    ] = None,
) -> None:
    """Answer the Hub's HTTP API from the mirror: point HF_ENDPOINT at it. Pushes need serve.token or a user
    of serve.users with write patterns; private repos need a token that may read them."""
    from ..mirror import Mirror
    from ..serve import ServeSettings, run

    state: State = ctx.obj
    with errors():
        config, home = config_and_home(state)
        settings = ServeSettings.from_config(config)
        if access_log is not None:
            settings = replace(settings, config=replace(settings.config, access_log=access_log))
        # Check the store before binding; only a server that accepts pushes may create one.
        Mirror(home, write=bool(settings.config.token or settings.config.users), backends=backends_of(config)).close()
        run(
            home,
            host or settings.config.host,
            port if port is not None else settings.config.port,
            settings,
            log_level="warning" if state.quiet else "info",
        )


def run(
    ctx: typer.Context,
    serve_flag: Annotated[
        bool | None,
        typer.Option("--serve/--no-serve", help="Start the server. Default: when the config has a serve: section."),
    ] = None,
) -> None:
    """Run what the config asks for in one process: scheduled sync (sync.every / sync.cron), the watch:
    folders, and the server. SIGTERM/SIGINT stop everything cleanly (exit 0)."""
    from ..schedule import run_service

    state: State = ctx.obj
    with errors():
        config = load(state)
        with stop_on_signals() as stop:
            run_service(config, stop, serve=serve_flag)
