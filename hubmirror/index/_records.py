"""Small frozen records the index returns (beyond the shared ones in :mod:`hubmirror.models`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..models import CommitMeta, FileRecord


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


class CommitKey(NamedTuple):
    """A commit of a repo, as bundles, inventories and states name it."""

    type: str
    repo: str
    commit: str


@dataclass(frozen=True)
class FullCommit:
    """A complete commit with everything a bundle carries about it."""

    type: str
    repo: str
    sha: str
    source: str
    recorded_at: str
    filters: tuple[str, ...]
    files: tuple[FileRecord, ...]
    meta: CommitMeta | None = None  # what the commit says about itself, when the index knows anything


@dataclass(frozen=True)
class ExportRecord:
    """A bundle this store wrote: its identity and the state the far side has once it is imported."""

    id: str
    created_at: str
    dest: str
    digest: str
    base: str | None
    state: tuple[CommitKey, ...]
    blobs: int
    bytes: int


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    source: str  # "sync" | "push" | "import"
    recorded_at: str
    complete: bool


class BlobUse(NamedTuple):
    """A file that uses a blob."""

    type: str
    repo: str
    commit: str
    path: str


@dataclass(frozen=True)
class Discussion:
    """A discussion or pull request of a repo. ``status``: open | closed | merged; ``base``: the branch a
    pull request merges into; its changes live on the ref ``refs/pr/<num>``."""

    num: int
    title: str
    author: str | None
    is_pr: bool
    status: str
    created_at: str
    base: str | None
    merge_commit: str | None


@dataclass(frozen=True)
class DiscussionEvent:
    """One entry of a discussion's log: comment | status-change | title-change | commit."""

    id: int
    type: str
    author: str | None
    created_at: str
    data: dict[str, Any]
