"""The lookup behind ``hubmirror resolve``, shared by the fast path and the full command."""

from __future__ import annotations

from pathlib import Path


def resolve_path(home: Path, repo: str, filename: str | None, revision: str, repo_type: str) -> Path:
    from ..resolve import Resolver

    resolver = Resolver(home)
    try:
        if filename:
            return resolver.file_path(repo, filename, revision, repo_type)
        return resolver.snapshot_path(repo, revision, repo_type)
    finally:
        resolver.close()
