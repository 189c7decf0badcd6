"""Offline resolution: repo name (or alias) + revision → a local snapshot directory or file. No network.

Answers from the index alone; the paths it returns are in the HF-cache view (``home/hf/hub``), which
``from_pretrained(path)`` loads directly. Misses raise :class:`NotMirroredError` with what *is* mirrored.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
from pathlib import Path

from ..config import find_home
from ..errors import (
    FileNotMirroredError,
    RepoNotMirroredError,
    RevisionNotMirroredError,
    StoreError,
    UnsafePathError,
)
from ..home import open_store_index
from ..index import Index
from ..models import Backends, Repo, ref_spelling
from ..paths import is_sha1, safe_relpath
from ..store import Store
from ..view import HFCacheView, repo_folder_name, view_root

_HEX_PREFIX = re.compile(r"[0-9a-f]{7,40}")


class AmbiguousRevisionError(RevisionNotMirroredError):
    pass


class Resolver:
    """Resolves against one store; keeps its index connection open between calls (cheap lookups)."""

    def __init__(
        self, home: Path, index: Index | None = None, store: Store | None = None, backends: Backends | None = None
    ) -> None:
        self.home = Path(home)
        if index is None or store is None:
            store, index = open_store_index(self.home, write=False, backends=backends)
        self.store, self.index = store, index
        self.view_root = view_root(self.home)

    def close(self) -> None:
        self.index.close()

    def repo(self, name: str, repo_type: str = "model") -> Repo:
        repo = self.index.find_repo(repo_type, name)
        if repo is None:
            mirrored = [r.name for r in self.index.list_repos(repo_type)]
            listing = ", ".join(mirrored[:20]) + (", ..." if len(mirrored) > 20 else "") or "none"
            raise RepoNotMirroredError(
                f"{repo_type} repo '{name}' is not mirrored (mirrored: {listing}; add it "
                "to repos: and run hubmirror sync)"
            )
        return repo

    def commit(self, repo: Repo, revision: str) -> str:
        """A branch, tag or PR ref (also spelled refs/heads/… or refs/tags/…), a full sha, or a unique sha
        prefix of ≥ 7 hex → a mirrored commit."""
        commit = self.index.ref(repo, revision) or self.index.ref(repo, ref_spelling(revision)[0])
        if commit is not None:  # refs/heads/dev and refs/tags/v1 name the refs kept as dev and v1
            return commit
        commits = self.index.commit_shas(repo)
        if is_sha1(revision) and revision in commits:
            return revision
        if _HEX_PREFIX.fullmatch(revision):
            matches = [sha for sha in commits if sha.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise AmbiguousRevisionError(
                    f"revision '{revision}' of '{repo.name}' is ambiguous: it starts "
                    f"{', '.join(m[:12] for m in matches)}; give more characters"
                )
        have = ", ".join(r.name for r in self.index.refs(repo)) or "no named revisions"
        raise RevisionNotMirroredError(
            f"revision '{revision}' of '{repo.name}' is not mirrored (have: {have}; {len(commits)} commit(s))"
        )

    def snapshot_path(self, name: str, revision: str = "main", repo_type: str = "model") -> Path:
        repo = self.repo(name, repo_type)
        commit = self.commit(repo, revision)
        path = self.view_root / repo_folder_name(repo.type, repo.name) / "snapshots" / commit
        if not path.is_dir():
            self._build(repo, commit)
        return path

    def file_path(self, name: str, filename: str, revision: str = "main", repo_type: str = "model") -> Path:
        try:
            relative = safe_relpath(filename)
        except UnsafePathError as exc:
            raise FileNotMirroredError(f"'{filename}' is not a valid file name: {exc}") from exc
        snapshot = self.snapshot_path(name, revision, repo_type)
        path = snapshot.joinpath(*relative.split("/"))
        if not os.path.isfile(path):
            raise FileNotMirroredError(
                f"file '{filename}' is not mirrored in '{name}' at {revision} (not in the repo, or left out "
                "by allow/ignore patterns)"
            )
        return path

    def _build(self, repo: Repo, commit: str) -> None:
        """The view is derived: lay out a missing snapshot from the store. From blobs on disk the whole repo
        (links cost nothing); from object storage only this commit, whose files are copied down verified."""
        try:
            view = HFCacheView(self.view_root, self.store, self.index)
            if self.store.blobs_local:
                view.update_repo(repo)
            else:
                view.add_snapshot(repo, commit, self.index.files(repo, commit))
                view.sync_refs(repo)
        except FileNotFoundError as exc:
            raise StoreError(
                f"{repo.type} {repo.name} cannot be laid out in the HF-cache view: {exc.filename} is missing from "
                "the store; run 'hubmirror verify --repair'"
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"{repo.type} {repo.name} cannot be laid out in the HF-cache view at {self.view_root} "
                f"({exc.strerror or exc}); lay one out elsewhere with 'hubmirror hf-cache --dir DIR'"
            ) from exc


_resolvers: dict[Path, Resolver] = {}
_resolvers_lock = threading.Lock()


def _resolver(home: str | Path | None) -> Resolver:
    """One open resolver per home for the process (lookups then cost microseconds); closed at exit."""
    root = find_home(home, read_config=False)
    with _resolvers_lock:
        if not _resolvers:
            atexit.register(close_resolvers)
        resolver = _resolvers.get(root)
        if resolver is None:
            resolver = _resolvers[root] = Resolver(root)
        return resolver


def close_resolvers() -> None:
    """Close the index connections the module-level functions keep open."""
    with _resolvers_lock:
        for resolver in _resolvers.values():
            resolver.close()
        _resolvers.clear()


def snapshot_path(
    repo_id: str, revision: str = "main", repo_type: str = "model", home: str | Path | None = None
) -> Path:
    """The local directory of a mirrored revision, for ``from_pretrained(path)``. No network.

    Raises :class:`NotMirroredError` if the repo or revision is not in the mirror."""
    return _resolver(home).snapshot_path(repo_id, revision, repo_type)


def file_path(
    repo_id: str, filename: str, revision: str = "main", repo_type: str = "model", home: str | Path | None = None
) -> Path:
    """The local path of one file of a mirrored revision. No network."""
    return _resolver(home).file_path(repo_id, filename, revision, repo_type)
