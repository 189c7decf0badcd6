"""The ``hubmirror`` executable's entry point, with a fast path for ``resolve``.

``resolve`` is called from scripts and job launchers, often in loops; importing the full CLI stack
(typer, rich, pydantic, httpx2) costs ~300 ms, so a plain ``resolve`` invocation is parsed here with
argparse and answered from the index alone. Anything unusual (``--help``, a parse error) falls through to
the full CLI, which calls the same :func:`resolve_path`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import find_place
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


def main() -> None:
    code = _fast_resolve(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from ._app import app

    app()
