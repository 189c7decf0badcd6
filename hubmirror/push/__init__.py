"""Pushing local folders upstream: exactly what changed, as one commit (``hubmirror push``), and watching
folders to push each settled change through a persistent outbox (``hubmirror watch``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._pusher import Pusher, PushResult

if TYPE_CHECKING:
    from ._autopush import AutoPush

__all__ = ["AutoPush", "PushResult", "Pusher"]


def __getattr__(name: str) -> Any:
    # The watcher (and watchdog with it) loads only for what watches: a one-off push starts without it.
    if name == "AutoPush":
        from ._autopush import AutoPush

        return AutoPush
    raise AttributeError(f"module 'hubmirror.push' has no attribute {name!r}")
