"""Opening a home for a command: the store and its index together, checked.

Write commands create what is missing; read commands never create or change anything and say in one line
(:class:`StoreError`) when there is no store. An index that is missing or empty beside stored blobs is a
damaged store, never silently taken as an empty one.

The index is ``home/index.sqlite``, or a PostgreSQL database (``index.url`` in the config). A store whose
index is a database records its URL (without password) in ``home/index.url`` the first time a write command
opens it: commands given only the home (``resolve --home``) find the database there, and a config naming
another database is refused, since gc with an index that does not name these blobs would delete them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .errors import StoreError
from .index import Index, display_location, is_index_url, open_index
from .models import Backends
from .store import Store


def open_store_index(home: Path, *, write: bool, backends: Backends | None = None) -> tuple[Store, Index]:
    """The store at ``home`` and its index, opened for a write command (``write``) or a read command.

    ``backends``: where the config puts the index (``index.url``; None: the one the store recorded, else
    ``index.sqlite``) and the blobs (``store.url``; None: the recorded bucket, else ``home/blobs``)."""
    backends = backends or Backends()
    if write and Store.exists(home) and Store(home, create=False).read_only:
        raise StoreError(
            f"the store at {Path(home)} cannot be written (a read-only filesystem, or no write permission): this "
            "command changes it; read commands (resolve, env, status, hf-cache --dir, serve, verify, export, "
            "inventory) work there"
        )
    store = Store(home, create=write, store_url=backends.store_url, endpoint_url=backends.endpoint_url)
    location = index_location(store, backends.index_url)
    if is_index_url(location):
        return store, _open_database(store, str(location), write=write)
    path = store.index_path
    empty = not path.exists() or path.stat().st_size == 0
    if empty and store.has_any_blob():
        raise StoreError(
            f"the index {path} is {'missing' if not path.exists() else 'empty'} although "
            f"{store.blobs.location} holds content: restore index.sqlite from a backup (the blobs alone "
            "do not say which repos and revisions they belong to), or move blobs/ away to start over"
        )
    if empty and not write:
        raise StoreError(f"{store.home} has no index yet: run 'hubmirror sync' or 'hubmirror import' first")
    if write:
        # Opening may migrate the schema: two processes starting on a fresh store must not both run it.
        with store.write_lock():
            return store, open_index(path)
    return store, open_index(path, read_only=store.read_only)


def stored_blobs(store: Store, index: Index, sha256s: Iterable[str]) -> set[str]:
    """Which of these blobs the store holds. On disk a stat each; in object storage one index query instead
    of a request per blob: a blob row means its object exists (rows are written after the object, and gc
    drops rows before objects; a blob damaged behind our back is verify's to find)."""
    wanted = set(sha256s)
    if store.blobs_local:
        return {sha for sha in wanted if store.has_blob(sha)}
    return set(index.blob_sizes(wanted))


def index_location(store: Store, index_url: str | None) -> Path | str:
    """Where the store's index is: ``index_url`` (checked against what the store recorded), else the URL
    the store recorded, else ``index.sqlite``."""
    recorded = store.recorded_index_url()
    if index_url is None:
        return recorded if recorded is not None else store.index_path
    shown = display_location(index_url)
    if recorded is not None and recorded != shown:
        raise StoreError(
            f"the store at {store.home} belongs to the index {recorded}, not {shown} (index.url in the config): "
            "its blobs are named by that index only; fix index.url, or give this database a home of its own"
        )
    if recorded is None and store.index_path.exists() and store.index_path.stat().st_size > 0:
        raise StoreError(
            f"the store at {store.home} keeps its index in {store.index_path}, not {shown}: a store does not "
            "move its index in place; carry it over with 'hubmirror export' and 'hubmirror import' into a home "
            "whose config names the database"
        )
    return index_url


def _open_database(store: Store, url: str, *, write: bool) -> Index:
    """A store's index in a database: created on the first write when the store holds no blobs yet; the
    writer lease taken by the store's write lock from now on."""
    has_blobs = store.has_any_blob()
    index = open_index(url, read_only=store.read_only, create=write and not has_blobs)
    try:
        if index.empty:
            if has_blobs:
                raise StoreError(
                    f"the index {index.location} is empty although {store.blobs.location} holds content: point "
                    "index.url at the database that indexed them (or restore it from a backup), or move blobs/ "
                    "away to start over"
                )
            raise StoreError(f"the index {index.location} is empty: run 'hubmirror sync' or 'hubmirror import' first")
        if write and store.recorded_index_url() is None:
            store.record_index_url(index.location)
    except BaseException:
        index.close()
        raise
    store.use_lease(index.writer_lease(), index.gc_lease)
    return index
