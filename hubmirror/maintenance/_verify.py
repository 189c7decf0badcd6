"""``hubmirror verify``: rehash every blob (in parallel) and check the index's invariants and the view.

Damage is reported with what it touches: the repo, the revisions (refs) naming the commit, and the paths.
Verify alone changes nothing but each good blob's ``verified_at``; ``--repair`` (``_repair``) heals.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..config import LockedRevision
from ..errors import StoreError
from ..hashing import CHUNK
from ..index import BlobUse, Index
from ..models import NoProgress, Progress, Repo
from ..store import Store
from ..view import HFCacheView, check_repo

logger = logging.getLogger(__name__)


@dataclass
class Damage:
    """One damaged or missing blob and the files that use it."""

    sha256: str
    problem: str  # "missing" | "hash mismatch" | "size mismatch" | "unreadable"
    uses: list[BlobUse] = field(default_factory=list)

    def describe(self, refs: dict[tuple[str, str, str], list[str]]) -> str:
        if not self.uses:
            return f"blob {self.sha256}: {self.problem} (no file uses it)"
        parts = []
        for use in self.uses[:5]:
            names = refs.get((use.type, use.repo, use.commit)) or [use.commit[:12]]
            parts.append(f"{use.type} {use.repo}@{'/'.join(names)}: {use.path}")
        more = f" and {len(self.uses) - 5} more" if len(self.uses) > 5 else ""
        return f"blob {self.sha256}: {self.problem}; used by {'; '.join(parts)}{more}"


@dataclass
class VerifyReport:
    blobs_checked: int = 0
    bytes_checked: int = 0
    damaged: list[Damage] = field(default_factory=list)
    index_problems: list[str] = field(default_factory=list)
    view_problems: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (type, repo) → problems
    lines: list[str] = field(default_factory=list)  # every problem as the user reads it
    repaired: list[str] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)
    seconds: float = 0.0  # rehashing, wall
    cpu_seconds: float = 0.0  # rehashing, CPU of every thread: throughput per core used = bytes / this

    @property
    def ok(self) -> bool:
        return not (self.damaged or self.index_problems or self.view_problems)

    @property
    def exit_code(self) -> int:
        """0 when all is well (or everything found was repaired), 7 when damage remains."""
        if self.unrepaired:
            return 7
        return 0 if self.ok or self.repaired else 7

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "blobs_checked": self.blobs_checked,
            "bytes_checked": self.bytes_checked,
            "seconds": round(self.seconds, 4),
            "cpu_seconds": round(self.cpu_seconds, 4),
            "problems": self.lines,
            "repaired": self.repaired,
            "unrepaired": self.unrepaired,
            "exit_code": self.exit_code,
        }


class Verifier:
    def __init__(
        self,
        store: Store,
        index: Index,
        view: HFCacheView,
        *,
        progress: Progress | None = None,
        workers: int | None = None,
    ) -> None:
        self.store, self.index, self.view = store, index, view
        self.progress = progress or NoProgress()
        self.workers = workers or os.cpu_count() or 2

    def run(self, repos: Sequence[Repo] = (), locked: Sequence[LockedRevision] = ()) -> VerifyReport:
        """Check the blobs of ``repos`` (default: every blob), the index, the view, and that what the lock
        file pins is here as it pins it."""
        report = VerifyReport()
        sizes = self._blobs_to_check(repos)
        self._rehash(sizes, report)
        chosen = list(repos) or self.index.list_repos()
        self._check_index(chosen, report)
        names = {(r.type, r.name) for r in chosen}
        self._check_lock([pin for pin in locked if (pin.type, pin.repo) in names or not repos], report)
        for repo in chosen:
            problems = check_repo(self.view, repo)
            if problems:
                report.view_problems[(repo.type, repo.name)] = problems
        refs = self._ref_names(chosen)
        uses = self.index.blob_uses([d.sha256 for d in report.damaged])
        for damage in report.damaged:
            damage.uses = uses.get(damage.sha256, [])
        report.lines = (
            [d.describe(refs) for d in report.damaged]
            + report.index_problems
            + [f"HF-cache view of {t} {r}: {p}" for (t, r), ps in report.view_problems.items() for p in ps]
        )
        return report

    def _blobs_to_check(self, repos: Sequence[Repo]) -> dict[str, int | None]:
        """sha256 → size the index records (None for a file on disk the index has no row for)."""
        rows = self.index.blob_rows()
        if repos:
            wanted = set().union(*(self.index.blobs_of(r, self.index.commit_shas(r)) for r in repos))
            return {sha: rows.get(sha) for sha in sorted(wanted)}
        found: dict[str, int | None] = {blob.sha256: None for blob in self.store.iter_blobs()}
        found.update(rows)
        return dict(sorted(found.items()))

    def _rehash(self, sizes: dict[str, int | None], report: VerifyReport) -> None:
        self.progress.planned("verify", len(sizes), sum(s or 0 for s in sizes.values()))
        wall, cpu = time.perf_counter(), time.process_time()
        good: list[str] = []
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="hubmirror-verify") as pool:
            for sha256, size, problem in pool.map(self._check_blob, sizes.items()):
                report.blobs_checked += 1
                report.bytes_checked += size
                self.progress.file_done()
                if problem is None:
                    good.append(sha256)
                else:
                    report.damaged.append(Damage(sha256, problem))
        report.seconds, report.cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
        if good and not self.store.read_only:
            try:
                with self.store.write_lock():
                    self.index.mark_verified(good)
            except StoreError as exc:
                logger.warning("verified_at not recorded: %s", exc)

    def _check_blob(self, item: tuple[str, int | None]) -> tuple[str, int, str | None]:
        sha256, expected = item
        digest = hashlib.sha256()
        size = 0
        try:
            with self.store.open_blob(sha256) as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    self.progress.advanced(len(chunk))
        except FileNotFoundError:
            return sha256, 0, "missing"
        except OSError as exc:
            return sha256, size, f"unreadable ({exc.strerror or exc})"
        if digest.hexdigest() != sha256:
            return sha256, size, "hash mismatch (the bytes on disk changed)"
        if expected is not None and size != expected:
            return sha256, size, f"size mismatch ({size} bytes, the index says {expected})"
        return sha256, size, None

    def _check_index(self, repos: Sequence[Repo], report: VerifyReport) -> None:
        names = {(r.type, r.name) for r in repos}
        for use in self.index.files_without_blob_rows():
            if (use.type, use.repo) in names:
                report.index_problems.append(
                    f"{use.type} {use.repo}@{use.commit[:12]}: {use.path} names a blob the index has no row for"
                )
        for kind, repo, ref, commit in self.index.dangling_refs():
            if (kind, repo) in names:
                report.index_problems.append(
                    f"{kind} {repo}: ref {ref} names {commit[:12]}, which is not a complete commit here"
                )

    def _check_lock(self, locked: Sequence[LockedRevision], report: VerifyReport) -> None:
        for pin in locked:
            label = f"{pin.type} {pin.repo}@{pin.revision}"
            repo = self.index.find_repo(pin.type, pin.repo)
            if repo is None or not self.index.commit_complete(pin.type, repo.name, pin.commit):
                report.index_problems.append(
                    f"hubmirror.lock pins {label} to {pin.commit[:12]}, which this store lacks: run "
                    "'hubmirror sync --locked' (or import a bundle that has it)"
                )
                continue
            have = {f.path: f.sha256 for f in self.index.files(repo, pin.commit)}
            wrong = [f.path for f in pin.files if have.get(f.path) != f.sha256]
            if wrong:
                report.index_problems.append(
                    f"hubmirror.lock pins {label}, but {len(wrong)} file(s) here differ from it (e.g. {wrong[0]}): "
                    "run 'hubmirror sync --locked'"
                )

    def _ref_names(self, repos: Sequence[Repo]) -> dict[tuple[str, str, str], list[str]]:
        out: dict[tuple[str, str, str], list[str]] = {}
        for repo in repos:
            for ref in self.index.refs(repo):
                out.setdefault((repo.type, repo.name, ref.commit), []).append(ref.name)
        return out
