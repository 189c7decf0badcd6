"""Commit history through serve: ``GET /api/{type}s/{repo}/commits/{revision}`` (paginated by ``Link``, as
``list_repo_commits`` follows it) and, for tree listings, the last commit that touched each path."""

from __future__ import annotations

import itertools
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..models import CommitMeta, Repo
from .catalog import Catalog
from .http import HubHTTPError, base_url, hub_date

PAGE = 50
LAST_COMMIT_DEPTH = 100  # how far back a tree listing looks for the commit that last touched a path


def commit_json(sha: str, meta: CommitMeta | None, formatted: bool) -> dict[str, Any]:
    meta = meta or CommitMeta()
    item: dict[str, Any] = {
        "id": sha,
        "title": meta.title or "",
        "message": meta.message or "",
        "date": hub_date(meta.date),
        "authors": [{"user": name} for name in meta.authors],
    }
    if formatted:
        item["formatted"] = {"title": escape(item["title"]), "message": escape(item["message"])}
    return item


def list_commits(request: Request, catalog: Catalog, repo: Repo, head: str) -> Response:
    """The commits reachable from ``head`` that the store knows, newest first. A mirrored repo's history
    starts at the first commit this store mirrored (older ones were never fetched)."""
    value = request.query_params.get("p", "0") or "0"
    if not value.isdigit() or len(value) > 9:
        raise HubHTTPError(400, f"query parameter 'p' must be a page number, got {value[:40]!r}")
    page = int(value)
    formatted = "formatted" in request.query_params.getlist("expand[]") + request.query_params.getlist("expand")
    chain = catalog.index().history(repo, head, (page + 1) * PAGE + 1)
    items = [commit_json(sha, meta, formatted) for sha, meta in chain[page * PAGE : (page + 1) * PAGE]]
    headers = {}
    if len(chain) > (page + 1) * PAGE:
        query = parse_qs(request.url.query)
        query["p"] = [str(page + 1)]
        headers["Link"] = f'<{base_url(request)}{request.url.path}?{urlencode(query, doseq=True)}>; rel="next"'
    return JSONResponse(items, headers=headers)


def last_commits(catalog: Catalog, repo: Repo, head: str) -> dict[str, tuple[str, CommitMeta]]:
    """path → the commit (and what it says) that last changed the file, looking back at most
    LAST_COMMIT_DEPTH commits; paths unchanged for longer are credited to the oldest commit looked at."""
    chain = catalog.index().history(repo, head, LAST_COMMIT_DEPTH)
    if not chain:
        return {}
    current = catalog.files(repo, head)
    last = {path: chain[0] for path in current}
    open_paths = set(current)
    for newer, older in itertools.pairwise(chain):
        before = catalog.files(repo, older[0])
        for path in list(open_paths):
            previous = before.get(path)
            if previous is None or previous.git_oid != current[path].git_oid or previous.sha256 != current[path].sha256:
                last[path] = newer
                open_paths.discard(path)
            else:
                last[path] = older
        if not open_paths:
            break
    return last
