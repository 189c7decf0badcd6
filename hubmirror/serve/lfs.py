"""The git-lfs side of pushes: the batch API, the signed upload and verify URLs, and the upload itself.

Upload URLs carry no credentials (the client sends none to them, as to the Hub's CDN): they are signed for
one object, one size, one caller and an expiry. Bytes are hashed and written off the event loop, so one
multi-GB push never stalls the readers; they reach ``blobs/`` only through the store's one writer, verified.
An object already stored is offered as present only when the caller may read a repo that uses it: the batch
API is no oracle for what private repos hold.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import ServeConfig
from ..errors import IntegrityError, StoreError
from ..models import BlobRecord
from ..paths import is_sha256
from ..store import Expected
from .auth import Caller
from .bodies import json_object, list_field
from .catalog import Catalog
from .http import HubHTTPError, base_url

LFS_CONTENT_TYPE = "application/vnd.git-lfs+json"
URL_LIFETIME = 3600  # seconds a signed upload or verify URL stays valid
MAX_OBJECT = 5 * 1024**4  # 5 TB: the largest object a batch may announce
HANDOFF = 1024 * 1024  # bytes gathered on the event loop before a thread writes them


class LfsEndpoints:
    def __init__(self, catalog: Catalog, config: ServeConfig) -> None:
        self.catalog = catalog
        # Derived from the tokens, so replicas sharing a config accept each other's URLs.
        material = b"\0".join(t.encode() for t in [config.token or "", *(u.token for u in config.users)])
        self._secret = hashlib.sha256(b"hubmirror-upload\0" + material).digest()

    def _sign(self, *parts: str) -> str:
        return hmac.new(self._secret, "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:40]

    def _signed(self, base: str, kind: str, oid: str, size: int, caller: Caller) -> str:
        expires = str(int(time.time()) + URL_LIFETIME)
        who = caller.name or ""
        sig = self._sign(kind, oid, str(size), who, expires)
        return f"{base}/lfs-{kind}/{oid}/{size}?caller={who}&exp={expires}&sig={sig}"

    def _check(self, request: Request, kind: str, oid: str, size_text: str) -> tuple[int, str]:
        """The size and caller a valid signature names; 403 for a bad, missing or expired one."""
        query = request.query_params
        expires, who = query.get("exp", ""), query.get("caller", "")
        good = hmac.compare_digest(query.get("sig", ""), self._sign(kind, oid, size_text, who, expires))
        if not good or not is_sha256(oid) or not size_text.isdigit():
            raise HubHTTPError(403, "invalid or missing upload signature")
        if not expires.isdigit() or int(expires) < time.time():
            raise HubHTTPError(403, "this upload URL has expired: ask the LFS batch API for a new one")
        return int(size_text), who

    # -- batch -------------------------------------------------------------------------------------
    async def batch(self, request: Request, caller: Caller) -> Response:
        body = await json_object(request, "LFS batch request")
        if body.get("operation") != "upload":
            raise HubHTTPError(400, "only LFS uploads are supported here; download with /resolve/")
        items = list_field(body, "objects", "LFS batch request", limit=1000)
        base = base_url(request)
        objects = [await run_in_threadpool(self._answer, item, base, caller) for item in items]
        return JSONResponse({"transfer": "basic", "objects": objects}, media_type=LFS_CONTENT_TYPE)

    def _answer(self, item: Any, base: str, caller: Caller) -> dict[str, Any]:
        oid = item.get("oid") if isinstance(item, dict) else None
        size = item.get("size") if isinstance(item, dict) else None
        if (
            not isinstance(oid, str)
            or not is_sha256(oid)
            or not isinstance(size, int)
            or isinstance(size, bool)
            or not 0 <= size <= MAX_OBJECT
        ):
            return {
                "oid": str(oid)[:64],
                "size": size if isinstance(size, int) else 0,
                "error": {"code": 422, "message": "oid must be 64 lowercase hex, size an integer in range"},
            }
        answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
        if not self._may_reuse(oid, caller):
            answer["actions"] = {
                "upload": {"href": self._signed(base, "upload", oid, size, caller), "expires_in": URL_LIFETIME},
                "verify": {"href": self._signed(base, "verify", oid, size, caller), "expires_in": URL_LIFETIME},
            }
        return answer

    def _may_reuse(self, oid: str, caller: Caller) -> bool:
        """Stored, and known to the caller: uploaded by it, or used by a repo it may download from."""
        if not self.catalog.store.has_blob(oid):
            return False
        index = self.catalog.index()
        if caller.name is not None and index.uploaded_by(oid, caller.name):
            return True
        return any(caller.may_download(repo) for repo in index.repos_using_blob(oid))

    def may_commit(self, oid: str, caller: Caller) -> bool:
        """Whether a commit by ``caller`` may name this object (the same rule as reuse)."""
        return self._may_reuse(oid, caller)

    # -- upload and verify ---------------------------------------------------------------------------
    async def upload(self, request: Request, oid: str, size_text: str) -> Response:
        """PUT of one object: streamed into the store off the event loop; size and sha256 verified first."""
        size, who = self._check(request, "upload", oid, size_text)
        store = self.catalog.store
        writer = await run_in_threadpool(store.writer, Expected(size=size, sha256=oid))
        with writer:  # leaving without a commit deletes the temp file
            try:
                pending = bytearray()
                async for chunk in request.stream():
                    pending += chunk
                    if len(pending) >= HANDOFF:
                        await run_in_threadpool(writer.write, bytes(pending))
                        pending.clear()
                if pending:
                    await run_in_threadpool(writer.write, bytes(pending))
                info = await run_in_threadpool(writer.commit)
            except IntegrityError as exc:
                raise HubHTTPError(400, f"upload of {oid} rejected: {exc}") from exc
            except StoreError as exc:
                raise HubHTTPError(507, str(exc)) from exc
        await run_in_threadpool(self._record, BlobRecord(info.sha256, info.size, None), who)
        return Response(status_code=200)

    def _record(self, blob: BlobRecord, who: str) -> None:
        index = self.catalog.index()
        with self.catalog.store.write_lock():
            index.add_blobs([blob])
            if who:
                index.record_upload(blob.sha256, who)

    async def verify(self, request: Request, oid: str, size_text: str) -> Response:
        size, _ = self._check(request, "verify", oid, size_text)
        body = await json_object(request, "LFS verify request")
        stored = await run_in_threadpool(self.catalog.store.blob_size, oid)
        if stored != size or body.get("size") != size:
            raise HubHTTPError(404, f"LFS object {oid} of that size was not uploaded")
        return JSONResponse({"message": "verified"})
