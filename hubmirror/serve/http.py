"""HTTP plumbing shared by serve's endpoints: Hub-style error answers, the translation of our errors, and the
base URL clients used."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import (
    FileNotMirroredError,
    HubMirrorError,
    IntegrityError,
    LockTimeoutError,
    RepoNotMirroredError,
    RevisionNotMirroredError,
    StoreError,
    UnsafePathError,
)
from ..models import Repo

INVALID_TOKEN = "Invalid credentials in Authorization header"  # the Hub's words; clients match them


class HubHTTPError(Exception):
    """An answer the Hub would give: status, ``X-Error-Code`` and message (header and JSON body)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, dict(headers or {})
        self.hint = hint  # said in the body only: some clients match the X-Error-Message text exactly

    def response(self) -> Response:
        # Header-safe: messages may quote request input (NUL, CR/LF, non-ASCII) that h11 refuses to send.
        safe = "".join(ch if " " <= ch <= "~" else "?" for ch in self.message[:500])
        headers = {"X-Error-Message": safe, **self.headers}
        if self.code:
            headers["X-Error-Code"] = self.code
        body = f"{self.message} ({self.hint})" if self.hint else self.message
        return JSONResponse({"error": body[:2000]}, status_code=self.status, headers=headers)


def translate(exc: HubMirrorError, *, anonymous: bool) -> HubHTTPError:
    """Our error classes → the status and ``X-Error-Code`` the real client maps back to its classes."""
    if isinstance(exc, RepoNotMirroredError):
        # Like the Hub: unauthenticated requests for unknown (or private) repos get 401.
        return HubHTTPError(401 if anonymous else 404, str(exc), "RepoNotFound")
    if isinstance(exc, RevisionNotMirroredError):
        return HubHTTPError(404, str(exc), "RevisionNotFound")
    if isinstance(exc, FileNotMirroredError):
        return HubHTTPError(404, str(exc), "EntryNotFound")
    if isinstance(exc, (UnsafePathError, IntegrityError)):
        return HubHTTPError(400, str(exc))
    if isinstance(exc, LockTimeoutError):
        return HubHTTPError(503, str(exc), headers={"Retry-After": "5"})
    if isinstance(exc, StoreError):
        return HubHTTPError(507 if "disk full" in str(exc) else 503, str(exc))
    return HubHTTPError(500, str(exc))


def gated_refusal(repo: Repo, authenticated: bool) -> HubHTTPError:
    """The Hub's answer to a download from a gated repo by a caller not allowed to read it."""
    what = f"Access to {repo.type} {repo.name} is restricted"
    if authenticated:
        return HubHTTPError(403, f"{what} and you are not in the authorized list.", "GatedRepo")
    return HubHTTPError(
        401,
        f"{what}. You must have access to it and be authenticated to access it. Please log in.",
        "GatedRepo",
    )


def base_url(request: Request) -> str:
    """Scheme and host the client used, for absolute URLs (pagination links, upload hrefs)."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def hub_date(iso: str | None) -> str:
    """An ISO 8601 time as the Hub writes dates (``2024-05-01T12:00:00.000Z``); 1970 when not known."""
    if not iso:
        return "1970-01-01T00:00:00.000Z"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return "1970-01-01T00:00:00.000Z"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
