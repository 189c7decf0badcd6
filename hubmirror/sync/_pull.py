"""Pull-through's two fetches, for serve: a revision's metadata, and one file of a commit.

A pulled commit is recorded like a synced one (same verified writer, same index, ``source = 'pull'``) with
upstream's whole file listing beside it; its ``files`` rows grow as files are asked for. Nothing here knows
about HTTP callers, rules or single-flight: serve's pull-through does (``serve/pull.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RepoNotFoundError
from ..hub import UpstreamClient
from ..index import Index
from ..models import Access, BlobRecord, ByteSink, FileRecord, RevisionInfo, TreeEntry, ref_spelling
from ..paths import check_tree, is_sha1
from ..store import BlobWriter, Store
from ._details import Details
from ._syncer import Syncer, _Task

logger = logging.getLogger(__name__)

PULL_FILTER = "pull"  # the filter key of pulled commits: complete for what was asked, never for a sync's patterns


@dataclass(frozen=True)
class PulledRevision:
    repo: str  # the canonical name upstream gave
    commit: str
    access: Access


class Puller:
    """Fetches for pull-through. Thread-safe: serve calls it from several threads at once (each download
    holds the store's per-blob lock, so two processes never fetch the same blob twice either)."""

    def __init__(
        self,
        store: Store,
        index: Index,
        client: UpstreamClient,
        on_published: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.store, self.index, self.client = store, index, client
        self.on_published = on_published
        # The syncer's verified, resumable, locked download of one blob; its pool is never used.
        self._syncer = Syncer(store, index, client, workers=1, on_published=on_published)

    def close(self) -> None:
        self._syncer.close()

    def revision(self, repo_type: str, name: str, revision: str) -> RevisionInfo:
        """Upstream's answer for a revision (one request); raises our upstream errors."""
        return self.client.revision_info(repo_type, name, revision)

    def record_revision(self, repo_type: str, name: str, revision: str, info: RevisionInfo) -> PulledRevision:
        """Record what ``info`` says: the commit with upstream's listing (listed once per commit), the repo's
        flags, and the ref. ``name`` is the name asked for; ``info.repo_id`` the canonical one."""
        index = self._index()
        canonical, commit = info.repo_id, info.sha
        repo = index.find_repo(repo_type, canonical)
        details = Details(self.client, index)
        if repo is None or index.listing(repo, commit) is None:
            listed = self.client.list_tree(repo_type, canonical, commit)
            check_tree(e.path for e in listed)  # a hostile listing is refused before anything is written
            meta = details.new_commit_meta(repo_type, canonical, revision, commit, info)
            with self.store.write_lock():
                index.publish_commit(
                    repo_type,
                    canonical,
                    commit,
                    [],
                    [],
                    source="pull",
                    filter_key=PULL_FILTER,
                    access=info.access,
                    meta=meta,
                    repo_created_at=info.created_at,
                    listing=listed,
                )
            logger.info(
                "pulled %s %s@%s → %s: %d files listed", repo_type, canonical, revision, commit[:12], len(listed)
            )
        ref, kind = ref_spelling(revision) if not (is_sha1(revision) and revision == commit) else (None, None)
        if ref is not None and kind is None:
            kind = details.ref_kind(repo_type, canonical, ref, commit)
        with self.store.write_lock():
            index.set_access(repo_type, canonical, info.access)
            if canonical != name:
                index.add_alias(repo_type, name, canonical)
            if ref is not None:
                index.set_ref(repo_type, canonical, ref, commit, kind=kind)
        if self.on_published is not None:  # the HF-cache view follows the ref, as after a sync
            self.on_published(repo_type, canonical, commit)
        return PulledRevision(canonical, commit, info.access)

    def hide(self, repo_type: str, name: str) -> None:
        """Upstream no longer shows a pulled repo (deleted, or private to our token): fail closed, as sync does."""
        index = self._index()
        repo = index.find_repo(repo_type, name)
        if repo is not None and not repo.private:
            with self.store.write_lock():
                index.set_access(repo_type, repo.name, Access(True, repo.gated))
            logger.warning(
                "%s %s: upstream no longer shows it; serve now shows it only to private readers", repo_type, name
            )

    def file(
        self,
        repo_type: str,
        name: str,
        commit: str,
        entry: TreeEntry,
        wrap: Callable[[BlobWriter], ByteSink] | None = None,
    ) -> FileRecord:
        """Fetch one file of a pulled commit (verified; deduplicated against the store) and record it in the
        commit. ``wrap``: see :meth:`Syncer._fetch`. The caller updates views (one file, not the commit)."""
        try:
            info = self._syncer._fetch(repo_type, name, commit, _Task(entry, entry.lfs_sha256), wrap)
        except RepoNotFoundError:
            self.hide(repo_type, name)
            raise
        record = FileRecord(entry.path, entry.size, info.sha256, entry.oid, entry.is_lfs)
        blob = BlobRecord(info.sha256, entry.size, None if entry.is_lfs else entry.oid)
        with self.store.write_lock():
            self._index().publish_commit(
                repo_type, name, commit, [record], [blob], source="pull", filter_key=PULL_FILTER
            )
        logger.info(
            "pulled %s %s@%s: %s (%d bytes%s)",
            repo_type,
            name,
            commit[:12],
            entry.path,
            entry.size,
            "" if info.fetched else ", already stored",
        )
        return record

    def _index(self) -> Index:
        return self._syncer._worker_index()
