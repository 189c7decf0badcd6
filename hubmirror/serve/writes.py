"""Pushes through serve: create repo, preupload, commit. Each needs a caller allowed to write to that repo.

Repos the config lists under ``repos:`` (and any repo whose content came from a mirror) are read-only here:
upstream is their truth, so a push is refused with 403 saying where to push instead. A commit's regular files
go through the store's one writer; the commit becomes a normal commit in the index (source "push"), so
resolve, views and serve see it at once.
"""

from __future__ import annotations

import base64
import binascii

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..cards import card_json
from ..config import validate_repo_id
from ..hashing import git_blob_sha1
from ..models import Access, BlobRecord, FileRecord, Repo, url_prefix
from ..store import Expected
from ..view import HFCacheView, view_root
from . import commits
from .auth import Caller
from .bodies import COMMIT_LIMIT, json_object, list_field, read_body, text_field
from .catalog import Catalog
from .http import HubHTTPError, base_url
from .lfs import LfsEndpoints

LFS_THRESHOLD = 10 * 1024 * 1024
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".onnx",
    ".h5",
    ".msgpack",
    ".parquet",
    ".arrow",
    ".zip",
    ".gz",
    ".tar",
    ".npy",
    ".npz",
    ".ckpt",
    ".pkl",
    ".model",
    ".tflite",
    ".ot",
    ".gguf",
)


class Writer:
    def __init__(
        self, catalog: Catalog, lfs: LfsEndpoints, mirrored: frozenset[tuple[str, str]], upstream: str | None
    ) -> None:
        self.catalog, self.lfs = catalog, lfs
        self.mirrored, self.upstream = mirrored, upstream

    def check_writable(self, caller: Caller, repo_type: str, repo_id: str, repo: Repo | None = None) -> None:
        """403 unless the caller may write there and the repo is not a mirror."""
        if repo is not None and ((repo.type, repo.name) in self.mirrored or not self.catalog.index().is_local(repo)):
            where = f"upstream ({self.upstream})" if self.upstream else "its upstream"
            raise HubHTTPError(
                403,
                f"{repo_type} {repo.name} is a mirror of {where} and is read-only here: push to "
                "it there (e.g. 'hubmirror push --repo ...'); the next sync brings the change",
            )
        if not caller.may_write(repo_type, repo_id):
            who = f"the token '{caller.name}'" if caller.name else "an anonymous request"
            raise HubHTTPError(403, f"{who} may not write to {repo_type} {repo_id}")

    # -- create ----------------------------------------------------------------------------------
    async def create_repo(self, request: Request, caller: Caller) -> Response:
        body = await json_object(request, "create-repo request")
        name = text_field(body, "name", "create-repo request", limit=200)
        org = text_field(body, "organization", "create-repo request", required=False, limit=200)
        repo_type = body.get("type") or "model"
        if repo_type not in ("model", "dataset"):
            raise HubHTTPError(
                400, f"repo type {str(repo_type)[:20]!r} is not supported by hubmirror serve (models and datasets are)"
            )
        namespace = org or caller.name  # as on the Hub: no namespace means the token's own
        repo_id = f"{namespace}/{name}" if namespace else str(name)
        try:
            validate_repo_id(repo_id)
        except ValueError as exc:
            raise HubHTTPError(400, str(exc)) from None
        visibility = body.get("visibility")
        private = body.get("private") is True or visibility in ("private", "protected")
        url = f"{base_url(request)}/{url_prefix(repo_type)}{repo_id}"
        existing = self.catalog.index().find_repo(repo_type, repo_id)
        if existing is not None and caller.may_read(existing):
            return JSONResponse({"error": "You already created this repo", "url": url}, status_code=409)
        self.check_writable(caller, repo_type, repo_id, existing)
        created = await run_in_threadpool(self._create, repo_type, repo_id, private)
        if not created:
            return JSONResponse({"error": "You already created this repo", "url": url}, status_code=409)
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id})

    def _create(self, repo_type: str, repo_id: str, private: bool) -> bool:
        index, store = self.catalog.index(), self.catalog.store
        with store.write_lock():
            if not index.create_repo(repo_type, repo_id, private):
                return False
            commit = commits.commit_id(None, [], "initial commit")
            index.publish_commit(repo_type, repo_id, commit, [], [], source="push", access=Access(private), card="")
            index.set_ref(repo_type, repo_id, "main", commit, kind="branch")
        return True

    # -- preupload -------------------------------------------------------------------------------
    async def preupload(self, request: Request, caller: Caller, repo: Repo, revision: str) -> Response:
        self.check_writable(caller, repo.type, repo.name, repo)
        body = await json_object(request, "preupload request")
        items = list_field(body, "files", "preupload request", limit=1000)
        current = self._branch_files(repo, revision)
        answer = []
        for item in items:
            if not isinstance(item, dict):
                raise HubHTTPError(400, "preupload request: each of 'files' must be an object")
            path = commits.path_of(item.get("path"), "preupload request")
            size = item.get("size", 0)
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise HubHTTPError(400, f"preupload request: 'size' of '{path}' must be a non-negative integer")
            sample = item.get("sample") or ""
            try:
                head = base64.b64decode(sample, validate=True) if isinstance(sample, str) else None
            except (binascii.Error, ValueError):
                head = None
            if head is None:
                raise HubHTTPError(400, f"preupload request: 'sample' of '{path}' must be base64")
            lfs = size > 0 and (size >= LFS_THRESHOLD or b"\0" in head[:512] or path.endswith(LFS_SUFFIXES))
            existing = current.get(path)
            oid = (existing.sha256 if existing.lfs else existing.git_oid) if existing else None
            answer.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return JSONResponse({"files": answer, "commitOid": self.catalog.index().ref(repo, revision)})

    def _branch_files(self, repo: Repo, revision: str) -> dict[str, FileRecord]:
        head = self.catalog.index().ref(repo, revision)
        return self.catalog.files(repo, head) if head else {}

    # -- commit ----------------------------------------------------------------------------------
    async def commit(self, request: Request, caller: Caller, repo: Repo, revision: str) -> Response:
        self.check_writable(caller, repo.type, repo.name, repo)
        if request.query_params.get("create_pr"):
            raise HubHTTPError(400, "pull requests are not supported by hubmirror serve; commit to a branch")
        body = await read_body(request, COMMIT_LIMIT)
        ops = await run_in_threadpool(commits.parse, body)  # base64 of up to 64 MB: off the event loop
        sha = await run_in_threadpool(self._apply, caller, repo, revision, ops)
        url = f"{base_url(request)}/{url_prefix(repo.type)}{repo.name}/commit/{sha}"
        return JSONResponse({"commitUrl": url, "commitOid": sha, "pullRequestUrl": None})

    def _apply(self, caller: Caller, repo: Repo, branch: str, ops: commits.Operations) -> str:
        index, store = self.catalog.index(), self.catalog.store
        with store.gc_guard(), store.write_lock():
            head = index.ref(repo, branch)
            if head is None and index.refs(repo):
                raise HubHTTPError(404, f"branch '{branch}' does not exist in {repo.name}", "RevisionNotFound")
            parent = ops.header.parent
            if parent and (head is None or not head.startswith(parent)):
                raise HubHTTPError(
                    412,
                    "The branch was updated since you opened this page. Please refresh and "
                    f"try again. (head is {head})",
                )
            regular, blobs = self._store_regular(ops)
            files = commits.apply(
                ops,
                dict(self.catalog.files(repo, head)) if head else {},
                regular,
                lambda oid: self._lfs_size(oid, caller),
            )
            blobs += [BlobRecord(f.sha256, f.size, None) for f in files.values() if f.lfs]
            ordered = sorted(files.values(), key=lambda f: f.path)
            sha = commits.commit_id(head, ordered, ops.header.summary)
            index.publish_commit(
                repo.type, repo.name, sha, ordered, blobs, source="push", card=card_json(ordered, store.blob_path)
            )
            index.set_ref(repo.type, repo.name, branch, sha, kind="branch")
        HFCacheView(view_root(store.home), store, index).update(repo.type, repo.name, sha)
        return sha

    def _store_regular(self, ops: commits.Operations) -> tuple[dict[str, FileRecord], list[BlobRecord]]:
        records: dict[str, FileRecord] = {}
        blobs: list[BlobRecord] = []
        for path, data in ops.regular.items():
            git_oid = git_blob_sha1(data)
            with self.catalog.store.writer(Expected(size=len(data), git_sha1=git_oid)) as writer:
                writer.write(data)
                info = writer.commit()
            blobs.append(BlobRecord(info.sha256, info.size, git_oid))
            records[path] = FileRecord(path, len(data), info.sha256, git_oid, False)
        return records, blobs

    def _lfs_size(self, oid: str, caller: Caller) -> int | None:
        if not self.lfs.may_commit(oid, caller):
            return None
        return self.catalog.store.blob_path(oid).stat().st_size
