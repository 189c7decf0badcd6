"""The ``hubmirror`` executable's entry point, with fast paths for ``resolve``, ``sync`` and ``push``.

``resolve`` is called from scripts and job launchers, often in loops; importing the full CLI stack
(typer, rich, pydantic, httpx2) costs ~300 ms, so a plain ``resolve`` invocation is parsed here with
argparse and answered from the index alone. A plain ``sync`` (cron, timers, scripts: no terminal, no
schedule options) and a plain ``push`` are parsed here too and run the same command functions as the full
CLI: typer's parsing alone imports pydantic, about 0.15 s of an unchanged resync or a one-file push.
Anything unusual (``--help``, a parse error, a terminal that wants a progress bar) falls through to the
full CLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from ..config import find_place, validate_repo_id
from ..errors import HubMirrorError
from ._lookup import dataset_hint, resolve_path


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
        home, backends = find_place(args.home, args.config)
        path = resolve_path(home, args.repo, args.filename, args.revision, args.repo_type, backends)
        print(path)
        if args.repo_type == "dataset" and not args.filename and not args.quiet:
            print(dataset_hint(args.repo, path), file=sys.stderr)
    except HubMirrorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


_GLOBAL_FLAGS = ("-c", "--config", "--home")  # the global options that take a value


def _split(argv: list[str], command: str) -> tuple[argparse.Namespace, list[str]] | None:
    """The global options before ``command`` and the words after it, or None (use the full CLI)."""
    if command not in argv or any(a in ("--help", "-h") for a in argv):
        return None
    at = argv.index(command)
    if at > 0 and argv[at - 1] in _GLOBAL_FLAGS:
        return None  # the command's name is an option's value
    head = _Parser(add_help=False)
    head.add_argument("-c", "--config", type=Path)
    head.add_argument("--home", type=Path)
    head.add_argument("-v", "--verbose", action="count", default=0)
    head.add_argument("-q", "--quiet", action="store_true")
    try:
        return head.parse_args(argv[:at]), argv[at + 1 :]
    except _Fallback:
        return None


def _run(top: argparse.Namespace, command: Callable[[SimpleNamespace], None]) -> int:
    """Run a command function of the full CLI with the state its context would carry."""
    from typer import Exit

    from ._common import State, setup_logging

    setup_logging(top.verbose, top.quiet)
    try:
        command(SimpleNamespace(obj=State(top.config, top.home, top.verbose, top.quiet)))
    except Exit as done:
        return int(done.exit_code)
    return 0


def _fast_sync(argv: list[str]) -> int | None:
    """Exit code if ``argv`` is a plain sync we ran, else None (use the full CLI)."""
    if any(a in ("--every", "--cron", "--scheduled") for a in argv):
        return None
    if sys.stdout.isatty() or sys.stderr.isatty():
        return None  # a terminal: the full CLI draws the progress bar
    split = _split(argv, "sync")
    if split is None:
        return None
    top, rest = split
    tail = _Parser(add_help=False)
    tail.add_argument("repos", nargs="*")
    tail.add_argument("--dry-run", action="store_true")
    tail.add_argument("--locked", action="store_true")
    tail.add_argument("--json", dest="as_json", action="store_true")
    tail.add_argument("--progress", dest="progress", action="store_true", default=True)
    tail.add_argument("--no-progress", dest="progress", action="store_false")
    try:
        args = tail.parse_args(rest)
    except _Fallback:
        return None
    if any(r.startswith("-") for r in args.repos):
        return None
    from . import _cmd_mirror

    return _run(
        top,
        lambda context: _cmd_mirror.sync(
            context,  # type: ignore[arg-type]  # the command reads only ctx.obj
            args.repos or None,
            dry_run=args.dry_run,
            locked=args.locked,
            as_json=args.as_json,
            progress=args.progress,
        ),
    )


def _fast_push(argv: list[str]) -> int | None:
    """Exit code if ``argv`` is a plain push we ran, else None (use the full CLI). A push from a watcher
    script or a training job's hook pays typer's parsing (it imports pydantic) on every call otherwise."""
    split = _split(argv, "push")
    if split is None:
        return None
    top, rest = split
    tail = _Parser(add_help=False, allow_abbrev=False)  # (click takes no abbreviations either)
    tail.add_argument("folder", type=Path)
    tail.add_argument("--repo", required=True)
    tail.add_argument("-t", "--type", dest="repo_type", default="model")
    tail.add_argument("-r", "--revision", default="main")
    tail.add_argument("-m", "--message", default="Upload with hubmirror")
    tail.add_argument("--private", action="store_true")
    tail.add_argument("--create", action="store_true")
    tail.add_argument("--delete-remote", action="store_true")
    tail.add_argument("--add-model-card", action="store_true")
    tail.add_argument("--json", dest="as_json", action="store_true")
    try:
        args = tail.parse_args(rest)
        validate_repo_id(args.repo)
    except (_Fallback, ValueError):
        return None  # the full CLI says what is wrong, as usual
    if args.folder.name.startswith("-"):
        return None
    from . import _cmd_push

    return _run(
        top,
        lambda context: _cmd_push.push(
            context,  # type: ignore[arg-type]  # the command reads only ctx.obj
            args.folder,
            args.repo,
            repo_type=args.repo_type,
            revision=args.revision,
            message=args.message,
            private=args.private,
            create=args.create,
            delete_remote=args.delete_remote,
            add_model_card=args.add_model_card,
            as_json=args.as_json,
        ),
    )


def main() -> None:
    # httpcore2 imports trio whenever it is installed, to serve trio event loops (about 0.1 s with attrs,
    # a fifth of an unchanged resync); this process never runs one. Nothing here imported it yet.
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
    for fast in (_fast_resolve, _fast_sync, _fast_push):
        code = fast(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    from ._app import app

    app()
