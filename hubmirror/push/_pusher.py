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
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RepoSpec, parse_card_metadata
from ..errors import ConflictError, HubMirrorError, IntegrityError, RepoNotFoundError, UpstreamError
from ..hashing import hash_file
from ..hub import HubWriter, LocalFile, UpstreamClient
from ..index import Index, PushBook
from ..models import BlobRecord, TreeEntry
from ..store import Expected, Store
from ..sync import Syncer
from ._folderscan import scan_folder

logger = logging.getLogger(__name__)

PROTECTED_REMOTE = {".gitattributes"}  # never deleted, even with delete_remote
CARD_KEYS = ("language", "license", "tags")
MAX_CONFLICT_RETRIES = 3
INGEST_WORKERS = 8


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
        head = None
        with _Ingester(self) as ingester:
            for attempt in range(MAX_CONFLICT_RETRIES + 1):
                try:
                    head = self._push_once(
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
                self._record(result, result.pushed_files, ingester)
            elif head and not self._mirrored(result, head):
                # Up to date upstream, but that commit is not in the local mirror (an earlier push whose
                # recording failed or was killed): record it now, taking the bytes from the folder.
                self._record(result, local, ingester)
        return result

    def _mirrored(self, result: PushResult, commit: str) -> bool:
        repo = self.index.find_repo(result.type, result.repo)
        return repo is not None and self.index.ref(repo, result.revision) == commit

    def _remote(self, result: PushResult, private: bool, create: bool) -> tuple[str | None, dict[str, TreeEntry]]:
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
        return info.sha, {e.path: e for e in self.client.list_tree(result.type, result.repo, info.sha)}

    def _push_once(
        self,
        folder: Path,
        local: list[LocalFile],
        result: PushResult,
        ingester: _Ingester,
        *,
        message: str,
        private: bool,
        create: bool,
        delete_remote: bool,
        add_model_card: bool,
    ) -> str | None:
        """Diff against the branch head and commit the difference; returns the head diffed against."""
        parent, remote = self._remote(result, private, create)
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
            return parent
        modes = self.writer.upload_modes(result.type, result.repo, result.revision, changed)
        ingester.start(changed)  # upstream accepts our writes: copy into the store while uploading
        lfs = [f for f in changed if modes.get(f.path) == "lfs"]
        regular = [f for f in changed if modes.get(f.path) != "lfs"]
        result.lfs_uploaded = self.writer.upload_lfs(result.type, result.repo, result.revision, lfs)
        done = self.writer.commit(
            result.type,
            result.repo,
            result.revision,
            summary=message,
            parent=parent,
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
        return parent

    def _minimal_card(self, result: PushResult) -> LocalFile:
        text = (
            f"---\nlicense: other\ntags:\n- hubmirror\n---\n\n# {result.repo}\n\n"
            "Pushed by hubmirror. Describe the model, its training data and intended use here.\n"
        )
        path = self.store.tmp_dir / f"card-{result.repo.replace('/', '--')}.md"
        path.write_text(text)
        sha256, git_sha1, size = hash_file(path)
        return LocalFile("README.md", path, size, sha256, git_sha1)

    def _ingest(self, f: LocalFile) -> bool:
        """Copy one pushed file into the store; False if it changed since it was hashed (the sync below
        then fetches what was committed from upstream)."""
        try:
            self.store.ingest_file(f.source, Expected(f.size, f.sha256, f.git_sha1))
            return True
        except IntegrityError as exc:
            logger.info(
                "%s changed after it was pushed (%s); the mirror takes the pushed bytes from upstream", f.path, exc
            )
            return False

    def _record(self, result: PushResult, files: list[LocalFile], ingester: _Ingester) -> None:
        """Put the pushed bytes (``files``) in the store and mirror the branch head, so it resolves offline
        at once. A failure here is a warning: the push itself is done."""
        try:
            ingester.start(files)
            changed = ingester.changed()
            blobs = [BlobRecord(f.sha256, f.size, f.git_sha1) for f in files if f.sha256 not in changed]
            with self.store.write_lock():
                self.index.add_blobs(blobs)
            syncer = Syncer(self.store, self.index, self.client, workers=4, on_published=self.on_published)
            try:
                report = syncer.sync([RepoSpec(result.repo, result.type, (result.revision,))])
            finally:
                syncer.close()
            if not report.ok:
                raise UpstreamError(report.results[0].error or "mirroring the pushed commit failed")
        except (HubMirrorError, OSError) as exc:
            result.warnings.append(f"pushed, but not recorded in the local mirror: {exc}")
            logger.warning("push %s: %s", result.repo, result.warnings[-1])


class _Ingester:
    """Copies files into the store on a few threads (the copies are fsync-bound), from the moment a push
    knows what it sends, so the copying overlaps the upload. A blob stored for a push that then fails is
    harmless: content-addressed and verified, it is reused by the next attempt."""

    def __init__(self, pusher: Pusher) -> None:
        self.pusher = pusher
        self.pool = ThreadPoolExecutor(max_workers=INGEST_WORKERS, thread_name_prefix="push-ingest")
        self.jobs: dict[str, Future[bool]] = {}

    def start(self, files: list[LocalFile]) -> None:
        for f in files:
            if f.sha256 not in self.jobs and not self.pusher.store.has_blob(f.sha256):
                self.jobs[f.sha256] = self.pool.submit(self.pusher._ingest, f)

    def changed(self) -> set[str]:
        """Wait for every copy; the sha256s whose file changed since it was hashed (not stored)."""
        return {sha256 for sha256, job in self.jobs.items() if not job.result()}

    def __enter__(self) -> _Ingester:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _differs(local: LocalFile, remote: TreeEntry | None) -> bool:
    if remote is None:
        return True
    if remote.is_lfs:
        return remote.lfs_sha256 != local.sha256
    return remote.oid != local.git_sha1
