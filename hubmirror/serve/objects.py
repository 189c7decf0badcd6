"""Answering ``resolve`` GETs and HEADs when the blobs are in object storage.

Two modes (``serve.redirect``):

* ``stream`` (default): the bytes pass through this server, read from the object store with the client's
  Range, chunk by chunk off the event loop.
* ``presigned``: a GET or HEAD of an LFS file answers 302 to a presigned URL of its object with a short
  expiry, as the Hub redirects to its CDN. The Hub's headers stay on the 302 (``X-Repo-Commit``,
  ``X-Linked-Etag``, ``X-Linked-Size``, ``ETag``): ``huggingface_hub`` takes the file's metadata from the
  redirect itself, does not follow a HEAD to another origin, and downloads from the URL without sending its
  token there. Non-LFS files (configs, tokenizers: small, and without ``X-Linked-Size``) are streamed, as the
  Hub serves them itself.

A HEAD never touches the object store: size and hashes come from the index.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ..errors import HubMirrorError
from ..models import FileRecord
from .catalog import Catalog
from .http import HubHTTPError

CHUNK = 1024 * 1024
SMALL_BODY = 1024 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range (first, last inclusive) of a ``Range`` header; None for no header or several ranges
    (answered with the whole file, as RFC 9110 allows). Unsatisfiable: 416."""
    if value is None:
        return None
    match = _RANGE.fullmatch(value.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first_text, last_text = match.groups()
    if not first_text:  # a suffix: the last N bytes
        first, last = max(0, size - int(last_text[:19])), size - 1
    else:
        first = int(first_text[:19])
        last = min(size - 1, int(last_text[:19])) if last_text else size - 1
    if first >= size or last < first:
        raise HubHTTPError(
            416, f"range {value[:60]!r} is outside the file's {size} bytes", None, {"Content-Range": f"bytes */{size}"}
        )
    return first, last


def object_response(
    request: Request, catalog: Catalog, record: FileRecord, headers: dict[str, str], media_type: str
) -> Response:
    """The answer to a resolve GET or HEAD of ``record`` whose blob is in object storage."""
    if catalog.redirect == "presigned" and record.lfs:
        try:
            url = catalog.store.blobs.presigned_url(record.sha256, int(catalog.presigned_expiry))  # type: ignore[attr-defined]
        except HubMirrorError as exc:
            raise HubHTTPError(503, str(exc)) from exc
        return RedirectResponse(url, status_code=302, headers=headers)
    if request.method == "HEAD":
        return Response(headers={**headers, "Content-Length": str(record.size)}, media_type=media_type)
    span = parse_range(request.headers.get("range"), record.size)
    first, last = span if span is not None else (0, record.size - 1)
    status = 206 if span is not None else 200
    if span is not None:
        headers = {**headers, "Content-Range": f"bytes {first}-{last}/{record.size}"}
    if record.size == 0:
        return Response(b"", status_code=200, headers=headers, media_type=media_type)
    body = _open(catalog, record, first, last)
    if span is None and record.size <= SMALL_BODY:
        return _small(body, headers, media_type)
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(_chunks(body), status_code=status, headers=headers, media_type=media_type)


def _open(catalog: Catalog, record: FileRecord, first: int, last: int) -> Any:
    try:
        return catalog.store.blobs.get(record.sha256, first, last)  # type: ignore[attr-defined]
    except FileNotFoundError as exc:
        raise HubHTTPError(
            500, f"blob {record.sha256} of {record.path} is missing from the object store; run hubmirror verify"
        ) from exc
    except HubMirrorError as exc:
        raise HubHTTPError(503, str(exc)) from exc


def _small(body: Any, headers: dict[str, str], media_type: str) -> Response:
    try:
        data = body.read()
    finally:
        body.close()
    return Response(data, headers=headers, media_type=media_type)


async def _chunks(body: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await run_in_threadpool(body.read, CHUNK):
            yield chunk
    finally:
        body.close()
