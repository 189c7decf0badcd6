"""Offline resolution: a repo name (or alias) and a revision → a local snapshot folder or file. No network."""

from __future__ import annotations

from ._resolver import AmbiguousRevisionError, Resolver, close_resolvers, file_path, snapshot_path

__all__ = ["AmbiguousRevisionError", "Resolver", "close_resolvers", "file_path", "snapshot_path"]
