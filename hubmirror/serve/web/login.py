"""``/-/login`` and ``/-/logout``: a browser logs in with a token of this mirror and gets a cookie that only
the HTML pages accept (see :mod:`..auth`). The form posts urlencoded (parsed here: python-multipart is not a
dependency), bounded; a post from another site's page is refused by its Origin header."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ..auth import ANONYMOUS, COOKIE, Caller, Tokens, session_value
from ..bodies import read_body
from ..http import HubHTTPError, base_url
from .layout import esc, html, page, redirect

FORM_LIMIT = 16 * 1024
MAX_TOKEN = 1000


def safe_next(value: str) -> str:
    """Where to go after logging in: a path on this server only (never ``//elsewhere`` or a URL)."""
    if not value.startswith("/") or value.startswith(("//", "/\\")) or len(value) > 500:
        return "/"
    if any(ch < " " or ch == "\x7f" for ch in value) or urlsplit(value).netloc:
        return "/"
    return value


def login_form(caller: Caller, *, next_path: str = "/", error: str | None = None, notice: str | None = None) -> str:
    shown = f'<p class="error" id="login-error">{esc(error)}</p>' if error else ""
    current = (
        f"<p>You are logged in as <b>{esc(caller.name)}</b>. Log in again to change the token.</p>"
        if not caller.anonymous
        else ""
    )
    body = (
        f"<h1>Log in</h1>{current}{shown}"
        "<p>Use a token of this mirror (<code>serve.token</code> or one of <code>serve.users</code>). "
        "Private repos you may read then show in search and on their pages.</p>"
        '<form method="post" action="/-/login" id="login">'
        '<label>token <input type="password" name="token" autocomplete="current-password" size="40" required '
        "autofocus></label>"
        f'<input type="hidden" name="next" value="{esc(next_path)}"> '
        '<button type="submit">Log in</button></form>'
    )
    return page("Log in", body, caller, notice=notice, login_link=False)


def check_origin(request: Request) -> None:
    """Refuse a form post made by another site's page (the browser names the page's origin)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin != base_url(request):
        raise HubHTTPError(403, "this form may only be posted from this mirror's own pages")


async def login(request: Request, tokens: Tokens) -> Response:
    check_origin(request)
    body = await read_body(request, FORM_LIMIT)
    try:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=10)
    except ValueError:
        raise HubHTTPError(400, "the login form has too many fields") from None
    token = form.get("token", [""])[-1].strip()[:MAX_TOKEN]
    next_path = safe_next(form.get("next", ["/"])[-1])
    caller = tokens.lookup(token) if token else None
    if caller is None:
        error = "That token is not one of this mirror's tokens." if token else "Enter a token."
        return html(login_form(ANONYMOUS, next_path=next_path, error=error), 401)
    secure = "; Secure" if request.url.scheme == "https" else ""
    cookie = f"{COOKIE}={session_value(token)}; HttpOnly; SameSite=Strict; Path=/{secure}"
    return redirect(next_path, {"Set-Cookie": cookie})


def logout(request: Request) -> Response:
    check_origin(request)
    secure = "; Secure" if request.url.scheme == "https" else ""
    cookie = f"{COOKIE}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/{secure}"
    return redirect("/", {"Set-Cookie": cookie})
