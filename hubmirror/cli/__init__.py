"""The ``hubmirror`` command line. ``main`` answers a plain ``resolve`` without loading the full CLI."""

from __future__ import annotations

from ._entry import main

__all__ = ["main"]
