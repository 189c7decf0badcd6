"""Request bodies, bounded and checked: a body over its limit is refused with 413 before it is held, and
every malformed body (not JSON, wrong shape, wrong types, too deep) is a 400 that says what was wrong."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from .http import HubHTTPError

JSON_LIMIT = 1024 * 1024  # create repo, preupload, LFS batch, paths-info, settings: small
YAML_LIMIT = 4 * 1024 * 1024  # validate-yaml: a whole README
COMMIT_LIMIT = 64 * 1024 * 1024  # NDJSON commits carry small files inline (base64); big ones go by LFS


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it would pass ``limit`` (a declared length is checked first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HubHTTPError(413, f"request body of {int(declared)} bytes is over this endpoint's limit of {limit}")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HubHTTPError(413, f"request body is over this endpoint's limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data or b"{}")
    except (ValueError, RecursionError) as exc:
        raise HubHTTPError(400, f"{what} is not valid JSON: {str(exc)[:200]}") from None


async def json_object(request: Request, what: str = "request body", limit: int = JSON_LIMIT) -> dict[str, Any]:
    body = parse_json(await read_body(request, limit), what)
    if not isinstance(body, dict):
        raise HubHTTPError(400, f"{what} must be a JSON object")
    return body


def text_field(data: dict[str, Any], key: str, what: str, *, required: bool = True, limit: int = 1000) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise HubHTTPError(400, f"{what}: '{key}' must be a non-empty string")
    if len(value) > limit:
        raise HubHTTPError(400, f"{what}: '{key}' is longer than {limit} characters")
    return value


def int_field(data: dict[str, Any], key: str, what: str, *, minimum: int = 0) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise HubHTTPError(400, f"{what}: '{key}' must be an integer of at least {minimum}")
    return value


def list_field(data: dict[str, Any], key: str, what: str, *, limit: int = 10_000) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise HubHTTPError(400, f"{what}: '{key}' must be a list")
    if len(value) > limit:
        raise HubHTTPError(400, f"{what}: '{key}' has more than {limit} items")
    return value
