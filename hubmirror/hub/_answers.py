"""Reading the optional parts of upstream's answers: a commit's entry in the commit listing, the ref
listing. An upstream we do not control may send anything: what does not have the expected shape is left
out (see :mod:`hubmirror.commitmeta` for the field checks). Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

from ..commitmeta import checked_meta
from ..models import CommitMeta

MAX_REF_NAME_CHARS = 1000
REF_KINDS = {"branches": "branch", "tags": "tag", "pullRequests": "pr"}


def commit_meta(answer: Any, sha: str) -> CommitMeta | None:
    """What the Hub's commit listing says about ``sha`` (its first entry whose id is ``sha``), each field
    kept only when well-formed and within bounds; None when the listing does not show the commit."""
    if not isinstance(answer, list):
        return None
    for item in answer[:10]:
        if isinstance(item, dict) and item.get("id") == sha:
            authors = item.get("authors")
            return checked_meta(
                title=item.get("title"),
                message=item.get("message"),
                authors=[a.get("user") for a in authors if isinstance(a, dict)] if isinstance(authors, list) else None,
                date=item.get("date"),
            )
    return None


def ref_kinds(answer: Any) -> dict[str, str]:
    """Ref name → kind ("branch" | "tag" | "pr") from a ``/refs`` answer; a name listed under two kinds
    takes the first (branches win, as the Hub resolves a bare name). Malformed parts are skipped."""
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
