"""``hubmirror export``: a bundle of what the far side lacks.

What the far side has is a *state*: the commits it holds (and, from an inventory, its exact blobs). A
bundle carries every commit of the chosen repos beyond that state, the blobs those commits use that the far
side lacks, and all of their refs; its manifest names the state the far side has once it is imported, so the
next export can start from it (``--since`` that manifest, or ``--incremental``: the last export recorded).

Export reads a snapshot of the index and copies blob files; it takes no write lock, so sync and serve go on.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HubMirrorError, StoreError
from ..index import CommitKey, ExportRecord, FullCommit, Index
from ..models import Access, NoProgress, Progress, Repo
from ..store import Store
from ..version import __version__
from ._format import (
    MANIFEST,
    RECORDS,
    SUMS,
    RefRecord,
    RepoRecord,
    blob_member,
    manifest_json,
    records_lines,
    sums_lines,
)
from ._inventory import FarSide, far_side_from
from ._io import BundleWriter, open_writer

logger = logging.getLogger(__name__)


@dataclass
class ExportReport:
    bundle: str
    id: str = ""
    digest: str = ""
    base: str | None = None
    repos: int = 0
    commits: int = 0
    commits_skipped: int = 0  # already on the far side
    blobs: int = 0
    bytes: int = 0
    blobs_skipped: int = 0
    recorded: bool = True
    seconds: float = 0.0  # the work itself (without interpreter start-up)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Exporter:
    def __init__(self, store: Store, index: Index, progress: Progress | None = None) -> None:
        self.store, self.index = store, index
        self.progress = progress or NoProgress()

    def export(
        self, dest: str | Path, repos: Sequence[str] = (), *, since: Path | None = None, incremental: bool = False
    ) -> ExportReport:
        """Write a bundle to ``dest`` (a new directory, a ``.tar`` file, or ``-`` for stdout)."""
        started = time.perf_counter()
        chosen = self._repos(repos)
        far = self._far_side(since, incremental)
        report = ExportReport(bundle=str(dest), base=far.describe() if far.kind != "none" else None)
        with self.store.gc_guard():  # gc waits; sync and serve do not
            commits = [c for c in self.index.complete_commits(chosen) if c not in far.commits]
            report.commits_skipped = sum(1 for c in self.index.complete_commits(chosen) if c in far.commits)
            by_name = {(r.type, r.name): r for r in chosen}
            full = [self.index.full_commit(by_name[(c.type, c.repo)], c.commit) for c in commits]
            needed = {f.sha256 for c in full for f in c.files}
            have = far.blobs | self._blobs_of_state(far, by_name)
            sizes = self.index.blob_sizes(needed - have)
            missing = sorted((needed - have) - set(sizes))
            if missing:
                raise StoreError(
                    f"the index names {len(missing)} blob(s) it has no record of (e.g. {missing[0]}); "
                    "run 'hubmirror verify' first"
                )
            report.blobs_skipped = len(needed & have)
            state = sorted(set(far.commits) | set(commits))
            self._write(dest, chosen, full, sorted(sizes.items()), state, far, report)
        self._record(report, dest, state, far)
        report.seconds = round(time.perf_counter() - started, 4)
        return report

    def _repos(self, names: Sequence[str]) -> list[Repo]:
        all_repos = self.index.list_repos()
        if not names:
            return all_repos
        chosen: list[Repo] = []
        for name in names:
            found = [r for r in all_repos if r.name == name] or [r for r in all_repos if name in self.index.aliases(r)]
            if not found:
                raise HubMirrorError(f"repo '{name}' is not in this store (see 'hubmirror status')")
            chosen.extend(r for r in found if r not in chosen)
        return chosen

    def _far_side(self, since: Path | None, incremental: bool) -> FarSide:
        if since is not None:
            return far_side_from(since)
        if incremental:
            last = self.index.last_export()
            if last is None:
                raise HubMirrorError(
                    "--incremental: no earlier export is recorded in this store; run a full "
                    "'hubmirror export' first (or pass --since with the far side's inventory)"
                )
            return FarSide("bundle", last.id, last.created_at, frozenset(last.state), frozenset())
        return FarSide("none", "", "", frozenset(), frozenset())

    def _blobs_of_state(self, far: FarSide, by_name: dict[tuple[str, str], Repo]) -> set[str]:
        """The blobs the far side holds because it holds these commits (as far as this index knows them)."""
        shas: dict[Repo, list[str]] = {}
        for key in far.commits:
            repo = by_name.get((key.type, key.repo)) or self.index.find_repo(key.type, key.repo)
            if repo is not None:
                shas.setdefault(repo, []).append(key.commit)
        out: set[str] = set()
        for repo, commits in shas.items():
            out |= self.index.blobs_of(repo, commits)
        return out

    def _write(
        self,
        dest: str | Path,
        repos: list[Repo],
        commits: list[FullCommit],
        blobs: list[tuple[str, int]],
        state: list[CommitKey],
        far: FarSide,
        report: ExportReport,
    ) -> None:
        repo_records = [
            RepoRecord(r.type, r.name, Access(r.private, r.gated), tuple(self.index.aliases(r)), r.created_at)
            for r in repos
        ]
        ref_records = [
            RefRecord(r.type, r.name, ref.name, ref.commit, ref.kind, ref.updated_at)
            for r in repos
            for ref in self.index.refs(r)
        ]
        records = b"".join(records_lines(repo_records, commits, ref_records))
        records_sha = hashlib.sha256(records).hexdigest()
        report.id = uuid.uuid4().hex
        base = {"kind": far.kind, "id": far.id, "created_at": far.created_at} if far.kind != "none" else None
        manifest, report.digest = manifest_json(
            id=report.id,
            created_at=_now(),
            created_by=f"hubmirror {__version__}",
            source=self.index.store_id(),
            base=base,
            state=state,
            blobs=blobs,
            records_sha256=records_sha,
            records_size=len(records),
        )
        report.repos, report.commits = len(repos), len(commits)
        report.blobs, report.bytes = len(blobs), sum(size for _, size in blobs)
        self.progress.planned(f"export to {dest}", len(blobs), report.bytes)
        writer = open_writer(dest)
        try:
            writer.add_bytes(MANIFEST, manifest)
            writer.add_bytes(RECORDS, records)
            writer.add_bytes(SUMS, b"".join(sums_lines(records_sha, (sha for sha, _ in blobs))))
            for sha256, size in blobs:
                self._add_blob(writer, sha256, size)
                self.progress.advanced(size)
                self.progress.file_done()
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        logger.info(
            "exported %d commits of %d repos, %d blobs (%d bytes) to %s",
            report.commits,
            report.repos,
            report.blobs,
            report.bytes,
            dest,
        )

    def _add_blob(self, writer: BundleWriter, sha256: str, size: int) -> None:
        """One blob into the bundle: its file, or (blobs in object storage) a verified copy in ``home/tmp``."""
        missing = StoreError(
            f"blob {sha256} is missing from {self.store.blobs.location} (gc, or damage): run "
            "'hubmirror verify --repair', then export again"
        )
        path = self.store.blob_file(sha256)
        if path is not None:
            if not path.is_file():
                raise missing
            writer.add_file(blob_member(sha256), path, size)
            return
        copy = self.store.tmp_dir / f"export-{uuid.uuid4().hex}"
        try:
            self.store.copy_blob(sha256, copy)
            writer.add_file(blob_member(sha256), copy, size)
        except FileNotFoundError:
            raise missing from None
        finally:
            copy.unlink(missing_ok=True)

    def _record(self, report: ExportReport, dest: str | Path, state: list[CommitKey], far: FarSide) -> None:
        if self.store.read_only:
            report.recorded = False
            report.warnings.append(
                "the store is read-only: this export is not recorded, so a later "
                "--incremental cannot start from it (use --since with its manifest)"
            )
            return
        with self.store.write_lock():
            self.index.record_export(
                ExportRecord(
                    report.id,
                    _now(),
                    str(dest),
                    report.digest,
                    far.id or None,
                    tuple(state),
                    report.blobs,
                    report.bytes,
                )
            )


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
