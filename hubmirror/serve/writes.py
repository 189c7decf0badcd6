"""Pushes through serve: create repo, preupload, commit. Each needs a caller allowed to write to that repo.

Repos the config lists under ``repos:`` (and any repo whose content came from a mirror) are read-only here:
upstream is their truth, so a push is refused with 403 saying where to push instead. A commit's regular files
go through the store's one writer; the commit becomes a normal commit in the index (source "push"), so
resolve, views and serve see it at once.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..cards import card_json
from ..config import validate_repo_id
from ..errors import HubMirrorError
from ..hashing import git_blob_sha1
from ..index import utcnow
from ..models import Access, BlobRecord, CommitMeta, FileRecord, Repo, ref_name, url_prefix
from ..store import Expected
from ..view import HFCacheView, view_root
from . import commits
from .auth import Caller
from .bodies import COMMIT_LIMIT, json_object, list_field, read_body, text_field
from .catalog import Catalog
from .http import HubHTTPError, base_url
from .lfs import LfsEndpoints

logger = logging.getLogger(__name__)

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


GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)


def _pr_number(revision: str) -> int | None:
    """N for ``refs/pr/N``, else None."""
    rest = revision[len("refs/pr/") :] if revision.startswith("refs/pr/") else ""
    return int(rest) if rest.isdigit() and len(rest) < 10 else None


class Writer:
    def __init__(
        self, catalog: Catalog, lfs: LfsEndpoints, mirrored: frozenset[tuple[str, str]], upstream: str | None
    ) -> None:
        self.catalog, self.lfs = catalog, lfs
        self.mirrored, self.upstream = mirrored, upstream

    def check_writable(
        self, caller: Caller, repo_type: str, repo_id: str, repo: Repo | None = None, *, propose: bool = False
    ) -> None:
        """403 unless the caller may write there and the repo is not a mirror. ``propose``: a pull
        request, which any caller who can read the repo (with a token) may open, as on the Hub."""
        if repo is not None and ((repo.type, repo.name) in self.mirrored or not self.catalog.index().is_local(repo)):
            where = f"upstream ({self.upstream})" if self.upstream else "its upstream"
            raise HubHTTPError(
                403,
                f"{repo_type} {repo.name} is a mirror of {where} and is read-only here: push to "
                "it there (e.g. 'hubmirror push --repo ...'); the next sync brings the change",
            )
        if propose and repo is not None and not caller.anonymous and caller.may_read(repo):
            return
        if not caller.may_write(repo_type, repo_id):
            who = f"the token '{caller.name}'" if caller.name else "an anonymous request"
            raise HubHTTPError(403, f"{who} may not write to {repo_type} {repo_id}")

    def check_pushable(self, caller: Caller, repo: Repo, revision: str, create_pr: bool) -> None:
        """Who may commit where: writers to branches; to a pull request's ``refs/pr/N`` its author too;
        opening a pull request (``create_pr``) any reader with a token."""
        pr = _pr_number(revision)
        if pr is None:
            self.check_writable(caller, repo.type, repo.name, repo, propose=create_pr)
            return
        self.check_writable(caller, repo.type, repo.name, repo, propose=True)
        found = self.catalog.index().discussion(repo.id, pr)
        if found is None or not found.is_pr:
            raise HubHTTPError(404, f"pull request #{pr} does not exist in {repo.name}", "RevisionNotFound")
        if found.status not in ("open", "draft"):
            raise HubHTTPError(403, f"pull request #{pr} of {repo.name} is {found.status}: it takes no more commits")
        if found.author != caller.name and not caller.may_write(repo.type, repo.name):
            raise HubHTTPError(403, f"only the author of pull request #{pr} or a writer of {repo.name} may push to it")

    def refresh_view(self, repo: Repo) -> None:
        """Bring the HF-cache view's refs of the repo in line with the index."""
        store, index = self.catalog.store, self.catalog.index()
        self.guard_view(lambda: HFCacheView(view_root(store.home), store, index).sync_refs(repo))

    @staticmethod
    def guard_view(change: Callable[[], object]) -> None:
        """The view is derived from the index: failing to update it must not fail a write that landed
        (the next sync, resolve or ``hubmirror hf-cache`` lays it out again)."""
        try:
            change()
        except (OSError, HubMirrorError) as exc:
            logger.warning("HF-cache view not updated: %s", exc)

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
        created = await run_in_threadpool(self._create, repo_type, repo_id, private, caller.name)
        if not created:
            return JSONResponse({"error": "You already created this repo", "url": url}, status_code=409)
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id})

    def _create(self, repo_type: str, repo_id: str, private: bool, creator: str | None) -> bool:
        """A new repo with a first commit holding a ``.gitattributes`` that sends large and binary files to
        LFS (the Hub's own starting commit), on ``main``, in one transaction."""
        index, store = self.catalog.index(), self.catalog.store
        data = GITATTRIBUTES.encode()
        with store.gc_guard(), store.write_lock():
            git_oid = git_blob_sha1(data)
            with store.writer(Expected(size=len(data), git_sha1=git_oid)) as writer:
                writer.write(data)
                info = writer.commit()
            files = [FileRecord(".gitattributes", len(data), info.sha256, git_oid, False)]
            commit = commits.commit_id(None, files, "initial commit")
            meta = CommitMeta(None, "initial commit", "", (creator,) if creator else (), utcnow())
            with index.atomic():
                if not index.create_repo(repo_type, repo_id, private):
                    return False
                index.publish_commit(
                    repo_type,
                    repo_id,
                    commit,
                    files,
                    [BlobRecord(info.sha256, info.size, git_oid)],
                    source="push",
                    access=Access(private),
                    card="",
                    meta=meta,
                )
                index.set_ref(repo_type, repo_id, "main", commit, kind="branch")
        self.guard_view(lambda: HFCacheView(view_root(store.home), store, index).update(repo_type, repo_id, commit))
        return True

    # -- preupload -------------------------------------------------------------------------------
    async def preupload(self, request: Request, caller: Caller, repo: Repo, revision: str) -> Response:
        self.check_pushable(caller, repo, revision, bool(request.query_params.get("create_pr")))
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
        return JSONResponse({"files": answer, "commitOid": self.catalog.index().ref(repo, ref_name(revision))})

    def _branch_files(self, repo: Repo, revision: str) -> dict[str, FileRecord]:
        head = self.catalog.index().ref(repo, ref_name(revision))
        return self.catalog.files(repo, head) if head else {}

    # -- commit ----------------------------------------------------------------------------------
    async def commit(self, request: Request, caller: Caller, repo: Repo, revision: str) -> Response:
        """A commit onto a branch, onto a pull request (``refs/pr/N``), or (``?create_pr=1``) a new pull
        request proposing the commit onto the branch ``revision``."""
        create_pr = request.query_params.get("create_pr", "").lower() in ("1", "true")
        self.check_pushable(caller, repo, revision, create_pr)
        body = await read_body(request, COMMIT_LIMIT)
        ops = await run_in_threadpool(commits.parse, body)  # base64 of up to 64 MB: off the event loop
        sha, pr = await run_in_threadpool(self._apply, caller, repo, revision, ops, create_pr)
        repo_url = f"{base_url(request)}/{url_prefix(repo.type)}{repo.name}"
        return JSONResponse(
            {
                "commitUrl": f"{repo_url}/commit/{sha}",
                "commitOid": sha,
                "pullRequestUrl": f"{repo_url}/discussions/{pr}" if pr is not None else None,
            }
        )

    def _apply(
        self, caller: Caller, repo: Repo, revision: str, ops: commits.Operations, create_pr: bool
    ) -> tuple[str, int | None]:
        """Publish the commit, then move its ref (and open the pull request) in one transaction."""
        index, store = self.catalog.index(), self.catalog.store
        ref = ref_name(revision)
        pr = _pr_number(ref)
        with store.gc_guard(), store.write_lock():
            head = index.ref(repo, ref)
            if head is None and (index.refs(repo) or create_pr or pr is not None):
                raise HubHTTPError(404, f"branch '{ref[:200]}' does not exist in {repo.name}", "RevisionNotFound")
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
            meta = CommitMeta(
                head,
                ops.header.summary,
                ops.header.description,
                (caller.name,) if caller.name else (),
                utcnow(),
            )
            card = card_json(ordered, store.open_blob)
            index.publish_commit(repo.type, repo.name, sha, ordered, blobs, source="push", card=card, meta=meta)
            with index.atomic():
                if create_pr:
                    pr = index.open_discussion(
                        repo.id,
                        ops.header.summary,
                        caller.name,
                        is_pr=True,
                        base=ref,
                        description=ops.header.description,
                    )
                if pr is not None:
                    index.set_ref(repo.type, repo.name, f"refs/pr/{pr}", sha, kind="pr")
                    index.add_event(repo.id, pr, "commit", caller.name, {"subject": ops.header.summary, "oid": sha})
                else:
                    index.set_ref(repo.type, repo.name, ref, sha, kind="branch")
        self.guard_view(lambda: HFCacheView(view_root(store.home), store, index).update(repo.type, repo.name, sha))
        return sha, pr if create_pr else None

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
        return self.catalog.store.blob_size(oid)
