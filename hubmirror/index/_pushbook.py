"""The push side of the index: the local hash cache, the outbox of push jobs and per-target push state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._base import utcnow
from ._interface import Index
from ._records import PushJob


class PushBook:
    """The push side of the index: the local hash cache, the outbox and per-target push state."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def cached_hashes(self, paths: Iterable[str]) -> dict[str, tuple[int, int, str, str]]:
        """path → (size, mtime_ns, sha256, git_sha1) for the paths hashed before (a few queries in all)."""
        rows = self.index._each(
            "SELECT path, size, mtime_ns, sha256, git_sha1 FROM local_hashes WHERE path IN ({marks})", list(paths)
        )
        return {path: (size, mtime_ns, sha256, git_sha1) for path, size, mtime_ns, sha256, git_sha1 in rows}

    def save_hashes(self, rows: Iterable[tuple[str, int, int, str, str]]) -> None:
        with self.index.atomic():
            self.index.conn.executemany(
                "INSERT INTO local_hashes (path, size, mtime_ns, sha256, git_sha1) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
                "sha256 = excluded.sha256, git_sha1 = excluded.git_sha1",
                rows,
            )

    def enqueue(self, folder: str, repo: str, repo_type: str, revision: str, when: float) -> None:
        """Queue a push of ``folder``; a target has at most one pending job (it pushes the folder's state
        at the time it runs, so later changes join the waiting job)."""
        with self.index.atomic():
            self.index.conn.execute(
                "INSERT INTO outbox (folder, repo, type, revision, created_at, next_attempt) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (folder, repo, type, revision) "
                "DO UPDATE SET next_attempt = CASE WHEN excluded.next_attempt < outbox.next_attempt "
                "THEN excluded.next_attempt ELSE outbox.next_attempt END",
                (folder, repo, repo_type, revision, utcnow(), when),
            )

    def jobs(self, due_before: float | None = None) -> list[PushJob]:
        sql = "SELECT id, folder, repo, type, revision, attempts, next_attempt, last_error FROM outbox"
        params: tuple[Any, ...] = ()
        if due_before is not None:
            sql, params = sql + " WHERE next_attempt <= ?", (due_before,)
        return [PushJob(*r) for r in self.index._rows(sql + " ORDER BY next_attempt, id", params)]

    def job_failed(self, job: PushJob, error: str, next_attempt: float) -> None:
        with self.index.atomic():
            self.index.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE id = ?",
                (next_attempt, error, job.id),
            )
            self._state(job, "last_error = ?, last_error_at = ?", (error, utcnow()))

    def job_done(self, job: PushJob, commit: str | None, files: int, nbytes: int) -> None:
        with self.index.atomic():
            self.index.conn.execute("DELETE FROM outbox WHERE id = ?", (job.id,))
            if commit is not None:
                self._state(
                    job,
                    "last_commit = ?, last_pushed_at = ?, last_error = NULL, "
                    "files_pushed = files_pushed + ?, bytes_pushed = bytes_pushed + ?",
                    (commit, utcnow(), files, nbytes),
                )
            else:
                self._state(job, "last_error = NULL", ())

    def _state(self, job: PushJob, assignments: str, params: tuple[Any, ...]) -> None:
        key = (job.folder, job.repo, job.type, job.revision)
        self.index.conn.execute(
            "INSERT INTO push_state (folder, repo, type, revision) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", key
        )
        self.index.conn.execute(
            f"UPDATE push_state SET {assignments} WHERE folder = ? AND repo = ? AND type = ? AND revision = ?",
            (*params, *key),
        )

    def states(self) -> list[dict[str, Any]]:
        cols = (
            "folder",
            "repo",
            "type",
            "revision",
            "last_commit",
            "last_pushed_at",
            "last_error",
            "last_error_at",
            "files_pushed",
            "bytes_pushed",
        )
        rows = self.index._rows(f"SELECT {', '.join(cols)} FROM push_state ORDER BY folder")
        return [dict(zip(cols, r)) for r in rows]
