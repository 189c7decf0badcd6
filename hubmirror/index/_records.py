"""Small frozen records the index returns (beyond the shared ones in :mod:`hubmirror.models`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SyncRunRecord:
    id: int
    started_at: str
    finished_at: str | None
    outcome: str | None
    repos_ok: int
    repos_failed: int
    files_fetched: int
    bytes_fetched: int
    files_deduped: int
    bytes_deduped: int
    requests: int
    duration: float | None
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class StoreStats:
    blobs: int
    stored_bytes: int  # bytes on disk in blobs/
    logical_bytes: int  # bytes all mirrored files would take without dedupe
    repos: int
    commits: int


@dataclass(frozen=True)
class PushJob:
    id: int
    folder: str
    repo: str
    type: str
    revision: str
    attempts: int
    next_attempt: float
    last_error: str | None
