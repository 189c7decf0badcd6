"""Reading the optional parts of upstream's answers (dates, commit titles and authors, ref listings).

An upstream we do not control may send anything: what does not have the expected shape and bounds is
dropped (None), never an error and never stored. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..models import CommitMeta

MAX_DATE_CHARS = 40
MAX_TITLE_CHARS = 1000
MAX_MESSAGE_BYTES = 64 * 1024
MAX_AUTHORS = 100
MAX_AUTHOR_CHARS = 100
MAX_REF_NAME_CHARS = 1000
# 2024-01-01T00:00:00.000Z, or any RFC 3339 date-time (fraction optional, Z or an offset; naive is UTC)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
REF_KINDS = {"branches": "branch", "tags": "tag", "pullRequests": "pr"}


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


def _text(value: Any, limit: int, *, multiline: bool = False) -> str | None:
    """``value`` if it is text within ``limit`` (characters; bytes of UTF-8 when ``multiline``)."""
    if not isinstance(value, str) or _CONTROL.search(value) or len(value) > limit:
        return None
    if not multiline and ("\n" in value or "\r" in value):
        return None
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape: not text SQLite can keep
        return None
    return None if multiline and len(encoded) > limit else value


def _authors(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names: list[str] = []
    for item in value[: MAX_AUTHORS * 4]:
        name = item.get("user") if isinstance(item, dict) else None
        if isinstance(name, str) and name and not name.isspace():
            name = _text(name, MAX_AUTHOR_CHARS)
            if name is not None and name not in names:
                names.append(name)
        if len(names) == MAX_AUTHORS:
            break
    return tuple(names)


def commit_meta(answer: Any, sha: str) -> CommitMeta | None:
    """What the Hub's commit listing says about ``sha`` (its first entry whose id is ``sha``), each field
    kept only when well-formed and within bounds; None when the listing does not show the commit."""
    if not isinstance(answer, list):
        return None
    for item in answer[:10]:
        if isinstance(item, dict) and item.get("id") == sha:
            return CommitMeta(
                title=_text(item.get("title"), MAX_TITLE_CHARS),
                message=_text(item.get("message"), MAX_MESSAGE_BYTES, multiline=True),
                authors=_authors(item.get("authors")),
                date=iso_date(item.get("date")),
            )
    return None


def ref_kinds(answer: Any) -> dict[str, str]:
    """Ref name → kind ("branch" | "tag" | "pr") from a ``/refs`` answer; names listed under two kinds
    take the first (branches win, as the Hub resolves a bare name). Malformed parts are skipped."""
    kinds: dict[str, str] = {}
    if not isinstance(answer, dict):
        return kinds
    for key, kind in REF_KINDS.items():
        items = answer.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and 0 < len(name) <= MAX_REF_NAME_CHARS:
                kinds.setdefault(name, kind)
    return kinds
