"""Reading from an upstream hub: a revision's commit and flags, a commit's file listing, file content.

Built on :class:`HubSession` (retries, rate gate, errors). Downloads stream into a :class:`ByteSink` (the
store's writer, which verifies); this module only transports, resuming with Range where a transfer broke.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from ..commitmeta import iso_date
from ..config import validate_repo_id
from ..errors import UpstreamProtocolError, UpstreamUnavailableError
from ..models import ByteSink, CommitMeta, RevisionInfo, TreeEntry, url_prefix
from ..paths import is_sha1, is_sha256
from ._answers import commit_meta, ref_kinds
from ._http import HubSession, TransportError

if TYPE_CHECKING:
    from ..config import UpstreamConfig

logger = logging.getLogger(__name__)

MAX_TREE_FILES = 1_000_000  # a listing that never ends (hostile upstream) must not exhaust memory
MAX_REFS_JSON = 8 * 1024 * 1024  # a /refs answer: tens of thousands of branches and tags
MAX_COMMITS_JSON = 1024 * 1024  # a /commits answer asked for one commit (64 KB message at most)
OPTIONAL_RETRIES = 2  # what only adds detail is not worth the long backoff of an essential request
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def upstream_client(
    up: UpstreamConfig, *, pool_size: int, max_retries: int | None = None, stop: threading.Event | None = None
) -> UpstreamClient:
    """A client for the config's ``upstream:`` (``max_retries`` lowers the config's for callers that wait)."""
    return UpstreamClient(
        up.endpoint,
        up.token,
        timeout=up.timeout,
        max_retries=up.max_retries if max_retries is None else max_retries,
        pool_size=pool_size,
        budget=up.max_requests_per_5min,
        stop=stop,
    )


class UpstreamClient(HubSession):
    """A Hub API client over one connection pool, safe to share between worker threads."""

    # -- metadata --------------------------------------------------------------------------------
    def revision_info(self, repo_type: str, repo_id: str, revision: str) -> RevisionInfo:
        """The commit a revision points at, and the repo's canonical id (one request, plus redirects)."""
        url = f"{self.api_url(repo_type, repo_id)}/revision/{quote(revision, safe='')}"
        what = f"{repo_type} '{repo_id}' revision '{revision}'"
        response, canonical_url = self.get_following(url, what=what)
        self.raise_for_status(response, repo=repo_id, what=what, revision=revision)
        data = self.json(response, what)
        sha = data.get("sha") if isinstance(data, dict) else None
        if not isinstance(sha, str) or not is_sha1(sha):
            raise UpstreamProtocolError(f"upstream gave no commit sha for {what}", url=url)
        canonical = data.get("id") if isinstance(data.get("id"), str) else None
        if not canonical:
            # No id in the body: take it from the path we were redirected to.
            match = re.search(rf"/api/{repo_type}s/(.+?)/revision/", urlsplit(canonical_url).path)
            canonical = unquote(match.group(1)) if match else repo_id
        try:
            validate_repo_id(canonical)  # it becomes a folder name in views: nothing but a repo id passes
        except ValueError as exc:
            raise UpstreamProtocolError(f"upstream named {what} {canonical[:100]!r}: {exc}", url=url) from None
        return RevisionInfo(
            repo_id=canonical,
            sha=sha,
            private=_flag(data.get("private")),
            gated=_gate(data.get("gated")),
            last_modified=iso_date(data.get("lastModified")),
            created_at=iso_date(data.get("createdAt")),
        )

    def ref_kinds(self, repo_type: str, repo_id: str, *, include_prs: bool = False) -> dict[str, str]:
        """Upstream's refs by the name the Hub lists them under → "branch" | "tag" | "pr" (one request;
        pull requests only with ``include_prs``). Malformed entries are left out."""
        url = f"{self.api_url(repo_type, repo_id)}/refs" + ("?include_prs=1" if include_prs else "")
        what = f"the refs of {repo_type} '{repo_id}'"
        answer = self.get_json(url, repo=repo_id, what=what, max_bytes=MAX_REFS_JSON, retries=OPTIONAL_RETRIES)
        if not isinstance(answer, dict):
            raise UpstreamProtocolError(f"{what}: expected a JSON object", url=url)
        return ref_kinds(answer)

    def commit_meta(self, repo_type: str, repo_id: str, sha: str) -> CommitMeta | None:
        """Title, message, authors and date of a commit, from the Hub's commit listing (one request for
        one entry); None when the answer does not show the commit. Ill-formed fields come back None."""
        if not is_sha1(sha):
            raise ValueError(f"not a commit sha: {sha[:80]!r}")
        url = f"{self.api_url(repo_type, repo_id)}/commits/{sha}?limit=1"
        what = f"commit {sha[:12]} of {repo_type} '{repo_id}'"
        answer = self.get_json(url, repo=repo_id, what=what, max_bytes=MAX_COMMITS_JSON, retries=OPTIONAL_RETRIES)
        if not isinstance(answer, list):
            raise UpstreamProtocolError(f"{what}: expected a JSON list", url=url)
        return commit_meta(answer, sha)

    def list_tree(self, repo_type: str, repo_id: str, revision: str) -> list[TreeEntry]:
        """Every file of a revision (recursive, following ``Link: rel="next"`` pagination)."""
        url: str | None = (
            f"{self.api_url(repo_type, repo_id)}/tree/{quote(revision, safe='')}?recursive=true&expand=false"
        )
        what = f"the file list of {repo_type} '{repo_id}' at {revision}"
        entries: list[TreeEntry] = []
        pages = 0
        while url:
            response, _ = self.get_following(url, what=what)
            self.raise_for_status(response, repo=repo_id, what=what, revision=revision)
            items = self.json(response, what)
            if not isinstance(items, list):
                raise UpstreamProtocolError(f"{what}: expected a JSON list", url=url)
            for item in items:
                entry = _tree_entry(item, what)
                if entry is not None:
                    entries.append(entry)
            pages += 1
            if len(entries) > MAX_TREE_FILES:
                raise UpstreamProtocolError(
                    f"{what}: more than {MAX_TREE_FILES:,} files; refusing the listing", url=url
                )
            match = _NEXT_LINK.search(response.headers.get("link", ""))
            url = urljoin(url, match.group(1)) if match else None
        logger.debug(
            "listed %d files of %s/%s@%s in %d page(s)", len(entries), repo_type, repo_id, revision[:12], pages
        )
        return entries

    # -- content ---------------------------------------------------------------------------------
    def download(
        self,
        repo_type: str,
        repo_id: str,
        commit: str,
        path: str,
        writer: ByteSink,
        on_bytes: Callable[[int], None] = lambda n: None,
    ) -> None:
        """Stream a file of a commit into ``writer``, resuming from ``writer.offset`` with Range, and
        retrying broken transfers from where they stopped. The writer verifies; this only transports."""
        url = f"{self.endpoint}/{url_prefix(repo_type)}{repo_id}/resolve/{commit}/{quote(path)}"
        what = f"'{path}' of {repo_type} '{repo_id}'@{commit[:12]}"
        stalls = 0
        while True:
            before = writer.offset
            try:
                self._download_once(url, what, repo_id, writer, on_bytes)
                return
            except (TransportError, _ShortBody) as exc:
                stalls = 0 if writer.offset > before else stalls + 1
                if stalls > self.max_retries:
                    raise UpstreamUnavailableError(
                        f"transfer of {what} kept breaking ({type(exc).__name__}); partial file kept, "
                        "run sync again to resume",
                        url=url,
                    ) from exc
                logger.info(
                    "transfer of %s broke at byte %d (%s); resuming",
                    what,
                    writer.offset,
                    exc if isinstance(exc, _ShortBody) else type(exc).__name__,
                )
                self.pause(min(self.backoff * (2**stalls), self.max_backoff))

    def _download_once(
        self, url: str, what: str, repo_id: str, writer: ByteSink, on_bytes: Callable[[int], None]
    ) -> None:
        headers = {"accept-encoding": "identity"}
        expected = writer.expected_size
        if writer.offset and (expected is None or writer.offset < expected):
            headers["range"] = f"bytes={writer.offset}-"
        elif writer.offset and writer.offset == expected:
            return  # a complete partial from an earlier run; commit() verifies it
        with self.stream(url, what=what, headers=headers) as response:
            if response.status_code == 416 and writer.offset:
                # Our partial file does not fit what upstream has now: start over from byte 0.
                writer.restart()
                raise _ShortBody("range not satisfiable")
            self.raise_for_status(response, repo=repo_id, what=what)
            if response.status_code == 206:
                start = _content_range_start(response.headers.get("content-range", ""))
                if start != writer.offset:
                    writer.restart()
                    raise _ShortBody("server answered a different range")
            elif writer.offset:
                writer.restart()  # the server ignored Range: take the whole body
            announced = _length(response.headers.get("content-length"))
            identity = response.headers.get("content-encoding", "identity") == "identity"
            start_offset = writer.offset
            for chunk in response.iter_bytes():
                writer.write(chunk)
                on_bytes(len(chunk))
            if identity and announced is not None and writer.offset - start_offset != announced:
                raise _ShortBody("connection closed before the announced length")


def _flag(value: Any) -> bool:
    """``private`` as sent; a value other than false/absent counts as true (fail closed)."""
    return value not in (None, False, "false", "False", "")


def _gate(value: Any) -> str | None:
    """The Hub's ``gated`` (false | "auto" | "manual"); anything else truthy counts as gated (fail closed)."""
    if not _flag(value):
        return None
    return value if value in ("auto", "manual") else "manual"


class _ShortBody(Exception):
    """A body that ended early or a range answer that does not fit: resume and try again."""


def _length(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _content_range_start(value: str) -> int | None:
    match = re.match(r"bytes (\d+)-", value)
    return int(match.group(1)) if match else None


def _tree_entry(item: Any, what: str) -> TreeEntry | None:
    if not isinstance(item, dict) or "path" not in item:
        raise UpstreamProtocolError(f"{what}: malformed tree entry {str(item)[:100]!r}")
    if item.get("type") != "file":
        return None
    lfs = item.get("lfs") or None
    try:
        entry = TreeEntry(
            path=str(item["path"]),
            size=int(item["size"]),
            oid=str(item["oid"]),
            lfs_sha256=str(lfs["oid"]) if lfs else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamProtocolError(f"{what}: malformed tree entry {str(item)[:100]!r}") from exc
    # Object ids become temp and lock file names: only well-formed hex may pass.
    if entry.size < 0 or not is_sha1(entry.oid) or (entry.lfs_sha256 is not None and not is_sha256(entry.lfs_sha256)):
        raise UpstreamProtocolError(f"{what}: malformed tree entry {str(item)[:100]!r}")
    return entry
