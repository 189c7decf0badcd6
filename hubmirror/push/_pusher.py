"""Push a local folder to an upstream repo: exactly what changed, as one commit, and mirror the result.

Scan (skipping temp/partial/lock files and .git), hash with a cache keyed by (path, size, mtime_ns), diff
against the remote branch by content ids, upload LFS objects the server lacks, commit with
``parentCommit`` (a 412 means someone else committed: diff again), then record the new commit in the
local store and index so it resolves offline at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import RepoSpec, parse_card_metadata
from ..errors import ConflictError, HubMirrorError, RepoNotFoundError
from ..hashing import git_blob_sha1, hash_file, lfs_pointer
from ..hub import HubWriter, LocalFile, UpstreamClient
from ..index import Index, PushBook
from ..models import BlobRecord, CommitMeta, RevisionInfo, TreeEntry
from ..patterns import PathFilter
from ..store import Store
from ..sync import Syncer
from ._folderscan import scan_folder
from ._ingest import Ingester

logger = logging.getLogger(__name__)

PROTECTED_REMOTE = {".gitattributes"}  # never deleted, even with delete_remote
CARD_KEYS = ("language", "license", "tags")
MAX_CONFLICT_RETRIES = 3


@dataclass
class PushResult:
    repo: str
    type: str
    revision: str
    status: str = "up to date"  # "up to date" | "pushed"
    commit: str | None = None
    url: str | None = None
    files_uploaded: int = 0
    bytes_uploaded: int = 0
    lfs_uploaded: int = 0
    deleted: list[str] = field(default_factory=list)
    files_hashed: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pushed_files: list[LocalFile] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class _Attempt:
    """What one diff-and-commit knew: the branch head it diffed against (``base``) and its tree, and what it
    committed on top (nothing when the folder was up to date)."""

    base: RevisionInfo
    remote: dict[str, TreeEntry]
    changed: list[LocalFile] = field(default_factory=list)
    lfs: frozenset[str] = frozenset()  # paths of ``changed`` that went by LFS
    deletes: list[str] = field(default_factory=list)

    def tree(self) -> dict[str, TreeEntry]:
        """The tree of the commit made: the base's, minus the deletes, plus the changed files as upstream
        lists them (an LFS file's oid is the git sha1 of its pointer)."""
        tree = dict(self.remote)
        for path in self.deletes:
            tree.pop(path, None)
        for f in self.changed:
            if f.path in self.lfs:
                tree[f.path] = TreeEntry(f.path, f.size, git_blob_sha1(lfs_pointer(f.sha256, f.size)), f.sha256)
            else:
                tree[f.path] = TreeEntry(f.path, f.size, f.git_sha1)
        return tree


def card_warnings(text: str | None) -> list[str]:
    """What the model card lacks, as the Hub's model-card metadata expects it."""
    if text is None:
        return ["no README.md model card: the repo page will be empty; add one with language, license, tags"]
    try:
        meta = parse_card_metadata(text)
    except ValueError as exc:
        return [f"README.md metadata header is invalid ({exc})"]
    if meta is None:
        return [f"README.md has no YAML metadata header (---); add {', '.join(CARD_KEYS)}"]
    missing = [key for key in CARD_KEYS if not meta.get(key)]
    return [f"README.md metadata lacks {', '.join(missing)}"] if missing else []


class Pusher:
    def __init__(
        self,
        store: Store,
        index: Index,
        client: UpstreamClient,
        on_published: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.store, self.index, self.client = store, index, client
        self.book = PushBook(index)
        self.writer = HubWriter(client)
        self.on_published = on_published

    def hash_folder(self, folder: Path, stats: dict[str, os.stat_result], result: PushResult) -> list[LocalFile]:
        root = folder.resolve()
        keys = {rel: str(root / rel) for rel in stats}
        cached = self.book.cached_hashes(keys.values())
        fresh = []
        files = []
        for rel, st in stats.items():
            hit = cached.get(keys[rel])
            if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
                sha256, git_sha1 = hit[2], hit[3]
            else:
                sha256, git_sha1, _ = hash_file(root / rel)
                result.files_hashed += 1
                fresh.append((keys[rel], st.st_size, st.st_mtime_ns, sha256, git_sha1))
            files.append(LocalFile(rel, root / rel, st.st_size, sha256, git_sha1))
        if fresh:
            with self.store.write_lock():
                self.book.save_hashes(fresh)
        return files

    def push(
        self,
        folder: Path,
        repo: str,
        *,
        repo_type: str = "model",
        revision: str = "main",
        message: str = "Upload with hubmirror",
        private: bool = False,
        create: bool = False,
        delete_remote: bool = False,
        add_model_card: bool = False,
    ) -> PushResult:
        """Push what changed in ``folder``; raises our errors (the folder and outbox lose nothing)."""
        with self.store.gc_guard():  # what it copies into the store is not collected before it is recorded
            return self._push(
                folder,
                repo,
                repo_type=repo_type,
                revision=revision,
                message=message,
                private=private,
                create=create,
                delete_remote=delete_remote,
                add_model_card=add_model_card,
            )

    def _push(
        self,
        folder: Path,
        repo: str,
        *,
        repo_type: str,
        revision: str,
        message: str,
        private: bool,
        create: bool,
        delete_remote: bool,
        add_model_card: bool,
    ) -> PushResult:
        folder = Path(folder)
        if not folder.is_dir():
            raise HubMirrorError(f"{folder} is not a folder")
        result = PushResult(repo, repo_type, revision)
        stats, result.skipped = scan_folder(folder)
        for line in result.skipped:
            logger.warning("push %s: %s", folder, line)
        local = self.hash_folder(folder, stats, result)
        with Ingester(self.store, self.index) as ingester, ThreadPoolExecutor(1, "push-meta") as asking:
            for attempt in range(MAX_CONFLICT_RETRIES + 1):
                try:
                    done = self._push_once(
                        folder,
                        local,
                        result,
                        ingester,
                        message=message,
                        private=private,
                        create=create,
                        delete_remote=delete_remote,
                        add_model_card=add_model_card,
                    )
                    break
                except ConflictError:
                    if attempt == MAX_CONFLICT_RETRIES:
                        raise
                    logger.info("push %s → %s: upstream moved; diffing again", folder, repo)
            if result.commit:
                # What upstream says about the new commit (author, date), asked while the copies finish.
                listed = asking.submit(self.client.commit_meta, result.type, done.base.repo_id, result.commit)
                meta = CommitMeta(parent=done.base.sha, title=message)
                self._record(result, done, local, ingester, result.commit, meta, listed)
            elif not self._mirrored(result, done.base.sha):
                # Up to date upstream, but that commit is not in the local mirror (an earlier push whose
                # recording failed or was killed): record it now, taking the bytes from the folder.
                self._record(result, done, local, ingester, done.base.sha, None, None)
        return result

    def _mirrored(self, result: PushResult, commit: str) -> bool:
        repo = self.index.find_repo(result.type, result.repo)
        return repo is not None and self.index.ref(repo, result.revision) == commit

    def _remote(self, result: PushResult, private: bool, create: bool) -> tuple[RevisionInfo, dict[str, TreeEntry]]:
        try:
            info = self.client.revision_info(result.type, result.repo, result.revision)
        except RepoNotFoundError as exc:
            if not create:
                raise RepoNotFoundError(
                    f"{result.type} repo '{result.repo}' does not exist upstream (or the token cannot see it); "
                    "push with --create (watch: create: true) to create it",
                    status=exc.status,
                ) from exc
            self.writer.create_repo(result.type, result.repo, private)
            info = self.client.revision_info(result.type, result.repo, result.revision)
        return info, {e.path: e for e in self.client.list_tree(result.type, result.repo, info.sha)}

    def _push_once(
        self,
        folder: Path,
        local: list[LocalFile],
        result: PushResult,
        ingester: Ingester,
        *,
        message: str,
        private: bool,
        create: bool,
        delete_remote: bool,
        add_model_card: bool,
    ) -> _Attempt:
        """Diff against the branch head and commit the difference; returns what it diffed and committed."""
        base, remote = self._remote(result, private, create)
        by_path = {f.path: f for f in local}
        readme = by_path.get("README.md")
        # No local card but one upstream that this push keeps: the repo page has a card, say nothing.
        keeps_remote_card = readme is None and "README.md" in remote and (add_model_card or not delete_remote)
        result.warnings = (
            card_warnings(readme.source.read_text(errors="replace") if readme else None)
            if result.type == "model" and not keeps_remote_card
            else []
        )
        if add_model_card and readme is None and "README.md" not in remote:
            card = self._minimal_card(result)
            local = [*local, card]
            result.warnings = []
        for warning in result.warnings:
            logger.warning("push %s → %s: %s", folder, result.repo, warning)
        changed = [f for f in local if _differs(f, remote.get(f.path))]
        deletes = (
            sorted(
                p
                for p in remote
                if p not in by_path and p not in PROTECTED_REMOTE and not (add_model_card and p == "README.md")
            )
            if delete_remote
            else []
        )
        if not changed and not deletes:
            result.status, result.commit = "up to date", None
            logger.info("push %s → %s@%s: up to date", folder, result.repo, result.revision)
            return _Attempt(base, remote)
        modes = self.writer.upload_modes(result.type, result.repo, result.revision, changed)
        ingester.start(changed)  # upstream accepts our writes: copy into the store while uploading
        lfs = [f for f in changed if modes.get(f.path) == "lfs"]
        regular = [f for f in changed if modes.get(f.path) != "lfs"]
        result.lfs_uploaded = self.writer.upload_lfs(result.type, result.repo, result.revision, lfs)
        ingester.settle_soon()  # the copies become durable while the commit request runs
        done = self.writer.commit(
            result.type,
            result.repo,
            result.revision,
            summary=message,
            parent=base.sha,
            regular=regular,
            lfs=lfs,
            deletes=deletes,
        )
        result.status, result.commit, result.url = "pushed", done.oid, done.url
        result.files_uploaded, result.bytes_uploaded = len(changed), sum(f.size for f in changed)
        result.deleted = deletes
        result.pushed_files = changed
        logger.info(
            "pushed %s → %s@%s: %d files (%d bytes, %d by LFS), %d deleted, commit %s",
            folder,
            result.repo,
            result.revision,
            len(changed),
            result.bytes_uploaded,
            len(lfs),
            len(deletes),
            done.oid[:12],
        )
        return _Attempt(base, remote, changed, frozenset(f.path for f in lfs), deletes)

    def _minimal_card(self, result: PushResult) -> LocalFile:
        text = (
            f"---\nlicense: other\ntags:\n- hubmirror\n---\n\n# {result.repo}\n\n"
            "Pushed by hubmirror. Describe the model, its training data and intended use here.\n"
        )
        path = self.store.tmp_dir / f"card-{result.repo.replace('/', '--')}.md"
        path.write_text(text)
        sha256, git_sha1, size = hash_file(path)
        return LocalFile("README.md", path, size, sha256, git_sha1)

    def _record(
        self,
        result: PushResult,
        done: _Attempt,
        local: list[LocalFile],
        ingester: Ingester,
        commit: str,
        meta: CommitMeta | None,
        listed: Future[CommitMeta | None] | None,
    ) -> None:
        """Mirror ``commit`` (upstream's branch head now) so it resolves offline at once, published from what
        the push knows (its base's tree and what it committed) the way a sync publishes a commit. The bytes
        come from the folder; only files the folder lacks and the store does not have are downloaded. A
        failure here is a warning: the push itself is done."""
        spec = RepoSpec(result.repo, result.type, (result.revision,))
        tree = done.tree()
        try:
            ingester.start(done.changed)
            if not self.index.commit_complete(
                result.type, done.base.repo_id, done.base.sha, PathFilter(spec.allow_patterns, spec.ignore_patterns).key
            ):
                # The base is not mirrored here: its files that the folder holds too are taken from the folder.
                ingester.start([f for f in local if f.path in tree and not _differs(f, tree[f.path])])
            stored = ingester.stored()
            pushed = {f.sha256: f for f in [*done.changed, *local]}
            with self.store.write_lock():
                # (a regular file is known by its git sha1 through its blob row: rows before publishing)
                self.index.add_blobs(BlobRecord(s, f.size, f.git_sha1) for s, f in pushed.items() if s in stored)
            info = replace(done.base, sha=commit, last_modified=None if meta else done.base.last_modified)
            syncer = Syncer(self.store, self.index, self.client, workers=4, on_published=self.on_published)
            try:
                syncer.publish_tree(spec, result.revision, info, list(tree.values()), meta=meta, kind="branch")
            finally:
                syncer.close()
            if listed is not None and meta is not None:
                # Asked while the commit was being published (a round trip off the critical path).
                self._add_listed_meta(result.type, done.base.repo_id, commit, listed, meta)
        except (HubMirrorError, OSError) as exc:
            result.warnings.append(f"pushed, but not recorded in the local mirror: {exc}")
            logger.warning("push %s: %s", result.repo, result.warnings[-1])

    def _add_listed_meta(
        self, repo_type: str, name: str, commit: str, listed: Future[CommitMeta | None], sent: CommitMeta
    ) -> None:
        """Add upstream's account of the pushed commit (authors, date, its title and message as stored) to
        what was recorded from what the push sent; if upstream cannot say, what was sent stays."""
        try:
            found = listed.result()
        except HubMirrorError as exc:
            logger.info("could not read the pushed commit's details upstream (%s); keeping what was sent", exc)
            return
        repo = self.index.find_repo(repo_type, name)
        if found is None or repo is None:
            return
        try:
            with self.store.write_lock():
                self.index.set_commit_meta(
                    repo, commit, replace(found, parent=sent.parent, title=found.title or sent.title)
                )
        except HubMirrorError as exc:
            # The commit is pushed and mirrored; only upstream's authors and date are missing from it.
            logger.warning("pushed and mirrored %s, but upstream's details of it were not stored: %s", commit[:12], exc)


def _differs(local: LocalFile, remote: TreeEntry | None) -> bool:
    if remote is None:
        return True
    if remote.is_lfs:
        return remote.lfs_sha256 != local.sha256
    return remote.oid != local.git_sha1
