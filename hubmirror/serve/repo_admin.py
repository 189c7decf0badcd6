"""Repo-level writes through serve: delete, move (rename) and settings (visibility, gate).

Mirrored repos are read-only here like any other write (their truth is upstream). A moved repo keeps
resolving under its old name (an alias, as sync keeps one for a repo renamed upstream)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import validate_repo_id
from ..errors import RepoNotMirroredError
from ..models import Access, Repo, url_prefix
from ..view import HFCacheView, view_root
from .auth import Caller
from .bodies import json_object, text_field
from .catalog import Catalog
from .http import HubHTTPError, base_url
from .writes import Writer

_TYPES = {None: "model", "model": "model", "dataset": "dataset"}


def _repo_type(body: dict[str, Any], what: str) -> str:
    value = body.get("type")
    if value not in _TYPES:
        raise HubHTTPError(400, f"{what}: repo type {str(value)[:20]!r} is not served here (models and datasets are)")
    return _TYPES[value]


class RepoAdmin:
    def __init__(self, catalog: Catalog, writer: Writer) -> None:
        self.catalog, self.writer = catalog, writer

    def _writable(self, caller: Caller, repo_type: str, repo_id: str) -> Repo:
        try:
            repo = self.catalog.repo(repo_type, repo_id, caller)
        except RepoNotMirroredError as exc:
            raise HubHTTPError(404, f"{repo_type} repo '{repo_id}' does not exist here", "RepoNotFound") from exc
        if repo.name != repo_id:  # an old name: writes go to the repo's own name
            raise HubHTTPError(404, f"'{repo_id}' was renamed to '{repo.name}'; use the new name", "RepoNotFound")
        self.writer.check_writable(caller, repo.type, repo.name, repo)
        return repo

    async def delete(self, request: Request, caller: Caller) -> Response:
        """``DELETE /api/repos/delete`` {"name", "organization", "type"}: the repo and its history go; its
        blobs stay in the store until ``hubmirror gc``."""
        what = "delete-repo request"
        body = await json_object(request, what)
        name = text_field(body, "name", what, limit=200) or ""
        org = text_field(body, "organization", what, required=False, limit=200)
        repo = self._writable(caller, _repo_type(body, what), f"{org}/{name}" if org else name)
        await run_in_threadpool(self._delete, repo)
        return JSONResponse({})

    def _delete(self, repo: Repo) -> None:
        index = self.catalog.index()
        with self.catalog.store.write_lock():
            aliases = index.aliases(repo)
            index.delete_repo(repo)
        view = HFCacheView(view_root(self.catalog.store.home), self.catalog.store, index)

        def remove() -> None:
            for name in [repo.name, *aliases]:
                view.remove_repo(repo.type, name)

        self.writer.guard_view(remove)

    async def move(self, request: Request, caller: Caller) -> Response:
        """``POST /api/repos/move`` {"fromRepo", "toRepo", "type"}: the caller must be able to write both
        names; the old name keeps resolving to the repo."""
        what = "move-repo request"
        body = await json_object(request, what)
        source = text_field(body, "fromRepo", what, limit=250) or ""
        target = text_field(body, "toRepo", what, limit=250) or ""
        repo_type = _repo_type(body, what)
        try:
            validate_repo_id(target)
        except ValueError as exc:
            raise HubHTTPError(400, f"{what}: {exc}") from None
        repo = self._writable(caller, repo_type, source)
        if not caller.may_write(repo_type, target):
            raise HubHTTPError(403, f"the token '{caller.name}' may not write to {repo_type} {target}")
        moved = await run_in_threadpool(self._move, repo, target)
        if not moved:
            raise HubHTTPError(409, f"{repo_type} repo '{target}' already exists (or is an old name of one)")
        return JSONResponse({"url": f"{base_url(request)}/{url_prefix(repo_type)}{target}"})

    def _move(self, repo: Repo, target: str) -> bool:
        index = self.catalog.index()
        with self.catalog.store.write_lock():
            if not index.rename_repo(repo, target):
                return False
        renamed = index.find_repo(repo.type, target)
        if renamed is not None:
            view = HFCacheView(view_root(self.catalog.store.home), self.catalog.store, index)
            self.writer.guard_view(lambda: view.rename_repo(renamed, repo.name))
        return True

    async def settings(self, request: Request, caller: Caller, repo_type: str, repo_id: str) -> Response:
        """``PUT /api/{type}s/{repo}/settings`` {"private" | "visibility", "gated"}."""
        what = "settings request"
        repo = self._writable(caller, repo_type, repo_id)
        body = await json_object(request, what)
        private = repo.private
        if "visibility" in body:
            if body["visibility"] not in ("public", "private"):
                raise HubHTTPError(400, f"{what}: 'visibility' must be 'public' or 'private'")
            private = body["visibility"] == "private"
        if "private" in body:
            if not isinstance(body["private"], bool):
                raise HubHTTPError(400, f"{what}: 'private' must be true or false")
            private = body["private"]
        gated = repo.gated
        if "gated" in body:
            if body["gated"] not in ("auto", "manual", False):
                raise HubHTTPError(400, f"{what}: 'gated' must be 'auto', 'manual' or false")
            gated = body["gated"] or None
        unknown = sorted(set(body) - {"private", "visibility", "gated", "xetEnabled", "discussionsDisabled"})
        if unknown:
            raise HubHTTPError(400, f"{what}: unknown setting(s) {', '.join(k[:40] for k in unknown[:5])}")
        await run_in_threadpool(self._set_access, repo, Access(private, gated))
        return JSONResponse({})

    def _set_access(self, repo: Repo, access: Access) -> None:
        with self.catalog.store.write_lock():
            self.catalog.index().set_access(repo.type, repo.name, access)
