from __future__ import annotations

from datetime import datetime

import pytest

from hubmirror.cron import parse_cron


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("0 3 * * *", datetime(2026, 11, 29, 9, 0), datetime(2026, 11, 30, 3, 0)),
    ("0 3 * * *", datetime(2026, 11, 29, 2, 59, 30), datetime(2026, 11, 29, 3, 0)),
    ("*/15 * * * mon-fri", datetime(2026, 11, 28, 9, 7), datetime(2026, 11, 30, 0, 0)),  # Sat → Mon
    ("*/15 * * * mon-fri", datetime(2026, 11, 30, 9, 7), datetime(2026, 11, 30, 9, 15)),
    ("@monthly", datetime(2026, 11, 29, 9, 0), datetime(2026, 12, 1, 0, 0)),
    ("@hourly", datetime(2026, 12, 31, 23, 30), datetime(2027, 1, 1, 0, 0)),
    ("0 0 29 2 *", datetime(2026, 11, 29), datetime(2028, 2, 29)),
    ("0 0 13 * 5", datetime(2026, 11, 29), datetime(2026, 12, 4)),  # day OR weekday when both set
    ("30 4 1,15 jan,jul *", datetime(2026, 11, 29), datetime(2027, 1, 1, 4, 30)),
    ("0 12 * * 7", datetime(2026, 11, 28, 13, 0), datetime(2026, 11, 29, 12, 0)),  # 7 = Sunday
    ("5-10/5 * * * *", datetime(2026, 11, 29, 9, 5), datetime(2026, 11, 29, 9, 10)),
])
def test_next_after(expr: str, after: datetime, expected: datetime) -> None:
    assert parse_cron(expr).next_after(after) == expected


@pytest.mark.parametrize(("expr", "message"), [
    ("* * *", "needs 5 fields"), ("61 * * * *", "minute: 61 is outside 0-59"),
    ("* 24 * * *", "hour: 24 is outside"), ("*/0 * * * *", "step '0'"), ("5-1 * * * *", "runs backwards"),
    ("* * * foo *", "month: 'foo' is not a number"), ("* * 0 * *", "day of month: 0 is outside"),
    ("1,,2 * * * *", "empty list item"),
])
def test_invalid(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cron(expr)


def test_never_matching_expression_is_an_error() -> None:
    with pytest.raises(ValueError, match="never matches"):
        parse_cron("0 0 31 2 *").next_after(datetime(2026, 1, 1))
