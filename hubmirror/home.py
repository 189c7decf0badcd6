"""Opening a home for a command: the store and its index together, checked.

Write commands create what is missing; read commands never create or change anything and say in one line
(:class:`StoreError`) when there is no store. An index that is missing or empty beside stored blobs is a
damaged store, never silently taken as an empty one.
"""

from __future__ import annotations

from pathlib import Path

from .errors import StoreError
from .index import Index, open_index
from .store import Store


def open_store_index(home: Path, *, write: bool) -> tuple[Store, Index]:
    """The store at ``home`` and its index, opened for a write command (``write``) or a read command."""
    if write and Store.exists(home) and Store(home, create=False).read_only:
        raise StoreError(
            f"the store at {Path(home)} cannot be written (a read-only filesystem, or no write permission): this "
            "command changes it; read commands (resolve, env, status, hf-cache --dir, serve, verify, export, "
            "inventory) work there"
        )
    store = Store(home, create=write)
    path = store.index_path
    empty = not path.exists() or path.stat().st_size == 0
    if empty and store.has_any_blob():
        raise StoreError(
            f"the index {path} is {'missing' if not path.exists() else 'empty'} although "
            f"{store.blobs_dir} holds content: restore index.sqlite from a backup (the blobs alone "
            "do not say which repos and revisions they belong to), or move blobs/ away to start over"
        )
    if empty and not write:
        raise StoreError(f"{store.home} has no index yet: run 'hubmirror sync' or 'hubmirror import' first")
    if write:
        # Opening may migrate the schema: two processes starting on a fresh store must not both run it.
        with store.write_lock():
            return store, open_index(path)
    return store, open_index(path, read_only=store.read_only)
