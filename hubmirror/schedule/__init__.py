"""Keeping a mirror fresh: scheduled syncs (every N or on a cron schedule, never overlapping) and
``hubmirror run`` (scheduled sync + folder watchers + serve in one process)."""

from __future__ import annotations

from ._schedule import Schedule, run_scheduled
from ._service import run_service, schedule_for, scheduled_sync

__all__ = ["Schedule", "run_scheduled", "run_service", "schedule_for", "scheduled_sync"]
