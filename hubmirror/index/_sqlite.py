"""The SQLite backend of the index (``home/index.sqlite``, WAL): the single source of truth about what the
store holds. The only module that opens SQLite.

Schema changes are migrations applied at open. A multi-row change is one transaction, so readers (who start
from refs and complete commits) never see half a snapshot. Every SQLite failure leaves as one of our errors:
a damaged file as :class:`StoreError` naming it, a busy database as :class:`LockTimeoutError`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LockTimeoutError, StoreError
from ..models import Access, BlobRecord, CommitRecord, FileRecord, Ref, Repo
from ._records import StoreStats, SyncRunRecord
from ._schema import SCHEMA_VERSION, apply_migrations

if TYPE_CHECKING:
    import sqlite_utils


NEXT_SYNC_KEY = "scheduler.next_run"  # meta: when the scheduler plans the next sync (shown by status)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _repo(row: Sequence[Any]) -> Repo:
    return Repo(row[0], row[1], row[2], bool(row[3]), row[4] or None)


def _rowid(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None  # set by every INSERT
    return cursor.lastrowid


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


def translate_error(exc: sqlite3.Error, path: Path) -> Exception:
    """A SQLite failure as the error the user can act on."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return LockTimeoutError(f"the index {path} stayed locked by another process ({text}); try again")
    if "readonly" in text or "read-only" in text:
        return StoreError(f"cannot write the index {path}: it is read-only (only read commands work there)")
    if "disk is full" in text or "database or disk is full" in text:
        return StoreError(f"disk full while writing the index {path}; free space and run again")
    if "unable to open" in text:
        return StoreError(f"cannot open the index {path} ({text})")
    return StoreError(
        f"the index {path} is damaged ({text}); restore it from a backup or run "
        "'hubmirror verify' to see what is affected"
    )


class _Connection:
    """sqlite3's connection with every failure translated (the index's one door to SQLite)."""

    def __init__(self, path: Path, raw: sqlite3.Connection) -> None:
        self.path, self.raw = path, raw

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._translated():
            return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        with self._translated():
            return self.raw.executemany(sql, rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._translated():
            return self.raw.execute(sql, params).fetchall()

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def commit(self) -> None:
        with self._translated():
            self.raw.commit()

    def close(self) -> None:
        self.raw.close()


class Index:
    """The index of one store. Open with :func:`open_index`; close when done."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        try:
            raw = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        except sqlite3.Error as exc:
            raise translate_error(exc, path) from exc
        self.conn = _Connection(path, raw)
        self._db: sqlite_utils.Database | None = None
        try:
            self._open(synchronous)
        except BaseException:
            raw.close()
            raise

    def _open(self, synchronous: str) -> None:
        path = self.path
        self.conn.execute("PRAGMA busy_timeout = 60000")
        self.conn.execute(f"PRAGMA synchronous = {'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
        version = self.conn.rows("PRAGMA user_version")[0][0]
        if version:
            self.conn.rows("SELECT count(*) FROM repos")  # a damaged file fails here, not mid-command
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has index schema {version}, newer than this hubmirror understands "
                f"({SCHEMA_VERSION}); upgrade hubmirror"
            )
        if version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Bring the schema up to date; safe when several processes open a fresh store at once."""
        if self.conn.rows("PRAGMA journal_mode")[0][0] != "wal":
            self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("BEGIN IMMEDIATE")  # one migrator at a time; the others wait (busy_timeout)
        try:
            if self.conn.rows("PRAGMA user_version")[0][0] < SCHEMA_VERSION:
                try:
                    apply_migrations(self.db)  # nested in our transaction: sqlite-utils uses savepoints
                except sqlite3.Error as exc:
                    raise translate_error(exc, self.path) from exc
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE: take the write lock up front, so a read-then-write
        never fails on a snapshot another writer moved past). Nested calls join the outer one."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, for migrations (imported only when they run)."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn.raw)
        return self._db

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.rows(sql, params)

    # -- repos -----------------------------------------------------------------------------------
    def find_repo(self, repo_type: str, name: str) -> Repo | None:
        """The repo by canonical name or alias, or None."""
        rows = self._rows(
            "SELECT id, type, name, private, gated FROM repos WHERE type = ? AND name = ? "
            "UNION ALL SELECT r.id, r.type, r.name, r.private, r.gated FROM aliases a JOIN repos r "
            "ON r.id = a.repo_id WHERE a.type = ? AND a.alias = ? LIMIT 1",
            (repo_type, name, repo_type, name),
        )
        return _repo(rows[0]) if rows else None

    def list_repos(self, repo_type: str | None = None) -> list[Repo]:
        sql = "SELECT id, type, name, private, gated FROM repos"
        params: tuple[Any, ...] = ()
        if repo_type:
            sql, params = sql + " WHERE type = ?", (repo_type,)
        return [_repo(r) for r in self._rows(sql + " ORDER BY type, name", params)]

    def aliases(self, repo: Repo) -> list[str]:
        return [r[0] for r in self._rows("SELECT alias FROM aliases WHERE repo_id = ? ORDER BY alias", (repo.id,))]

    def _ensure_repo(self, repo_type: str, name: str, access: Access | None) -> int:
        """The repo's id, creating it if needed; ``access`` (when given) replaces its flags."""
        rows = self._rows("SELECT id FROM repos WHERE type = ? AND name = ?", (repo_type, name))
        if rows:
            if access is not None:
                self.conn.execute(
                    "UPDATE repos SET private = ?, gated = ? WHERE id = ?",
                    (int(access.private), access.gated, rows[0][0]),
                )
            return int(rows[0][0])
        # A repo renamed back and forth: the new canonical name must not also be an alias.
        self.conn.execute("DELETE FROM aliases WHERE type = ? AND alias = ?", (repo_type, name))
        access = access or Access()
        cursor = self.conn.execute(
            "INSERT INTO repos (type, name, private, gated, created_at) VALUES (?, ?, ?, ?, ?)",
            (repo_type, name, int(access.private), access.gated, utcnow()),
        )
        return _rowid(cursor)

    def set_access(self, repo_type: str, name: str, access: Access) -> bool:
        """Replace the private/gated flags of a repo the index has; returns True if they changed."""
        with self.atomic():
            repo = self.find_repo(repo_type, name)
            if repo is None or (repo.private, repo.gated) == (access.private, access.gated):
                return False
            self._ensure_repo(repo_type, repo.name, access)
            return True

    def add_alias(self, repo_type: str, alias: str, canonical: str) -> None:
        """Record that ``alias`` (a listed or old name) means the repo now called ``canonical``.

        If ``alias`` was itself a mirrored repo (mirrored before the rename), its commits and refs move
        to the canonical repo, so nothing mirrored under the old name is lost."""
        with self.atomic():
            target = self._ensure_repo(repo_type, canonical, None)
            old = self._rows("SELECT id FROM repos WHERE type = ? AND name = ?", (repo_type, alias))
            if old and old[0][0] != target:
                old_id = old[0][0]
                for table in ("commits", "commit_filters", "files", "refs"):
                    self.conn.execute(f"UPDATE OR IGNORE {table} SET repo_id = ? WHERE repo_id = ?", (target, old_id))
                    self.conn.execute(f"DELETE FROM {table} WHERE repo_id = ?", (old_id,))
                self.conn.execute("UPDATE aliases SET repo_id = ? WHERE repo_id = ?", (target, old_id))
                self.conn.execute("DELETE FROM repos WHERE id = ?", (old_id,))
            self.conn.execute(
                "INSERT OR REPLACE INTO aliases (type, alias, repo_id) VALUES (?, ?, ?)", (repo_type, alias, target)
            )

    # -- blobs -----------------------------------------------------------------------------------
    def sha256_for_git_sha1(self, git_sha1: str) -> str | None:
        rows = self._rows("SELECT sha256 FROM blobs WHERE git_sha1 = ? LIMIT 1", (git_sha1,))
        return rows[0][0] if rows else None

    def sha256s_for_git_sha1s(self, git_sha1s: Sequence[str]) -> dict[str, str]:
        """git sha1 → sha256 for the ones the index knows, in a few queries whatever the count."""
        out: dict[str, str] = {}
        unique = list(dict.fromkeys(git_sha1s))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(self._rows(f"SELECT git_sha1, sha256 FROM blobs WHERE git_sha1 IN ({marks})", chunk))
        return out

    def has_blob(self, sha256: str) -> bool:
        return bool(self._rows("SELECT 1 FROM blobs WHERE sha256 = ?", (sha256,)))

    def add_blobs(self, blobs: Iterable[BlobRecord]) -> None:
        """Record durable blobs that no commit names yet (a failed revision's downloads), for dedupe."""
        with self.atomic():
            self._upsert_blobs(blobs)

    def _upsert_blobs(self, blobs: Iterable[BlobRecord]) -> None:
        self.conn.executemany(
            "INSERT INTO blobs (sha256, size, git_sha1, verified_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (sha256) DO UPDATE SET git_sha1 = COALESCE(blobs.git_sha1, excluded.git_sha1)",
            [(b.sha256, b.size, b.git_sha1, utcnow()) for b in blobs],
        )

    # -- commits ---------------------------------------------------------------------------------
    def commit_complete(self, repo_type: str, name: str, sha: str, filter_key: str | None = None) -> bool:
        """True when the commit is fully mirrored (for ``filter_key``'s patterns, when given)."""
        repo = self.find_repo(repo_type, name)
        if repo is None:
            return False
        if filter_key is None:
            return bool(
                self._rows("SELECT 1 FROM commits WHERE repo_id = ? AND sha = ? AND complete = 1", (repo.id, sha))
            )
        return bool(
            self._rows(
                "SELECT 1 FROM commits c JOIN commit_filters f ON f.repo_id = c.repo_id AND f.sha = c.sha "
                "WHERE c.repo_id = ? AND c.sha = ? AND c.complete = 1 AND f.filter_key = ?",
                (repo.id, sha, filter_key),
            )
        )

    def publish_commit(
        self,
        repo_type: str,
        name: str,
        sha: str,
        files: Iterable[FileRecord],
        blobs: Iterable[BlobRecord],
        *,
        source: str,
        filter_key: str | None = None,
        access: Access | None = None,
    ) -> None:
        """Record a commit's blobs and files and mark it complete, in one transaction.

        The caller has made every blob durable first. Files add to what the commit already had (a
        second pattern set widens a snapshot; nothing is removed). ``access`` sets the repo's flags in
        the same transaction, so a new private repo is never visible without them."""
        now = utcnow()
        with self.atomic():
            repo_id = self._ensure_repo(repo_type, name, access)
            self._upsert_blobs(blobs)
            self.conn.executemany(
                "INSERT OR REPLACE INTO files (repo_id, commit_sha, path, size, sha256, git_oid, lfs) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(repo_id, sha, f.path, f.size, f.sha256, f.git_oid, int(f.lfs)) for f in files],
            )
            self.conn.execute(
                "INSERT INTO commits (repo_id, sha, complete, source, recorded_at) VALUES (?, ?, 1, ?, ?) "
                "ON CONFLICT (repo_id, sha) DO UPDATE SET complete = 1",
                (repo_id, sha, source, now),
            )
            if filter_key is not None:
                self.conn.execute("INSERT OR IGNORE INTO commit_filters VALUES (?, ?, ?)", (repo_id, sha, filter_key))

    def files(self, repo: Repo, sha: str) -> list[FileRecord]:
        return [
            FileRecord(r[0], r[1], r[2], r[3], bool(r[4]))
            for r in self._rows(
                "SELECT path, size, sha256, git_oid, lfs FROM files WHERE repo_id = ? AND commit_sha = ? ORDER BY path",
                (repo.id, sha),
            )
        ]

    def commits(self, repo: Repo) -> list[CommitRecord]:
        return [
            CommitRecord(r[0], r[1], r[2], r[3], r[4] or 0)
            for r in self._rows(
                "SELECT c.sha, c.recorded_at, c.source, COUNT(f.path), SUM(f.size) FROM commits c "
                "LEFT JOIN files f ON f.repo_id = c.repo_id AND f.commit_sha = c.sha "
                "WHERE c.repo_id = ? AND c.complete = 1 GROUP BY c.sha ORDER BY c.recorded_at, c.sha",
                (repo.id,),
            )
        ]

    # -- refs ------------------------------------------------------------------------------------
    def set_ref(self, repo_type: str, name: str, ref: str, sha: str) -> bool:
        """Point ``ref`` at a complete commit; returns True if it moved. Refs move last."""
        repo = self.find_repo(repo_type, name)
        if repo is None:
            raise KeyError(f"{repo_type} {name} is not in the index")
        with self.atomic():
            current = self._rows("SELECT commit_sha FROM refs WHERE repo_id = ? AND name = ?", (repo.id, ref))
            if current and current[0][0] == sha:
                return False
            self.conn.execute(
                "INSERT OR REPLACE INTO refs (repo_id, name, commit_sha, updated_at) VALUES (?, ?, ?, ?)",
                (repo.id, ref, sha, utcnow()),
            )
            return True

    def ref(self, repo: Repo, name: str) -> str | None:
        rows = self._rows("SELECT commit_sha FROM refs WHERE repo_id = ? AND name = ?", (repo.id, name))
        return rows[0][0] if rows else None

    def commit_shas(self, repo: Repo) -> list[str]:
        return [r[0] for r in self._rows("SELECT sha FROM commits WHERE repo_id = ? AND complete = 1", (repo.id,))]

    def data_version(self) -> int:
        """Changes whenever another connection commits: lets readers cache until the index changes."""
        return int(self._rows("PRAGMA data_version")[0][0])

    def create_repo(self, repo_type: str, name: str, private: bool) -> bool:
        """Create an empty repo; returns False if it (or an alias of that name) exists."""
        with self.atomic():
            if self.find_repo(repo_type, name) is not None:
                return False
            self._ensure_repo(repo_type, name, Access(private))
            return True

    def refs(self, repo: Repo) -> list[Ref]:
        return [
            Ref(r[0], r[1], r[2])
            for r in self._rows(
                "SELECT name, commit_sha, updated_at FROM refs WHERE repo_id = ? ORDER BY name", (repo.id,)
            )
        ]

    # -- history and statistics ------------------------------------------------------------------
    def start_sync_run(self) -> int:
        cursor = self.conn.execute("INSERT INTO sync_runs (started_at) VALUES (?)", (utcnow(),))
        self.conn.commit()
        return _rowid(cursor)

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
                self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def stats(self) -> StoreStats:
        blobs, stored = self._rows("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs")[0]
        logical = self._rows(
            "SELECT COALESCE(SUM(f.size), 0) FROM files f JOIN commits c "
            "ON c.repo_id = f.repo_id AND c.sha = f.commit_sha WHERE c.complete = 1"
        )[0][0]
        repos = self._rows("SELECT COUNT(*) FROM repos")[0][0]
        commits = self._rows("SELECT COUNT(*) FROM commits WHERE complete = 1")[0][0]
        return StoreStats(blobs, stored, logical, repos, commits)


def open_index(path: Path) -> Index:
    return Index(path)
