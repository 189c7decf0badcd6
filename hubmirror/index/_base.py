"""What the query groups need from a backend: a connection that translates errors, and transactions.

The SQL of the query groups (``_repos``, ``_history``, ...) is portable: it runs unchanged on SQLite and
PostgreSQL: ``?`` placeholders, ``INSERT ... ON CONFLICT``, ``INSERT ... RETURNING id``, sums cast to
BIGINT, and ``rowid`` only on the tables whose PostgreSQL schema names such a column. A backend
(``_sqlite``, ``_postgres``) supplies the connection, transactions and migrations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def commit(self) -> None: ...


class Queries:
    """Base of every query group: the connection and transactions the backend provides."""

    conn: Connection

    def atomic(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.rows(sql, params)

    def _each(self, sql: str, keys: Sequence[Any], chunk: int = 500) -> Iterator[tuple[Any, ...]]:
        """``sql`` has one ``{marks}`` placeholder for an IN list: run it over ``keys`` in chunks."""
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            yield from self._rows(sql.format(marks=",".join("?" * len(part))), part)


def inserted_id(conn: Connection, sql: str, params: Sequence[Any]) -> int:
    """Run ``INSERT ... RETURNING id`` and return the id the row got (both backends speak RETURNING; a
    cursor's ``lastrowid`` is SQLite's only)."""
    return int(conn.rows(sql, params)[0][0])
