"""The SQLite index (``home/index.sqlite``): the single source of truth about what the store holds.

All SQL of hubmirror lives here. Schema changes are migrations applied at open. A multi-row change is
one transaction, so readers (who start from refs and complete commits) never see half a snapshot.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StoreError
from .models import Access, BlobRecord, CommitRecord, FileRecord, Ref, Repo

if TYPE_CHECKING:
    import sqlite_utils

# Bumped with every migration; a store at this user_version needs no migration check. Reads never import
# sqlite-utils (it pulls in numpy and costs ~100 ms of start-up that `hubmirror resolve` cannot afford).
SCHEMA_VERSION = 4


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript("""
    CREATE TABLE repos (
        id INTEGER PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL,
        private INTEGER NOT NULL DEFAULT 0, card_json TEXT, created_at TEXT NOT NULL,
        UNIQUE (type, name));
    CREATE TABLE aliases (
        type TEXT NOT NULL, alias TEXT NOT NULL, repo_id INTEGER NOT NULL REFERENCES repos(id),
        PRIMARY KEY (type, alias));
    CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, git_sha1 TEXT, verified_at TEXT NOT NULL);
    CREATE INDEX blobs_git_sha1 ON blobs (git_sha1);
    CREATE TABLE commits (
        repo_id INTEGER NOT NULL REFERENCES repos(id), sha TEXT NOT NULL,
        complete INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL, recorded_at TEXT NOT NULL,
        PRIMARY KEY (repo_id, sha));
    CREATE TABLE commit_filters (
        repo_id INTEGER NOT NULL, sha TEXT NOT NULL, filter_key TEXT NOT NULL,
        PRIMARY KEY (repo_id, sha, filter_key));
    CREATE TABLE files (
        repo_id INTEGER NOT NULL, commit_sha TEXT NOT NULL, path TEXT NOT NULL,
        size INTEGER NOT NULL, sha256 TEXT NOT NULL REFERENCES blobs(sha256),
        git_oid TEXT NOT NULL, lfs INTEGER NOT NULL,
        PRIMARY KEY (repo_id, commit_sha, path));
    CREATE INDEX files_sha256 ON files (sha256);
    CREATE TABLE refs (
        repo_id INTEGER NOT NULL REFERENCES repos(id), name TEXT NOT NULL, commit_sha TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (repo_id, name));
    CREATE TABLE sync_runs (
        id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, outcome TEXT,
        repos_ok INTEGER DEFAULT 0, repos_failed INTEGER DEFAULT 0,
        files_fetched INTEGER DEFAULT 0, bytes_fetched INTEGER DEFAULT 0,
        files_deduped INTEGER DEFAULT 0, bytes_deduped INTEGER DEFAULT 0,
        requests INTEGER DEFAULT 0, duration REAL, errors_json TEXT);
    """)


def m002_push(db: sqlite_utils.Database) -> None:
    db.executescript("""
    CREATE TABLE local_hashes (
        path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL, git_sha1 TEXT NOT NULL);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY, folder TEXT NOT NULL, repo TEXT NOT NULL, type TEXT NOT NULL,
        revision TEXT NOT NULL, created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL DEFAULT 0, last_error TEXT);
    CREATE UNIQUE INDEX outbox_one_per_target ON outbox (folder, repo, type, revision);
    CREATE TABLE push_state (
        folder TEXT NOT NULL, repo TEXT NOT NULL, type TEXT NOT NULL, revision TEXT NOT NULL,
        last_commit TEXT, last_pushed_at TEXT, last_error TEXT, last_error_at TEXT,
        files_pushed INTEGER DEFAULT 0, bytes_pushed INTEGER DEFAULT 0,
        PRIMARY KEY (folder, repo, type, revision));
    """)


def m003_meta(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def m004_gated(db: sqlite_utils.Database) -> None:
    # Upstream's gate ("auto" | "manual"; NULL: not gated). Before this, sync did not record the private
    # flag either: repos it mirrored are re-flagged by their next sync.
    db.execute("ALTER TABLE repos ADD COLUMN gated TEXT")


def _apply_migrations(db: sqlite_utils.Database) -> None:
    from sqlite_utils.migrations import Migrations

    migrations = Migrations("hubmirror")
    for step in (m001_initial, m002_push, m003_meta, m004_gated):
        migrations()(step)
    migrations.apply(db)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


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


def _repo(row: Sequence[Any]) -> Repo:
    return Repo(row[0], row[1], row[2], bool(row[3]), row[4] or None)


class Index:
    """The index of one store. Open with :func:`open_index`; close when done."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        self.conn = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        self._db: sqlite_utils.Database | None = None
        self.conn.execute("PRAGMA busy_timeout = 60000")
        self.conn.execute(f"PRAGMA synchronous = {'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} has index schema {version}, newer than this hubmirror understands "
                             f"({SCHEMA_VERSION}); upgrade hubmirror")
        if version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Bring the schema up to date; safe when several processes open a fresh store at once."""
        if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("BEGIN IMMEDIATE")  # one migrator at a time; the others wait (busy_timeout)
        try:
            if self.conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                _apply_migrations(self.db)  # nested in our transaction: sqlite-utils uses savepoints
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

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    # -- repos -----------------------------------------------------------------------------------
    def find_repo(self, repo_type: str, name: str) -> Repo | None:
        """The repo by canonical name or alias, or None."""
        rows = self._rows(
            "SELECT id, type, name, private, gated FROM repos WHERE type = ? AND name = ? "
            "UNION ALL SELECT r.id, r.type, r.name, r.private, r.gated FROM aliases a JOIN repos r "
            "ON r.id = a.repo_id WHERE a.type = ? AND a.alias = ? LIMIT 1",
            (repo_type, name, repo_type, name))
        return _repo(rows[0]) if rows else None

    def list_repos(self, repo_type: str | None = None) -> list[Repo]:
        sql = "SELECT id, type, name, private, gated FROM repos"
        params: tuple[Any, ...] = ()
        if repo_type:
            sql, params = sql + " WHERE type = ?", (repo_type,)
        return [_repo(r) for r in self._rows(sql + " ORDER BY type, name", params)]

    def aliases(self, repo: Repo) -> list[str]:
        return [r[0] for r in self._rows("SELECT alias FROM aliases WHERE repo_id = ? ORDER BY alias",
                                         (repo.id,))]

    def _ensure_repo(self, repo_type: str, name: str, access: Access | None) -> int:
        """The repo's id, creating it if needed; ``access`` (when given) replaces its flags."""
        rows = self._rows("SELECT id FROM repos WHERE type = ? AND name = ?", (repo_type, name))
        if rows:
            if access is not None:
                self.conn.execute("UPDATE repos SET private = ?, gated = ? WHERE id = ?",
                                  (int(access.private), access.gated, rows[0][0]))
            return int(rows[0][0])
        # A repo renamed back and forth: the new canonical name must not also be an alias.
        self.conn.execute("DELETE FROM aliases WHERE type = ? AND alias = ?", (repo_type, name))
        access = access or Access()
        cursor = self.conn.execute(
            "INSERT INTO repos (type, name, private, gated, created_at) VALUES (?, ?, ?, ?, ?)",
            (repo_type, name, int(access.private), access.gated, utcnow()))
        return int(cursor.lastrowid)

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
                    self.conn.execute(f"UPDATE OR IGNORE {table} SET repo_id = ? WHERE repo_id = ?",
                                    (target, old_id))
                    self.conn.execute(f"DELETE FROM {table} WHERE repo_id = ?", (old_id,))
                self.conn.execute("UPDATE aliases SET repo_id = ? WHERE repo_id = ?", (target, old_id))
                self.conn.execute("DELETE FROM repos WHERE id = ?", (old_id,))
            self.conn.execute("INSERT OR REPLACE INTO aliases (type, alias, repo_id) VALUES (?, ?, ?)",
                            (repo_type, alias, target))

    # -- blobs -----------------------------------------------------------------------------------
    def sha256_for_git_sha1(self, git_sha1: str) -> str | None:
        rows = self._rows("SELECT sha256 FROM blobs WHERE git_sha1 = ? LIMIT 1", (git_sha1,))
        return rows[0][0] if rows else None

    def sha256s_for_git_sha1s(self, git_sha1s: Sequence[str]) -> dict[str, str]:
        """git sha1 → sha256 for the ones the index knows, in a few queries whatever the count."""
        out: dict[str, str] = {}
        unique = list(dict.fromkeys(git_sha1s))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
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
            [(b.sha256, b.size, b.git_sha1, utcnow()) for b in blobs])

    def all_blobs(self) -> list[BlobRecord]:
        return [BlobRecord(r[0], r[1], r[2]) for r in self._rows("SELECT sha256, size, git_sha1 FROM blobs")]

    # -- commits ---------------------------------------------------------------------------------
    def commit_complete(self, repo_type: str, name: str, sha: str, filter_key: str | None = None) -> bool:
        """True when the commit is fully mirrored (for ``filter_key``'s patterns, when given)."""
        repo = self.find_repo(repo_type, name)
        if repo is None:
            return False
        if filter_key is None:
            return bool(self._rows("SELECT 1 FROM commits WHERE repo_id = ? AND sha = ? AND complete = 1",
                                   (repo.id, sha)))
        return bool(self._rows(
            "SELECT 1 FROM commits c JOIN commit_filters f ON f.repo_id = c.repo_id AND f.sha = c.sha "
            "WHERE c.repo_id = ? AND c.sha = ? AND c.complete = 1 AND f.filter_key = ?",
            (repo.id, sha, filter_key)))

    def publish_commit(self, repo_type: str, name: str, sha: str, files: Iterable[FileRecord],
                       blobs: Iterable[BlobRecord], *, source: str, filter_key: str | None = None,
                       access: Access | None = None, card_json: str | None = None) -> None:
        """Record a commit's blobs and files and mark it complete, in one transaction.

        The caller has made every blob durable first. Files add to what the commit already had (a
        second pattern set widens a snapshot; nothing is removed). ``access`` sets the repo's flags in
        the same transaction, so a new private repo is never visible without them."""
        now = utcnow()
        with self.atomic():
            repo_id = self._ensure_repo(repo_type, name, access)
            if card_json is not None:
                self.conn.execute("UPDATE repos SET card_json = ? WHERE id = ?", (card_json, repo_id))
            self._upsert_blobs(blobs)
            self.conn.executemany(
                "INSERT OR REPLACE INTO files (repo_id, commit_sha, path, size, sha256, git_oid, lfs) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(repo_id, sha, f.path, f.size, f.sha256, f.git_oid, int(f.lfs)) for f in files])
            self.conn.execute(
                "INSERT INTO commits (repo_id, sha, complete, source, recorded_at) VALUES (?, ?, 1, ?, ?) "
                "ON CONFLICT (repo_id, sha) DO UPDATE SET complete = 1", (repo_id, sha, source, now))
            if filter_key is not None:
                self.conn.execute("INSERT OR IGNORE INTO commit_filters VALUES (?, ?, ?)",
                                (repo_id, sha, filter_key))

    def files(self, repo: Repo, sha: str) -> list[FileRecord]:
        return [FileRecord(r[0], r[1], r[2], r[3], bool(r[4])) for r in self._rows(
            "SELECT path, size, sha256, git_oid, lfs FROM files WHERE repo_id = ? AND commit_sha = ? "
            "ORDER BY path", (repo.id, sha))]

    def commits(self, repo: Repo) -> list[CommitRecord]:
        return [CommitRecord(r[0], r[1], r[2], r[3], r[4] or 0) for r in self._rows(
            "SELECT c.sha, c.recorded_at, c.source, COUNT(f.path), SUM(f.size) FROM commits c "
            "LEFT JOIN files f ON f.repo_id = c.repo_id AND f.commit_sha = c.sha "
            "WHERE c.repo_id = ? AND c.complete = 1 GROUP BY c.sha ORDER BY c.recorded_at, c.sha",
            (repo.id,))]

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
            self.conn.execute("INSERT OR REPLACE INTO refs (repo_id, name, commit_sha, updated_at) "
                            "VALUES (?, ?, ?, ?)", (repo.id, ref, sha, utcnow()))
            return True

    def ref(self, repo: Repo, name: str) -> str | None:
        rows = self._rows("SELECT commit_sha FROM refs WHERE repo_id = ? AND name = ?", (repo.id, name))
        return rows[0][0] if rows else None

    def commit_shas(self, repo: Repo) -> list[str]:
        return [r[0] for r in self._rows("SELECT sha FROM commits WHERE repo_id = ? AND complete = 1",
                                         (repo.id,))]

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

    def repo_card(self, repo: Repo) -> str | None:
        rows = self._rows("SELECT card_json FROM repos WHERE id = ?", (repo.id,))
        return rows[0][0] if rows else None

    def refs(self, repo: Repo) -> list[Ref]:
        return [Ref(r[0], r[1], r[2]) for r in self._rows(
            "SELECT name, commit_sha, updated_at FROM refs WHERE repo_id = ? ORDER BY name", (repo.id,))]

    # -- history and statistics ------------------------------------------------------------------
    def start_sync_run(self) -> int:
        cursor = self.conn.execute("INSERT INTO sync_runs (started_at) VALUES (?)", (utcnow(),))
        self.conn.commit()
        return int(cursor.lastrowid)

    def finish_sync_run(self, run_id: int, *, outcome: str, repos_ok: int, repos_failed: int,
                        files_fetched: int, bytes_fetched: int, files_deduped: int, bytes_deduped: int,
                        requests: int, duration: float, errors: list[dict[str, Any]]) -> None:
        with self.atomic():
            self.conn.execute(
                "UPDATE sync_runs SET finished_at = ?, outcome = ?, repos_ok = ?, repos_failed = ?, "
                "files_fetched = ?, bytes_fetched = ?, files_deduped = ?, bytes_deduped = ?, requests = ?, "
                "duration = ?, errors_json = ? WHERE id = ?",
                (utcnow(), outcome, repos_ok, repos_failed, files_fetched, bytes_fetched, files_deduped,
                 bytes_deduped, requests, duration, json.dumps(errors), run_id))

    def sync_runs(self, limit: int = 10) -> list[SyncRunRecord]:
        rows = self._rows(
            "SELECT id, started_at, finished_at, outcome, repos_ok, repos_failed, files_fetched, "
            "bytes_fetched, files_deduped, bytes_deduped, requests, duration, errors_json "
            "FROM sync_runs ORDER BY id DESC LIMIT ?", (limit,))
        return [SyncRunRecord(*r[:12], errors=json.loads(r[12]) if r[12] else []) for r in rows]

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
            "ON c.repo_id = f.repo_id AND c.sha = f.commit_sha WHERE c.complete = 1")[0][0]
        repos = self._rows("SELECT COUNT(*) FROM repos")[0][0]
        commits = self._rows("SELECT COUNT(*) FROM commits WHERE complete = 1")[0][0]
        return StoreStats(blobs, stored, logical, repos, commits)


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


class PushBook:
    """The push side of the index: the local hash cache, the outbox and per-target push state."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def cached_hashes(self, paths: Iterable[str]) -> dict[str, tuple[int, int, str, str]]:
        """path → (size, mtime_ns, sha256, git_sha1) for the paths hashed before."""
        out = {}
        for path in paths:
            rows = self.index._rows("SELECT size, mtime_ns, sha256, git_sha1 FROM local_hashes WHERE path = ?",
                                    (path,))
            if rows:
                out[path] = tuple(rows[0])
        return out

    def save_hashes(self, rows: Iterable[tuple[str, int, int, str, str]]) -> None:
        with self.index.atomic():
            self.index.conn.executemany("INSERT OR REPLACE INTO local_hashes VALUES (?, ?, ?, ?, ?)", rows)

    def enqueue(self, folder: str, repo: str, repo_type: str, revision: str, when: float) -> None:
        """Queue a push of ``folder``; a target has at most one pending job (it pushes the folder's state
        at the time it runs, so later changes join the waiting job)."""
        with self.index.atomic():
            self.index.conn.execute(
                "INSERT INTO outbox (folder, repo, type, revision, created_at, next_attempt) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (folder, repo, type, revision) "
                "DO UPDATE SET next_attempt = MIN(next_attempt, excluded.next_attempt)",
                (folder, repo, repo_type, revision, utcnow(), when))

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
                (next_attempt, error, job.id))
            self._state(job, "last_error = ?, last_error_at = ?", (error, utcnow()))

    def job_done(self, job: PushJob, commit: str | None, files: int, nbytes: int) -> None:
        with self.index.atomic():
            self.index.conn.execute("DELETE FROM outbox WHERE id = ?", (job.id,))
            if commit is not None:
                self._state(job, "last_commit = ?, last_pushed_at = ?, last_error = NULL, "
                                 "files_pushed = files_pushed + ?, bytes_pushed = bytes_pushed + ?",
                            (commit, utcnow(), files, nbytes))
            else:
                self._state(job, "last_error = NULL", ())

    def _state(self, job: PushJob, assignments: str, params: tuple[Any, ...]) -> None:
        key = (job.folder, job.repo, job.type, job.revision)
        self.index.conn.execute("INSERT OR IGNORE INTO push_state (folder, repo, type, revision) "
                                "VALUES (?, ?, ?, ?)", key)
        self.index.conn.execute(f"UPDATE push_state SET {assignments} WHERE folder = ? AND repo = ? "
                                "AND type = ? AND revision = ?", (*params, *key))

    def states(self) -> list[dict[str, Any]]:
        cols = ("folder", "repo", "type", "revision", "last_commit", "last_pushed_at", "last_error",
                "last_error_at", "files_pushed", "bytes_pushed")
        rows = self.index._rows(f"SELECT {', '.join(cols)} FROM push_state ORDER BY folder")
        return [dict(zip(cols, r)) for r in rows]


def open_index(path: Path) -> Index:
    return Index(path)
