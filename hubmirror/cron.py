"""Cron schedules (``sync.cron``, ``--cron``) by cronsim, in the machine's local time zone with its DST rules.

The one owner of cronsim. cron's own rules hold: day-of-month and day-of-week are ANDed when either field
starts with ``*`` and ORed otherwise; a 02:30 job on the night clocks spring forward runs at 03:00, and on
the night they fall back it runs once.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

# The usual nicknames (cronsim takes five fields only); @reboot has no meaning for a scheduler.
NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def local_zone() -> tzinfo:
    """The zone cron schedules are read in: ``$TZ``, else ``/etc/localtime``, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        localtime = Path("/etc/localtime")
        if localtime.exists():
            with localtime.open("rb") as handle:
                return ZoneInfo.from_file(handle, key="localtime")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    return UTC


def check_cron(expression: str) -> None:
    """Raise ValueError saying what is wrong with ``expression`` (five fields, or @hourly, @daily, @weekly,
    @monthly, @yearly)."""
    next_cron_time(expression, datetime.now(UTC).timestamp())


def next_cron_time(expression: str, after: float, zone: tzinfo | None = None) -> float:
    """The first time (epoch seconds) strictly after ``after`` that ``expression`` names."""
    start = datetime.fromtimestamp(after, zone or local_zone())
    try:
        return next(CronSim(NICKNAMES.get(expression.strip(), expression), start)).timestamp()
    except CronSimError as exc:
        raise ValueError(
            f"invalid cron expression {expression!r}: {exc} (minute hour day-of-month month "
            "day-of-week, e.g. '0 3 * * *')"
        ) from None
    except StopIteration:
        raise ValueError(f"cron expression {expression!r} never matches a date") from None
