"""A commit pushed through serve: its NDJSON body checked line by line, its operations applied to the branch's
files, and the result checked as a whole (``x`` beside ``x/y``, long names, ``.git/``) before anything is
published. Malformed input of any kind is a 400 that says what and where; nothing is half-published."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnsafePathError
from ..hashing import git_blob_sha1, lfs_pointer
from ..models import FileRecord
from ..paths import check_tree, is_sha256, safe_relpath
from .http import HubHTTPError

MAX_OPERATIONS = 100_000
_PARENT = re.compile(r"[0-9a-f]{5,40}")


@dataclass
class Header:
    summary: str
    description: str
    parent: str | None


@dataclass
class Operations:
    """What a commit body asks for: new regular files (bytes), LFS files (by oid), deletions."""

    header: Header
    regular: dict[str, bytes] = field(default_factory=dict)
    lfs: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # path → (oid, declared size)
    deleted_files: list[str] = field(default_factory=list)
    deleted_folders: list[str] = field(default_factory=list)


def parse(body: bytes) -> Operations:
    lines = [line for line in body.splitlines() if line.strip()]
    if not lines:
        raise HubHTTPError(400, "empty commit body: a commit starts with a header line")
    if len(lines) > MAX_OPERATIONS:
        raise HubHTTPError(400, f"a commit may carry at most {MAX_OPERATIONS} operations")
    ops = Operations(_header(_line(lines[0], 1)))
    for number, raw in enumerate(lines[1:], 2):
        item = _line(raw, number)
        key, value = item.get("key"), item.get("value")
        if not isinstance(value, dict):
            raise HubHTTPError(400, f"commit line {number}: 'value' must be an object")
        path = path_of(value.get("path"), f"commit line {number}")
        if key == "file":
            ops.regular[path] = _content(value, path, number)
        elif key == "lfsFile":
            oid, size = value.get("oid"), value.get("size")
            if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str) or not is_sha256(oid):
                raise HubHTTPError(400, f"commit line {number}: lfsFile '{path}' needs a sha256 'oid'")
            if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
                raise HubHTTPError(400, f"commit line {number}: lfsFile '{path}' has an invalid 'size'")
            ops.lfs[path] = (oid, size)
        elif key == "deletedFile":
            ops.deleted_files.append(path)
        elif key == "deletedFolder":
            ops.deleted_folders.append(path.rstrip("/"))
        else:
            raise HubHTTPError(400, f"commit line {number}: unknown operation {str(key)[:40]!r}")
    return ops


def _line(raw: bytes, number: int) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HubHTTPError(400, f"commit line {number} is not JSON: {str(exc)[:120]}") from None
    if not isinstance(item, dict):
        raise HubHTTPError(400, f"commit line {number} must be a JSON object")
    return item


def _header(item: dict[str, Any]) -> Header:
    value = item.get("value")
    if item.get("key") != "header" or not isinstance(value, dict):
        raise HubHTTPError(400, 'a commit starts with a header line: {"key": "header", "value": {...}}')
    summary, description, parent = value.get("summary"), value.get("description", ""), value.get("parentCommit")
    if not isinstance(summary, str) or not summary.strip():
        raise HubHTTPError(400, "the commit summary must be a non-empty string")
    if not isinstance(description, str):
        raise HubHTTPError(400, "the commit description must be a string")
    if parent is not None and (not isinstance(parent, str) or not _PARENT.fullmatch(parent)):
        raise HubHTTPError(400, "parentCommit must be 5 to 40 lowercase hex digits")
    return Header(summary[:2000], description[:100_000], parent)


def path_of(value: Any, where: str) -> str:
    """A repo path from a request, checked (400 saying ``where`` otherwise); a trailing ``/`` is dropped."""
    if not isinstance(value, str):
        raise HubHTTPError(400, f"{where}: 'path' must be a string")
    try:
        return safe_relpath(value.rstrip("/") if value.endswith("/") else value)
    except UnsafePathError as exc:
        raise HubHTTPError(400, f"{where}: {exc}") from None


def _content(value: dict[str, Any], path: str, number: int) -> bytes:
    content, encoding = value.get("content"), value.get("encoding", "base64")
    if not isinstance(content, str):
        raise HubHTTPError(400, f"commit line {number}: file '{path}' needs 'content' as a string")
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise HubHTTPError(400, f"commit line {number}: content of '{path}' is not base64") from None
    if encoding in ("utf-8", "utf8"):
        return content.encode("utf-8", "surrogatepass")
    raise HubHTTPError(400, f"commit line {number}: unknown encoding {str(encoding)[:20]!r}")


def apply(
    ops: Operations, files: dict[str, FileRecord], regular: dict[str, FileRecord], stored: Callable[[str], int | None]
) -> dict[str, FileRecord]:
    """The branch's files after the operations: ``regular`` holds the records of the commit's regular files
    (already stored), ``stored(oid)`` the size of an LFS object the caller may use, or None. Raises
    HubHTTPError for a deletion of nothing, an unknown object or a tree that cannot be laid out."""
    result = dict(files)
    for path in ops.deleted_files:
        if result.pop(path, None) is None:
            raise HubHTTPError(404, f"cannot delete '{path}': no such file", "EntryNotFound")
    for folder in ops.deleted_folders:
        gone = [p for p in result if p.startswith(folder + "/")]
        if not gone:
            raise HubHTTPError(404, f"cannot delete folder '{folder}/': no such folder", "EntryNotFound")
        for p in gone:
            del result[p]
    for path, (oid, declared) in ops.lfs.items():
        size = stored(oid)
        if size is None:
            raise HubHTTPError(
                422, f"LFS object {oid} for '{path}' was never uploaded (upload it through the LFS batch API first)"
            )
        if declared is not None and declared != size:
            raise HubHTTPError(422, f"LFS object {oid} has {size} bytes, not {declared}")
        result[path] = FileRecord(path, size, oid, git_blob_sha1(lfs_pointer(oid, size)), True)
    result.update(regular)
    try:
        check_tree(result)
    except UnsafePathError as exc:
        raise HubHTTPError(400, f"the commit would make an invalid tree: {exc}") from None
    return result


def commit_id(parent: str | None, files: list[FileRecord], message: str) -> str:
    """A git-shaped commit id, unique per content, parent, message and time."""
    text = f"parent {parent}\n" + "".join(f"{f.path}\0{f.git_oid}\n" for f in files)
    return hashlib.sha1(f"{text}\n{message}\n{time.time_ns()}".encode()).hexdigest()
