"""What a sync run reports (per repo revision and in total), and the progress callbacks it makes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..models import NoProgress, Progress


class SyncObserver(Progress, Protocol):
    """Progress callbacks; ``advanced`` and ``file_done`` are called from worker threads."""

    def finished(self, result: RevisionResult) -> None: ...


class NullObserver(NoProgress):
    def finished(self, result: RevisionResult) -> None:
        pass


@dataclass
class RevisionResult:
    repo: str
    type: str
    revision: str
    status: str = "failed"  # unchanged | updated | planned | failed
    commit: str | None = None
    canonical: str | None = None  # set when upstream renamed the repo
    files: int = 0
    files_fetched: int = 0
    bytes_fetched: int = 0
    files_deduped: int = 0
    bytes_deduped: int = 0
    bytes_to_fetch: int = 0  # dry run: what a real run would download
    error: str | None = None
    error_type: str | None = None
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def label(self) -> str:
        return f"{self.type} {self.repo}@{self.revision}"


@dataclass
class SyncReport:
    results: list[RevisionResult] = field(default_factory=list)
    requests: int = 0
    duration: float = 0.0
    dry_run: bool = False
    run_id: int | None = None
    planned: int = 0  # repo revisions this run set out to sync

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def exit_code(self) -> int:
        codes = {r.exit_code for r in self.results if not r.ok}
        if not codes:
            return 0
        return codes.pop() if len(codes) == 1 else 1

    def totals(self) -> dict[str, int]:
        keys = ("files_fetched", "bytes_fetched", "files_deduped", "bytes_deduped", "bytes_to_fetch")
        return {k: sum(getattr(r, k) for r in self.results) for k in keys}

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "requests": self.requests,
            "duration": round(self.duration, 3),
            "run_id": self.run_id,
            **self.totals(),
            "results": [asdict(r) for r in self.results],
        }
