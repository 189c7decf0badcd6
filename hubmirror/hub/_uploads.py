"""The write half of the upstream client: create repo, preupload, LFS batch + transfers, NDJSON commit.

Speaks HUB-PROTOCOL.md section D over the same :class:`UpstreamClient` (its pool, retries, rate gate and
error translation). File bodies are streamed from disk, never read whole into memory; only the regular
(small, text) files travel inline in the commit, base64-encoded, as the Hub expects.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from ..errors import HubMirrorError, UpstreamError, UpstreamProtocolError
from ..hashing import CHUNK, git_blob_sha1
from ..models import url_prefix
from ._http import HubSession

logger = logging.getLogger(__name__)

BATCH = 256
WORKERS = 4  # concurrent preupload batches and LFS transfers (each its own pooled connection)
_T = TypeVar("_T")
_R = TypeVar("_R")
LFS_HEADERS = {"accept": "application/vnd.git-lfs+json", "content-type": "application/vnd.git-lfs+json"}


@dataclass(frozen=True)
class LocalFile:
    path: str  # repo-relative
    source: Path
    size: int
    sha256: str
    git_sha1: str


@dataclass(frozen=True)
class CommitResult:
    oid: str
    url: str


def _read_range(path: Path, offset: int, length: int) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            handle.seek(offset)
            left = length
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    raise UpstreamError(f"{path} shrank while it was being uploaded")
                left -= len(chunk)
                yield chunk

    return chunks


class HubWriter:
    """Writes to an upstream repo over a :class:`HubSession` (shared with the reading client)."""

    def __init__(self, session: HubSession) -> None:
        self.session = session

    def _check(self, response: Any, *, repo: str, what: str) -> None:
        self.session.raise_for_status(response, repo=repo, what=what, writing=True)

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> bool:
        """Create the repo upstream; False if it already existed."""
        namespace, _, name = repo_id.rpartition("/")
        body: dict[str, object] = {
            "name": name,
            "organization": namespace or None,
            "visibility": "private" if private else "public",
            "private": private,
        }
        if repo_type != "model":
            body["type"] = repo_type
        what = f"creating {repo_type} '{repo_id}'"
        response = self.session.send(
            "POST",
            f"{self.session.endpoint}/api/repos/create",
            what=what,
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        if response.status_code == 409:
            return False
        self._check(response, repo=repo_id, what=what)
        logger.info("created %s %s upstream (%s)", repo_type, repo_id, "private" if private else "public")
        return True

    def upload_modes(self, repo_type: str, repo_id: str, revision: str, files: list[LocalFile]) -> dict[str, str]:
        """path → "lfs" | "regular", as the server decides (size 0 is always regular)."""
        url = f"{self.session.api_url(repo_type, repo_id)}/preupload/{quote(revision, safe='')}"

        def ask(batch: list[LocalFile]) -> dict[str, str]:
            payload = {
                "files": [
                    {"path": f.path, "size": f.size, "sample": base64.b64encode(_sample(f.source)).decode()}
                    for f in batch
                ]
            }
            data = self.session.post_json(url, payload, repo=repo_id, what=f"preupload for '{repo_id}'")
            items = data.get("files") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise UpstreamProtocolError("preupload answer has no 'files' list", url=url)
            return {item["path"]: "regular" if item.get("uploadMode") != "lfs" else "lfs" for item in items}

        modes: dict[str, str] = {}
        for answer in _each(ask, [files[start : start + BATCH] for start in range(0, len(files), BATCH)]):
            modes.update(answer)
        for f in files:
            if f.size == 0:
                modes[f.path] = "regular"
        return modes

    def upload_lfs(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        files: list[LocalFile],
        on_bytes: Callable[[int], None] = lambda n: None,
    ) -> int:
        """Upload LFS objects the server does not have yet; returns how many were sent."""
        url = f"{self.session.endpoint}/{url_prefix(repo_type)}{repo_id}.git/info/lfs/objects/batch"
        by_oid = {f.sha256: f for f in files}

        def send(job: tuple[LocalFile, dict]) -> None:
            local, actions = job
            self._transfer(local, actions["upload"], repo_id)
            if actions.get("verify"):
                verify = actions["verify"]
                self.session.post_json(
                    verify["href"],
                    {"oid": local.sha256, "size": local.size},
                    repo=repo_id,
                    what=f"LFS verify of '{local.path}'",
                    headers=verify.get("header") or None,
                )
            on_bytes(local.size)

        sent = 0
        oids = list(by_oid)
        for start in range(0, len(oids), BATCH):
            payload = {
                "operation": "upload",
                "transfers": ["basic", "multipart"],
                "hash_algo": "sha256",
                "objects": [{"oid": oid, "size": by_oid[oid].size} for oid in oids[start : start + BATCH]],
                "ref": {"name": f"refs/heads/{revision}"},
            }
            data = self.session.post_json(
                url, payload, repo=repo_id, what=f"LFS batch for '{repo_id}'", headers=LFS_HEADERS
            )
            todo = []
            for obj in (data.get("objects") or []) if isinstance(data, dict) else []:
                if obj.get("error"):
                    raise UpstreamError(f"upstream refused LFS object {obj.get('oid')}: {obj['error']}")
                actions = obj.get("actions") or {}
                if "upload" in actions:  # else the server has it already
                    todo.append((by_oid[obj["oid"]], actions))

            for _ in _each(send, todo):
                sent += 1
        return sent

    def _transfer(self, local: LocalFile, action: dict, repo_id: str) -> None:
        header = action.get("header") or {}
        what = f"upload of '{local.path}'"
        if "chunk_size" not in header:
            response = self.session.send(
                "PUT",
                action["href"],
                what=what,
                content=_read_range(local.source, 0, local.size),
                headers={"content-length": str(local.size)},
            )
            self.session.raise_for_status(response, repo=repo_id, what=what)
            return
        chunk_size = int(header["chunk_size"])
        part_urls = [header[k] for k in sorted((k for k in header if k.isdigit()), key=int)]
        if len(part_urls) != math.ceil(local.size / chunk_size):
            raise UpstreamProtocolError(f"{what}: {len(part_urls)} part URLs for {local.size} bytes")
        parts = []
        for number, part_url in enumerate(part_urls, start=1):
            offset = (number - 1) * chunk_size
            length = min(chunk_size, local.size - offset)
            response = self.session.send(
                "PUT",
                part_url,
                what=f"{what} (part {number})",
                content=_read_range(local.source, offset, length),
                headers={"content-length": str(length)},
            )
            self.session.raise_for_status(response, repo=repo_id, what=what)
            parts.append({"partNumber": number, "etag": response.headers.get("etag", "")})
        self.session.post_json(
            action["href"],
            {"oid": local.sha256, "parts": parts},
            repo=repo_id,
            what=f"{what} (completion)",
            headers=LFS_HEADERS,
        )

    def commit(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        *,
        summary: str,
        parent: str | None,
        regular: list[LocalFile],
        lfs: list[LocalFile],
        deletes: list[str],
    ) -> CommitResult:
        header: dict[str, object] = {"summary": summary, "description": ""}
        if parent:
            header["parentCommit"] = parent
        lines = [json.dumps({"key": "header", "value": header})]
        for f in regular:
            data = f.source.read_bytes()
            if len(data) != f.size or git_blob_sha1(data) != f.git_sha1:  # what we diffed is what we commit
                raise HubMirrorError(
                    f"'{f.path}' changed while it was being pushed; nothing was committed: "
                    "push again once it is written"
                )
            lines.append(
                json.dumps(
                    {
                        "key": "file",
                        "value": {"path": f.path, "encoding": "base64", "content": base64.b64encode(data).decode()},
                    }
                )
            )
        for f in lfs:
            lines.append(
                json.dumps(
                    {"key": "lfsFile", "value": {"path": f.path, "algo": "sha256", "oid": f.sha256, "size": f.size}}
                )
            )
        for path in deletes:
            lines.append(json.dumps({"key": "deletedFile", "value": {"path": path}}))
        url = f"{self.session.api_url(repo_type, repo_id)}/commit/{quote(revision, safe='')}"
        what = f"commit to '{repo_id}'@{revision}"
        response = self.session.send(
            "POST", url, what=what, content="\n".join(lines).encode(), headers={"content-type": "application/x-ndjson"}
        )
        self._check(response, repo=repo_id, what=what)
        data = self.session.json(response, what)
        if not isinstance(data, dict) or not isinstance(data.get("commitOid"), str):
            raise UpstreamProtocolError(f"{what}: answer has no commitOid", url=url)
        return CommitResult(data["commitOid"], str(data.get("commitUrl", "")))


def _each(work: Callable[[_T], _R], jobs: list[_T]) -> Iterator[_R]:
    """``work`` over ``jobs`` on up to WORKERS threads (inline for one job), results in order. The first
    error is raised once every started job has ended; jobs not started yet are dropped."""
    if len(jobs) <= 1:
        yield from map(work, jobs)
        return
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(jobs)), thread_name_prefix="hub-upload") as pool:
        futures = [pool.submit(work, job) for job in jobs]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _sample(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(512)
