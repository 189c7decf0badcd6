"""``GET /``: search the mirrored repos by name and tag, filter by type, pipeline tag, library and license
(the choices are what the visible repos' cards say), as a plain GET form."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

from ...units import human_size
from ..auth import Caller
from ..catalog import Catalog
from .layout import esc, page, repo_url
from .summary import Summary, summarize

MAX_RESULTS = 200
FILTERS: list[tuple[str, str, Callable[[Summary], str]]] = [
    ("pipeline_tag", "pipeline tag", lambda s: s.pipeline_tag),
    ("library", "library", lambda s: s.library),
    ("license", "license", lambda s: s.license),
]


def search_page(request: Request, catalog: Catalog, caller: Caller, notice: str | None) -> str:
    params = request.query_params
    query = params.get("q", "").strip()[:200]
    wanted_type = params.get("type", "")
    wanted = {key: params.get(key, "") for key, _, _ in FILTERS}
    summaries = [
        s
        for repo_type in ("model", "dataset")
        for repo in catalog.visible_repos(repo_type, caller)
        if (s := summarize(catalog, repo)) is not None
    ]
    hits = [
        s
        for s in summaries
        if (not wanted_type or s.repo.type == wanted_type)
        and all(not value or get(s) == value for (key, _, get), value in zip(FILTERS, wanted.values()))
        and _matches(s, query.lower())
    ]
    form = _form(query, wanted_type, wanted, summaries)
    if not summaries:
        listing = "<p>Nothing is mirrored here yet" + (" that you may see." if caller.anonymous else ".") + "</p>"
    elif not hits:
        listing = '<p>No repo matches. <a href="/">Show all</a></p>'
    else:
        shown = hits[:MAX_RESULTS]
        more = (
            f'<p class="muted">Showing the first {MAX_RESULTS} of {len(hits)} repos: narrow the search.</p>'
            if len(hits) > MAX_RESULTS
            else ""
        )
        count = f'<p class="muted" id="count">{len(hits)} repo{"s" if len(hits) != 1 else ""}</p>'
        listing = count + '<ul class="results">' + "".join(_result(s) for s in shown) + "</ul>" + more
    if caller.anonymous and notice is None:
        listing += '<p class="muted">Private repos are listed after you <a href="/-/login">log in</a>.</p>'
    return page("Search", "<h1>Repos on this mirror</h1>" + form + listing, caller, notice=notice)


def _matches(summary: Summary, query: str) -> bool:
    if not query:
        return True
    words = [summary.repo.name, *summary.tags, summary.pipeline_tag, summary.library]
    return all(any(term in w.lower() for w in words) for term in query.split())


def _select(name: str, label: str, current: str, values: set[str]) -> str:
    options = [f'<option value="">any {esc(label)}</option>']
    for value in sorted(values | ({current} if current else set())):
        chosen = " selected" if value == current else ""
        options.append(f'<option value="{esc(value)}"{chosen}>{esc(value)}</option>')
    return f'<label>{esc(label)} <select name="{esc(name)}">{"".join(options)}</select></label> '


def _form(query: str, wanted_type: str, wanted: dict[str, str], summaries: list[Summary]) -> str:
    parts = [
        '<form class="search" method="get" action="/" role="search">',
        f'<input type="search" name="q" value="{esc(query)}" placeholder="search names and tags" '
        'aria-label="search" size="30" autofocus> ',
        _select("type", "type", wanted_type, {"model", "dataset"}),
    ]
    for key, label, get in FILTERS:
        parts.append(_select(key, label, wanted[key], {v for s in summaries if (v := get(s))}))
    parts.append('<button type="submit">Search</button></form>')
    return "".join(parts)


def _result(s: Summary) -> str:
    flags = "".join(f' <span class="tag">{flag}</span>' for flag in _flags(s))
    facts = [s.repo.type]
    for label, value in (("pipeline", s.pipeline_tag), ("library", s.library), ("license", s.license)):
        if value:
            facts.append(f"{label}: {value}")
    facts += [f"{s.files} file{'s' if s.files != 1 else ''}", human_size(s.size)]
    if s.updated:
        facts.append(f"updated {s.updated}")
    tags = "".join(f'<span class="tag">{esc(t)}</span>' for t in s.tags)
    return (
        f'<li class="result"><a class="repo" href="{esc(repo_url(s.repo.type, s.repo.name))}">'
        f"<b>{esc(s.repo.name)}</b></a>{flags}<br>"
        f'<span class="muted">{esc(" · ".join(facts))}</span>' + (f"<br>{tags}" if tags else "") + "</li>"
    )


def _flags(s: Summary) -> list[str]:
    return (["private"] if s.repo.private else []) + (["gated"] if s.repo.gated else [])
