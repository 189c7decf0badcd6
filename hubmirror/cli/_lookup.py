"""The lookup behind ``hubmirror resolve``, shared by the fast path and the full command."""

from __future__ import annotations

from pathlib import Path

from ..models import Backends


def resolve_path(
    home: Path, repo: str, filename: str | None, revision: str, repo_type: str, backends: Backends | None = None
) -> Path:
    from ..resolve import Resolver

    resolver = Resolver(home, backends=backends)
    try:
        if filename:
            return resolver.file_path(repo, filename, revision, repo_type)
        return resolver.snapshot_path(repo, revision, repo_type)
    finally:
        resolver.close()


def dataset_hint(repo: str, snapshot: Path) -> str:
    """The line ``resolve --type dataset`` prints on stderr: the call that loads the snapshot offline.

    ``datasets.load_dataset("org/name")`` cannot load from an HF cache with the network off: offline, it
    only looks in its own Arrow cache (``HF_DATASETS_CACHE``), and its lookup of the data files lists the
    repo through the Hub API. Loading the snapshot folder by path needs neither."""
    return (
        f"load it offline with: from datasets import load_dataset; ds = load_dataset({str(snapshot)!r})"
        f"  (load_dataset({repo!r}) needs the network, or HF_ENDPOINT set to a hubmirror serve)"
    )
