"""Cron schedules through cronsim: cron's day-of-month/day-of-week rule, DST in the local zone, and errors."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from hubmirror.cron import check_cron, local_zone, next_cron_time

BERLIN = ZoneInfo("Europe/Berlin")


def after(expr: str, start: datetime) -> datetime:
    return datetime.fromtimestamp(next_cron_time(expr, start.timestamp(), start.tzinfo), start.tzinfo)


@pytest.mark.parametrize(
    ("expr", "start", "expected"),
    [
        ("0 3 * * *", datetime(2026, 11, 29, 9, 0), datetime(2026, 11, 30, 3, 0)),
        ("0 3 * * *", datetime(2026, 11, 29, 2, 59, 30), datetime(2026, 11, 29, 3, 0)),
        ("0 3 * * *", datetime(2026, 11, 29, 3, 0), datetime(2026, 11, 30, 3, 0)),  # strictly after
        ("*/15 * * * mon-fri", datetime(2026, 11, 28, 9, 7), datetime(2026, 11, 30, 0, 0)),  # Sat → Mon
        ("@monthly", datetime(2026, 11, 29, 9, 0), datetime(2026, 12, 1, 0, 0)),
        ("@hourly", datetime(2026, 12, 31, 23, 30), datetime(2027, 1, 1, 0, 0)),
        ("0 0 29 2 *", datetime(2026, 11, 29), datetime(2028, 2, 29)),
        ("0 0 13 * 5", datetime(2026, 11, 29), datetime(2026, 12, 4)),  # both restricted: day OR weekday
        # day-of-month starts with '*': the fields are ANDed (odd days that are Mondays), as cron does
        ("0 3 */2 * mon", datetime(2026, 11, 28), datetime(2026, 12, 7, 3, 0)),
        ("0 12 * * 7", datetime(2026, 11, 28, 13, 0), datetime(2026, 11, 29, 12, 0)),  # 7 = Sunday
    ],
)
def test_next_time(expr: str, start: datetime, expected: datetime) -> None:
    assert after(expr, start.replace(tzinfo=UTC)) == expected.replace(tzinfo=UTC)


def test_the_and_rule_never_fires_on_an_even_day() -> None:
    moment = datetime(2026, 11, 28, tzinfo=UTC)
    fired = []
    for _ in range(8):
        moment = after("0 3 */2 * mon", moment)
        fired.append(moment)
    assert all(d.weekday() == 0 and d.day % 2 == 1 for d in fired), fired


def test_daylight_saving_time_in_the_local_zone() -> None:
    # spring forward: 02:30 does not exist on 2026-03-29 in Berlin; the run happens at 03:00, once
    assert after("30 2 * * *", datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN)) == datetime(
        2026, 3, 29, 3, 0, tzinfo=BERLIN
    )
    # fall back: 02:30 happens twice on 2026-10-25; the job runs once, then the next day
    first = after("30 2 * * *", datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN))
    second = after("30 2 * * *", first)
    assert (first.day, first.hour, first.minute) == (25, 2, 30)
    assert (second.day, second.hour, second.minute) == (26, 2, 30)
    # a daily job stays at 03:00 local time across the change (23 and 25 hour days between runs)
    gaps = []
    moment = datetime(2026, 3, 27, 12, tzinfo=BERLIN)
    for _ in range(3):
        nxt = after("0 3 * * *", moment)
        gaps.append(round((nxt.timestamp() - moment.timestamp()) / 3600))
        moment = nxt
    assert gaps[1:] == [23, 24]


def test_the_local_zone_comes_from_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    assert str(local_zone()) == "Europe/Berlin"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert local_zone() is not None  # falls back, never raises


@pytest.mark.parametrize(
    "expr",
    [
        "* * *",
        "61 * * * *",
        "* 24 * * *",
        "*/0 * * * *",
        "5-1 * * * *",
        "* * * foo *",
        "* * 0 * *",
        "1,,2 * * * *",
        "0 0 31 2 *",
        "@reboot",
    ],
)
def test_invalid_expressions_say_so(expr: str) -> None:
    with pytest.raises(ValueError, match="cron expression"):
        check_cron(expr)
