"""One HTTP session with an upstream hub: retries and backoff, the rate gate, redirects, and the translation
of error answers into :mod:`hubmirror.errors`. The only module that imports ``httpx2``.

Credentials go only to the configured endpoint's origin (a redirect to a CDN or another host drops them),
and the token is never logged. ``transport=`` lets fast unit tests put an ``httpx2.MockTransport`` under the
real session; the loopback-server tests remain the evidence.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import httpx2

from ..errors import (
    AccessDeniedError,
    ConflictError,
    EntryNotFoundError,
    GatedRepoError,
    Interrupted,
    RepoNotFoundError,
    RevisionNotFoundError,
    UntrustedCertificateError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamUnavailableError,
    UpstreamUnreachableError,
)
from ..version import __version__
from ._gate import shared_gate

logger = logging.getLogger(__name__)

RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10
FIRST_CONTACT_ATTEMPTS = 2  # a host that never answered: DNS failure or refused connection fails fast
_CONNECT_FAILURES = (httpx2.ConnectError, httpx2.ConnectTimeout)
Response = httpx2.Response
TransportError = httpx2.TransportError
Body = bytes | Callable[[], Iterator[bytes]]


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def retry_after(response: Response) -> float | None:
    """Seconds to wait from ``RateLimit: ...;t=N`` or ``Retry-After`` (seconds or HTTP date)."""
    match = re.search(r"\bt=(\d+)", response.headers.get("ratelimit", ""))
    if match:
        return float(match.group(1)) + 1
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


class _TLSOnFirstUse(httpx2.BaseTransport):
    """The ``https://`` transport, built by the first request that needs it.

    Loading the system's CA certificates costs 0.1-0.25 s of every process's start-up, which a run against an
    ``http://`` endpoint (an internal hub on a closed network) never needs; a redirect to an https CDN still
    gets the full, verified transport (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured).
    """

    def __init__(self, limits: httpx2.Limits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._inner: httpx2.HTTPTransport | None = None

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        inner = self._inner
        if inner is None:
            with self._lock:
                if self._inner is None:
                    self._inner = httpx2.HTTPTransport(limits=self._limits)
                inner = self._inner
        return inner.handle_request(request)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def _transports(limits: httpx2.Limits) -> dict[str, Any]:
    """Client arguments that defer TLS set-up (see :class:`_TLSOnFirstUse`); none when a proxy variable is
    set, since the client's own environment-proxy mounts must then decide the route."""
    if any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES):
        return {}
    # The default transport only ever carries http:// (https:// is mounted), so it needs no trust store.
    return {
        "transport": httpx2.HTTPTransport(verify=False, limits=limits),
        "mounts": {"https://": _TLSOnFirstUse(limits)},
    }


class HubSession:
    """A pooled, thread-safe HTTP session with one upstream endpoint."""

    def __init__(
        self,
        endpoint: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 8,
        pool_size: int = 16,
        budget: int | None = None,
        backoff: float = 0.25,
        max_backoff: float = 30.0,
        stop: threading.Event | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self.max_retries = max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.stop = stop or threading.Event()
        self.gate = shared_gate(self.endpoint, budget)
        self._counter_lock = threading.Lock()
        self.requests = 0
        self._reached = False  # any answer at all from upstream yet (connection errors before: fail fast)
        limits = httpx2.Limits(max_connections=pool_size + 4, max_keepalive_connections=pool_size + 4)
        self._http = httpx2.Client(
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=limits,
            headers={"user-agent": f"hubmirror/{__version__}"},
            follow_redirects=False,
            **({"transport": transport} if transport is not None else _transports(limits)),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def api_url(self, repo_type: str, repo_id: str) -> str:
        """``{endpoint}/api/{type}s/{repo_id}``: the base of every per-repo API call."""
        return f"{self.endpoint}/api/{repo_type}s/{repo_id}"

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` unless stopped first (then :class:`Interrupted`): SIGTERM stays prompt."""
        if self.stop.wait(seconds):
            raise Interrupted("stopped on request while waiting to retry")

    # -- sending ---------------------------------------------------------------------------------
    def _headers_for(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self._token and origin(url) == origin(self.endpoint):
            headers["authorization"] = f"Bearer {self._token}"
        return headers

    def _sleep_before_retry(self, attempt: int, response: Response | None) -> None:
        wait = self.backoff * (2**attempt) * (0.5 + random.random())
        if response is not None:
            hinted = retry_after(response)
            if hinted is not None:
                wait = hinted
                if response.status_code == 429:
                    self.gate.pause(hinted)
        self.pause(min(wait, self.max_backoff))

    def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        content: Body | None = None,
        stream: bool = False,
        retries: int | None = None,
    ) -> Response:
        """Send with bounded retries on connection errors, 408/429/5xx. Redirects are not followed.

        A callable ``content`` (an upload streamed from disk) is called again for every attempt.
        ``retries`` lowers the session's bound for a request that is worth less than a long wait."""
        last_problem = ""
        response: Response | None = None
        max_retries = self.max_retries if retries is None else min(retries, self.max_retries)
        for attempt in range(max_retries + 1):
            if attempt:
                self._sleep_before_retry(attempt - 1, response)
            # The budget covers API calls (the Hub's "api" rate-limit scope); file downloads are not API
            # calls and are not counted, so a sync of thousands of files does not stall on it.
            self.gate.wait(origin(url) == origin(self.endpoint) and urlsplit(url).path.startswith("/api/"), self.stop)
            with self._counter_lock:
                self.requests += 1
            try:
                body = content() if callable(content) else content
                request = self._http.build_request(method, url, headers=self._headers_for(url, headers), content=body)
                response = self._http.send(request, stream=stream)
            except httpx2.TransportError as exc:
                response = None
                last_problem = _describe_transport_error(exc)
                logger.debug("%s %s failed (%s), attempt %d", method, url, last_problem, attempt + 1)
                if _certificate_refused(exc):  # no retry will make an untrusted certificate trusted
                    raise UntrustedCertificateError(
                        f"the TLS certificate of {urlsplit(url).netloc} is not trusted while fetching {what} "
                        f"({exc}); if your own CA signs it, point SSL_CERT_FILE at that CA's PEM file",
                        url=url,
                    ) from None
                if isinstance(exc, _CONNECT_FAILURES) and not self._reached and attempt + 1 >= FIRST_CONTACT_ATTEMPTS:
                    raise self._unreachable(last_problem, url) from None
                continue
            self._reached = True
            if response.status_code in RETRY_STATUSES:
                last_problem = f"HTTP {response.status_code}"
                logger.debug("%s %s answered %d, attempt %d", method, url, response.status_code, attempt + 1)
                response.close()
                continue
            return response
        if response is not None and response.status_code == 429:
            raise UpstreamUnavailableError(
                f"upstream rate limit (HTTP 429) while fetching {what}, still after {max_retries} "
                "retries; try again later or lower upstream.max_requests_per_5min",
                status=429,
                url=url,
            )
        if response is None and not self._reached:
            raise self._unreachable(last_problem, url)
        if response is None:
            raise UpstreamUnreachableError(
                f"upstream {self.endpoint} unreachable while fetching {what} ({last_problem}, after "
                f"{max_retries + 1} attempts); try again later",
                url=url,
            )
        raise UpstreamUnavailableError(
            f"upstream {self.endpoint} unavailable while fetching {what} ({last_problem}, "
            f"after {max_retries + 1} attempts); try again later",
            status=response.status_code,
            url=url,
        )

    def _unreachable(self, problem: str, url: str) -> UpstreamUnreachableError:
        return UpstreamUnreachableError(
            f"cannot reach upstream {self.endpoint} ({problem}): check upstream.endpoint in the config and "
            "this machine's network",
            url=url,
        )

    def get_following(
        self,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        retries: int | None = None,
    ) -> tuple[Response, str]:
        """GET following redirects ourselves; returns the final response and the last URL on the API
        origin (after a rename it names the canonical repo)."""
        canonical_url = url
        for _ in range(MAX_REDIRECTS):
            response = self.send("GET", url, what=what, headers=headers, stream=stream, retries=retries)
            if response.status_code not in REDIRECTS:
                return response, canonical_url
            location = response.headers.get("location")
            response.close()
            if not location:
                raise UpstreamProtocolError(f"redirect without Location for {what}", url=url)
            url = urljoin(url, location)
            if origin(url) == origin(self.endpoint):
                canonical_url = url
        raise UpstreamProtocolError(f"too many redirects while fetching {what}", url=url)

    @contextmanager
    def stream(self, url: str, *, what: str, headers: dict[str, str]) -> Iterator[Response]:
        response, _ = self.get_following(url, what=what, headers=headers, stream=True)
        try:
            yield response
        finally:
            response.close()

    def post_json(
        self, url: str, payload: object, *, repo: str, what: str, headers: dict[str, str] | None = None
    ) -> Any:
        """POST a JSON body and return the JSON answer; errors are worded for a write."""
        response = self.send(
            "POST",
            url,
            what=what,
            headers=headers or {"content-type": "application/json"},
            content=json.dumps(payload).encode(),
        )
        self.raise_for_status(response, repo=repo, what=what, writing=True)
        return self.json(response, what)

    def get_json(self, url: str, *, repo: str, what: str, max_bytes: int, retries: int | None = None) -> Any:
        """GET a JSON answer of at most ``max_bytes`` (as decoded): an upstream we do not control must not
        make us hold an endless body in memory. Raises like :meth:`raise_for_status`, and
        :class:`UpstreamProtocolError` for a body that is too long or not JSON."""
        response, _ = self.get_following(url, what=what, stream=True, retries=retries)
        try:
            self.raise_for_status(response, repo=repo, what=what)
            announced = response.headers.get("content-length", "")
            if announced.strip().isdigit() and int(announced) > max_bytes:
                raise UpstreamProtocolError(f"upstream sent more than {max_bytes:,} bytes for {what}", url=url)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise UpstreamProtocolError(f"upstream sent more than {max_bytes:,} bytes for {what}", url=url)
                chunks.append(chunk)
        finally:
            response.close()
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, RecursionError) as exc:  # RecursionError: a body nested thousands deep
            raise UpstreamProtocolError(f"upstream sent invalid JSON for {what}", url=url) from exc

    # -- answers ---------------------------------------------------------------------------------
    @staticmethod
    def json(response: Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamProtocolError(f"upstream sent invalid JSON for {what}", url=str(response.url)) from exc

    def raise_for_status(
        self, response: Response, *, repo: str, what: str, revision: str | None = None, writing: bool = False
    ) -> None:
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
            raise AccessDeniedError(
                f"upstream refused {what} (HTTP {status}{detail}); the token cannot write to '{repo}': {fix}",
                status=status,
                url=url,
            )
        if code == "GatedRepo":
            raise GatedRepoError(
                f"'{repo}' is gated upstream{detail}: accept its conditions on its page with the account "
                "whose token hubmirror uses (upstream.token / HF_TOKEN), then sync again",
                status=status,
                url=url,
            )
        if code == "RepoNotFound" or (status == 401 and "Invalid credentials" not in message):
            raise RepoNotFoundError(
                f"repo '{repo}' not found upstream at {self.endpoint} (check the name and type, or set "
                "upstream.token / HF_TOKEN if it is private)",
                status=status,
                url=url,
            )
        if code == "RevisionNotFound":
            raise RevisionNotFoundError(
                f"revision '{revision}' not found in '{repo}' upstream (check the branch, tag or commit)",
                status=status,
                url=url,
            )
        if code == "EntryNotFound":
            raise EntryNotFoundError(f"{what} not found upstream{detail}", status=status, url=url)
        if status == 401:
            raise AccessDeniedError(
                f"upstream rejected the token for '{repo}' (401{detail}): check upstream.token / HF_TOKEN",
                status=status,
                url=url,
            )
        if status == 403:
            raise AccessDeniedError(
                f"access to '{repo}' denied upstream (403{detail}): check that the token can read it",
                status=status,
                url=url,
            )
        if status == 404:
            raise RepoNotFoundError(
                f"{what} not found upstream at {self.endpoint} (HTTP 404; check the name and type)",
                status=status,
                url=url,
            )
        if status == 412:
            raise ConflictError(f"{what}: the branch moved upstream since we looked{detail}", status=status, url=url)
        raise UpstreamError(f"upstream answered HTTP {status} for {what}{detail}", status=status, url=url)


def _certificate_refused(exc: BaseException) -> bool:
    """Whether a transport error comes from a certificate this machine does not trust."""
    import ssl  # only reached after a failure; a plain-http process never loads it

    seen: BaseException | None = exc
    for _ in range(8):  # httpx2 wraps the ssl error once or twice (__cause__ / __context__)
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe_transport_error(exc: httpx2.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx2.ConnectError) and (
        "Name or service not known" in text
        or "nodename nor servname" in text
        or "Temporary failure in name resolution" in text
    ):
        return f"DNS lookup failed: {text}"
    if isinstance(exc, httpx2.ConnectError) and "refused" in text.lower():
        return f"connection refused: {text}"
    return f"{type(exc).__name__}: {text}"


def _error_message(response: Response) -> str:
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
