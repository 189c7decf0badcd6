"""Pushing local folders upstream: exactly what changed, as one commit (``hubmirror push``), and watching
folders to push each settled change through a persistent outbox (``hubmirror watch``)."""

from __future__ import annotations

from ._autopush import AutoPush
from ._pusher import Pusher, PushResult

__all__ = ["AutoPush", "PushResult", "Pusher"]
