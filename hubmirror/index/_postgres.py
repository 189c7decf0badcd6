"""The PostgreSQL backend of the index (``index: url: postgresql://...``): the same query groups and schema as
the SQLite one, for a site whose writers and readers run on several machines. The only module that imports
psycopg.

* Writers take turns: every write transaction starts with a transaction-level advisory lock (what SQLite's
  BEGIN IMMEDIATE gives), so a read-then-write never acts on a snapshot another writer moved past; sync,
  push, import and gc also hold the session-level writer lease (:class:`SessionLock`) around their writes.
* Every write transaction bumps a counter row, which :meth:`PostgresIndex.data_version` reads (serve caches
  until it moves).
* The schema is ``_schema``'s steps, applied by a small runner of our own (``hubmirror_migrations``), each
  step once, in a transaction, under the same write lock, so processes starting together migrate once.
* Every failure leaves as StoreError or LockTimeoutError naming the database by its URL without password.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ..errors import HubMirrorError, LockTimeoutError, StoreError
from ._base import utcnow
from ._interface import Index, Lease
from ._schema import SCHEMA_VERSION, STEPS
from ._urls import redact, url_secrets

logger = logging.getLogger(__name__)

# Advisory lock keys (two int4: a class that is ours, and which lock). Advisory locks are per database, so
# two hubmirror indexes on one server never wait for each other.
_LOCK_CLASS = 0x6875626D  # "hubm"
_WRITE_TXN = 1  # held for one write transaction (and each migration step)
_WRITER_LEASE = 2  # held by a writer's session around its writes
_GC_GUARD = 3  # shared by what adds blobs before naming them (sync, push, import, repair, serve's writes); gc's alone
LOCK_WAIT = "60s"  # how long a write transaction waits for another's (SQLite's busy_timeout is the same)
CONNECT_TIMEOUT = 10

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS hubmirror_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hubmirror_state (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
INSERT INTO hubmirror_state (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;
"""


def _one_line(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    text = re.sub(r"\s+", " ", text).strip() or type(exc).__name__
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


# -- errors --------------------------------------------------------------------------------------------
def translate_error(exc: psycopg.Error, where: str, secrets: Sequence[str] = ()) -> HubMirrorError:
    """A PostgreSQL failure during a statement as the error the user can act on."""
    text = _one_line(exc, secrets)
    waited = (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
    if isinstance(exc, (*waited, pg_errors.QueryCanceled)):
        return LockTimeoutError(f"the index {where} stayed locked by another process ({text}); try again")
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return StoreError(f"cannot write the index {where}: it is read-only here ({text}); only read commands work")
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return StoreError(
            f"the index {where} refused this role ({text}): make the role own the database, or grant it "
            "CREATE and USAGE on the schema and rights on hubmirror's tables"
        )
    if isinstance(exc, pg_errors.InsufficientResources):  # disk full, out of memory, too many connections
        return StoreError(f"the database server of the index {where} is out of resources ({text}); free space")
    if isinstance(exc, psycopg.OperationalError):
        return StoreError(
            f"lost the connection to the index {where} ({text}); check that PostgreSQL is running and run again"
        )
    return StoreError(
        f"the index {where} failed ({text}); if it happens again, run 'hubmirror verify' to see what is affected"
    )


def connect_error(exc: psycopg.Error, where: str, secrets: Sequence[str] = ()) -> HubMirrorError:
    """A failure to connect, with what to do about the usual causes."""
    text = _one_line(exc, secrets)
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low or "authentication failed" in low:
        hint = "check the password (PGPASSWORD, ~/.pgpass or the URL) and the user name"
        return StoreError(f"cannot log in to the index {where}: {_reason(text)}; {hint}")
    if "database" in low and "does not exist" in low:
        return StoreError(
            f"the database of the index {where} does not exist ({_reason(text)}): create it "
            "(createdb -O USER NAME) or fix index.url in the config"
        )
    if "role" in low and "does not exist" in low:
        return StoreError(f"cannot log in to the index {where}: {_reason(text)}; create the role or fix the user")
    return StoreError(
        f"cannot reach the index {where} ({text}); check that PostgreSQL runs there and accepts connections"
    )


def _reason(text: str) -> str:
    """The server's own words from a libpq connection message (after its 'FATAL:')."""
    return text.rpartition("FATAL:")[2].strip() or text


# -- SQL -----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2048)
def to_psycopg(sql: str) -> str:
    """The query groups' SQL with ``?`` placeholders in psycopg's spelling (``%s``; a literal ``%`` doubled).
    Text in single quotes is left alone. Cached: the same few hundred statements run again and again."""
    out: list[str] = []
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
            out.append(char)
        elif char == "?" and not quoted:
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


def _reads_only(sql: str) -> bool:
    return sql.lstrip()[:6].upper().startswith(("SELECT", "WITH"))


def _application_name() -> str:
    # Shown in pg_stat_activity and in our lock messages: which machine and process holds what.
    return f"hubmirror {socket.gethostname()[:30]} pid {os.getpid()}"


def _connect(url: str, where: str, secrets: Sequence[str], **settings: str) -> psycopg.Connection[Any]:
    """A connection in autocommit mode (transactions are explicit), with ``settings`` applied (SET)."""
    try:
        raw: psycopg.Connection[Any] = psycopg.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name=_application_name()
        )
    except psycopg.Error as exc:
        raise connect_error(exc, where, secrets) from exc
    try:
        for name, value in settings.items():
            raw.execute(f"SET {name} = '{value}'")
    except psycopg.Error as exc:
        raw.close()
        raise translate_error(exc, where, secrets) from exc
    return raw


class _Connection:
    """psycopg's connection with our placeholders and every failure translated (the index's one door to
    PostgreSQL). A write statement outside a transaction gets one of its own (with the write lock)."""

    def __init__(self, index: PostgresIndex, raw: psycopg.Connection[Any]) -> None:
        self.index, self.raw = index, raw

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise translate_error(exc, self.index.location, self.index.secrets) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        if not self.index.in_transaction:
            with self.index.atomic():
                return self.execute(sql, params)
        with self._translated():
            return self.raw.execute(to_psycopg(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        if not self.index.in_transaction:
            with self.index.atomic():
                return self.executemany(sql, rows)
        with self._translated():
            cursor = self.raw.cursor()
            cursor.executemany(to_psycopg(sql), [tuple(row) for row in rows])
            return cursor

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.index.in_transaction and not _reads_only(sql):
            with self.index.atomic():
                return self.rows(sql, params)
        with self._translated():
            cursor = self.raw.execute(to_psycopg(sql), tuple(params))
            return cursor.fetchall() if cursor.description else []

    def script(self, sql: str) -> None:
        """Several statements without parameters (schema steps), in the current transaction."""
        with self._translated():
            self.raw.execute(sql)

    def commit(self) -> None:
        """Transactions are explicit here (:meth:`PostgresIndex.atomic`): nothing is ever left pending."""

    def close(self) -> None:
        self.raw.close()


class SessionLock:
    """A session-level advisory lock on a connection of its own, opened for each hold and closed after it
    (a holder that dies releases it with its session): the writer lease (exclusive), or the gc guard
    (shared by writers that add blobs, exclusive for gc: PostgreSQL's own readers-writer advisory locks)."""

    def __init__(
        self, url: str, where: str, secrets: Sequence[str], key: int = _WRITER_LEASE, shared: bool = False
    ) -> None:
        self.url, self.where, self.secrets = url, where, secrets
        self.key, self.shared = key, shared

    @contextmanager
    def __call__(self, timeout: float) -> Iterator[None]:
        raw = _connect(self.url, self.where, self.secrets)
        try:
            deadline = time.monotonic() + timeout
            while not self._try(raw):
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(self._busy(raw, timeout))
                time.sleep(0.2)
            yield
        finally:
            raw.close()  # ends the session, and the lease with it

    def _busy(self, raw: psycopg.Connection[Any], timeout: float) -> str:
        holder = self._holder(raw)
        if self.key == _WRITER_LEASE:
            return (
                f"another hubmirror writer ({holder}) has held the index {self.where} for over {timeout:.0f}s; "
                "wait for its sync, push, import or gc to finish, then run again"
            )
        who = "a sync, push, import or repair" if not self.shared else "gc"
        return (
            f"{who} ({holder}) of the store indexed in {self.where} has run for over {timeout:.0f}s; try again "
            "when it is done"
        )

    def _try(self, raw: psycopg.Connection[Any]) -> bool:
        function = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
        try:
            row = raw.execute(f"SELECT {function}(%s, %s)", (_LOCK_CLASS, self.key)).fetchone()
        except psycopg.Error as exc:
            raise translate_error(exc, self.where, self.secrets) from exc
        return bool(row and row[0])

    def _holder(self, raw: psycopg.Connection[Any]) -> str:
        try:
            row = raw.execute(
                "SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.granted LIMIT 1",
                (_LOCK_CLASS, self.key),
            ).fetchone()
        except psycopg.Error:
            return "holder unknown"
        if not row:
            return "holder unknown"
        name, addr = row
        return f"{name or 'unnamed'}{f' from {addr}' if addr else ''}"


class PostgresIndex(Index):
    """The index of one store in a PostgreSQL database. Open with :func:`open_postgres`; close when done."""

    conn: _Connection

    def __init__(self, url: str, *, read_only: bool = False, durable: bool = True, create: bool = True) -> None:
        self.url = url
        self.location = redact(url)
        self.secrets = url_secrets(url)
        self.read_only = read_only
        self.durable = durable
        self.in_transaction = False
        settings = {"lock_timeout": LOCK_WAIT}
        if read_only:
            settings["default_transaction_read_only"] = "on"
        if not durable:  # the newest commits may be lost on a server crash, never consistency
            settings["synchronous_commit"] = "off"
        self.conn = _Connection(self, _connect(url, self.location, self.secrets, **settings))
        try:
            self._open(create)
        except BaseException:
            self.conn.close()
            raise

    def _open(self, create: bool) -> None:
        applied = self._applied()
        known = {step.name for step in STEPS}
        unknown = sorted(applied - known)
        if unknown:
            raise StoreError(
                f"the index {self.location} has schema steps this hubmirror does not know ({', '.join(unknown)}): "
                "it was written by a newer hubmirror; upgrade hubmirror"
            )
        if len(applied) == SCHEMA_VERSION:
            return
        if not applied and not create:
            self.empty = True
            return
        if self.read_only:
            raise StoreError(
                f"the index {self.location} has schema {len(applied)}, older than this hubmirror's "
                f"({SCHEMA_VERSION}), and is opened read-only here: run any hubmirror command that writes first"
            )
        self._migrate()

    def _applied(self) -> set[str]:
        if not self.conn.rows("SELECT to_regclass('hubmirror_migrations') IS NOT NULL")[0][0]:
            return set()
        return {row[0] for row in self.conn.rows("SELECT name FROM hubmirror_migrations")}

    def _migrate(self) -> None:
        """Apply the missing steps, each in its own transaction under the write lock (a second process
        starting at the same moment waits, then finds the step applied and skips it)."""
        with self._transaction(bump=False):
            self.conn.script(_BOOTSTRAP)
        for step in STEPS:
            with self.atomic():
                if self.conn.rows("SELECT 1 FROM hubmirror_migrations WHERE name = ?", (step.name,)):
                    continue
                logger.info("index %s: applying schema step %s", self.location, step.name)
                self.conn.script(step.postgres_sql())
                self.conn.execute(
                    "INSERT INTO hubmirror_migrations (name, applied_at) VALUES (?, ?)",
                    (step.name, utcnow()),
                )

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One write transaction: it takes the write lock first (writers run one at a time, as under SQLite's
        BEGIN IMMEDIATE) and bumps the change counter. Nested calls join the outer one."""
        if self.in_transaction:
            yield
            return
        with self._transaction(bump=True):
            yield

    @contextmanager
    def _transaction(self, *, bump: bool) -> Iterator[None]:
        raw = self.conn.raw
        lock = f"SELECT pg_advisory_xact_lock({_LOCK_CLASS}, {_WRITE_TXN})"
        bump_sql = "; UPDATE hubmirror_state SET version = version + 1 WHERE id = 1" if bump else ""
        with self.conn._translated():
            raw.execute("BEGIN")
        self.in_transaction = True
        try:
            with self.conn._translated():
                raw.execute(lock + bump_sql)
            yield
        except BaseException:
            self.in_transaction = False
            try:
                raw.execute("ROLLBACK")
            except psycopg.Error:
                pass  # the connection is gone: the server rolled the transaction back
            raise
        self.in_transaction = False
        with self.conn._translated():
            raw.execute("COMMIT")

    def data_version(self) -> int:
        """The change counter: every write transaction (ours too) moves it."""
        rows = self.conn.rows("SELECT version FROM hubmirror_state WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    def for_thread(self, *, durable: bool = True) -> PostgresIndex:
        return PostgresIndex(self.url, read_only=self.read_only, durable=durable)

    def writer_lease(self) -> Lease:
        return SessionLock(self.url, self.location, self.secrets)

    def gc_lease(self, exclusive: bool) -> Lease:
        return SessionLock(self.url, self.location, self.secrets, _GC_GUARD, shared=not exclusive)

    def close(self) -> None:
        self.conn.close()


def open_postgres(url: str, *, read_only: bool = False, create: bool = True) -> PostgresIndex:
    return PostgresIndex(url, read_only=read_only, create=create)
