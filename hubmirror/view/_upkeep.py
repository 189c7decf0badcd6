"""Keeping the HF-cache view honest: find entries that do not lead to the right blob (verify), drop what the
index no longer has (gc, remove), and repair by laying a repo out again.

Removals go through a rename first (``snapshots/<commit>`` → a hidden temp name), so a reader sees a snapshot
whole or not at all.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from ..models import Repo
from ..paths import safe_relpath
from ._hfcache import HFCacheView, repo_folder_name

logger = logging.getLogger(__name__)


def _remove_tree(path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        return
    hidden = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.gone")
    os.rename(path, hidden)
    if hidden.is_dir() and not hidden.is_symlink():
        shutil.rmtree(hidden, ignore_errors=True)
    else:
        hidden.unlink(missing_ok=True)


def check_repo(view: HFCacheView, repo: Repo) -> list[str]:
    """What in this repo's view does not lead to the right content (empty when the view has no folder)."""
    folder = view.root / repo_folder_name(repo.type, repo.name)
    if not folder.is_dir():
        return []
    problems = []
    for ref in view.index.refs(repo):
        ref_file = folder / "refs" / Path(*safe_relpath(ref.name).split("/"))
        try:
            text = ref_file.read_text()
        except OSError:
            problems.append(f"{ref_file}: missing (should name {ref.commit})")
            continue
        if text != ref.commit:
            problems.append(f"{ref_file}: names {text[:40]!r}, the index says {ref.commit}")
    for commit in view.index.commit_shas(repo):
        snapshot = folder / "snapshots" / commit
        if not snapshot.is_dir():
            continue  # laid out on demand
        for record in view.index.files(repo, commit):
            entry = snapshot.joinpath(*safe_relpath(record.path).split("/"))
            blob = folder / "blobs" / record.etag
            store_blob = view.store.blob_file(record.sha256)
            if not entry.is_symlink() or entry.resolve() != blob.resolve():
                problems.append(f"{entry}: does not link to blobs/{record.etag}")
            elif not blob.exists():
                problems.append(f"{blob}: missing")
            elif store_blob is None and blob.stat().st_size != record.size:
                problems.append(f"{blob}: is {blob.stat().st_size} bytes, the store's blob {record.size}")
            elif store_blob is not None and not _same_file(blob, store_blob):
                problems.append(f"{blob}: is not the store's blob {record.sha256}")
    return problems


def _same_file(view_blob: Path, store_blob: Path) -> bool:
    try:
        a, b = view_blob.stat(), store_blob.stat()  # stat follows a symlinked view blob to the store
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def repair_repo(view: HFCacheView, repo: Repo) -> None:
    """Lay the repo out again from scratch (the view is derived: nothing is lost)."""
    _remove_tree(view.root / repo_folder_name(repo.type, repo.name))
    view.update_repo(repo)


def prune_repo(view: HFCacheView, repo: Repo) -> int:
    """Drop snapshots of commits the index no longer has, and blobs no remaining snapshot uses; returns the
    number of snapshots dropped."""
    folder = view.root / repo_folder_name(repo.type, repo.name)
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return 0
    kept = set(view.index.commit_shas(repo))
    dropped = 0
    for entry in list(snapshots.iterdir()):
        if entry.name not in kept and not entry.name.startswith("."):
            _remove_tree(entry)
            dropped += 1
        elif entry.name.startswith(".") and entry.name.endswith((".gone", ".tmp")):
            shutil.rmtree(entry, ignore_errors=True)  # left by a killed build or prune
    used = {record.etag for commit in kept for record in view.index.files(repo, commit)}
    blobs = folder / "blobs"
    for blob in list(blobs.iterdir()) if blobs.is_dir() else []:
        if blob.name not in used:
            blob.unlink(missing_ok=True)
    return dropped


def remove_repo(view: HFCacheView, repo: Repo, aliases: list[str]) -> None:
    """Take a repo (and the links of its old names) out of the view."""
    for alias in aliases:
        link = view.root / repo_folder_name(repo.type, alias)
        if link.is_symlink():
            link.unlink()
    _remove_tree(view.root / repo_folder_name(repo.type, repo.name))


def remove_ref(view: HFCacheView, repo: Repo, ref: str) -> None:
    path = view.root / repo_folder_name(repo.type, repo.name) / "refs" / Path(*safe_relpath(ref).split("/"))
    path.unlink(missing_ok=True)
