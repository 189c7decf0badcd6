"""What a commit says about itself (title, message, authors, date), checked field by field when it comes
from outside (an upstream we do not control, a bundle): a field without the expected shape or beyond its
bounds is dropped (None), never an error and never stored. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .models import CommitMeta

MAX_DATE_CHARS = 40
MAX_TITLE_CHARS = 1000
MAX_MESSAGE_BYTES = 64 * 1024
MAX_AUTHORS = 100
MAX_AUTHOR_CHARS = 100
# 2024-01-01T00:00:00.000Z, or any RFC 3339 date-time (fraction optional, Z or an offset; naive is UTC)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?", re.ASCII)
_SHA1 = re.compile(r"[0-9a-f]{40}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def iso_date(value: Any) -> str | None:
    """An ISO 8601 date-time as the Hub writes it (``2024-01-01T00:00:00.000Z``, UTC), or None when
    ``value`` is not one."""
    if not isinstance(value, str) or len(value) > MAX_DATE_CHARS or not _ISO.fullmatch(value):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    if len(text) > 6 and text[-5] in "+-" and text[-3] != ":":  # +0100 → +01:00
        text = f"{text[:-2]}:{text[-2:]}"
    if "." in text:  # Python reads at most microseconds
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail)
        assert digits is not None
        text = f"{head}.{digits.group(0)[:6].ljust(6, '0')}{tail[digits.end() :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def text_field(value: Any, limit: int, *, multiline: bool = False) -> str | None:
    """``value`` if it is text within ``limit`` (characters; bytes of UTF-8 when ``multiline``) without
    control characters (and without line breaks unless ``multiline``), else None."""
    if not isinstance(value, str) or _CONTROL.search(value) or len(value) > limit:
        return None
    if not multiline and ("\n" in value or "\r" in value):
        return None
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape: not text SQLite can keep
        return None
    return None if multiline and len(encoded) > limit else value


def author_names(names: Any) -> tuple[str, ...]:
    """The well-formed, distinct names among ``names`` (strings), at most MAX_AUTHORS of them."""
    if not isinstance(names, list):
        return ()
    out: list[str] = []
    for name in names[: MAX_AUTHORS * 4]:
        checked = text_field(name, MAX_AUTHOR_CHARS) if isinstance(name, str) and name.strip() else None
        if checked is not None and checked not in out:
            out.append(checked)
        if len(out) == MAX_AUTHORS:
            break
    return tuple(out)


def checked_meta(
    *, parent: Any = None, title: Any = None, message: Any = None, authors: Any = None, date: Any = None
) -> CommitMeta:
    """A :class:`CommitMeta` of the fields that pass their checks (``authors``: a list of names)."""
    return CommitMeta(
        parent=parent if isinstance(parent, str) and _SHA1.fullmatch(parent) else None,
        title=text_field(title, MAX_TITLE_CHARS),
        message=text_field(message, MAX_MESSAGE_BYTES, multiline=True),
        authors=author_names(authors),
        date=iso_date(date),
    )
