"""Which fields a repo answer carries and which repos a listing keeps: ``expand``, the listing filters and sorts.

Pure functions over the dicts ``reads.repo_json`` builds; the query parameters are the ones huggingface_hub's
``model_info``/``dataset_info``/``list_models``/``list_datasets`` send (``expand`` repeated, or ``expand[]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from .http import HubHTTPError

# huggingface_hub's ExpandModelProperty_T / ExpandDatasetProperty_T
MODEL_PROPERTIES = frozenset(
    {
        "author",
        "baseModels",
        "cardData",
        "childrenModelCount",
        "config",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "evalResults",
        "gated",
        "gguf",
        "inference",
        "inferenceProviderMapping",
        "lastModified",
        "library_name",
        "likes",
        "mask_token",
        "model-index",
        "pipeline_tag",
        "private",
        "resourceGroup",
        "safetensors",
        "sha",
        "siblings",
        "spaces",
        "tags",
        "transformersInfo",
        "trendingScore",
        "usedStorage",
        "widgetData",
    }
)
DATASET_PROPERTIES = frozenset(
    {
        "author",
        "cardData",
        "citation",
        "createdAt",
        "description",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "gated",
        "lastModified",
        "likes",
        "mainSize",
        "paperswithcode_id",
        "private",
        "resourceGroup",
        "sha",
        "siblings",
        "tags",
        "trendingScore",
        "usedStorage",
    }
)
# Properties a mirror has no data for (usage statistics, inference, Spaces, the Hub's own model analysis):
# asked for, they are left out of the answer rather than made up.
UNANSWERED = frozenset(
    {
        "baseModels",
        "childrenModelCount",
        "config",
        "evalResults",
        "gguf",
        "inference",
        "inferenceProviderMapping",
        "mask_token",
        "resourceGroup",
        "spaces",
        "transformersInfo",
        "widgetData",
        "citation",
        "description",
        "mainSize",
    }
)
# The fields of a listing item when neither ``full`` nor ``expand`` is asked (the Hub's default set).
LIST_FIELDS = (
    "_id",
    "id",
    "author",
    "likes",
    "trendingScore",
    "downloads",
    "private",
    "gated",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "lastModified",
    "modelId",
)
SORTS = {
    "lastModified": "lastModified",
    "last_modified": "lastModified",
    "createdAt": "createdAt",
    "created_at": "createdAt",
    "downloads": "downloads",
    "likes": "likes",
    "trendingScore": "trendingScore",
    "trending_score": "trendingScore",
    "id": "id",
}
DATASET_CARD_TAG_KEYS = (
    "task_categories",
    "task_ids",
    "language",
    "license",
    "size_categories",
    "multilinguality",
    "language_creators",
    "annotations_creators",
    "source_datasets",
)


def strings(value: Any) -> list[str]:
    """A card value that may be one string or a list: its strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def card_tags(repo_type: str, card: dict[str, Any], has_safetensors: bool) -> list[str]:
    """The tags the Hub derives for a repo: the card's own ``tags``, then for a model its library, pipeline
    tag, language codes, ``dataset:x`` and ``license:x`` (and ``safetensors`` when it has such files); for a
    dataset ``key:value`` for the card's task, language, license, size... keys."""
    tags: list[str] = []

    def add(tag: str) -> None:
        if tag not in tags:
            tags.append(tag)

    for tag in strings(card.get("tags")):
        add(tag)
    if repo_type == "model":
        for key in ("library_name", "pipeline_tag"):
            for value in strings(card.get(key))[:1]:
                add(value)
        for language in strings(card.get("language")):
            add(language)
        for dataset in strings(card.get("datasets")):
            add(f"dataset:{dataset}")
        for license_ in strings(card.get("license")):
            add(f"license:{license_}")
        if has_safetensors:
            add("safetensors")
    else:
        for key in DATASET_CARD_TAG_KEYS:
            for value in strings(card.get(key)):
                add(f"{key}:{value}")
    return tags


def expand_properties(request: Request, repo_type: str) -> tuple[str, ...]:
    """The ``expand`` (or ``expand[]``) properties asked for, sorted; empty when none. 400 for one the Hub
    does not know for this repo type."""
    known = MODEL_PROPERTIES if repo_type == "model" else DATASET_PROPERTIES
    asked = {p for p in [*request.query_params.getlist("expand"), *request.query_params.getlist("expand[]")] if p}
    unknown = sorted(asked - known)
    if unknown:
        raise HubHTTPError(
            400,
            f'unknown expand property {unknown[0][:80]!r} for {repo_type}s: "expand" must be one of '
            f"[{', '.join(sorted(known))}]",
        )
    return tuple(sorted(asked))


def extra_property(card: dict[str, Any], prop: str) -> Any:
    """Values only ``expand`` asks for, or None when we have none."""
    if prop in ("downloadsAllTime", "trendingScore"):
        return 0
    if prop in ("model-index", "paperswithcode_id"):
        return card.get(prop)
    return None


def select(data: dict[str, Any], card: dict[str, Any], props: tuple[str, ...]) -> dict[str, Any]:
    """``_id``, ``id`` and the expanded properties we can answer (the others are left out)."""
    out = {"_id": data["_id"], "id": data["id"]}
    for prop in props:
        value = data[prop] if prop in data else extra_property(card, prop)
        if value is not None:
            out[prop] = value
    return out


def list_item(data: dict[str, Any], *, full: bool, card_data: bool) -> dict[str, Any]:
    """A listing item without ``expand``: the Hub's default fields, or everything with ``full``; the card
    only with ``cardData``."""
    if full:
        item = dict(data)
    else:
        item = {key: data[key] for key in LIST_FIELDS if key in data}
        item.setdefault("trendingScore", 0)
    if card_data and "cardData" in data:
        item["cardData"] = data["cardData"]
    else:
        item.pop("cardData", None)
    return item


@dataclass(frozen=True)
class ListQuery:
    """What a ``GET /api/models`` or ``/api/datasets`` asks for."""

    search: tuple[str, ...] = ()
    author: str | None = None
    filters: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library: str | None = None
    languages: tuple[str, ...] = ()
    gated: bool | None = None
    sort: str | None = None
    descending: bool = True

    @classmethod
    def from_request(cls, request: Request) -> ListQuery:
        """Raises HubHTTPError 400 for an unknown sort, a direction other than 1 or -1, or gated not a bool."""
        q = request.query_params
        sort = q.get("sort") or None
        if sort is not None and sort not in SORTS:
            raise HubHTTPError(400, f"sort must be one of {', '.join(sorted(set(SORTS.values())))}; got {sort[:80]!r}")
        field = SORTS[sort] if sort else None
        direction = q.get("direction") or ("1" if field == "id" else "-1")
        if direction not in ("1", "-1"):
            raise HubHTTPError(400, f"direction must be 1 (ascending) or -1 (descending); got {direction[:40]!r}")
        gated_text = (q.get("gated") or "").lower()
        if gated_text not in ("", "true", "false"):
            raise HubHTTPError(400, f"gated must be true or false; got {gated_text[:40]!r}")
        return cls(
            search=tuple(s.lower() for s in q.getlist("search") if s),
            author=q.get("author") or None,
            filters=tuple(f for f in q.getlist("filter") if f),
            pipeline_tag=q.get("pipeline_tag") or None,
            library=q.get("library") or None,
            languages=tuple(lang for lang in q.getlist("language") if lang),
            gated=None if not gated_text else gated_text == "true",
            sort=field,
            descending=direction == "-1",
        )

    def keeps_name(self, name: str) -> bool:
        """The checks that need only the repo id (cheap: made before the repo's answer is built)."""
        if any(s not in name.lower() for s in self.search):
            return False
        return self.author is None or name.lower().startswith(f"{self.author.lower()}/")

    def keeps(self, data: dict[str, Any], card: dict[str, Any]) -> bool:
        if self.pipeline_tag is not None and data.get("pipeline_tag") != self.pipeline_tag:
            return False
        if self.library is not None and data.get("library_name") != self.library:
            return False
        languages = strings(card.get("language"))
        if any(lang not in languages for lang in self.languages):
            return False
        if self.gated is not None and bool(data.get("gated")) != self.gated:
            return False
        matchable = {*data.get("tags", []), *(f"language:{lang}" for lang in languages)}
        matchable.update(v for v in (data.get("pipeline_tag"), data.get("library_name")) if isinstance(v, str))
        return all(f in matchable for f in self.filters)

    def ordered(self, items: list[tuple[dict[str, Any], Any]]) -> list[tuple[dict[str, Any], Any]]:
        """(repo answer, anything) pairs sorted by the answer's sort field, ties by id ascending; unsorted
        listings keep the index's order."""
        if self.sort is None:
            return items
        field = self.sort
        key: Callable[[tuple[dict[str, Any], Any]], Any]
        if field in ("downloads", "likes", "trendingScore"):
            key = lambda pair: pair[0].get(field) or 0  # noqa: E731
        else:
            key = lambda pair: str(pair[0].get(field) or "")  # noqa: E731
        by_id = sorted(items, key=lambda pair: pair[0]["id"])
        return sorted(by_id, key=key, reverse=self.descending)
