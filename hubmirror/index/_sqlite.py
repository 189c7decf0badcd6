"""The SQLite backend of the index (``home/index.sqlite``, WAL): the single source of truth about what the
store holds. The only module that opens SQLite.

Schema changes are migrations applied at open. A multi-row change is one transaction, so readers (who start
from refs and complete commits) never see half a snapshot. Every SQLite failure leaves as one of our errors:
a damaged file as :class:`StoreError` naming it, a busy database as :class:`LockTimeoutError`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import LockTimeoutError, StoreError
from ._interface import Index
from ._schema import SCHEMA_VERSION, apply_sqlite_migrations


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


class SQLiteIndex(Index):
    """The SQLite index of one store. Open with :func:`open_index`; close when done."""

    conn: _Connection

    def __init__(self, path: Path, synchronous: str = "FULL", *, read_only: bool = False) -> None:
        self.path = path
        self.location = str(path)
        self.read_only = read_only
        self._own_commits = 0
        try:
            raw = sqlite3.connect(_uri(path, read_only), timeout=60, check_same_thread=False, uri=True)
        except sqlite3.Error as exc:
            raise translate_error(exc, path) from exc
        self.conn = _Connection(path, raw)
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
            if self.read_only:
                raise StoreError(
                    f"{path} has index schema {version}, older than this hubmirror's ({SCHEMA_VERSION}), and the "
                    "store cannot be written here: run any hubmirror command that writes on a writable copy first"
                )
            self._migrate()

    def _migrate(self) -> None:
        """Bring the schema up to date; safe when several processes open a fresh store at once."""
        if self.conn.rows("PRAGMA journal_mode")[0][0] != "wal":
            self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("BEGIN IMMEDIATE")  # one migrator at a time; the others wait (busy_timeout)
        try:
            if self.conn.rows("PRAGMA user_version")[0][0] < SCHEMA_VERSION:
                try:
                    apply_sqlite_migrations(self.conn.raw)
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
        self._own_commits += 1

    def close(self) -> None:
        self.conn.close()

    def for_thread(self, *, durable: bool = True) -> SQLiteIndex:
        # SQLite connections are per thread; synchronous=NORMAL in WAL mode may lose the newest commits on
        # power loss, never consistency.
        return SQLiteIndex(self.path, "FULL" if durable else "NORMAL", read_only=self.read_only)

    def data_version(self) -> int:
        """Changes whenever the index changes (another connection's commit moves SQLite's data_version, one
        of ours moves our counter): lets readers cache until then."""
        return (int(self.conn.rows("PRAGMA data_version")[0][0]) << 32) + self._own_commits


def _uri(path: Path, read_only: bool) -> str:
    """Read-write, or on read-only media: ``mode=ro`` while a write-ahead log holds data (SQLite reads it
    through the existing ``-shm``), ``immutable=1`` when there is none (``mode=ro`` would need to create
    the ``-shm`` file, which a read-only filesystem refuses)."""
    quoted = quote(str(path))
    if not read_only:
        return f"file:{quoted}"
    wal = path.with_name(path.name + "-wal")
    shm = path.with_name(path.name + "-shm")
    if wal.exists() and wal.stat().st_size > 0:
        if not shm.exists():
            raise StoreError(
                f"{path} has changes in {wal.name} that a read-only store cannot merge: copy the "
                "store to a writable disk, or carry it with 'hubmirror export' / 'hubmirror import'"
            )
        return f"file:{quoted}?mode=ro"
    return f"file:{quoted}?immutable=1"


def open_sqlite(path: Path, *, read_only: bool = False) -> SQLiteIndex:
    return SQLiteIndex(path, read_only=read_only)
