"""The read model serve answers from: repos, revisions and file lists out of the index, cached.

File lists are immutable per commit, so they are cached for good; revision → commit answers are cached
until the index changes (:meth:`Index.data_version`), so a sync or push in another process (on any machine,
with the index in PostgreSQL) shows at once. Each thread gets its own index connection.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cards import card_from_json, card_json
from ..errors import HubMirrorError, RepoNotMirroredError
from ..home import index_location
from ..index import Index, open_index
from ..models import Backends, CommitMeta, FileRecord, Repo, TreeEntry
from ..resolve import Resolver
from ..store import Store
from ..weights import safetensors_info
from .auth import Caller

FILE_CACHE_COMMITS = 256
BODY_CACHE_BYTES = 64 * 1024 * 1024  # total size of cached response bodies


@dataclass(frozen=True)
class Snapshot:
    repo: Repo
    commit: str
    files: dict[str, FileRecord]
    # Pull-through: the files upstream lists that are not stored yet (their records in ``files`` carry what
    # the listing says; the sha256 of a regular file is not known until it is fetched).
    missing: Mapping[str, TreeEntry] = field(default_factory=dict)


class Catalog:
    def __init__(self, home: Path, backends: Backends | None = None) -> None:
        backends = backends or Backends()
        self.home = Path(home)
        self.store = Store(self.home, create=False, store_url=backends.store_url, endpoint_url=backends.endpoint_url)
        self.read_only = self.store.read_only
        self.index_at = index_location(self.store, backends.index_url)
        # How resolve GETs of blobs in object storage are answered (serve.redirect): see serve/objects.py.
        self.redirect = "stream"
        self.presigned_expiry = 300.0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._files: OrderedDict[tuple[int, str], tuple[dict[str, FileRecord], dict[str, TreeEntry]]] = OrderedDict()
        self._cards: dict[tuple[int, str], dict[str, Any] | None] = {}
        self._weights: dict[tuple[int, str], dict[str, Any] | None] = {}
        self._bodies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._body_bytes = 0

    # -- per-thread index ------------------------------------------------------------------------
    def index(self) -> Index:
        index = getattr(self._local, "index", None)
        if index is None:
            index = self._local.index = open_index(self.index_at, read_only=self.read_only)
            if self.store.lease is None:  # writes through serve take the writer lease too
                self.store.use_lease(index.writer_lease(), index.gc_lease)
            self._local.version = -1
            self._local.repos, self._local.revisions, self._local.metas = {}, {}, {}
        return index

    def _caches(self) -> tuple[dict[tuple[str, str], Repo], dict[tuple[int, str], str]]:
        """This thread's repo and revision → commit caches, emptied whenever the index changed (one query).

        Only hits are cached, so requests for made-up names cannot grow them."""
        index = self.index()
        version = index.data_version()
        if version != self._local.version:
            self._local.version, self._local.repos, self._local.revisions = version, {}, {}
            self._local.metas = {}
        return self._local.repos, self._local.revisions

    # -- lookups ---------------------------------------------------------------------------------
    def repo(self, repo_type: str, name: str, caller: Caller) -> Repo:
        """The repo, or RepoNotMirroredError; a private repo is invisible to a caller who may not read it."""
        return self._repo(self._caches()[0], repo_type, name, caller)

    def _repo(self, repos: dict[tuple[str, str], Repo], repo_type: str, name: str, caller: Caller) -> Repo:
        repo = repos.get((repo_type, name))
        if repo is None:
            repo = self.index().find_repo(repo_type, name)
            if repo is not None:
                repos[(repo_type, name)] = repo
        if repo is None or not caller.may_read(repo):
            raise RepoNotMirroredError(f"{repo_type} repo '{name}' is not on this mirror")
        return repo

    def commit(self, repo: Repo, revision: str) -> str:
        return self._commit(self._caches()[1], repo, revision)

    def _commit(self, revisions: dict[tuple[int, str], str], repo: Repo, revision: str) -> str:
        key = (repo.id, revision)
        commit = revisions.get(key)
        if commit is None:
            commit = revisions[key] = Resolver(self.home, self.index(), self.store).commit(repo, revision)
        return commit

    def snapshot(self, repo_type: str, name: str, revision: str, caller: Caller) -> Snapshot:
        repos, revisions = self._caches()
        repo = self._repo(repos, repo_type, name, caller)
        return self.at(repo, self._commit(revisions, repo, revision))

    def at(self, repo: Repo, commit: str) -> Snapshot:
        """A commit's snapshot (also as it is now, after a pull-through fetch stored another file)."""
        files, missing = self._entries(repo, commit)
        return Snapshot(repo, commit, files, missing)

    def files(self, repo: Repo, commit: str) -> dict[str, FileRecord]:
        return self._entries(repo, commit)[0]

    def _entries(self, repo: Repo, commit: str) -> tuple[dict[str, FileRecord], dict[str, TreeEntry]]:
        key = (repo.id, commit)
        with self._lock:
            entries = self._files.get(key)
            if entries is not None:
                self._files.move_to_end(key)
                return entries
        index = self.index()
        files = {f.path: f for f in index.files(repo, commit)}
        missing: dict[str, TreeEntry] = {}
        for entry in index.listing(repo, commit) or ():  # a pulled commit: upstream's listing is the truth
            if entry.path not in files:
                missing[entry.path] = entry
                files[entry.path] = FileRecord(entry.path, entry.size, entry.lfs_sha256 or "", entry.oid, entry.is_lfs)
        if missing:
            files = dict(sorted(files.items()))
        with self._lock:
            self._files[key] = (files, missing)
            while len(self._files) > FILE_CACHE_COMMITS:
                self._files.popitem(last=False)
        return files, missing

    def stored(self, repo: Repo, commit: str, record: FileRecord) -> None:
        """Pull-through stored one more file of a commit: its cached snapshot follows (copied, not changed
        in place: requests under way keep the snapshot they have)."""
        key = (repo.id, commit)
        with self._lock:
            entries = self._files.get(key)
            if entries is not None and record.path in entries[1]:
                files = {**entries[0], record.path: record}
                missing = {path: entry for path, entry in entries[1].items() if path != record.path}
                self._files[key] = (files, missing)
            if record.path == "README.md" or record.path.endswith(".safetensors"):  # the card or weights info
                self._cards.pop(key, None)
                self._weights.pop(key, None)
                for body in [k for k in self._bodies if repo in k and commit in k]:
                    self._body_bytes -= len(self._bodies.pop(body))

    def cached_body(self, key: tuple[Any, ...]) -> bytes | None:
        """The body kept for ``key``, if one is."""
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def body(self, key: tuple[Any, ...], make: Callable[[], bytes]) -> bytes:
        """A response body that is fixed for ``key`` (which must include the commit), made once and kept."""
        body = self.cached_body(key)
        if body is not None:
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
        """The commit's model-card metadata, parsed when the commit was published. A commit published
        before cards were kept is parsed once here (bounded) and remembered in the index when it can be."""
        key = (snapshot.repo.id, snapshot.commit)
        if "README.md" in snapshot.missing:
            return None  # not pulled yet: no card until it is
        if key not in self._cards:
            text = self.index().card(snapshot.repo, snapshot.commit)
            if text is None:
                text = card_json(snapshot.files.values(), self.store.open_blob)
                if not self.read_only:
                    try:
                        with self.store.write_lock(timeout=5):
                            self.index().set_card(snapshot.repo, snapshot.commit, text)
                    except HubMirrorError:
                        pass  # remembered next time; the answer is the same
            if len(self._cards) > 10_000:
                self._cards.clear()
            self._cards[key] = card_from_json(text)
        return self._cards[key]

    def commit_meta(self, repo: Repo, sha: str) -> CommitMeta:
        """What the commit says about itself (title, authors, date), cached until the index changes."""
        self._caches()
        metas: dict[tuple[int, str], CommitMeta] = self._local.metas
        key = (repo.id, sha)
        meta = metas.get(key)
        if meta is None:
            meta = self.index().commit_meta(repo, sha, shown=True) or CommitMeta()
            if len(metas) > 10_000:
                metas.clear()
            metas[key] = meta
        return meta

    def safetensors(self, snapshot: Snapshot) -> dict[str, Any] | None:
        """The commit's safetensors parameter counts (``{"parameters": {dtype: n}, "total": n}``), or None
        without (readable) safetensors weights. Read from the weights' headers once per commit, kept in memory."""
        key = (snapshot.repo.id, snapshot.commit)
        if any(path.endswith(".safetensors") for path in snapshot.missing):
            return None  # counted once every shard is stored
        with self._lock:
            if key in self._weights:
                return self._weights[key]
        info = safetensors_info(snapshot.files.values(), self.store.open_blob)
        with self._lock:
            if len(self._weights) > 10_000:
                self._weights.clear()
            self._weights[key] = info
        return info

    def visible_repos(self, repo_type: str, caller: Caller) -> list[Repo]:
        return [r for r in self.index().list_repos(repo_type) if caller.may_read(r)]
