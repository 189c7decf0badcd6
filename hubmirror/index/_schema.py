"""The index schema as ordered migration steps, one list for both backends.

Each step is written once, in SQLite's spelling. SQLite applies the steps with :func:`apply_sqlite_migrations`
(recording them by name in ``_sqlite_migrations``, the table sqlite-utils' ``Migrations`` kept before: it
imports pandas when installed, half a second for every new store); PostgreSQL applies the same steps
through the runner in ``_postgres``, each step's text translated by :func:`postgres_ddl` (or, where one text
cannot serve both, the step's own ``postgres`` variant written next to it).
"""

from __future__ import annotations

import datetime
import re
import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str  # recorded by both runners: never rename a step that shipped
    sql: str  # SQLite's spelling; PostgreSQL runs postgres_ddl(sql)
    postgres: str | None = None  # a variant for PostgreSQL, where one text cannot serve both (same spelling)

    def postgres_sql(self) -> str:
        return postgres_ddl(self.postgres if self.postgres is not None else self.sql)


_M001 = """
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
"""

_M002 = """
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
"""

_M003 = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

# Upstream's gate ("auto" | "manual"; NULL: not gated). Before this, sync did not record the private flag
# either: repos it mirrored are re-flagged by their next sync.
_M004 = "ALTER TABLE repos ADD COLUMN gated TEXT"

# Ref kinds and history (gc's retention), and the records of bundles exported and imported.
_M005 = """
ALTER TABLE refs ADD COLUMN kind TEXT;
CREATE TABLE ref_history (
    repo_id INTEGER NOT NULL, name TEXT NOT NULL, commit_sha TEXT NOT NULL, moved_at TEXT NOT NULL);
CREATE INDEX ref_history_ref ON ref_history (repo_id, name, moved_at);
INSERT INTO ref_history (repo_id, name, commit_sha, moved_at)
    SELECT repo_id, name, commit_sha, updated_at FROM refs;
CREATE TABLE exports (
    id TEXT PRIMARY KEY, created_at TEXT NOT NULL, dest TEXT NOT NULL, digest TEXT NOT NULL,
    base TEXT, state_json TEXT NOT NULL, blobs INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE imports (
    digest TEXT PRIMARY KEY, bundle_id TEXT NOT NULL, exported_at TEXT NOT NULL, imported_at TEXT NOT NULL,
    commits INTEGER NOT NULL, blobs_copied INTEGER NOT NULL, bytes_copied INTEGER NOT NULL);
CREATE INDEX commits_source ON commits (source);
"""
# PostgreSQL has no implicit rowid: ref_history and exports, whose readers order by insertion (ORDER BY
# ... rowid DESC), get an identity column of that name there, so the query groups' SQL serves both.
_M005_POSTGRES = """
ALTER TABLE refs ADD COLUMN kind TEXT;
CREATE TABLE ref_history (
    repo_id INTEGER NOT NULL, name TEXT NOT NULL, commit_sha TEXT NOT NULL, moved_at TEXT NOT NULL,
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX ref_history_ref ON ref_history (repo_id, name, moved_at);
INSERT INTO ref_history (repo_id, name, commit_sha, moved_at)
    SELECT repo_id, name, commit_sha, updated_at FROM refs;
CREATE TABLE exports (
    id TEXT PRIMARY KEY, created_at TEXT NOT NULL, dest TEXT NOT NULL, digest TEXT NOT NULL,
    base TEXT, state_json TEXT NOT NULL, blobs INTEGER NOT NULL, bytes INTEGER NOT NULL,
    rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE imports (
    digest TEXT PRIMARY KEY, bundle_id TEXT NOT NULL, exported_at TEXT NOT NULL, imported_at TEXT NOT NULL,
    commits INTEGER NOT NULL, blobs_copied INTEGER NOT NULL, bytes_copied INTEGER NOT NULL);
CREATE INDEX commits_source ON commits (source);
"""

# Model-card metadata per commit, parsed once at publish (NULL: not parsed yet; '': none; the repo-level column
# was never written), and which serve caller uploaded which LFS object (a commit may name an object only its
# caller uploaded or can already read).
_M006 = """
ALTER TABLE commits ADD COLUMN card_json TEXT;
ALTER TABLE repos DROP COLUMN card_json;
CREATE TABLE lfs_uploads (
    sha256 TEXT NOT NULL, caller TEXT NOT NULL, uploaded_at TEXT NOT NULL, PRIMARY KEY (sha256, caller));
"""

# What the Hub's repo API tells about commits (parent, title, message, authors, date: from upstream for
# mirrored commits, from the push for local ones; NULL when not known) and the discussions and pull requests
# of local repos, each with its events (comments, status and title changes, commits).
_M007 = """
ALTER TABLE commits ADD COLUMN parent TEXT;
ALTER TABLE commits ADD COLUMN title TEXT;
ALTER TABLE commits ADD COLUMN message TEXT;
ALTER TABLE commits ADD COLUMN authors_json TEXT;
ALTER TABLE commits ADD COLUMN committed_at TEXT;
CREATE TABLE discussions (
    repo_id INTEGER NOT NULL REFERENCES repos(id), num INTEGER NOT NULL, title TEXT NOT NULL,
    author TEXT, is_pr INTEGER NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    base TEXT, merge_commit TEXT, PRIMARY KEY (repo_id, num));
CREATE TABLE discussion_events (
    id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL, num INTEGER NOT NULL, type TEXT NOT NULL,
    author TEXT, created_at TEXT NOT NULL, data_json TEXT NOT NULL);
CREATE INDEX discussion_events_of ON discussion_events (repo_id, num, id);
"""

# Pull-through (serve.pull_through): upstream's whole file listing of a pulled commit, of which the files table
# holds what was fetched so far. A JSON list of [path, size, git oid, lfs sha256 or null].
_M008 = """
CREATE TABLE listings (
    repo_id INTEGER NOT NULL, commit_sha TEXT NOT NULL, entries_json TEXT NOT NULL,
    PRIMARY KEY (repo_id, commit_sha));
"""

# The names are what sqlite-utils recorded for stores made before this list existed (the old function names).
STEPS: tuple[Step, ...] = (
    Step("m001_initial", _M001),
    Step("m002_push", _M002),
    Step("m003_meta", _M003),
    Step("m004_gated", _M004),
    Step("m005_airgap", _M005, postgres=_M005_POSTGRES),
    Step("m006_cards", _M006),
    Step("m007_repo_api", _M007),
    Step("m008_pull_through", _M008),
)
# Bumped with every step; a store at this version needs no migration check.
SCHEMA_VERSION = len(STEPS)


_POSTGRES_TYPES = (
    # SQLite's INTEGER PRIMARY KEY is an alias of the rowid: the id a row gets when none is given.
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    # SQLite's INTEGER holds 64 bits (file sizes, byte counts, nanosecond mtimes); PostgreSQL's only 32.
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    # SQLite compares and sorts text by its bytes (BINARY): so does the "C" collation, whatever the
    # database's locale, so ORDER BY path or name gives the same order on both backends.
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
    # SQLite never enforced these (foreign_keys is off), and the query groups rely on that in places
    # (verify reports a file row whose blob row is gone): PostgreSQL must behave the same.
    (re.compile(r"\s+REFERENCES\s+\w+\s*\(\w+\)"), ""),
)


def postgres_ddl(sql: str) -> str:
    """A step's SQLite DDL in PostgreSQL's types (see the table above for each rule and why)."""
    for pattern, replacement in _POSTGRES_TYPES:
        sql = pattern.sub(replacement, sql)
    return sql


# The table sqlite-utils' ``Migrations`` kept in the stores it migrated (same columns and index), so a store
# migrated by it and one migrated here read the same.
_SQLITE_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS [_sqlite_migrations] ([id] INTEGER PRIMARY KEY, [migration_set] TEXT, "
    "[name] TEXT, [applied_at] TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS [idx__sqlite_migrations_migration_set_name] "
    "ON [_sqlite_migrations] ([migration_set], [name])",
)
MIGRATION_SET = "hubmirror"


def apply_sqlite_migrations(conn: sqlite3.Connection) -> None:
    """Apply the steps a SQLite index lacks, each recorded by name, then set ``user_version``. Runs inside
    the caller's transaction (statements one by one: ``executescript`` would commit it)."""
    for sql in _SQLITE_MIGRATIONS:
        conn.execute(sql)
    applied = {
        row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (MIGRATION_SET,))
    }
    for step in STEPS:
        if step.name in applied:
            continue
        for statement in sqlite_statements(step.sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
            (MIGRATION_SET, step.name, str(datetime.datetime.now(datetime.UTC))),
        )
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def sqlite_statements(script: str) -> list[str]:
    """The statements of a script, split where SQLite says one is complete (a trigger body's semicolons do
    not end it)."""
    statements, pending = [], ""
    pieces = script.split(";")
    for number, piece in enumerate(pieces):
        pending += piece if number == len(pieces) - 1 else piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
