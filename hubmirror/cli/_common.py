"""What every command shares: the global options, logging, turning our errors into one line and an exit
code, finding the config and the home, JSON output, progress bars and stopping on signals."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer

from ..config import Config, find_config_path, find_home, load_config
from ..errors import ConfigError, HubMirrorError
from ..models import Backends


@dataclass
class State:
    config_path: Path | None
    home: Path | None
    verbose: int
    quiet: bool


def setup_logging(verbose: int, quiet: bool) -> None:
    # On a terminal the progress bar and summary say enough; under cron/systemd INFO lines are the record.
    level = logging.INFO if not sys.stderr.isatty() else logging.WARNING
    if verbose:
        level = logging.DEBUG if verbose > 1 else logging.INFO
    if quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(max(level, logging.WARNING))
    logging.getLogger("httpcore2").setLevel(max(level, logging.WARNING))


@contextmanager
def errors() -> Iterator[None]:
    """Turn our errors into one line on stderr and the class's exit code."""
    try:
        yield
    except HubMirrorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; partial downloads are kept and resume on the next run", err=True)
        raise typer.Exit(130) from None


def load(state: State) -> Config:
    """The config (-c, $HUBMIRROR_CONFIG or ./hubmirror.yaml), with --home applied."""
    config = load_config(find_config_path(state.config_path))
    if state.home is not None:
        config = replace(config, home=state.home.expanduser().absolute())
    return config


def config_and_home(state: State) -> tuple[Config | None, Path]:
    """The config when there is one (for upstream and retention), and the home: for commands that also work
    without a config."""
    try:
        config = load(state)
    except ConfigError as exc:
        if state.config_path is not None or "no config file found" not in str(exc):
            raise
        return None, home_of(state)
    return config, config.home


def home_of(state: State) -> Path:
    """The home for commands that need no config: --home, else a config if one is found, else the default.
    Its index is the one the store recorded (or home/index.sqlite)."""
    return find_home(state.home, state.config_path)


def backends_of(config: Config | None) -> Backends:
    """Where the config puts the index and the blobs (defaults: what the store recorded, else the home)."""
    return config.backends if config is not None else Backends()


def place_of(state: State) -> tuple[Path, Backends]:
    """The home and where the config puts index and blobs, for commands that need no config but may create
    a store (whose backends the config places)."""
    config, home = config_and_home(state)
    return home, backends_of(config)


def print_json(data: Any, *, err: bool = False) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True), err=err)


def progress_bar(enabled: bool) -> Any:
    """A progress bar on a terminal (rich is imported only then), else None."""
    if not (enabled and sys.stderr.isatty()):
        return None
    from ._progress import SyncProgress

    return SyncProgress()


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An Event set by SIGINT or SIGTERM, so long-running commands stop cleanly with exit code 0.

    The handler only writes a byte to a pipe; a relay thread sets the Event. Setting it in the handler
    itself could deadlock: Python runs handlers in the main thread between bytecodes, and when the signal
    lands while that thread is inside ``stop.wait()`` holding the Event's internal lock, ``stop.set()``
    waits for that lock forever (a scheduled sync that ignored SIGTERM)."""
    stop = threading.Event()
    read_end, write_end = os.pipe()

    def relay() -> None:
        if os.read(read_end, 1):  # b"" once the write end is closed on the way out
            stop.set()

    relay_thread = threading.Thread(target=relay, name="signal-relay", daemon=True)
    relay_thread.start()
    previous = {
        sig: signal.signal(sig, lambda *_: os.write(write_end, b"!")) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(write_end)
        relay_thread.join(timeout=5)
        os.close(read_end)
