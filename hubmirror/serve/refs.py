"""Refs through serve: the typed listing (branches, tags, pull requests) and the branch and tag writes.

The index keeps a ref under the name the Hub lists it by (``dev``, ``v1.0``; pull requests ``refs/pr/N``)
with its kind. A branch and a tag cannot share a name here (one ref per name); creating either over an
existing name is a 409, as the Hub answers a ref that exists.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import RevisionNotMirroredError
from ..models import Ref, Repo, ref_name
from .auth import Caller
from .bodies import json_object, text_field
from .catalog import Catalog
from .http import HubHTTPError
from .writes import Writer

DEFAULT_BRANCH = "main"
_REF_NAME = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_SHA_LIKE = re.compile(r"[0-9a-f]{40}")


def check_ref_name(name: str, what: str) -> str:
    """A branch or tag name a client may create: git's rules, narrowed to what is safe as a path in the
    HF-cache view and unambiguous here (not ``refs/...``, not a commit id)."""
    if (
        not name
        or len(name) > 200
        or not _REF_NAME.fullmatch(name)
        or ".." in name
        or name.startswith(("-", "refs/", "."))
        or name.endswith((".lock", "."))
        or "/." in name
        or _SHA_LIKE.fullmatch(name)
    ):
        raise HubHTTPError(
            400,
            f"invalid {what} name {name[:80]!r}: use letters, digits, '.', '_', '-' and '/' between parts "
            "(not starting with 'refs/', '-' or '.', no '..', not a commit id)",
        )
    return name


def _ref_json(ref: Ref, prefix: str) -> dict[str, Any]:
    full = ref.name if ref.name.startswith("refs/") else f"{prefix}{ref.name}"
    return {"name": ref.name, "ref": full, "targetCommit": ref.commit}


def refs_json(refs: list[Ref], include_prs: bool) -> dict[str, Any]:
    """The Hub's ``/refs`` answer. A ref whose kind was never recorded (mirrored before kinds were kept)
    is listed as a branch, as upstream lists most names."""
    data: dict[str, Any] = {
        "branches": [_ref_json(r, "refs/heads/") for r in refs if r.kind in ("branch", None) and not _is_pr(r)],
        "converts": [],
        "tags": [_ref_json(r, "refs/tags/") for r in refs if r.kind == "tag"],
    }
    if include_prs:
        data["pullRequests"] = [_ref_json(r, "") for r in refs if _is_pr(r)]
    return data


def _is_pr(ref: Ref) -> bool:
    return ref.kind == "pr" or ref.name.startswith("refs/pr/")


def list_refs(request: Request, catalog: Catalog, repo: Repo) -> Response:
    include_prs = request.query_params.get("include_prs", "").lower() in ("1", "true")
    return JSONResponse(refs_json(catalog.index().refs(repo), include_prs))


class RefWriter:
    """Branch and tag writes: each needs a caller who may write to the repo, and moves the view's refs."""

    def __init__(self, catalog: Catalog, writer: Writer) -> None:
        self.catalog, self.writer = catalog, writer

    def _commit_of(self, repo: Repo, revision: str) -> str:
        try:
            return self.catalog.commit(repo, revision)
        except RevisionNotMirroredError as exc:
            raise HubHTTPError(404, f"Invalid rev id: {revision[:200]}", "RevisionNotFound") from exc

    async def branch(self, request: Request, caller: Caller, repo: Repo, branch: str) -> Response:
        self.writer.check_writable(caller, repo.type, repo.name, repo)
        if request.method == "DELETE":
            await run_in_threadpool(self._delete, repo, ref_name(branch), "branch")
            return JSONResponse({})
        name = check_ref_name(ref_name(branch), "branch")
        body = await json_object(request, "create-branch request")
        start = text_field(body, "startingPoint", "create-branch request", required=False, limit=250)
        commit = self._commit_of(repo, start or DEFAULT_BRANCH)
        await run_in_threadpool(self._create, repo, name, commit, "branch")
        return JSONResponse({})

    async def tag(self, request: Request, caller: Caller, repo: Repo, target: str) -> Response:
        """``POST tag/{revision}`` {"tag", "message"} tags a revision; ``DELETE tag/{tag}`` removes a tag."""
        self.writer.check_writable(caller, repo.type, repo.name, repo)
        if request.method == "DELETE":
            await run_in_threadpool(self._delete, repo, ref_name(target), "tag")
            return JSONResponse({})
        body = await json_object(request, "create-tag request")
        name = check_ref_name(ref_name(text_field(body, "tag", "create-tag request", limit=250) or ""), "tag")
        text_field(body, "message", "create-tag request", required=False, limit=10_000)
        commit = self._commit_of(repo, target)
        await run_in_threadpool(self._create, repo, name, commit, "tag")
        return JSONResponse({})

    def _create(self, repo: Repo, name: str, commit: str, kind: str) -> None:
        index = self.catalog.index()
        with self.catalog.store.write_lock(), index.atomic():
            if index.ref(repo, name) is not None:
                raise HubHTTPError(409, f"Reference already exists: {name} (a branch or tag of {repo.name})")
            index.set_ref(repo.type, repo.name, name, commit, kind=kind)
        self.writer.refresh_view(repo)

    def _delete(self, repo: Repo, name: str, kind: str) -> None:
        index = self.catalog.index()
        with self.catalog.store.write_lock(), index.atomic():
            current = next((r for r in index.refs(repo) if r.name == name), None)
            if current is None or (current.kind or "branch") != kind:
                raise HubHTTPError(404, f"{kind} '{name[:200]}' does not exist in {repo.name}", "RevisionNotFound")
            if kind == "branch" and name == DEFAULT_BRANCH:
                raise HubHTTPError(
                    403, f"'{DEFAULT_BRANCH}' is the default branch of {repo.name}; it cannot be deleted"
                )
            index.delete_ref(repo, name)
        self.writer.refresh_view(repo)
