"""The read model serve answers from: repos, revisions and file lists out of the index, cached.

File lists are immutable per commit, so they are cached for good; revision → commit answers are cached
until the index changes (SQLite's ``data_version``), so a sync or push in another process shows at once.
Each thread gets its own SQLite connection.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import parse_card_metadata
from ..errors import RepoNotMirroredError
from ..index import Index, open_index
from ..models import FileRecord, Repo
from ..resolve import Resolver
from ..store import Store

FILE_CACHE_COMMITS = 256
BODY_CACHE_BYTES = 64 * 1024 * 1024  # total size of cached response bodies


@dataclass(frozen=True)
class Snapshot:
    repo: Repo
    commit: str
    files: dict[str, FileRecord]


class Catalog:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.store = Store(self.home, create=False)
        self.read_only = self.store.read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        self._files: OrderedDict[tuple[int, str], dict[str, FileRecord]] = OrderedDict()
        self._cards: dict[str, dict[str, Any] | None] = {}
        self._bodies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._body_bytes = 0

    # -- per-thread index ------------------------------------------------------------------------
    def index(self) -> Index:
        index = getattr(self._local, "index", None)
        if index is None:
            index = self._local.index = open_index(self.store.index_path, read_only=self.read_only)
            self._local.version = -1
            self._local.repos, self._local.revisions = {}, {}
        return index

    def _caches(self) -> tuple[dict[tuple[str, str], Repo], dict[tuple[int, str], str]]:
        """This thread's repo and revision → commit caches, emptied whenever the index changed (one query).

        Only hits are cached, so requests for made-up names cannot grow them."""
        index = self.index()
        version = index.data_version()
        if version != self._local.version:
            self._local.version, self._local.repos, self._local.revisions = version, {}, {}
        return self._local.repos, self._local.revisions

    # -- lookups ---------------------------------------------------------------------------------
    def repo(self, repo_type: str, name: str, *, authorized: bool) -> Repo:
        """The repo, or RepoNotMirroredError; a private repo is invisible without the token."""
        return self._repo(self._caches()[0], repo_type, name, authorized)

    def _repo(self, repos: dict[tuple[str, str], Repo], repo_type: str, name: str, authorized: bool) -> Repo:
        repo = repos.get((repo_type, name))
        if repo is None:
            repo = self.index().find_repo(repo_type, name)
            if repo is not None:
                repos[(repo_type, name)] = repo
        if repo is None or (repo.private and not authorized):
            raise RepoNotMirroredError(f"{repo_type} repo '{name}' is not on this mirror")
        return repo

    def commit(self, repo: Repo, revision: str) -> str:
        return self._commit(self._caches()[1], repo, revision)

    def _commit(self, revisions: dict[tuple[int, str], str], repo: Repo, revision: str) -> str:
        key = (repo.id, revision)
        commit = revisions.get(key)
        if commit is None:
            commit = revisions[key] = Resolver(self.home, self.index()).commit(repo, revision)
        return commit

    def snapshot(self, repo_type: str, name: str, revision: str, *, authorized: bool) -> Snapshot:
        repos, revisions = self._caches()
        repo = self._repo(repos, repo_type, name, authorized)
        commit = self._commit(revisions, repo, revision)
        return Snapshot(repo, commit, self.files(repo, commit))

    def files(self, repo: Repo, commit: str) -> dict[str, FileRecord]:
        key = (repo.id, commit)
        with self._lock:
            files = self._files.get(key)
            if files is not None:
                self._files.move_to_end(key)
                return files
        files = {f.path: f for f in self.index().files(repo, commit)}
        with self._lock:
            self._files[key] = files
            while len(self._files) > FILE_CACHE_COMMITS:
                self._files.popitem(last=False)
        return files

    def body(self, key: tuple[Any, ...], make: Callable[[], bytes]) -> bytes:
        """A response body that is fixed for ``key`` (which must include the commit), made once and kept."""
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
                return body
        body = make()
        if len(body) > BODY_CACHE_BYTES // 8:  # a huge repo's answer is rebuilt, not crowding out the rest
            return body
        with self._lock:
            if key not in self._bodies:
                self._bodies[key] = body
                self._body_bytes += len(body)
            while self._body_bytes > BODY_CACHE_BYTES:
                self._body_bytes -= len(self._bodies.popitem(last=False)[1])
        return body

    def card(self, snapshot: Snapshot) -> dict[str, Any] | None:
        """The README's YAML header (cardData), cached by the README's content hash."""
        readme = snapshot.files.get("README.md")
        if readme is None or readme.size > 1024 * 1024:
            return None
        if readme.sha256 not in self._cards:
            try:
                text = self.store.blob_path(readme.sha256).read_text(encoding="utf-8", errors="replace")
                self._cards[readme.sha256] = parse_card_metadata(text)
            except (OSError, ValueError):
                self._cards[readme.sha256] = None
        return self._cards[readme.sha256]

    def visible_repos(self, repo_type: str, *, authorized: bool) -> list[Repo]:
        return [r for r in self.index().list_repos(repo_type) if authorized or not r.private]

    def blob_path(self, record: FileRecord) -> Path:
        return self.store.blob_path(record.sha256)
