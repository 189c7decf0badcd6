"""Read endpoints: repo info, tree, paths-info, refs, listings, whoami, and file resolve (HEAD/GET)."""

from __future__ import annotations

import hashlib
import json
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from ..config import parse_card_metadata
from ..errors import RevisionNotMirroredError, UnsafePathError
from ..hashing import lfs_pointer
from ..models import CommitMeta, FileRecord
from ..paths import safe_relpath
from .auth import Caller
from .bodies import JSON_LIMIT, YAML_LIMIT, json_object, parse_json, read_body
from .catalog import Catalog, Snapshot
from .fields import ListQuery, card_tags, expand_properties, list_item, select
from .history import last_commits
from .http import HubHTTPError, base_url, hub_date
from .objects import object_response

TREE_PAGE = 1000
TREE_PAGE_EXPANDED = 50
SMALL_BODY = 1024 * 1024  # GETs of files up to this size are answered from one read, without a thread


class BlobResponse(FileResponse):
    chunk_size = 1024 * 1024  # Starlette's 64 KiB means a thread hop per 64 KiB; 1 MiB keeps GETs fast


def json_bytes(data: Any) -> bytes:
    """The compact JSON body Starlette's JSONResponse would send."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true")


def _int_param(request: Request, name: str) -> int:
    """A non-negative integer query parameter (0 when absent); anything else is the client's error."""
    value = request.query_params.get(name, "") or "0"
    if not value.isdigit() or len(value) > 18:
        raise HubHTTPError(400, f"query parameter '{name}' must be a non-negative integer, got {value[:40]!r}")
    return int(value)


def _lfs_info(record: FileRecord, key: str) -> dict[str, Any]:
    return {key: record.sha256, "size": record.size, "pointerSize": len(lfs_pointer(record.sha256, record.size))}


LastCommits = dict[str, tuple[str, CommitMeta]] | None  # path → last commit, when ``expand`` asks for it


def _last_commit(path: str, lasts: dict[str, tuple[str, CommitMeta]]) -> dict[str, Any]:
    """The commit that last changed a file, or (for a folder) any file below it."""
    found = lasts.get(path)
    if found is None:
        below = [v for p, v in lasts.items() if p.startswith(f"{path}/")]
        found = max(below, key=lambda v: v[1].date or "", default=("", CommitMeta()))
    sha, meta = found
    return {"id": sha, "title": meta.title or "", "date": hub_date(meta.date)}


def _tree_entry(record: FileRecord, lasts: LastCommits) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "file", "oid": record.git_oid, "size": record.size, "path": record.path}
    if record.lfs:
        entry["lfs"] = _lfs_info(record, "oid")
    if lasts is not None:
        entry["lastCommit"] = _last_commit(record.path, lasts)
    return entry


def _folder_entry(path: str, snapshot: Snapshot, lasts: LastCommits) -> dict[str, Any]:
    oid = hashlib.sha1(f"tree {snapshot.commit} {path}".encode()).hexdigest()
    entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
    if lasts is not None:
        entry["lastCommit"] = _last_commit(path, lasts)
    return entry


def repo_json(
    catalog: Catalog, snapshot: Snapshot, *, blobs: bool, siblings: bool = True, weights: bool = True
) -> dict[str, Any]:
    """Repo info as the Hub answers it; ``weights=False`` leaves out the ``safetensors`` counts (which read
    the weights' headers the first time a commit is asked about)."""
    repo = snapshot.repo
    card = catalog.card(snapshot) or {}
    is_model = repo.type == "model"
    has_weights = is_model and any(path.endswith(".safetensors") for path in snapshot.files)
    data: dict[str, Any] = {
        "_id": hashlib.sha1(f"{repo.type}/{repo.name}".encode()).hexdigest()[:24],
        "id": repo.name,
        "author": repo.name.split("/")[0] if "/" in repo.name else None,
        "sha": snapshot.commit,
        "lastModified": hub_date(catalog.commit_meta(repo, snapshot.commit).date),
        "createdAt": hub_date(repo.created_at),
        "private": repo.private,
        "gated": repo.gated or False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": card_tags(repo.type, card, has_weights),
        "usedStorage": sum(f.size for f in snapshot.files.values()),
    }
    if repo.type == "model":
        data["modelId"] = repo.name
        for key in ("pipeline_tag", "library_name"):
            if isinstance(card.get(key), str):
                data[key] = card[key]
        counts = catalog.safetensors(snapshot) if weights and has_weights else None
        if counts is not None:
            data["safetensors"] = counts
    if card:
        data["cardData"] = card
    if siblings:
        data["siblings"] = [_sibling(f, blobs) for f in sorted(snapshot.files.values(), key=lambda f: f.path)]
    return data


def _info_json(catalog: Catalog, snapshot: Snapshot, blobs: bool, expand: tuple[str, ...]) -> dict[str, Any]:
    """Repo info: everything, or with ``expand`` only ``_id``, ``id`` and the expanded properties."""
    everything = not expand
    data = repo_json(
        catalog,
        snapshot,
        blobs=blobs,
        siblings=everything or "siblings" in expand,
        weights=everything or "safetensors" in expand,
    )
    return select(data, catalog.card(snapshot) or {}, expand) if expand else data


def _sibling(record: FileRecord, blobs: bool) -> dict[str, Any]:
    sibling: dict[str, Any] = {"rfilename": record.path}
    if blobs:
        sibling.update(size=record.size, blobId=record.git_oid)
        if record.lfs:
            sibling["lfs"] = _lfs_info(record, "sha256")
    return sibling


async def repo_info(request: Request, catalog: Catalog, snapshot: Snapshot) -> Response:
    # Every from_pretrained starts with this call; the answer is fixed per commit, so it is built once, off the
    # event loop (it reads the card and the safetensors headers, which a hostile push can make slow to read).
    blobs, repo = _flag(request, "blobs"), snapshot.repo
    expand = expand_properties(request, repo.type)
    key = ("repo_info", repo, snapshot.commit, blobs, expand)
    body = catalog.cached_body(key)
    if body is None:
        body = await run_in_threadpool(
            catalog.body, key, lambda: json_bytes(_info_json(catalog, snapshot, blobs, expand))
        )
    return Response(body, media_type="application/json")


def tree(request: Request, catalog: Catalog, snapshot: Snapshot, sub: str) -> Response:
    recursive, expand = _flag(request, "recursive"), _flag(request, "expand")
    if sub:
        try:
            sub = safe_relpath(sub.rstrip("/"))
        except UnsafePathError as exc:
            raise HubHTTPError(400, str(exc)) from exc
    prefix = f"{sub}/" if sub else ""
    files = sorted(p for p in snapshot.files if p.startswith(prefix))
    if sub and not files:
        raise HubHTTPError(
            404, f"folder '{sub}' not found at {snapshot.commit}", "EntryNotFound", {"X-Repo-Commit": snapshot.commit}
        )
    entries: list[dict[str, Any]] = []
    folders: set[str] = set()
    for path in files:
        rest = path[len(prefix) :].split("/")
        for depth in range(1, len(rest)):
            if not recursive and depth > 1:
                break
            folder = prefix + "/".join(rest[:depth])
            if folder not in folders:
                folders.add(folder)
                entries.append(_folder_entry(folder, snapshot, None))
        if recursive or len(rest) == 1:
            entries.append(_tree_entry(snapshot.files[path], None))
    page = TREE_PAGE_EXPANDED if expand else TREE_PAGE
    start = _int_param(request, "cursor")
    headers = {}
    if start + page < len(entries):
        query = parse_qs(request.url.query)
        query["cursor"] = [str(start + page)]
        headers["Link"] = f'<{base_url(request)}{request.url.path}?{urlencode(query, doseq=True)}>; rel="next"'
    shown = entries[start : start + page]
    if expand:  # only for the entries of this page
        lasts = last_commits(catalog, snapshot.repo, snapshot.commit)
        for entry in shown:
            entry["lastCommit"] = _last_commit(entry["path"], lasts)
    return JSONResponse(shown, headers=headers)


async def paths_info(request: Request, catalog: Catalog, snapshot: Snapshot) -> Response:
    # The client posts a urlencoded form (``paths=a&paths=b&expand=false``); parsed here because Starlette's
    # request.form() needs python-multipart, which is not a dependency. A JSON body is accepted too.
    body = await read_body(request, JSON_LIMIT)
    if "json" in request.headers.get("content-type", ""):
        data = parse_json(body, "paths-info request")
        if not isinstance(data, dict) or not isinstance(data.get("paths", []), list):
            raise HubHTTPError(400, "paths-info body must be a JSON object with a 'paths' list")
        paths, expand = data.get("paths", []), bool(data.get("expand"))
    else:
        try:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=10_001)
        except ValueError:
            raise HubHTTPError(400, "paths-info: at most 10000 paths per request") from None
        paths, expand = form.get("paths", []), form.get("expand", [""])[-1].lower() == "true"
    if len(paths) > 10_000:
        raise HubHTTPError(400, "paths-info: at most 10000 paths per request")
    entries = []
    folders = {"/".join(p.split("/")[:i]) for p in snapshot.files for i in range(1, p.count("/") + 1)}
    lasts = await run_in_threadpool(last_commits, catalog, snapshot.repo, snapshot.commit) if expand else None
    for path in paths:
        path = str(path).strip("/")
        if path in snapshot.files:
            entries.append(_tree_entry(snapshot.files[path], lasts))
        elif path in folders:
            entries.append(_folder_entry(path, snapshot, lasts))
    return JSONResponse(entries)


def resolve_file(request: Request, catalog: Catalog, snapshot: Snapshot, path: str) -> Response:
    try:
        path = safe_relpath(path)
    except UnsafePathError as exc:
        raise HubHTTPError(400, str(exc)) from exc
    record = snapshot.files.get(path)
    if record is None:
        raise HubHTTPError(
            404,
            f"{path} not found in {snapshot.repo.name} at {snapshot.commit}",
            "EntryNotFound",
            {"X-Repo-Commit": snapshot.commit},
        )
    headers = file_headers(snapshot, record)
    blob = catalog.store.blob_file(record.sha256)
    if blob is None:  # in object storage (this runs on a worker thread: see HubApp._read)
        return object_response(request, catalog, record, headers, media_type(path))
    try:
        stat = blob.stat()
    except FileNotFoundError as exc:
        raise HubHTTPError(500, f"blob of {path} missing from the store; run hubmirror sync") from exc
    if "range" not in request.headers:
        # The client's metadata HEAD, and GETs of configs, tokenizers, small shards: answered here directly,
        # which is much cheaper than FileResponse's per-request work (its own ETag, thread hops to open,
        # read and close the file, a task group watching for disconnects).
        headers["Last-Modified"] = formatdate(stat.st_mtime, usegmt=True)
        if request.method == "HEAD":
            headers["Content-Length"] = str(stat.st_size)
            return Response(headers=headers, media_type=media_type(path))
        if stat.st_size <= SMALL_BODY:
            return Response(blob.read_bytes(), headers=headers, media_type=media_type(path))
    return BlobResponse(blob, headers=headers, stat_result=stat, media_type=media_type(path))


def file_headers(snapshot: Snapshot, record: FileRecord) -> dict[str, str]:
    """What a resolve answer says about a file besides its bytes (the client's metadata HEAD reads these)."""
    headers = {"ETag": f'"{record.etag}"', "X-Repo-Commit": snapshot.commit, "Accept-Ranges": "bytes"}
    if record.lfs:
        headers.update({"X-Linked-Etag": f'"{record.sha256}"', "X-Linked-Size": str(record.size)})
    return headers


def media_type(path: str) -> str:
    if path.endswith((".json", ".jsonl")):
        return "application/json"
    if path.endswith((".txt", ".md", ".py", ".csv", ".yaml", ".yml", ".jinja")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def listing(request: Request, catalog: Catalog, repo_type: str, caller: Caller) -> Response:
    query = ListQuery.from_request(request)
    expand = expand_properties(request, repo_type)
    limit = _int_param(request, "limit")
    full, card_data = _flag(request, "full"), _flag(request, "cardData")
    kept: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for repo in catalog.visible_repos(repo_type, caller):
        if not query.keeps_name(repo.name):
            continue
        try:
            commit = catalog.commit(repo, "main")
        except RevisionNotMirroredError:  # a repo without main is listed from any ref it has
            refs_ = catalog.index().refs(repo)
            if not refs_:
                continue
            commit = refs_[0].commit
        snapshot = catalog.at(repo, commit)
        data = repo_json(
            catalog,
            snapshot,
            blobs=False,
            siblings=full or "siblings" in expand,
            weights=full or "safetensors" in expand,
        )
        card = catalog.card(snapshot) or {}
        if query.keeps(data, card):
            kept.append((data, card))
    ordered = query.ordered(kept)
    if limit:
        ordered = ordered[:limit]
    if expand:
        out = [select(data, card, expand) for data, card in ordered]
    else:
        out = [list_item(data, full=full, card_data=card_data) for data, _ in ordered]
    return JSONResponse(out)


async def validate_yaml(request: Request) -> Response:
    """``POST /api/validate-yaml``: the client checks a README.md's card header here before committing it.
    The parser is bounded (size, alias expansion) and runs off the event loop."""
    body = await json_object(request, "validate-yaml request", limit=YAML_LIMIT)
    content = body.get("content")
    if not isinstance(content, str):
        raise HubHTTPError(400, "'content' must be the README.md text")
    try:
        await run_in_threadpool(parse_card_metadata, content)
    except ValueError as exc:
        return JSONResponse(
            {"errors": [{"message": str(exc)}], "warnings": []},
            status_code=400,
            headers={"X-Error-Message": "Invalid metadata in README.md"},
        )
    return JSONResponse({"errors": [], "warnings": []})


def whoami(caller: Caller) -> Response:
    """The token's identity, as the Hub's ``whoami-v2`` shapes it (the name is the serve user's)."""
    role = "write" if caller.can_push else "read"
    return JSONResponse(
        {
            "type": "user",
            "id": caller.name,
            "name": caller.name,
            "fullname": caller.name,
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": caller.name, "role": role}},
        }
    )
