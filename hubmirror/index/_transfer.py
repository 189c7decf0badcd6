"""What bundles need from the index: whole commits with their files, the store's identity, and the records
of exports (for ``--incremental``) and imports (so a bundle imported twice is recognised)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import StoreError
from ..models import CommitMeta, FileRecord, Repo
from ._base import Queries, utcnow
from ._records import CommitKey, ExportRecord, FullCommit
from ._repos import _META_COLUMNS, _meta

STORE_ID_KEY = "store.id"


class TransferQueries(Queries):
    def store_id(self) -> str:
        """A random id given to this store the first time it is asked for (names a bundle's source)."""
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (STORE_ID_KEY,))
        if rows:
            return str(rows[0][0])
        new = uuid.uuid4().hex
        try:
            with self.atomic():
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (STORE_ID_KEY, new)
                )
        except StoreError:  # a read-only store that never got an id: its bundles say so
            return "unrecorded"
        return str(self._rows("SELECT value FROM meta WHERE key = ?", (STORE_ID_KEY,))[0][0])

    def complete_commits(self, repos: Sequence[Repo]) -> list[CommitKey]:
        """Every complete commit of these repos, oldest first within a repo."""
        out: list[CommitKey] = []
        for repo in repos:
            out.extend(
                CommitKey(repo.type, repo.name, sha)
                for (sha,) in self._rows(
                    "SELECT sha FROM commits WHERE repo_id = ? AND complete = 1 ORDER BY recorded_at, sha", (repo.id,)
                )
            )
        return out

    def full_commit(self, repo: Repo, sha: str) -> FullCommit:
        """A complete commit with everything a bundle carries about it."""
        row = self._rows(
            f"SELECT source, recorded_at, {_META_COLUMNS} FROM commits WHERE repo_id = ? AND sha = ?", (repo.id, sha)
        )[0]
        filters = [
            r[0]
            for r in self._rows(
                "SELECT filter_key FROM commit_filters WHERE repo_id = ? AND sha = ? ORDER BY filter_key",
                (repo.id, sha),
            )
        ]
        files = [
            FileRecord(r[0], r[1], r[2], r[3], bool(r[4]))
            for r in self._rows(
                "SELECT path, size, sha256, git_oid, lfs FROM files WHERE repo_id = ? AND commit_sha = ? ORDER BY path",
                (repo.id, sha),
            )
        ]
        meta = _meta(row[2:])
        known = meta if meta != CommitMeta() else None
        return FullCommit(repo.type, repo.name, sha, row[0], row[1], tuple(filters), tuple(files), known)

    def blobs_of(self, repo: Repo, shas: Sequence[str]) -> set[str]:
        """The sha256 of every file of these commits of ``repo``."""
        found = self._each(
            f"SELECT DISTINCT sha256 FROM files WHERE repo_id = {int(repo.id)} AND commit_sha IN ({{marks}})",
            list(shas),
        )
        return {row[0] for row in found}

    def blob_sizes(self, sha256s: Iterable[str]) -> dict[str, int]:
        return dict(self._each("SELECT sha256, size FROM blobs WHERE sha256 IN ({marks})", sorted(set(sha256s))))

    def all_blob_sha256s(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT sha256 FROM blobs ORDER BY sha256")]

    def add_filters(self, repo: Repo, sha: str, filters: Iterable[str]) -> None:
        with self.atomic():
            self.conn.executemany(
                "INSERT INTO commit_filters (repo_id, sha, filter_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(repo.id, sha, key) for key in filters],
            )

    # -- exports and imports ---------------------------------------------------------------------
    def record_export(self, record: ExportRecord) -> None:
        with self.atomic():
            self.conn.execute(
                "INSERT INTO exports (id, created_at, dest, digest, base, state_json, blobs, bytes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.created_at,
                    record.dest,
                    record.digest,
                    record.base,
                    json.dumps([list(k) for k in record.state]),
                    record.blobs,
                    record.bytes,
                ),
            )

    def last_export(self) -> ExportRecord | None:
        # rowid: insertion order (SQLite's implicit column; the PostgreSQL schema names one for this table).
        rows = self._rows(
            "SELECT id, created_at, dest, digest, base, state_json, blobs, bytes FROM exports "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1"
        )
        return _export(rows[0]) if rows else None

    def imported(self, digest: str) -> bool:
        return bool(self._rows("SELECT 1 FROM imports WHERE digest = ?", (digest,)))

    def record_import(
        self, digest: str, bundle_id: str, exported_at: str, commits: int, blobs: int, nbytes: int
    ) -> None:
        with self.atomic():
            self.conn.execute(
                "INSERT INTO imports (digest, bundle_id, exported_at, imported_at, commits, blobs_copied, "
                "bytes_copied) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO UPDATE SET "
                "bundle_id = excluded.bundle_id, exported_at = excluded.exported_at, "
                "imported_at = excluded.imported_at, commits = excluded.commits, "
                "blobs_copied = excluded.blobs_copied, bytes_copied = excluded.bytes_copied",
                (digest, bundle_id, exported_at, utcnow(), commits, blobs, nbytes),
            )


def _export(row: Sequence[Any]) -> ExportRecord:
    state = tuple(CommitKey(*item) for item in json.loads(row[5]))
    return ExportRecord(row[0], row[1], row[2], row[3], row[4], state, row[6], row[7])
