"""The typer application: global options, and every command registered from its module.

Exit codes come from the error classes (see :mod:`hubmirror.errors` and the README); 2 is a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _cmd_airgap, _cmd_mirror, _cmd_offline, _cmd_push, _cmd_serve, _cmd_upkeep
from ._common import State, setup_logging

app = typer.Typer(
    name="hubmirror",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Mirror Hugging Face Hub repos into a verified local store, and use them with no network.",
)


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="Config file. Default: $HUBMIRROR_CONFIG, then ./hubmirror.yaml."),
    ] = None,
    home: Annotated[
        Path | None, typer.Option("--home", help="Store directory; overrides $HUBMIRROR_HOME and the config's home.")
    ] = None,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More log output (-vv for debug).")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
) -> None:
    ctx.obj = State(config, home, verbose, quiet)
    setup_logging(verbose, quiet)


app.command()(_cmd_mirror.sync)
app.command()(_cmd_mirror.lock)
app.command()(_cmd_mirror.status)
app.command()(_cmd_offline.resolve)
app.command("hf-cache")(_cmd_offline.hf_cache)
app.command()(_cmd_offline.env)
app.command("import-hf-cache")(_cmd_offline.import_hf_cache)
app.command()(_cmd_serve.serve)
app.command()(_cmd_push.push)
app.command()(_cmd_push.watch)
app.command()(_cmd_serve.run)
app.command()(_cmd_airgap.export)
app.command()(_cmd_airgap.inventory)
app.command("import")(_cmd_airgap.import_)
app.command()(_cmd_upkeep.verify)
app.command()(_cmd_upkeep.gc)
app.command()(_cmd_upkeep.remove)
