"""What the search page and the repo page show about a repo at a commit: its default commit, card fields
(read defensively: card metadata is arbitrary YAML), size and when the mirror last saw a ref move."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from ...models import Ref, Repo
from ..catalog import Catalog

MAX_TAGS = 40
MAX_KEPT = 10_000
# (repo, commit) → (card, file count, size): fixed per commit, so the search page does not load every repo's
# file list on every request (the catalog keeps only the last 256 lists).
_KEPT: WeakKeyDictionary[Catalog, dict[tuple[Repo, str], tuple[dict[str, Any], int, int]]] = WeakKeyDictionary()


def card_text(card: dict[str, Any], key: str) -> str:
    """A card field as one line: a string or number as is, a list of them joined; '' otherwise."""
    value = card.get(key)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)[:200]
    if isinstance(value, list):
        return ", ".join(str(v)[:100] for v in value[:MAX_TAGS] if isinstance(v, (str, int, float)))
    return ""


def card_list(card: dict[str, Any], key: str) -> list[str]:
    value = card.get(key)
    if isinstance(value, str):
        return [value[:100]]
    if isinstance(value, list):
        return [str(v)[:100] for v in value[:MAX_TAGS] if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    return []


def default_ref(refs: list[Ref]) -> Ref | None:
    """``main`` when the repo has it, else its first branch, else its first ref."""
    for ref in refs:
        if ref.name == "main":
            return ref
    branches = [r for r in refs if r.kind in ("branch", None)]
    return (branches or refs)[0] if refs else None


def updated(refs: list[Ref]) -> str:
    """When the mirror last moved one of the refs (``2026-12-02 12:25 UTC``)."""
    latest = max((r.updated_at for r in refs if r.updated_at), default="")
    return latest[:16].replace("T", " ") + " UTC" if latest else ""


@dataclass(frozen=True)
class Summary:
    repo: Repo
    commit: str
    card: dict[str, Any]
    files: int
    size: int
    updated: str

    @property
    def pipeline_tag(self) -> str:
        return card_text(self.card, "pipeline_tag")

    @property
    def library(self) -> str:
        return card_text(self.card, "library_name")

    @property
    def license(self) -> str:
        return card_text(self.card, "license")

    @property
    def tags(self) -> list[str]:
        return card_list(self.card, "tags")


def summarize(catalog: Catalog, repo: Repo) -> Summary | None:
    """The repo at its default ref, or None when it has no complete commit to show."""
    refs = catalog.index().refs(repo)
    ref = default_ref(refs)
    if ref is None:
        return None
    kept = _KEPT.setdefault(catalog, {})
    facts = kept.get((repo, ref.commit))
    if facts is None:
        snapshot = catalog.at(repo, ref.commit)
        facts = (catalog.card(snapshot) or {}, len(snapshot.files), sum(f.size for f in snapshot.files.values()))
        if len(kept) >= MAX_KEPT:
            kept.clear()
        kept[(repo, ref.commit)] = facts
    card, count, size = facts
    return Summary(repo, ref.commit, card, count, size, updated(refs))
