"""``hubmirror import``: a bundle into the store, every blob verified on the way in, published atomically.

Order: check the manifest and records → refuse a delta whose base this store lacks (nothing written) → copy
the blobs the store lacks through the store's writer, in batches made durable together → publish each commit
whose blobs are all present (one transaction each) → move refs last, never back to an older position and never
over a commit only this store has → update the HF-cache view. A blob that does not verify, or that a truncated
bundle never delivered, keeps every commit that uses it unpublished (exit 7, naming blob and paths).

Importing twice changes nothing; an import killed at any point resumes without copying finished blobs again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..cards import card_json
from ..errors import IntegrityError, NotMirroredError, RefDivergedError
from ..failpoints import failpoint
from ..home import stored_blobs
from ..index import FullCommit, Index
from ..models import BlobRecord, CommitMeta, NoProgress, Progress, Repo
from ..store import BlobBatch, Expected, Store
from ._format import BundleError, Manifest, Records, parse_manifest, parse_records
from ._io import BundleReader, open_reader

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    bundle: str
    id: str = ""
    exported_at: str = ""
    already_imported: bool = False
    commits_imported: int = 0
    commits_present: int = 0
    commits_refused: int = 0
    blobs_copied: int = 0
    bytes_copied: int = 0
    blobs_present: int = 0
    refs_moved: int = 0
    refs_kept: list[str] = field(default_factory=list)  # refs left where they were, with why
    diverged: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # bad or missing blobs, with the paths that use them
    repos: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0  # the work itself (without interpreter start-up)

    @property
    def exit_code(self) -> int:
        if self.damaged:
            return IntegrityError.exit_code
        if self.diverged:
            return RefDivergedError.exit_code
        return 0

    def as_dict(self) -> dict[str, object]:
        data = dict(self.__dict__)
        data["repos"] = [list(r) for r in self.repos]
        data["exit_code"] = self.exit_code
        return data


class Importer:
    def __init__(
        self,
        store: Store,
        index: Index,
        progress: Progress | None = None,
        on_published: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store, self.index = store, index
        self.progress = progress or NoProgress()
        self.on_published = on_published  # (type, name): refresh that repo's HF-cache view

    def run(self, src: str | Path) -> ImportReport:
        started = time.perf_counter()
        report = ImportReport(bundle=str(src))
        # gc waits until the copied blobs are named by published commits
        with self.store.gc_guard():
            with open_reader(src) as reader:
                manifest = parse_manifest(reader.manifest(), reader.where)
                report.id, report.exported_at = manifest.id, manifest.created_at
                records = self._records(reader, manifest)
                self._check_base(manifest, records, reader.where)
                report.already_imported = self.index.imported(manifest.digest)
                present = self._copy_blobs(reader, manifest, records, report)
            self._publish(records, present, report)
            self._move_refs(records, report)
        for repo in report.repos:
            if self.on_published is not None:
                self.on_published(*repo)
        if not report.damaged:
            with self.store.write_lock():
                self.index.record_import(
                    manifest.digest,
                    manifest.id,
                    manifest.created_at,
                    report.commits_imported,
                    report.blobs_copied,
                    report.bytes_copied,
                )
        report.seconds = round(time.perf_counter() - started, 4)
        return report

    # -- checks before anything is written -------------------------------------------------------
    def _records(self, reader: BundleReader, manifest: Manifest) -> Records:
        with reader.records(manifest.records_size) as stream:
            data = stream.read(manifest.records_size + 1)
        if len(data) != manifest.records_size or hashlib.sha256(data).hexdigest() != manifest.records_sha256:
            raise BundleError(f"{reader.where}: records.jsonl does not match the manifest; the bundle is damaged")
        return parse_records(data.splitlines(), reader.where)

    def _check_base(self, manifest: Manifest, records: Records, where: str) -> None:
        """Every blob a commit needs is in the bundle or already in the store; else nothing is imported."""
        in_bundle = {sha for sha, _ in manifest.blobs}
        needed = {f.sha256 for commit in records.commits for f in commit.files} - in_bundle
        stored = stored_blobs(self.store, self.index, needed)
        lacking: dict[str, list[str]] = defaultdict(list)
        for commit in records.commits:
            for f in commit.files:
                if f.sha256 not in in_bundle and f.sha256 not in stored:
                    lacking[f"{commit.type} {commit.repo}@{commit.sha[:12]}"].append(f.path)
        if not lacking:
            return
        first, paths = next(iter(lacking.items()))
        base = manifest.base or {}
        built_on = (
            f"builds on {base.get('kind')} {base.get('id', '')[:12]} of {base.get('created_at')}"
            if base
            else "expects content"
        )
        raise NotMirroredError(
            f"{where} {built_on}, which this store lacks: {sum(len(p) for p in lacking.values())} files of "
            f"{len(lacking)} commits are not here (e.g. {first}: {', '.join(paths[:3])}). Import the bundles "
            "before it first, or run 'hubmirror inventory -o FILE' here, carry FILE across and run "
            "'hubmirror export --since FILE' on the connected side. Nothing was imported."
        )

    # -- blobs -------------------------------------------------------------------------------------
    def _copy_blobs(self, reader: BundleReader, manifest: Manifest, records: Records, report: ImportReport) -> set[str]:
        """Copy what the store lacks; returns every sha256 now present (bundle's and already stored)."""
        users = _users(records)
        present: set[str] = set()
        wanted = list(manifest.blobs)
        already = stored_blobs(self.store, self.index, (sha for sha, _ in wanted))
        self.progress.planned(f"import {reader.where}", len(wanted), manifest.total_bytes)
        with self.store.batch() as batch:
            staged: list[tuple[str, int]] = []
            for sha256, size, stream in reader.blobs(wanted):
                if sha256 in already:
                    present.add(sha256)
                    report.blobs_present += 1
                    self.progress.advanced(size)
                    self.progress.file_done()
                    continue
                if stream is None:
                    self._damaged(report, sha256, users, "missing from the bundle (truncated or incomplete copy)")
                    continue
                try:
                    batch.add(stream, Expected(size=size, sha256=sha256), self.progress.advanced)
                except IntegrityError as exc:
                    self._damaged(report, sha256, users, f"does not match its hash ({exc})")
                    continue
                staged.append((sha256, size))
                self.progress.file_done()
                if batch.full:
                    self._flush(batch, staged, present, report)
            self._flush(batch, staged, present, report)
        named = {f.sha256 for c in records.commits for f in c.files}
        return present | stored_blobs(self.store, self.index, named - present)

    def _flush(self, batch: BlobBatch, staged: list[tuple[str, int]], present: set[str], report: ImportReport) -> None:
        if not staged:
            return
        for info in batch.flush():
            if info.fetched:
                report.blobs_copied += 1
                report.bytes_copied += info.size
        failpoint("import.after_blobs")
        with self.store.write_lock():
            self.index.add_blobs([BlobRecord(sha, size, None) for sha, size in staged])
        present.update(sha for sha, _ in staged)
        staged.clear()

    @staticmethod
    def _damaged(report: ImportReport, sha256: str, users: dict[str, list[str]], why: str) -> None:
        paths = users.get(sha256, [])
        shown = ", ".join(paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")
        report.damaged.append(f"blob {sha256} {why}; used by {shown or 'no file'}")
        logger.warning("import: blob %s %s; used by %s", sha256, why, shown)

    # -- commits and refs ---------------------------------------------------------------------------
    def _publish(self, records: Records, present: set[str], report: ImportReport) -> None:
        access = {(r.type, r.name): r for r in records.repos}
        touched: dict[tuple[str, str], None] = {}
        for commit in records.commits:
            if self.index.commit_complete(commit.type, commit.repo, commit.sha):
                report.commits_present += 1
                self._fill_meta(commit)
                continue
            if any(f.sha256 not in present for f in commit.files):
                report.commits_refused += 1
                continue
            repo_record = access.get((commit.type, commit.repo))
            card = card_json(commit.files, self.store.open_blob)
            with self.store.write_lock():
                self.index.publish_commit(
                    commit.type,
                    commit.repo,
                    commit.sha,
                    commit.files,
                    [BlobRecord(f.sha256, f.size, None if f.lfs else f.git_oid) for f in commit.files],
                    source=commit.source if commit.source in ("sync", "push") else "import",
                    access=repo_record.access if repo_record else None,
                    card=card,
                    meta=commit.meta,
                    repo_created_at=repo_record.created_at if repo_record else None,
                )
                repo = self.index.find_repo(commit.type, commit.repo)
                assert repo is not None
                self.index.add_filters(repo, commit.sha, commit.filters)
            failpoint("import.after_commit")
            report.commits_imported += 1
            touched[(commit.type, commit.repo)] = None
        for repo_record in records.repos:
            found = self.index.find_repo(repo_record.type, repo_record.name)
            if found is None:
                continue
            with self.store.write_lock():
                self.index.set_access(repo_record.type, found.name, repo_record.access)
                for alias in repo_record.aliases:
                    if alias != found.name:
                        self.index.add_alias(repo_record.type, alias, found.name)
            touched[(repo_record.type, found.name)] = None
        report.repos = list(touched)

    def _fill_meta(self, commit: FullCommit) -> None:
        """A commit this store has already gets what the bundle knows about it and this store does not."""
        repo = self.index.find_repo(commit.type, commit.repo)
        known = self.index.commit_meta(repo, commit.sha) if repo is not None else None
        if repo is None or known is None or commit.meta is None:
            return
        theirs = commit.meta
        merged = CommitMeta(
            parent=_either(known.parent, theirs.parent),
            title=_either(known.title, theirs.title),
            message=_either(known.message, theirs.message),
            authors=known.authors or theirs.authors,
            date=_either(known.date, theirs.date),
        )
        if merged != known:
            with self.store.write_lock():
                self.index.set_commit_meta(repo, commit.sha, merged)

    def _move_refs(self, records: Records, report: ImportReport) -> None:
        for ref in records.refs:
            label = f"{ref.type} {ref.repo}@{ref.name}"
            repo = self.index.find_repo(ref.type, ref.repo)
            if repo is None or not self.index.commit_complete(ref.type, repo.name, ref.commit):
                report.refs_kept.append(f"{label}: its commit {ref.commit[:12]} did not arrive complete")
                continue
            current = next((r for r in self.index.refs(repo) if r.name == ref.name), None)
            if current is not None and current.commit == ref.commit:
                continue
            if current is not None and current.updated_at > ref.updated_at:
                report.refs_kept.append(
                    f"{label}: kept at {current.commit[:12]} (set {current.updated_at}), newer "
                    f"than this bundle's {ref.commit[:12]} ({ref.updated_at})"
                )
                continue
            if current is not None and self._local_only(repo, current.commit, records):
                report.diverged.append(
                    f"{label}: here at {current.commit[:12]}, a commit only this store has; the "
                    f"bundle has {ref.commit[:12]}. Kept; move it yourself if that is wanted"
                )
                continue
            with self.store.write_lock():
                self.index.set_ref(ref.type, repo.name, ref.name, ref.commit, kind=ref.kind, at=ref.updated_at)
            report.refs_moved += 1
            if (ref.type, repo.name) not in report.repos:
                report.repos.append((ref.type, repo.name))

    def _local_only(self, repo: Repo, commit: str, records: Records) -> bool:
        """A pushed commit here that the bundle's side does not know: moving the ref would drop it."""
        known = {c.sha for c in records.commits if c.repo == repo.name}
        return commit not in known and any(c.sha == commit and c.source == "push" for c in self.index.commits(repo))


def _either(mine: str | None, theirs: str | None) -> str | None:
    return mine if mine is not None else theirs


def _users(records: Records) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for commit in records.commits:
        for f in commit.files:
            out[f.sha256].append(f"{commit.repo}@{commit.sha[:12]}:{f.path}")
    return out


def blobs_from_bundle(store: Store, src: str | Path, wanted: set[str]) -> dict[str, str]:
    """Copy the ``wanted`` blobs a bundle holds into the store (verified); returns sha256 → what happened
    to each one it holds ("restored", or why not). For ``verify --repair --from BUNDLE``."""
    outcome: dict[str, str] = {}
    with open_reader(src) as reader:
        manifest = parse_manifest(reader.manifest(), reader.where)
        reader.records(manifest.records_size).read(manifest.records_size)  # (tar: step past it)
        with store.batch() as batch:
            for sha256, size, stream in reader.blobs(list(manifest.blobs), wanted):
                if stream is None:
                    outcome[sha256] = f"missing from {reader.where}"
                    continue
                try:
                    batch.add(stream, Expected(size=size, sha256=sha256))
                    outcome[sha256] = "restored"
                except IntegrityError as exc:
                    outcome[sha256] = f"damaged in {reader.where} too ({exc})"
            batch.flush()
    return outcome
