"""Which backend an index location means: a path is a SQLite file, a ``postgresql://`` URL a PostgreSQL
database (its module, and psycopg, load only then: the default install has no psycopg)."""

from __future__ import annotations

from pathlib import Path

from ..errors import StoreError
from ._interface import Index
from ._sqlite import open_sqlite
from ._urls import is_database_url, redact


def is_index_url(location: str | Path) -> bool:
    """True for a PostgreSQL URL (``postgresql://`` or ``postgres://``), False for a path."""
    return isinstance(location, str) and is_database_url(location)


def open_index(location: str | Path, *, read_only: bool = False, create: bool = True) -> Index:
    """The index at ``location``: a SQLite file path, or a PostgreSQL URL. ``create=False`` leaves a database
    without hubmirror's schema as it is (the index says so with ``empty``); a SQLite file is always created.

    Raises StoreError when the index cannot be opened (named by its path, or its URL without password)."""
    if not is_index_url(location):
        return open_sqlite(Path(location), read_only=read_only)
    try:
        from ._postgres import open_postgres
    except ImportError as exc:
        raise StoreError(
            f"the index is in PostgreSQL ({str(location).split('://')[0]}://...) but psycopg is not installed: "
            "pip install 'hubmirror[scale]'"
        ) from exc
    return open_postgres(str(location), read_only=read_only, create=create)


def display_location(location: str | Path) -> str:
    """How messages and ``home/index.url`` name an index: its path, or its URL without a password."""
    return redact(location) if is_index_url(location) else str(location)
