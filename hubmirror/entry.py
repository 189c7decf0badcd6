"""The ``hubmirror`` executable's entry point, with a fast path for ``resolve``.

``resolve`` is called from scripts and job launchers, often in loops; importing the full CLI stack
(typer, rich, pydantic, httpx2) costs ~300 ms, so a plain ``resolve`` invocation is parsed here with
argparse and answered from the index alone. Anything unusual (``--help``, a parse error) falls through to
the full CLI, which calls the same :func:`resolve_path`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import HubMirrorError


def home_without_config(home: Path | None, config_path: Path | None) -> Path:
    """Read-only commands work from --home, else a config if one is found, else $HUBMIRROR_HOME/default."""
    if home is not None:  # no config module (and its YAML parser) to import: resolve stays fast
        return home.expanduser().absolute()
    from .config import CONFIG_FILENAME, default_home, find_config_path, load_config

    # Only "there is no config at all" falls back to the default home; a config that exists (or is named
    # by -c or $HUBMIRROR_CONFIG) and is broken is an error, never silently ignored.
    if config_path is None and "HUBMIRROR_CONFIG" not in os.environ and not Path(CONFIG_FILENAME).exists():
        return default_home()
    return load_config(find_config_path(config_path)).home


def resolve_path(home: Path, repo: str, filename: str | None, revision: str, repo_type: str) -> Path:
    from .resolve import Resolver

    resolver = Resolver(home)
    if filename:
        return resolver.file_path(repo, filename, revision, repo_type)
    return resolver.snapshot_path(repo, revision, repo_type)


class _Fallback(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Fallback(message)


def _fast_resolve(argv: list[str]) -> int | None:
    """Exit code if ``argv`` is a plain resolve call we answered, else None (use the full CLI)."""
    if "resolve" not in argv or any(a in ("--help", "-h") for a in argv):
        return None
    parser = _Parser(add_help=False)
    parser.add_argument("-c", "--config", type=Path)
    parser.add_argument("--home", type=Path)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("command", choices=["resolve"])
    parser.add_argument("repo")
    parser.add_argument("filename", nargs="?")
    parser.add_argument("-r", "--revision", default="main")
    parser.add_argument("-t", "--type", dest="repo_type", default="model", choices=["model", "dataset"])
    try:
        args = parser.parse_args(argv)
    except _Fallback:
        return None
    try:
        home = home_without_config(args.home, args.config)
        print(resolve_path(home, args.repo, args.filename, args.revision, args.repo_type))
    except HubMirrorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def main() -> None:
    code = _fast_resolve(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from .cli import app

    app()
