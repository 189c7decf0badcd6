"""Discussions and pull requests, as the Hub's API shapes them for ``HfApi`` (``create_discussion``,
``create_pull_request``, ``get_repo_discussions``, ``get_discussion_details``, ``comment_discussion``,
``change_discussion_status``, ``rename_discussion``, ``merge_pull_request``).

A pull request's changes live on ``refs/pr/N`` (commits with ``create_pr=1`` or onto ``refs/pr/N`` go
through :mod:`writes`); merging applies them onto the base branch (see :mod:`merge`). Anyone with a token
who can read the repo may open and comment; the author or a writer may close, reopen and rename; only a
writer may merge. Mirrored repos take discussions but no pull requests (their content comes from upstream).
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..index import Discussion, DiscussionEvent
from ..models import Repo
from . import merge
from .auth import Caller
from .bodies import json_object, text_field
from .catalog import Catalog
from .http import HubHTTPError, hub_date
from .refs import DEFAULT_BRANCH
from .writes import Writer

PAGE = 50
TITLE_LIMIT = 500
COMMENT_LIMIT = 65_536


def event_json(event: DiscussionEvent) -> dict[str, Any]:
    author = {"name": event.author or "deleted"}
    data = dict(event.data)
    if event.type == "comment":
        content = str(data.get("content", ""))
        data = {
            "edited": False,
            "hidden": False,
            "numEdits": 0,
            "editors": [author["name"]],
            "reactions": [],
            "history": [],
            "latest": {
                "raw": content,
                "html": f"<p>{escape(content)}</p>",
                "updatedAt": hub_date(event.created_at),
                "author": author,
            },
        }
    return {
        "id": str(event.id),
        "type": event.type,
        "createdAt": hub_date(event.created_at),
        "author": author,
        "data": data,
    }


def discussion_json(repo: Repo, d: Discussion) -> dict[str, Any]:
    return {
        "num": d.num,
        "title": d.title,
        "status": d.status,
        "author": {"name": d.author or "deleted"},
        "createdAt": hub_date(d.created_at),
        "isPullRequest": d.is_pr,
        "pinned": False,
        "topReactions": [],
        "repo": {"name": repo.name, "type": repo.type},
    }


class Discussions:
    def __init__(self, catalog: Catalog, writer: Writer) -> None:
        self.catalog, self.writer = catalog, writer

    # -- reads -----------------------------------------------------------------------------------
    def listing(self, request: Request, repo: Repo) -> Response:
        params = request.query_params
        page_text = params.get("p", "0") or "0"
        if not page_text.isdigit() or len(page_text) > 9:
            raise HubHTTPError(400, f"query parameter 'p' must be a page number, got {page_text[:40]!r}")
        kind, status, author = params.get("type", "all"), params.get("status", "all"), params.get("author")
        if kind not in ("all", "discussion", "pull_request") or status not in ("all", "open", "closed"):
            raise HubHTTPError(400, "type must be all|discussion|pull_request and status all|open|closed")
        found = [
            d
            for d in self.catalog.index().discussions(repo.id)
            if (kind == "all" or d.is_pr == (kind == "pull_request"))
            and (status == "all" or (d.status in ("open", "draft")) == (status == "open"))
            and (author is None or d.author == author)
        ]
        start = int(page_text) * PAGE
        return JSONResponse(
            {
                "discussions": [discussion_json(repo, d) for d in found[start : start + PAGE]],
                "count": len(found),
                "start": start,
                "numClosedDiscussions": sum(d.status not in ("open", "draft") for d in found),
            }
        )

    def _discussion(self, repo: Repo, num_text: str) -> Discussion:
        found = self.catalog.index().discussion(repo.id, int(num_text)) if num_text.isdigit() else None
        if found is None or len(num_text) > 9:
            raise HubHTTPError(404, f"discussion #{num_text[:20]} does not exist in {repo.name}")
        return found

    async def details(self, request: Request, repo: Repo, num_text: str) -> Response:
        d = self._discussion(repo, num_text)
        data = discussion_json(repo, d)
        data["events"] = [event_json(e) for e in self.catalog.index().discussion_events(repo.id, d.num)]
        if d.is_pr:
            changes = await run_in_threadpool(merge.PullRequest.load, self.catalog, repo, d)
            data["changes"] = {"base": f"refs/heads/{d.base}"}
            if d.merge_commit:
                data["changes"]["mergeCommitId"] = d.merge_commit
            data["filesWithConflicts"] = changes.conflicts() if d.status in ("open", "draft") else []
            if request.query_params.get("diff"):
                data["diff"] = await run_in_threadpool(changes.diff)
        return JSONResponse(data)

    # -- writes ----------------------------------------------------------------------------------
    @staticmethod
    def _signed_in(caller: Caller) -> str:
        if caller.anonymous or caller.name is None:
            raise HubHTTPError(401, "a token is required to take part in discussions on this mirror")
        return caller.name

    def _may_moderate(self, caller: Caller, repo: Repo, d: Discussion) -> None:
        if d.author != caller.name and not caller.may_write(repo.type, repo.name):
            raise HubHTTPError(403, f"only the author of #{d.num} or a writer of {repo.name} may do that")

    async def create(self, request: Request, caller: Caller, repo: Repo) -> Response:
        author = self._signed_in(caller)
        what = "new discussion"
        body = await json_object(request, what)
        title = (text_field(body, "title", what, limit=TITLE_LIMIT) or "").strip()
        description = text_field(body, "description", what, required=False, limit=COMMENT_LIMIT) or ""
        is_pr = body.get("pullRequest") is True
        if not title:
            raise HubHTTPError(400, f"{what}: 'title' must not be blank")
        if is_pr:
            self.writer.check_writable(caller, repo.type, repo.name, repo, propose=True)
        num = await run_in_threadpool(self._open, repo, title, author, is_pr, description)
        return JSONResponse({"num": num, "pullRequest": is_pr})

    def _open(self, repo: Repo, title: str, author: str, is_pr: bool, description: str) -> int:
        index = self.catalog.index()
        with self.catalog.store.write_lock(), index.atomic():
            base = index.ref(repo, DEFAULT_BRANCH) if is_pr else None
            if is_pr and base is None:
                raise HubHTTPError(404, f"{repo.name} has no '{DEFAULT_BRANCH}' branch to open a pull request on")
            num = index.open_discussion(
                repo.id, title, author, is_pr=is_pr, base=DEFAULT_BRANCH if is_pr else None, description=description
            )
            if is_pr and base is not None:  # a draft: its ref starts at the base and gets commits later
                index.set_ref(repo.type, repo.name, f"refs/pr/{num}", base, kind="pr")
                index.add_event(repo.id, num, "status-change", author, {"status": "draft"})
        if is_pr:
            self.writer.refresh_view(repo)
        return num

    async def act(self, request: Request, caller: Caller, repo: Repo, num_text: str, action: str) -> Response:
        """``POST discussions/{num}/{comment|status|title|merge}``."""
        author = self._signed_in(caller)
        d = self._discussion(repo, num_text)
        what = f"{action} on #{d.num}"
        body = await json_object(request, what)
        if action == "comment":
            text = text_field(body, "comment", what, limit=COMMENT_LIMIT) or ""
            event = await self._event(repo, d, "comment", author, {"content": text})
            return JSONResponse({"newMessage": event_json(event)})
        if action == "title":
            self._may_moderate(caller, repo, d)
            title = (text_field(body, "title", what, limit=TITLE_LIMIT) or "").strip()
            if not title:
                raise HubHTTPError(400, f"{what}: 'title' must not be blank")
            event = await self._event(repo, d, "title-change", author, {"from": d.title, "to": title})
            return JSONResponse({"newTitle": event_json(event)})
        if action == "status":
            self._may_moderate(caller, repo, d)
            status = body.get("status")
            if status not in ("open", "closed"):
                raise HubHTTPError(400, f"{what}: 'status' must be 'open' or 'closed'")
            if d.status == "merged":
                raise HubHTTPError(400, f"#{d.num} is merged; its status cannot change")
            comment = text_field(body, "comment", what, required=False, limit=COMMENT_LIMIT)
            if comment:
                await self._event(repo, d, "comment", author, {"content": comment})
            event = await self._event(repo, d, "status-change", author, {"status": status})
            return JSONResponse({"newStatus": event_json(event)})
        if action == "merge":
            if not d.is_pr:
                raise HubHTTPError(400, f"#{d.num} is a discussion, not a pull request")
            self.writer.check_writable(caller, repo.type, repo.name, repo)
            if d.status not in ("open", "draft"):
                raise HubHTTPError(400, f"pull request #{d.num} is {d.status}; only an open one can be merged")
            comment = text_field(body, "comment", what, required=False, limit=COMMENT_LIMIT)
            event = await run_in_threadpool(merge.merge, self.catalog, self.writer, repo, d, author, comment)
            return JSONResponse({"newStatus": event_json(event)})
        raise HubHTTPError(404, f"no such discussion action: {action[:40]}")

    async def _event(self, repo: Repo, d: Discussion, kind: str, author: str, data: dict[str, Any]) -> DiscussionEvent:
        def add() -> DiscussionEvent:
            with self.catalog.store.write_lock():
                return self.catalog.index().add_event(repo.id, d.num, kind, author, data)

        return await run_in_threadpool(add)
