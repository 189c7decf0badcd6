"""Write endpoints, enabled by ``serve.token``: create repo, preupload, LFS batch/upload/verify, commit.

Uploaded bytes go through the store's one writer (size and sha256 checked while streaming); a commit
becomes a normal commit in the index (source "push"), so resolve, views and serve see it at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import validate_repo_id
from ..errors import IntegrityError, StoreError, UnsafePathError
from ..hashing import git_blob_sha1, lfs_pointer
from ..models import Access, BlobRecord, FileRecord, Repo, url_prefix
from ..paths import is_sha256, safe_relpath
from ..store import Expected
from ..view import HFCacheView, view_root
from .catalog import Catalog
from .http import HubHTTPError, base_url

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
LFS_CONTENT_TYPE = "application/vnd.git-lfs+json"


class Writer:
    """Holds the secret that signs upload URLs (the client PUTs to them without credentials)."""

    def __init__(self, catalog: Catalog, token: str) -> None:
        self.catalog = catalog
        self._secret = hashlib.sha256(b"hubmirror-upload\0" + token.encode()).digest()

    def _sign(self, *parts: str) -> str:
        return hmac.new(self._secret, "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

    def _check_sig(self, request: Request, *parts: str) -> None:
        if not hmac.compare_digest(request.query_params.get("sig", ""), self._sign(*parts)):
            raise HubHTTPError(403, "invalid or missing upload signature")

    # -- create ----------------------------------------------------------------------------------
    async def create_repo(self, request: Request) -> Response:
        body = await _json_body(request)
        name, org = body.get("name"), body.get("organization")
        repo_type = body.get("type") or "model"
        if repo_type not in ("model", "dataset"):
            raise HubHTTPError(400, f"repo type '{repo_type}' is not supported by hubmirror serve")
        repo_id = f"{org}/{name}" if org else str(name)
        try:
            validate_repo_id(repo_id)
        except ValueError as exc:
            raise HubHTTPError(400, f"invalid repo id '{repo_id}': {exc}") from exc
        private = bool(body.get("private")) or body.get("visibility") in ("private", "protected")
        url = f"{base_url(request)}/{url_prefix(repo_type)}{repo_id}"
        created = await run_in_threadpool(self._create, repo_type, repo_id, private)
        if not created:
            return JSONResponse({"error": "You already created this repo", "url": url}, status_code=409)
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id})

    def _create(self, repo_type: str, repo_id: str, private: bool) -> bool:
        index, store = self.catalog.index(), self.catalog.store
        with store.write_lock():
            if not index.create_repo(repo_type, repo_id, private):
                return False
            commit = _commit_id(None, [], "initial commit")
            index.publish_commit(repo_type, repo_id, commit, [], [], source="push", access=Access(private))
            index.set_ref(repo_type, repo_id, "main", commit)
        return True

    # -- preupload -------------------------------------------------------------------------------
    async def preupload(self, request: Request, repo: Repo, revision: str) -> Response:
        body = await _json_body(request)
        files = body.get("files")
        if not isinstance(files, list):
            raise HubHTTPError(400, "'files' must be a list")
        current = self._branch_files(repo, revision)
        answer = []
        for item in files:
            path = _safe(item.get("path") if isinstance(item, dict) else None)
            size = int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample") or b"")
            lfs = size > 0 and (size >= LFS_THRESHOLD or b"\0" in sample or path.endswith(LFS_SUFFIXES))
            existing = current.get(path)
            oid = (existing.sha256 if existing.lfs else existing.git_oid) if existing else None
            answer.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return JSONResponse({"files": answer, "commitOid": self._head(repo, revision)})

    def _head(self, repo: Repo, revision: str) -> str | None:
        return self.catalog.index().ref(repo, revision)

    def _branch_files(self, repo: Repo, revision: str) -> dict[str, FileRecord]:
        head = self._head(repo, revision)
        return self.catalog.files(repo, head) if head else {}

    # -- LFS -------------------------------------------------------------------------------------
    async def lfs_batch(self, request: Request) -> Response:
        body = await _json_body(request)
        if body.get("operation") != "upload":
            raise HubHTTPError(400, "only LFS uploads are supported here; download with /resolve/")
        base = base_url(request)
        objects = []
        for item in body.get("objects") or []:
            oid, size = item.get("oid"), item.get("size")
            if not isinstance(oid, str) or not is_sha256(oid) or not isinstance(size, int) or size < 0:
                objects.append(
                    {
                        "oid": str(oid),
                        "size": size if isinstance(size, int) else 0,
                        "error": {"code": 422, "message": "oid must be 64 hex, size an integer"},
                    }
                )
                continue
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not self.catalog.store.has_blob(oid):
                answer["actions"] = {
                    "upload": {"href": f"{base}/lfs-upload/{oid}/{size}?sig={self._sign(oid, str(size))}"},
                    "verify": {"href": f"{base}/lfs-verify/{oid}?sig={self._sign(oid)}"},
                }
            objects.append(answer)
        return JSONResponse({"transfer": "basic", "objects": objects}, media_type=LFS_CONTENT_TYPE)

    async def lfs_upload(self, request: Request, oid: str, size_text: str) -> Response:
        """PUT of one LFS object: streamed into the store; size and sha256 verified before it lands."""
        self._check_sig(request, oid, size_text)
        size = int(size_text)
        store = self.catalog.store
        with store.writer(Expected(size=size, sha256=oid)) as writer:
            try:
                async for chunk in request.stream():
                    writer.write(chunk)
                info = await run_in_threadpool(writer.commit)
            except IntegrityError as exc:
                raise HubHTTPError(400, f"upload of {oid} rejected: {exc}") from exc
            except StoreError as exc:
                raise HubHTTPError(507, str(exc)) from exc
        await run_in_threadpool(self._record_blob, BlobRecord(info.sha256, info.size, None))
        return Response(status_code=200)

    def _record_blob(self, blob: BlobRecord) -> None:
        with self.catalog.store.write_lock():
            self.catalog.index().add_blobs([blob])

    async def lfs_verify(self, request: Request, oid: str) -> Response:
        self._check_sig(request, oid)
        body = await _json_body(request)
        path = self.catalog.store.blob_path(oid) if is_sha256(oid) else None
        if path is None or not path.exists() or path.stat().st_size != body.get("size"):
            raise HubHTTPError(404, f"LFS object {oid} of that size was not uploaded")
        return JSONResponse({"message": "verified"})

    # -- commit ----------------------------------------------------------------------------------
    async def commit(self, request: Request, repo: Repo, revision: str) -> Response:
        if request.query_params.get("create_pr"):
            raise HubHTTPError(400, "pull requests are not supported by hubmirror serve; commit to a branch")
        lines = [line for line in (await request.body()).splitlines() if line.strip()]
        try:
            ops = [json.loads(line) for line in lines]
        except ValueError as exc:
            raise HubHTTPError(400, f"commit body is not NDJSON: {exc}") from exc
        if not ops or ops[0].get("key") != "header":
            raise HubHTTPError(400, "a commit starts with a header line")
        header = ops[0].get("value") or {}
        if not str(header.get("summary", "")).strip():
            raise HubHTTPError(400, "the commit summary must not be empty")
        sha = await run_in_threadpool(self._apply, repo, revision, header, ops[1:])
        url = f"{base_url(request)}/{url_prefix(repo.type)}{repo.name}/commit/{sha}"
        return JSONResponse({"commitUrl": url, "commitOid": sha, "pullRequestUrl": None})

    def _apply(self, repo: Repo, branch: str, header: dict[str, Any], ops: list[dict[str, Any]]) -> str:
        index, store = self.catalog.index(), self.catalog.store
        with store.gc_guard(), store.write_lock():
            head = index.ref(repo, branch)
            if head is None and index.refs(repo):
                raise HubHTTPError(404, f"branch '{branch}' does not exist in {repo.name}", "RevisionNotFound")
            parent = header.get("parentCommit")
            if parent and (head is None or not head.startswith(str(parent))):
                raise HubHTTPError(
                    412,
                    "The branch was updated since you opened this page. "
                    f"Please refresh and try again. (head is {head})",
                )
            files = dict(self.catalog.files(repo, head)) if head else {}
            blobs: list[BlobRecord] = []
            for op in ops:
                self._apply_op(op, files, blobs)
            sha = _commit_id(head, sorted(files.values(), key=lambda f: f.path), str(header.get("summary")))
            index.publish_commit(repo.type, repo.name, sha, files.values(), blobs, source="push")
            index.set_ref(repo.type, repo.name, branch, sha)
        HFCacheView(view_root(store.home), store, index).update(repo.type, repo.name, sha)
        return sha

    def _apply_op(self, op: dict[str, Any], files: dict[str, FileRecord], blobs: list[BlobRecord]) -> None:
        key, value = op.get("key"), op.get("value") or {}
        if key == "file":
            path = _safe(value.get("path"))
            try:
                data = base64.b64decode(value.get("content") or "", validate=True)
            except (binascii.Error, ValueError) as exc:
                raise HubHTTPError(400, f"content of '{path}' is not base64") from exc
            git_oid = git_blob_sha1(data)
            with self.catalog.store.writer(Expected(size=len(data), git_sha1=git_oid)) as writer:
                writer.write(data)
                info = writer.commit()
            blobs.append(BlobRecord(info.sha256, info.size, git_oid))
            files[path] = FileRecord(path, len(data), info.sha256, git_oid, False)
        elif key == "lfsFile":
            path, oid = _safe(value.get("path")), str(value.get("oid", ""))
            blob = self.catalog.store.blob_path(oid) if is_sha256(oid) else None
            if blob is None or not blob.exists():
                raise HubHTTPError(422, f"LFS object {oid} for '{path}' was never uploaded")
            size = blob.stat().st_size
            if value.get("size") is not None and value["size"] != size:
                raise HubHTTPError(422, f"LFS object {oid} has {size} bytes, not {value['size']}")
            blobs.append(BlobRecord(oid, size, None))
            files[path] = FileRecord(path, size, oid, git_blob_sha1(lfs_pointer(oid, size)), True)
        elif key == "deletedFile":
            path = _safe(value.get("path"))
            if files.pop(path, None) is None:
                raise HubHTTPError(404, f"cannot delete '{path}': no such file", "EntryNotFound")
        elif key == "deletedFolder":
            prefix = _safe(str(value.get("path", "")).rstrip("/")) + "/"
            gone = [p for p in files if p.startswith(prefix)]
            if not gone:
                raise HubHTTPError(404, f"cannot delete folder '{prefix}': no such folder", "EntryNotFound")
            for p in gone:
                del files[p]
        else:
            raise HubHTTPError(400, f"unknown commit operation {key!r}")


def _safe(path: Any) -> str:
    try:
        return safe_relpath(path if isinstance(path, str) else "")
    except UnsafePathError as exc:
        raise HubHTTPError(400, str(exc)) from exc


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise HubHTTPError(400, "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise HubHTTPError(400, "request body must be a JSON object")
    return body


def _commit_id(parent: str | None, files: list[FileRecord], message: str) -> str:
    """A git-shaped commit id, unique per content, parent, message and time."""
    text = f"parent {parent}\n" + "".join(f"{f.path}\0{f.git_oid}\n" for f in files)
    return hashlib.sha1(f"{text}\n{message}\n{time.time_ns()}".encode()).hexdigest()
