"""Sync run history, small key/value facts (``meta``) and store statistics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._base import Queries, inserted_id, utcnow
from ._records import StoreStats, SyncRunRecord

NEXT_SYNC_KEY = "scheduler.next_run"  # meta: when the scheduler plans the next sync (shown by status)


def _sync_run(row: Sequence[Any]) -> SyncRunRecord:
    return SyncRunRecord(
        id=row[0],
        started_at=row[1],
        finished_at=row[2],
        outcome=row[3],
        repos_ok=row[4],
        repos_failed=row[5],
        files_fetched=row[6],
        bytes_fetched=row[7],
        files_deduped=row[8],
        bytes_deduped=row[9],
        requests=row[10],
        duration=row[11],
        errors=json.loads(row[12]) if row[12] else [],
    )


class HistoryQueries(Queries):
    # -- history and statistics ------------------------------------------------------------------
    def start_sync_run(self) -> int:
        with self.atomic():
            return inserted_id(self.conn, "INSERT INTO sync_runs (started_at) VALUES (?) RETURNING id", (utcnow(),))

    def finish_sync_run(
        self,
        run_id: int,
        *,
        outcome: str,
        repos_ok: int,
        repos_failed: int,
        files_fetched: int,
        bytes_fetched: int,
        files_deduped: int,
        bytes_deduped: int,
        requests: int,
        duration: float,
        errors: list[dict[str, Any]],
    ) -> None:
        with self.atomic():
            self.conn.execute(
                "UPDATE sync_runs SET finished_at = ?, outcome = ?, repos_ok = ?, repos_failed = ?, "
                "files_fetched = ?, bytes_fetched = ?, files_deduped = ?, bytes_deduped = ?, requests = ?, "
                "duration = ?, errors_json = ? WHERE id = ?",
                (
                    utcnow(),
                    outcome,
                    repos_ok,
                    repos_failed,
                    files_fetched,
                    bytes_fetched,
                    files_deduped,
                    bytes_deduped,
                    requests,
                    duration,
                    json.dumps(errors),
                    run_id,
                ),
            )

    def sync_runs(self, limit: int = 10) -> list[SyncRunRecord]:
        rows = self._rows(
            "SELECT id, started_at, finished_at, outcome, repos_ok, repos_failed, files_fetched, "
            "bytes_fetched, files_deduped, bytes_deduped, requests, duration, errors_json "
            "FROM sync_runs ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_sync_run(r) for r in rows]

    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.atomic():
            if value is None:
                self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def stats(self) -> StoreStats:
        # SUM of a BIGINT is NUMERIC on PostgreSQL: cast back to an integer.
        blobs, stored = self._rows("SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs")[0]
        logical = self._rows(
            "SELECT CAST(COALESCE(SUM(f.size), 0) AS BIGINT) FROM files f JOIN commits c "
            "ON c.repo_id = f.repo_id AND c.sha = f.commit_sha WHERE c.complete = 1"
        )[0][0]
        repos = self._rows("SELECT COUNT(*) FROM repos")[0][0]
        commits = self._rows("SELECT COUNT(*) FROM commits WHERE complete = 1")[0][0]
        return StoreStats(blobs, stored, logical, repos, commits)
