"""Mirror sync: bring the listed repo revisions from upstream into the store and index.

Per repo-revision (DESIGN.md "Sync algorithm"): one request for the commit sha; if that commit is already
complete, move the ref and stop. Else list the tree, dedupe against the store, download what is missing in
parallel (verified, resumable), publish the commit in one transaction, and move the ref last.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

from ..cards import card_json
from ..config import LockedRevision, RepoSpec
from ..errors import (
    AccessDeniedError,
    ConfigError,
    HubMirrorError,
    IntegrityError,
    Interrupted,
    RefDivergedError,
    RepoNotFoundError,
    StoreError,
    UpstreamUnreachableError,
)
from ..failpoints import failpoint
from ..home import stored_blobs
from ..hub import UpstreamClient
from ..index import Index
from ..models import Access, BlobRecord, ByteSink, CommitMeta, FileRecord, RevisionInfo, TreeEntry, ref_spelling
from ..paths import check_tree, is_sha1
from ..patterns import PathFilter
from ..store import BlobInfo, BlobWriter, Expected, Store
from ._details import Details
from ._recorder import BlobRecorder
from ._report import NullObserver, RevisionResult, SyncObserver, SyncReport

logger = logging.getLogger(__name__)

OFFLINE_HINT = (
    "; on a machine without a network, bring repos in with 'hubmirror import' (a bundle exported on "
    "a connected machine) or 'hubmirror import-hf-cache'"
)


_Job = tuple[RepoSpec, str, "LockedRevision | None"]


@dataclass(frozen=True)
class _Task:
    """One blob to download (several paths may share it)."""

    entry: TreeEntry
    expected_sha256: str | None

    @property
    def key(self) -> str:
        return self.entry.lfs_sha256 or self.entry.oid


class Syncer:
    def __init__(
        self,
        store: Store,
        index: Index,
        client: UpstreamClient,
        *,
        workers: int = 16,
        observer: SyncObserver | None = None,
        on_published: Callable[[str, str, str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.store, self.index, self.client = store, index, client
        self.stop = stop or threading.Event()  # set it to stop between chunks; partials are kept
        self.workers = workers
        self.observer: SyncObserver = observer or NullObserver()
        self.on_published = on_published
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hubmirror-dl")
        self._local = threading.local()
        self._indexes: list[Index] = []
        self._indexes_lock = threading.Lock()
        self._recorder = BlobRecorder(self._worker_index)
        self._seen: dict[tuple[str, str], RevisionInfo] = {}  # (type, listed name) → this run's answer
        self._details = Details(client, index)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for index in self._indexes:
            index.close()

    # -- entry points ----------------------------------------------------------------------------
    def sync(self, specs: Sequence[RepoSpec], *, dry_run: bool = False) -> SyncReport:
        jobs: list[_Job] = [(spec, rev, None) for spec in specs for rev in spec.revisions]
        return self._run(jobs, dry_run)

    def sync_locked(
        self, specs: Sequence[RepoSpec], locked: Sequence[LockedRevision], *, dry_run: bool = False
    ) -> SyncReport:
        """Fetch exactly what the lock names, for the listed specs (a spec missing from the lock fails)."""
        by_key = {(r.type, r.repo, r.revision): r for r in locked}
        jobs = [(spec, rev, by_key.get((spec.type, spec.repo, rev))) for spec in specs for rev in spec.revisions]
        return self._run(jobs, dry_run, locked=True)

    def _run(self, jobs: list[_Job], dry_run: bool, locked: bool = False) -> SyncReport:
        # gc waits while a run downloads blobs that no published commit names yet (a dry run writes nothing)
        with nullcontext() if dry_run else self.store.gc_guard():
            return self._run_guarded(jobs, dry_run, locked)

    def _run_guarded(self, jobs: list[_Job], dry_run: bool, locked: bool) -> SyncReport:
        started = time.monotonic()
        requests_before = self.client.requests
        report = SyncReport(dry_run=dry_run)
        if not dry_run:
            self.store.sweep_tmp()
            report.run_id = self.index.start_sync_run()
        report.planned = len(jobs)
        self._seen = {}
        self._details.new_run()
        unreachable: UpstreamUnreachableError | None = None
        for spec, revision, pin in jobs:
            if self.stop.is_set():
                logger.warning("sync stopped before %s %s@%s", spec.type, spec.repo, revision)
                break
            result = RevisionResult(repo=spec.repo, type=spec.type, revision=revision)
            try:
                if locked and pin is None:
                    raise _lock_missing(spec, revision)
                if unreachable is not None:
                    # Upstream did not answer at all: the next repo would wait just as long for the same.
                    raise UpstreamUnreachableError(
                        f"not tried: upstream {self.client.endpoint} could not be reached earlier in this run",
                        url=unreachable.url,
                    )
                self._sync_revision(spec, revision, pin, result, dry_run)
            except UpstreamUnreachableError as exc:
                if unreachable is None:
                    unreachable = exc = UpstreamUnreachableError(f"{exc}{OFFLINE_HINT}", url=exc.url)
                self._failed(result, exc)
            except HubMirrorError as exc:
                self._failed(result, exc)
            report.results.append(result)
            self.observer.finished(result)
        report.requests = self.client.requests - requests_before
        report.duration = time.monotonic() - started
        if report.run_id is not None:
            try:
                self._record_run(report)
            except StoreError as exc:  # the report still reaches the user; only the history lacks this run
                logger.warning("sync run not recorded in the history: %s", exc)
        return report

    @staticmethod
    def _failed(result: RevisionResult, exc: HubMirrorError) -> None:
        # The caller reports failures once (the CLI's FAILED lines, a service's log summary).
        result.status, result.error = "failed", str(exc)
        result.error_type, result.exit_code = type(exc).__name__, exc.exit_code
        logger.debug("%s failed: %s", result.label, exc)

    def _record_run(self, report: SyncReport) -> None:
        failed = [r for r in report.results if not r.ok]
        outcome = "ok" if not failed else ("failed" if len(failed) == len(report.results) else "partial")
        # Interrupted only if work was cut short, not if SIGTERM came as a complete run was ending.
        if len(report.results) < report.planned or any(r.error_type == "Interrupted" for r in failed):
            outcome = "interrupted"
        assert report.run_id is not None
        self.index.finish_sync_run(
            report.run_id,
            outcome=outcome,
            repos_ok=len(report.results) - len(failed),
            repos_failed=len(failed),
            requests=report.requests,
            duration=report.duration,
            errors=[
                {"repo": r.repo, "type": r.type, "revision": r.revision, "error": r.error, "error_type": r.error_type}
                for r in failed
            ],
            **{k: v for k, v in report.totals().items() if k != "bytes_to_fetch"},
        )

    # -- one repo-revision -----------------------------------------------------------------------
    def _sync_revision(
        self, spec: RepoSpec, revision: str, pin: LockedRevision | None, result: RevisionResult, dry_run: bool
    ) -> None:
        path_filter = PathFilter(spec.allow_patterns, spec.ignore_patterns)
        filter_key = f"lock:{pin.commit}" if pin else path_filter.key
        pinned = pin.commit if pin is not None else (revision if is_sha1(revision) else None)
        seen = self._seen.get((spec.type, spec.repo))
        asked: RevisionInfo | None = None  # upstream's answer about this very revision, when asked
        if pinned is not None and seen is not None:
            # A commit sha is immutable and this run already asked upstream about the repo (its name
            # and flags): nothing more to ask.
            commit, name = pinned, seen.repo_id
        else:
            asked = self._ask(spec, pinned or revision, dry_run)
            commit = pinned or asked.sha
            name = asked.repo_id
        if name != spec.repo:
            result.canonical = name
        result.commit = commit
        if self.index.commit_complete(spec.type, name, commit, filter_key):
            result.status = "unchanged"
            if not dry_run:
                self._backfill_date(spec, name, commit, asked)
                self._finish(spec, name, revision, commit)
            repo = self.index.find_repo(spec.type, name)
            result.files = self.index.file_count(repo, commit) if repo is not None else 0
            return
        entries = self._listing(spec, name, commit, path_filter, pin)
        self._publish(
            spec, name, revision, commit, entries, result, pin=pin, filter_key=filter_key, asked=asked, dry_run=dry_run
        )

    def publish_tree(
        self,
        spec: RepoSpec,
        revision: str,
        info: RevisionInfo,
        entries: Sequence[TreeEntry],
        *,
        meta: CommitMeta | None = None,
        kind: str | None = None,
    ) -> RevisionResult:
        """Mirror upstream's commit ``info.sha`` of ``revision`` given its whole tree (``entries``) instead of
        listing it: for a caller that knows the tree already (a push: its parent's listing plus what it
        committed). Everything else is as in a sync: blobs the store lacks are downloaded and verified, then
        the index rows, the ref (refused over a commit pushed to this store), the views, ``on_published``.
        ``meta``: what the commit says about itself (default: asked upstream, as a sync does); ``kind``: the
        ref's kind when the caller knows it (default: asked upstream). Returns the result; raises
        :class:`HubMirrorError` (nothing is recorded for a commit whose blobs could not all be stored)."""
        path_filter = PathFilter(spec.allow_patterns, spec.ignore_patterns)
        name, commit = info.repo_id, info.sha
        result = RevisionResult(repo=spec.repo, type=spec.type, revision=revision, commit=commit)
        if name != spec.repo:
            result.canonical = name
        with self.store.gc_guard():
            self._seen[(spec.type, spec.repo)] = info
            if self.index.commit_complete(spec.type, name, commit, path_filter.key):
                result.status = "unchanged"
                self._finish(spec, name, revision, commit, kind)
                return result
            check_tree(e.path for e in entries)
            chosen = [e for e in entries if path_filter(e.path)]
            self._publish(
                spec,
                name,
                revision,
                commit,
                chosen,
                result,
                filter_key=path_filter.key,
                asked=info,
                meta=meta,
                kind=kind,
            )
        return result

    def _publish(
        self,
        spec: RepoSpec,
        name: str,
        revision: str,
        commit: str,
        entries: list[TreeEntry],
        result: RevisionResult,
        *,
        filter_key: str,
        asked: RevisionInfo | None,
        pin: LockedRevision | None = None,
        dry_run: bool = False,
        meta: CommitMeta | None = None,
        kind: str | None = None,
    ) -> None:
        """Store what the commit's ``entries`` need (downloads of what the store lacks), then publish the
        commit and move the ref."""
        result.files = len(entries)
        present, tasks = self._plan(entries, {f.path: f.sha256 for f in pin.files} if pin else {})
        result.files_deduped = sum(1 for e in entries if e.path in present)
        result.bytes_deduped = sum(e.size for e in entries if e.path in present)
        result.bytes_to_fetch = sum(t.entry.size for t in tasks)
        self.observer.planned(result.label, len(tasks), result.bytes_to_fetch)
        if dry_run:
            result.status = "planned"
            return
        fetched = self._download_all(spec, name, commit, tasks, result)
        blobs: dict[str, BlobRecord] = {}
        records = []
        for entry in entries:
            got = fetched.get(entry.lfs_sha256 or entry.oid)
            sha256 = got.sha256 if got else present[entry.path]
            git_sha1 = None if entry.is_lfs else entry.oid
            # Every file's blob gets a row, also one a killed run left on disk without recording it.
            blobs.setdefault(sha256, BlobRecord(sha256, entry.size, git_sha1))
            records.append(FileRecord(entry.path, entry.size, sha256, entry.oid, entry.is_lfs))
        if meta is None:
            meta = self._details.new_commit_meta(spec.type, name, revision, commit, asked)
        failpoint("sync.before_publish")
        card = card_json(records, self.store.open_blob)
        with self.store.write_lock():
            seen = self._seen.get((spec.type, spec.repo))
            self.index.publish_commit(
                spec.type,
                name,
                commit,
                records,
                blobs.values(),
                source="sync",
                filter_key=filter_key,
                access=seen.access if seen else None,
                card=card,
                meta=meta,
                repo_created_at=seen.created_at if seen else None,
            )
        result.status = "updated"
        self._finish(spec, name, revision, commit, kind)
        logger.info(
            "%s → %s: %d files, %d fetched (%d bytes), %d deduped (%d bytes)",
            result.label,
            commit[:12],
            result.files,
            result.files_fetched,
            result.bytes_fetched,
            result.files_deduped,
            result.bytes_deduped,
        )

    def _ask(self, spec: RepoSpec, revision: str, dry_run: bool) -> RevisionInfo:
        """One request: the revision's commit, the repo's canonical name and its private/gated flags.

        Every repo is asked at least once per run (also when only pinned shas are listed), so a repo made
        private or gated upstream is served as such from this run on. A repo upstream no longer shows
        us is hidden (made private) here: fail closed, until a sync sees it again."""
        try:
            info = self.client.revision_info(spec.type, spec.repo, revision)
        except RepoNotFoundError:
            if not dry_run:
                self._hide(spec)
            raise
        self._seen[(spec.type, spec.repo)] = info
        if info.repo_id != spec.repo:
            logger.info(
                "%s %s is now called %s upstream; mirroring under the new name", spec.type, spec.repo, info.repo_id
            )
        if not dry_run:
            with self.store.write_lock():
                changed = self.index.set_access(spec.type, info.repo_id, info.access)
            if changed:
                logger.warning(
                    "%s %s is now %s upstream; serve follows", spec.type, info.repo_id, _describe(info.access)
                )
        return info

    def _backfill_date(self, spec: RepoSpec, name: str, commit: str, asked: RevisionInfo | None) -> None:
        """An unchanged commit mirrored before dates were kept gets the date the one request just gave."""
        found = self._details.date_to_backfill(spec.type, name, commit, asked)
        if found is not None:
            with self.store.write_lock():
                self.index.set_commit_meta(*found)

    def _hide(self, spec: RepoSpec) -> None:
        repo = self.index.find_repo(spec.type, spec.repo)
        if repo is None or repo.private:
            return
        with self.store.write_lock():
            self.index.set_access(spec.type, repo.name, Access(True, repo.gated))
        logger.warning(
            "%s %s: upstream no longer shows it (deleted, or private to a token we lack); serve now "
            "shows it only to tokens that may read private repos",
            spec.type,
            repo.name,
        )

    def _finish(self, spec: RepoSpec, name: str, revision: str, commit: str, known_kind: str | None = None) -> None:
        """Aliases and refs, after the commit is published: refs move last.

        The ref is kept under the name the Hub lists it by (``refs/heads/dev`` → ``dev``) with its kind.
        A bare name's kind is ``known_kind`` when the caller knows it, else it comes from upstream's ref
        listing, asked only when the ref moves or its kind is not known yet: an unchanged repo still costs
        one request."""
        ref, kind = ref_spelling(revision) if not is_sha1(revision) or revision != commit else (None, None)
        if ref is not None and kind is None:
            kind = known_kind or self._details.ref_kind(spec.type, name, ref, commit)
        with self.store.write_lock():
            if name != spec.repo:
                self.index.add_alias(spec.type, spec.repo, name)
            moved = False
            if ref is not None:
                self._refuse_divergence(spec, name, ref, commit)
                moved = self.index.set_ref(spec.type, name, ref, commit, kind=kind)
        if moved:
            logger.info("%s %s: %s now at %s", spec.type, name, ref, commit[:12])
        if self.on_published is not None:
            self.on_published(spec.type, name, commit)

    def _refuse_divergence(self, spec: RepoSpec, name: str, revision: str, commit: str) -> None:
        """A ref that names a commit pushed to this store is never moved to upstream's: that would drop it."""
        repo = self.index.find_repo(spec.type, name)
        current = self.index.ref(repo, revision) if repo is not None else None
        if repo is None or current is None or current == commit:
            return
        if any(c.sha == current and c.source == "push" for c in self.index.commits(repo)):
            raise RefDivergedError(
                f"{spec.type} {name}: {revision} here is at {current[:12]}, a commit pushed to this store, and "
                f"upstream has {commit[:12]}; the local commit is kept. Push it upstream, or drop it with "
                f"'hubmirror remove {name} --revision {current[:12]}' to follow upstream"
            )

    def _listing(
        self, spec: RepoSpec, name: str, commit: str, path_filter: PathFilter, pin: LockedRevision | None
    ) -> list[TreeEntry]:
        listed = self.client.list_tree(spec.type, name, commit)
        check_tree(e.path for e in listed)  # a hostile listing fails the whole revision before any write
        if pin is None:
            return [e for e in listed if path_filter(e.path)]
        by_path = {e.path: e for e in listed}
        chosen = []
        for want in pin.files:
            found = by_path.get(want.path)
            # The content's sha256 as the listing (LFS) or the index (by git sha1) knows it must match.
            known = (found.lfs_sha256 or self.index.sha256_for_git_sha1(found.oid)) if found else None
            if found is None or found.size != want.size or known not in (None, want.sha256):
                raise IntegrityError(
                    f"{spec.type} {spec.repo}: upstream commit {commit[:12]} does not provide '{want.path}' "
                    "as the lock file records it; run 'hubmirror lock' to re-pin"
                )
            chosen.append(found)
        return chosen

    def _plan(self, entries: list[TreeEntry], pinned: dict[str, str]) -> tuple[dict[str, str], list[_Task]]:
        """Split entries into those whose content is already stored (path → sha256) and downloads.
        ``pinned`` (path → sha256 from the lock file) is the content a download must verify against."""
        present: dict[str, str] = {}
        tasks: dict[str, _Task] = {}
        known = self.index.sha256s_for_git_sha1s([e.oid for e in entries if not e.is_lfs])
        candidates = {e.path: pinned.get(e.path) or e.lfs_sha256 or known.get(e.oid) for e in entries}
        stored = stored_blobs(self.store, self.index, (sha for sha in candidates.values() if sha is not None))
        for entry in entries:
            expected = pinned.get(entry.path) or entry.lfs_sha256
            sha256 = candidates[entry.path]
            if sha256 is not None and sha256 in stored:
                present[entry.path] = sha256
                continue
            task = _Task(entry, expected)
            tasks.setdefault(task.key, task)
        return present, list(tasks.values())

    def _download_all(
        self, spec: RepoSpec, name: str, commit: str, tasks: list[_Task], result: RevisionResult
    ) -> dict[str, BlobInfo]:
        futures: list[Future[BlobInfo]] = [
            self._pool.submit(self._fetch, spec.type, name, commit, task) for task in tasks
        ]
        fetched: dict[str, BlobInfo] = {}
        errors: list[HubMirrorError] = []
        for task, future in zip(tasks, futures):
            try:
                info = future.result()
            except CancelledError:
                continue
            except HubMirrorError as exc:
                errors.append(exc)
                if isinstance(exc, (AccessDeniedError, RepoNotFoundError)):
                    # The repo refuses us, not this file: every queued download would fail the same way.
                    for pending in futures:
                        pending.cancel()
                continue
            fetched[task.key] = info
            if info.fetched:
                result.files_fetched += 1
                result.bytes_fetched += info.size
        if errors:
            # One line per distinct problem: a gated repo answers every file with the same refusal.
            for message in dict.fromkeys(str(e) for e in errors[1:]):
                if message != str(errors[0]):
                    logger.info("%s: also %s", name, message)
            raise errors[0]
        return fetched

    def _worker_index(self) -> Index:
        """Each download thread has its own connection (SQLite connections are per thread). Blob rows
        are written without waiting for durability (SQLite's synchronous=NORMAL, PostgreSQL's
        synchronous_commit=off): losing the newest on power loss costs a re-download, never correctness,
        and it keeps hundreds of small files fast."""
        index = getattr(self._local, "index", None)
        if index is None:
            index = self._local.index = self.index.for_thread(durable=False)
            with self._indexes_lock:
                self._indexes.append(index)
        return index

    def _advanced(self, nbytes: int) -> None:
        if self.stop.is_set():
            raise _stopped()
        self.observer.advanced(nbytes)

    def _fetch(
        self, repo_type: str, name: str, commit: str, task: _Task, wrap: Callable[[BlobWriter], ByteSink] | None = None
    ) -> BlobInfo:
        """Download one blob, verified. ``wrap`` puts a sink around the writer (pull-through lets clients
        read the bytes while they arrive)."""
        if self.stop.is_set():
            raise _stopped()
        entry = task.entry
        expected = Expected(size=entry.size, sha256=task.expected_sha256, git_sha1=None if entry.is_lfs else entry.oid)
        with self.store.blob_lock(task.key):
            known = entry.lfs_sha256 or self._worker_index().sha256_for_git_sha1(entry.oid)
            if known and (
                self.store.has_blob(known) if self.store.blobs_local else self._worker_index().has_blob(known)
            ):
                # another process fetched it while we waited for the lock (in object storage its row says so)
                return BlobInfo(known, entry.size, None, fetched=False)
            for attempt in (1, 2):
                with self.store.writer(expected, resume_key=task.key) as writer:
                    resumed = writer.offset > 0
                    if resumed:
                        self.observer.advanced(writer.offset)
                    sink = writer if wrap is None else wrap(writer)
                    self.client.download(repo_type, name, commit, entry.path, sink, self._advanced)
                    try:
                        info = writer.commit()
                    except IntegrityError as exc:
                        if resumed and attempt == 1:
                            logger.warning("resumed partial of '%s' did not verify; fetching it again", entry.path)
                            continue
                        raise IntegrityError(f"'{entry.path}' of {repo_type} {name}@{commit[:12]}: {exc}") from exc
                # Recorded at once, still under the download lock: a killed run or a concurrent process
                # then finds the blob (a regular file is only known by its git sha1 via this row).
                self._recorder.record(BlobRecord(info.sha256, info.size, expected.git_sha1))
                self.observer.file_done()
                return info
        raise AssertionError("unreachable")


def _describe(access: Access) -> str:
    if access.private:
        return "private"
    return f"gated ({access.gated})" if access.gated else "public"


def _stopped() -> Interrupted:
    return Interrupted("sync stopped on request; partial downloads are kept and resume on the next run")


def _lock_missing(spec: RepoSpec, revision: str) -> HubMirrorError:
    return ConfigError(f"{spec.type} {spec.repo}@{revision} is not in the lock file; run 'hubmirror lock' to pin it")
