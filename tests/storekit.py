"""Checking a store from the outside, the way a suspicious user would: every blob file hashes to its name and
is read-only, the index names no missing blob, every file row's blob exists with its size, and refs name only
complete commits. Used after every kill in the crash tests."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from pathlib import Path

_hash_cache: dict[tuple[str, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def open_ro(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{home / 'index.sqlite'}?mode=ro", uri=True, timeout=30)


def check_invariants(home: Path) -> dict[str, int]:
    """Assert the store invariants; return a few counts for the caller's own assertions."""
    blob_root = home / "blobs" / "sha256"
    on_disk = {}
    for path in blob_root.glob("*/*") if blob_root.exists() else ():
        # every blob file, referenced or not, is named by its content, is read-only, lives in its fan-out dir
        assert path.parent.name == path.name[:2], f"blob {path} in the wrong directory"
        assert stat.S_IMODE(path.stat().st_mode) == 0o444, f"blob {path} is not mode 0444"
        assert sha256_file(path) == path.name, f"blob {path} does not hold the bytes its name promises"
        on_disk[path.name] = path.stat().st_size
    empty = {"blobs": len(on_disk), "complete": 0, "refs": 0, "blob_rows": 0}
    if not (home / "index.sqlite").exists():
        return empty
    with open_ro(home) as db:
        db.execute("BEGIN")  # one snapshot for all the queries below
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "refs" not in tables:  # killed before the schema was created (migrations are atomic)
            assert not tables - {"_sqlite_migrations"}, f"half-created schema: {sorted(tables)}"
            return empty
        blob_rows = dict(db.execute("SELECT sha256, size FROM blobs").fetchall())
        file_rows = db.execute(
            "SELECT r.name, f.commit_sha, f.path, f.size, f.sha256 FROM files f JOIN repos r ON r.id = f.repo_id"
        ).fetchall()
        commits = db.execute(
            "SELECT r.name, c.sha, c.complete FROM commits c JOIN repos r ON r.id = c.repo_id"
        ).fetchall()
        refs = db.execute("SELECT r.name, x.name, x.commit_sha FROM refs x JOIN repos r ON r.id = x.repo_id").fetchall()
        db.execute("COMMIT")
    for sha, size in blob_rows.items():
        assert sha in on_disk, f"index blobs table names {sha}, which is not on disk"
        assert on_disk[sha] == size, f"blob {sha}: index says {size} bytes, disk has {on_disk[sha]}"
    complete = {(name, sha) for name, sha, done in commits if done}
    for name, commit, path, size, sha in file_rows:
        assert sha in on_disk, f"{name}@{commit[:12]}:{path} names blob {sha}, which is not on disk"
        assert on_disk[sha] == size, f"{name}@{commit[:12]}:{path}: size {size} != blob size {on_disk[sha]}"
    for name, ref, commit in refs:
        assert (name, commit) in complete, f"ref {name}@{ref} names {commit[:12]}, which is not complete"
    return {"blobs": len(on_disk), "complete": len(complete), "refs": len(refs), "blob_rows": len(blob_rows)}
