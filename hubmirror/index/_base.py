"""What the query groups need from a backend: a connection that translates errors, and transactions.

The SQL of the query groups (``_repos``, ``_history``, ...) is portable; a backend (``_sqlite``) supplies
the connection, transactions and migrations.
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


def rowid(cursor: Any) -> int:
    """The id an INSERT gave its row."""
    assert cursor.lastrowid is not None  # set by every INSERT
    return int(cursor.lastrowid)
