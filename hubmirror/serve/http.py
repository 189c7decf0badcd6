"""HTTP plumbing shared by serve's endpoints: the error type, Hub-style error answers, auth, base URL."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import (
    FileNotMirroredError,
    HubMirrorError,
    IntegrityError,
    RepoNotMirroredError,
    RevisionNotMirroredError,
    UnsafePathError,
)
from ..models import Repo


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
        return JSONResponse({"error": body}, status_code=self.status, headers=headers)


def translate(exc: HubMirrorError, *, authorized: bool) -> HubHTTPError:
    """Our error classes → the status and ``X-Error-Code`` the real client maps back to its classes."""
    if isinstance(exc, RepoNotMirroredError):
        # Like the Hub: unauthenticated requests for unknown (or private) repos get 401.
        return HubHTTPError(404 if authorized else 401, str(exc), "RepoNotFound")
    if isinstance(exc, RevisionNotMirroredError):
        return HubHTTPError(404, str(exc), "RevisionNotFound")
    if isinstance(exc, FileNotMirroredError):
        return HubHTTPError(404, str(exc), "EntryNotFound")
    if isinstance(exc, (UnsafePathError, IntegrityError)):
        return HubHTTPError(400, str(exc))
    return HubHTTPError(500, str(exc))


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


INVALID_TOKEN = "Invalid credentials in Authorization header"  # the Hub's words; clients match them


def check_token(request: Request, token: str | None) -> bool:
    """True when the request carries the configured token, False without one; a token this server does
    not know is refused with 401, as the Hub refuses an invalid token (also when no token is configured:
    a request never silently drops to anonymous)."""
    given = bearer(request)
    if given is None:
        return False
    if token is None or not hmac.compare_digest(given.encode(), token.encode()):
        raise HubHTTPError(
            401,
            INVALID_TOKEN,
            hint="this mirror does not know that token: use one from "
            "its serve.token, or unset HF_TOKEN to read public repos anonymously",
        )
    return True


def gated_refusal(repo: Repo, authenticated: bool) -> HubHTTPError:
    """The Hub's answer to a download from a gated repo by a caller not allowed to read it."""
    what = f"Access to {repo.type} {repo.name} is restricted"
    if authenticated:
        return HubHTTPError(403, f"{what} and you are not in the authorized list.", "GatedRepo")
    return HubHTTPError(
        401, f"{what}. You must have access to it and be authenticated to access it. Please log in.", "GatedRepo"
    )


def require_write(request: Request, token: str | None) -> None:
    if token is None:
        raise HubHTTPError(403, "this mirror accepts no pushes: set serve.token in its config to enable them")
    if not check_token(request, token):
        raise HubHTTPError(401, "a token is required to push to this mirror (Authorization: Bearer ...)")


def base_url(request: Request) -> str:
    """Scheme and host the client used, for absolute URLs (pagination links, upload hrefs)."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"
