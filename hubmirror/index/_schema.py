"""The index schema as migrations (sqlite-utils' ``Migrations``), applied at open by the backend.

The SQL is portable: the same tables serve the SQLite backend (and, written once, later backends).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

# Bumped with every migration; a store at this user_version needs no migration check. Reads never import
# sqlite-utils (it pulls in numpy and costs ~100 ms of start-up that `hubmirror resolve` cannot afford).
SCHEMA_VERSION = 7


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


def m005_airgap(db: sqlite_utils.Database) -> None:
    """Ref kinds and history (gc's retention), and the records of bundles exported and imported."""
    db.executescript("""
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
    """)


def m006_cards(db: sqlite_utils.Database) -> None:
    """Model-card metadata per commit, parsed once at publish (NULL: not parsed yet; '': none; the repo-level
    column was never written), and which serve caller uploaded which LFS object (a commit may name an object
    only its caller uploaded or can already read)."""
    db.executescript("""
    ALTER TABLE commits ADD COLUMN card_json TEXT;
    ALTER TABLE repos DROP COLUMN card_json;
    CREATE TABLE lfs_uploads (
        sha256 TEXT NOT NULL, caller TEXT NOT NULL, uploaded_at TEXT NOT NULL, PRIMARY KEY (sha256, caller));
    """)


def m007_repo_api(db: sqlite_utils.Database) -> None:
    """What the Hub's repo API tells about commits (parent, title, message, authors, date: from upstream for
    mirrored commits, from the push for local ones; NULL when not known) and the discussions and pull
    requests of local repos, each with its events (comments, status and title changes, commits)."""
    db.executescript("""
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
    """)


def apply_migrations(db: sqlite_utils.Database) -> None:
    from sqlite_utils.migrations import Migrations

    migrations = Migrations("hubmirror")
    for step in (m001_initial, m002_push, m003_meta, m004_gated, m005_airgap, m006_cards, m007_repo_api):
        migrations()(step)
    migrations.apply(db)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
