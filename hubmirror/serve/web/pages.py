"""The page dispatcher: who is asking (a login cookie counts here, and only here), the login redirect when
anonymous reads are off, errors as HTML pages rather than JSON, and the security headers on every answer."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...errors import HubMirrorError, RepoNotMirroredError, RevisionNotMirroredError
from ..auth import ANONYMOUS, COOKIE, Caller, Tokens
from ..catalog import Catalog
from ..http import HubHTTPError, translate
from ..routing import Route
from .layout import error_page, html, redirect
from .login import login, login_form, logout, safe_next
from .repo import repo_page
from .search import search_page
from .status import status_page

PAGES = frozenset({"page_search", "page_repo", "page_status", "page_login", "page_logout"})
STALE = "Your login is no longer valid (its token was changed or removed): you browse anonymously. Log in again."


async def dispatch(request: Request, route: Route, catalog: Catalog, tokens: Tokens) -> Response:
    """The answer to a page route (one of :data:`PAGES`); never raises for what a user can cause."""
    caller: Caller = ANONYMOUS
    try:
        try:
            caller = tokens.caller(request, cookie=True)
        except HubHTTPError:
            if "authorization" in request.headers:  # a token this server does not know: say so
                raise
            # anonymous reads are off and there is no valid login: the login page, not a JSON 401
            if route.endpoint == "page_login":
                return await _login(request, route, tokens, ANONYMOUS, _notice(request, ANONYMOUS))
            if route.endpoint == "page_logout":
                return logout(request)
            return redirect("/-/login?next=" + quote(_here(request), safe="/"))
        return await _page(request, route, catalog, tokens, caller, _notice(request, caller))
    except RepoNotMirroredError as exc:
        hint = "It may be private: log in to see it." if caller.anonymous else None
        return error_page(404, str(exc), caller, hint=hint)
    except RevisionNotMirroredError as exc:
        return error_page(404, str(exc), caller)
    except HubHTTPError as exc:
        return error_page(exc.status, exc.message, caller, hint=exc.hint)
    except HubMirrorError as exc:
        translated = translate(exc, anonymous=caller.anonymous)
        return error_page(translated.status, translated.message, caller)


def _notice(request: Request, caller: Caller) -> str | None:
    """A browser with a login cookie that names no caller any more is told, and browses anonymously."""
    return STALE if request.cookies.get(COOKIE) and caller.anonymous else None


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def _page(
    request: Request, route: Route, catalog: Catalog, tokens: Tokens, caller: Caller, notice: str | None
) -> Response:
    endpoint = route.endpoint
    if endpoint == "page_login":
        return await _login(request, route, tokens, caller, notice)
    if endpoint == "page_logout":
        return logout(request)
    if endpoint == "page_search":
        return html(await run_in_threadpool(search_page, request, catalog, caller, notice))
    if endpoint == "page_status":
        # It names repos (failures, outbox): with tokens configured it is for their holders only.
        if tokens.any_known and caller.anonymous:
            return redirect("/-/login?next=/-/status")
        return html(await run_in_threadpool(status_page, catalog, caller, notice))
    repo = catalog.repo(route.repo_type, route.repo_id, caller)
    return html(await run_in_threadpool(repo_page, request, catalog, caller, repo, notice))


async def _login(request: Request, route: Route, tokens: Tokens, caller: Caller, notice: str | None) -> Response:
    if request.method == "POST":
        return await login(request, tokens)
    next_path = safe_next(request.query_params.get("next", "/"))
    return html(login_form(caller, next_path=next_path, notice=notice))
