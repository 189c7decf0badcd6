"""The client for an upstream hub's HTTP API (the only module that speaks HTTP to upstream).

It owns retries and backoff, the process-wide rate limit, redirects (dropping credentials when they lead
to another origin), Range resume, and the translation of HTTP answers into :mod:`hubmirror.errors`.
It never logs the token.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx2

from .errors import (
    AccessDeniedError,
    ConflictError,
    EntryNotFoundError,
    GatedRepoError,
    Interrupted,
    RepoNotFoundError,
    RevisionNotFoundError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamUnavailableError,
)
from .models import ByteSink, RevisionInfo, TreeEntry, url_prefix
from .version import __version__

logger = logging.getLogger(__name__)

RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
MAX_REDIRECTS = 10
BUDGET_WINDOW = 300.0
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_GIT_OID = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _retry_after(response: httpx2.Response) -> float | None:
    """Seconds to wait from ``RateLimit: ...;t=N`` or ``Retry-After`` (seconds or HTTP date)."""
    match = re.search(r"\bt=(\d+)", response.headers.get("ratelimit", ""))
    if match:
        return float(match.group(1)) + 1
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    parsed = email.utils.parsedate_to_datetime(value) if value else None
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class RateGate:
    """Process-wide pacing shared by every worker: a 429 pauses everyone, and at most ``budget``
    requests go to the API origin in any 5-minute window (``window`` seconds; tests shorten it)."""

    def __init__(self, budget: int | None, window: float = BUDGET_WINDOW,
                 stop: threading.Event | None = None) -> None:
        self.budget = budget
        self.window = window
        self.stop = stop or threading.Event()  # set: waiting ends with Interrupted (SIGTERM stays prompt)
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._not_before = 0.0

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def wait(self, counted: bool) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                delay = self._not_before - now
                if delay <= 0 and counted and self.budget:
                    while self._sent and self._sent[0] <= now - self.window:
                        self._sent.popleft()
                    if len(self._sent) >= self.budget:
                        delay = self._sent[0] + self.window - now
                if delay <= 0:
                    if counted:
                        self._sent.append(now)
                    return
            # A long wait is news in a service log: say why the sync seems to stand still.
            (logger.info if delay > 1 else logger.debug)(
                "rate limit: waiting %.1fs (upstream.max_requests_per_5min, or a 429's Retry-After)", delay)
            if self.stop.wait(min(delay, 5.0)):
                raise Interrupted("stopped on request while waiting for the upstream rate limit")


class UpstreamClient:
    """A Hub API client over one ``httpx2`` connection pool, safe to share between worker threads."""

    def __init__(self, endpoint: str, token: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 8, pool_size: int = 16, budget: int | None = None,
                 backoff: float = 0.25, max_backoff: float = 30.0,
                 stop: threading.Event | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self.max_retries = max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.stop = stop or threading.Event()
        self.gate = RateGate(budget, stop=self.stop)
        self._counter_lock = threading.Lock()
        self.requests = 0
        self._http = httpx2.Client(
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx2.Limits(max_connections=pool_size + 4, max_keepalive_connections=pool_size + 4),
            headers={"user-agent": f"hubmirror/{__version__}"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UpstreamClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------------
    def _headers_for(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self._token and _origin(url) == _origin(self.endpoint):
            headers["authorization"] = f"Bearer {self._token}"
        return headers

    def _sleep_before_retry(self, attempt: int, response: httpx2.Response | None) -> None:
        wait = self.backoff * (2 ** attempt) * (0.5 + random.random())
        if response is not None:
            hinted = _retry_after(response)
            if hinted is not None:
                wait = hinted
                if response.status_code == 429:
                    self.gate.pause(hinted)
        if self.stop.wait(min(wait, self.max_backoff)):
            raise Interrupted("stopped on request while waiting to retry")

    def _send(self, method: str, url: str, *, what: str, headers: dict[str, str] | None = None,
              stream: bool = False, **kwargs: Any) -> httpx2.Response:
        """Send with bounded retries on connection errors, 408/429/5xx. Redirects are not followed."""
        last_problem = ""
        response: httpx2.Response | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep_before_retry(attempt - 1, response)
            # The budget covers API calls (the Hub's "api" rate-limit scope); file downloads are not API
            # calls and are not counted, so a sync of thousands of files does not stall on it.
            self.gate.wait(counted=_origin(url) == _origin(self.endpoint) and urlsplit(url).path.startswith("/api/"))
            with self._counter_lock:
                self.requests += 1
            try:
                # A callable body (an upload streamed from disk) is re-opened for every attempt.
                content = kwargs.get("content")
                args = {**kwargs, "content": content()} if callable(content) else kwargs
                request = self._http.build_request(method, url, headers=self._headers_for(url, headers),
                                                   **args)
                response = self._http.send(request, stream=stream)
            except httpx2.TransportError as exc:
                response = None
                last_problem = f"{type(exc).__name__}: {exc}"
                logger.debug("%s %s failed (%s), attempt %d", method, url, last_problem, attempt + 1)
                continue
            if response.status_code in RETRY_STATUSES:
                last_problem = f"HTTP {response.status_code}"
                logger.debug("%s %s answered %d, attempt %d", method, url, response.status_code, attempt + 1)
                response.close()
                continue
            return response
        if response is not None and response.status_code == 429:
            raise UpstreamUnavailableError(
                f"upstream rate limit (HTTP 429) while fetching {what}, still after {self.max_retries} "
                "retries; try again later or lower upstream.max_requests_per_5min", status=429, url=url)
        raise UpstreamUnavailableError(
            f"upstream {self.endpoint} unavailable while fetching {what} ({last_problem}, "
            f"after {self.max_retries + 1} attempts); try again later",
            status=response.status_code if response is not None else None, url=url)

    def _get_following(self, url: str, *, what: str, headers: dict[str, str] | None = None,
                       stream: bool = False, **kwargs: Any) -> tuple[httpx2.Response, str]:
        """GET following redirects ourselves; returns the final response and the first non-redirect
        URL's path on the API origin (it names the canonical repo after a rename)."""
        canonical_url = url
        for _ in range(MAX_REDIRECTS):
            response = self._send("GET", url, what=what, headers=headers, stream=stream, **kwargs)
            if response.status_code not in (301, 302, 303, 307, 308):
                return response, canonical_url
            location = response.headers.get("location")
            response.close()
            if not location:
                raise UpstreamProtocolError(f"redirect without Location for {what}", url=url)
            url = urljoin(url, location)
            if _origin(url) == _origin(self.endpoint):
                canonical_url = url
            kwargs.pop("params", None)  # the redirect target carries its own query string
        raise UpstreamProtocolError(f"too many redirects while fetching {what}", url=url)

    def _raise_for_status(self, response: httpx2.Response, *, repo: str, what: str,
                          revision: str | None = None, writing: bool = False) -> None:
        """Translate an error answer into our classes. ``writing``: a 401/403 is about write access
        (the read-side wording, "not found" or "can read it", would send the user the wrong way)."""
        status = response.status_code
        if status < 400:
            return
        code = response.headers.get("x-error-code", "")
        message = _error_message(response)
        url = str(response.request.url)
        detail = f" ({message})" if message else ""
        if writing and status in (401, 403) and code not in ("RepoNotFound", "GatedRepo"):
            fix = "set upstream.token / HF_TOKEN to a token with write access to it"
            if not self._token:
                fix = "no token is configured: " + fix
            raise AccessDeniedError(f"upstream refused {what} (HTTP {status}{detail}); the token cannot "
                                    f"write to '{repo}': {fix}", status=status, url=url)
        if code == "GatedRepo":
            raise GatedRepoError(
                f"'{repo}' is gated upstream{detail}: accept its conditions on its page with the account "
                "whose token hubmirror uses (upstream.token / HF_TOKEN), then sync again",
                status=status, url=url)
        if code == "RepoNotFound" or (status == 401 and "Invalid credentials" not in message):
            raise RepoNotFoundError(
                f"repo '{repo}' not found upstream at {self.endpoint} (check the name and type, or set "
                "upstream.token / HF_TOKEN if it is private)", status=status, url=url)
        if code == "RevisionNotFound":
            raise RevisionNotFoundError(
                f"revision '{revision}' not found in '{repo}' upstream (check the branch, tag or commit)",
                status=status, url=url)
        if code == "EntryNotFound":
            raise EntryNotFoundError(f"{what} not found upstream{detail}", status=status, url=url)
        if status == 401:
            raise AccessDeniedError(
                f"upstream rejected the token for '{repo}' (401{detail}): check upstream.token / HF_TOKEN",
                status=status, url=url)
        if status == 403:
            raise AccessDeniedError(
                f"access to '{repo}' denied upstream (403{detail}): check that the token can read it",
                status=status, url=url)
        if status == 404:
            raise RepoNotFoundError(
                f"{what} not found upstream at {self.endpoint} (HTTP 404; check the name and type)",
                status=status, url=url)
        if status == 412:
            raise ConflictError(f"{what}: the branch moved upstream since we looked{detail}",
                                status=status, url=url)
        raise UpstreamError(f"upstream answered HTTP {status} for {what}{detail}", status=status, url=url)

    def _api_repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.endpoint}/api/{repo_type}s/{repo_id}"

    def _json(self, response: httpx2.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamProtocolError(f"upstream sent invalid JSON for {what}", url=str(response.url)) from exc

    # -- metadata --------------------------------------------------------------------------------
    def revision_info(self, repo_type: str, repo_id: str, revision: str) -> RevisionInfo:
        """The commit a revision points at, and the repo's canonical id (one request, plus redirects)."""
        url = f"{self._api_repo_url(repo_type, repo_id)}/revision/{quote(revision, safe='')}"
        what = f"{repo_type} '{repo_id}' revision '{revision}'"
        response, canonical_url = self._get_following(url, what=what)
        self._raise_for_status(response, repo=repo_id, what=what, revision=revision)
        data = self._json(response, what)
        sha = data.get("sha") if isinstance(data, dict) else None
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise UpstreamProtocolError(f"upstream gave no commit sha for {what}", url=url)
        canonical = data.get("id") if isinstance(data.get("id"), str) else None
        if not canonical:
            # No id in the body: take it from the path we were redirected to.
            match = re.search(rf"/api/{repo_type}s/(.+?)/revision/", urlsplit(canonical_url).path)
            canonical = match.group(1) if match else repo_id
        return RevisionInfo(repo_id=canonical, sha=sha, private=_flag(data.get("private")),
                            gated=_gate(data.get("gated")))

    def list_tree(self, repo_type: str, repo_id: str, revision: str) -> list[TreeEntry]:
        """Every file of a revision (recursive, following ``Link: rel="next"`` pagination)."""
        url: str | None = (f"{self._api_repo_url(repo_type, repo_id)}/tree/{quote(revision, safe='')}"
                           "?recursive=true&expand=false")
        what = f"the file list of {repo_type} '{repo_id}' at {revision}"
        entries: list[TreeEntry] = []
        pages = 0
        while url:
            response, _ = self._get_following(url, what=what)
            self._raise_for_status(response, repo=repo_id, what=what, revision=revision)
            items = self._json(response, what)
            if not isinstance(items, list):
                raise UpstreamProtocolError(f"{what}: expected a JSON list", url=url)
            for item in items:
                entry = _tree_entry(item, what)
                if entry is not None:
                    entries.append(entry)
            pages += 1
            match = _NEXT_LINK.search(response.headers.get("link", ""))
            url = urljoin(url, match.group(1)) if match else None
        logger.debug("listed %d files of %s/%s@%s in %d page(s)", len(entries), repo_type, repo_id,
                     revision[:12], pages)
        return entries

    # -- content ---------------------------------------------------------------------------------
    def download(self, repo_type: str, repo_id: str, commit: str, path: str, writer: ByteSink,
                 on_bytes: Callable[[int], None] = lambda n: None) -> None:
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
            except (httpx2.TransportError, _ShortBody) as exc:
                stalls = 0 if writer.offset > before else stalls + 1
                if stalls > self.max_retries:
                    raise UpstreamUnavailableError(
                        f"transfer of {what} kept breaking ({type(exc).__name__}); partial file kept, "
                        "run sync again to resume", url=url) from exc
                logger.info("transfer of %s broke at byte %d (%s); resuming", what, writer.offset,
                            type(exc).__name__)
                time.sleep(min(self.backoff * (2 ** stalls), self.max_backoff))

    def _download_once(self, url: str, what: str, repo_id: str, writer: ByteSink,
                       on_bytes: Callable[[int], None]) -> None:
        headers = {"accept-encoding": "identity"}
        expected = writer.expected_size
        if writer.offset and (expected is None or writer.offset < expected):
            headers["range"] = f"bytes={writer.offset}-"
        elif writer.offset and writer.offset == expected:
            return  # a complete partial from an earlier run; commit() verifies it
        with self._stream(url, what, headers) as response:
            self._raise_for_status(response, repo=repo_id, what=what)
            if response.status_code == 206:
                start = _content_range_start(response.headers.get("content-range", ""))
                if start != writer.offset:
                    writer.restart()
                    raise _ShortBody("server answered a different range")
            elif writer.offset:
                writer.restart()  # the server ignored Range: take the whole body
            if response.status_code == 416:
                writer.restart()
                raise _ShortBody("range not satisfiable")
            announced = response.headers.get("content-length")
            identity = response.headers.get("content-encoding", "identity") == "identity"
            start_offset = writer.offset
            for chunk in response.iter_bytes():
                writer.write(chunk)
                on_bytes(len(chunk))
            if identity and announced is not None and writer.offset - start_offset != int(announced):
                raise _ShortBody("connection closed before the announced length")

    @contextmanager
    def _stream(self, url: str, what: str, headers: dict[str, str]) -> Iterator[httpx2.Response]:
        response, _ = self._get_following(url, what=what, headers=headers, stream=True)
        try:
            yield response
        finally:
            response.close()


def _error_message(response: httpx2.Response) -> str:
    """The Hub's error text: the X-Error-Message header, else the JSON body's "error"."""
    message = response.headers.get("x-error-message", "")
    if message:
        return message
    response.read()
    try:
        body = response.json()
    except ValueError:
        return ""
    return body.get("error", "") if isinstance(body, dict) and isinstance(body.get("error"), str) else ""


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
        entry = TreeEntry(path=str(item["path"]), size=int(item["size"]), oid=str(item["oid"]),
                          lfs_sha256=str(lfs["oid"]) if lfs else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamProtocolError(f"{what}: malformed tree entry {str(item)[:100]!r}") from exc
    # Object ids become temp and lock file names: only well-formed hex may pass.
    if entry.size < 0 or not _GIT_OID.fullmatch(entry.oid) \
            or (entry.lfs_sha256 is not None and not _SHA256.fullmatch(entry.lfs_sha256)):
        raise UpstreamProtocolError(f"{what}: malformed tree entry {str(item)[:100]!r}")
    return entry

