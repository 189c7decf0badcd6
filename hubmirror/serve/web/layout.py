"""The frame every HTML page shares: escaping, the layout, security headers, and error pages.

Every string that came from a repo, a card, a ref, a path or a request goes through :func:`esc` (or
:func:`attr`), whatever its type: card metadata is arbitrary YAML.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..auth import Caller

# No scripts at all, styles only inline or from here, images only from here (and data: for badges in cards),
# forms post only here, and no framing (clickjacking).
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",  # pages depend on the login; never cached by a proxy for someone else
}

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2937;color:#fff;padding:.6em 1.5em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none}header .who{margin-left:auto}
header form{display:inline;margin:0}header button{font:inherit;cursor:pointer}
main{max-width:70em;margin:1em auto;padding:0 1.5em}
a{color:#1d4ed8}code,pre{font-family:ui-monospace,monospace;font-size:.92em}
pre{background:#f1f3f5;padding:.8em;overflow-x:auto;border-radius:4px}
table{border-collapse:collapse}td,th{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.notice{background:#fff7d6;border:1px solid #e8d27a;padding:.5em 1em;border-radius:4px}
.error{background:#fde8e8;border:1px solid #e5a3a3;padding:.5em 1em;border-radius:4px}
.tag{display:inline-block;background:#e5e7eb;border-radius:3px;padding:0 .4em;margin:.1em;font-size:.85em}
.muted{color:#666;font-size:.9em}.card{background:#fff;border:1px solid #ddd;padding:0 1.2em;border-radius:4px}
.num{text-align:right}form.search input,form.search select{margin:.2em .4em .2em 0;padding:.25em}
.results li{margin:.6em 0;list-style:none}.results{padding:0}
.repo-grid{display:grid;grid-template-columns:minmax(0,1fr) 24em;gap:1.5em}aside pre{white-space:pre-wrap}
@media (max-width:60em){.repo-grid{grid-template-columns:minmax(0,1fr)}}
"""


def esc(value: Any) -> str:
    """Any value as HTML text (quotes escaped too, so it is safe inside attributes)."""
    return escape(str(value), quote=True)


def quote_path(path: str) -> str:
    """A path for inside a URL: every segment percent-encoded, slashes kept."""
    return "/".join(quote(part, safe="") for part in path.split("/"))


def repo_url(repo_type: str, name: str) -> str:
    """The page (and resolve prefix) of a repo, like the Hub's: ``/org/name`` or ``/datasets/org/name``."""
    prefix = "/datasets/" if repo_type == "dataset" else "/"
    return prefix + quote_path(name)


def page(title: str, body: str, caller: Caller, *, notice: str | None = None, login_link: bool = True) -> str:
    """A whole HTML document: header (search, status, login state), an optional notice, the body."""
    if not caller.anonymous:
        who = (
            f'<span class="who">{esc(caller.name)} · <form method="post" action="/-/logout">'
            '<button type="submit">log out</button></form></span>'
        )
    elif login_link:
        who = '<span class="who"><a href="/-/login">log in</a></span>'
    else:
        who = ""
    shown = f'<p class="notice">{esc(notice)}</p>' if notice else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · hubmirror</title><style>{STYLE}</style></head>\n<body>"
        '<header><a href="/"><b>hubmirror</b></a><a href="/">search</a><a href="/-/status">status</a>'
        f"{who}</header>\n<main>{shown}{body}</main></body></html>\n"
    )


def html(document: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(document, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def redirect(location: str, headers: dict[str, str] | None = None) -> Response:
    """303 See Other to a path on this server (after a form post, or to the login page)."""
    return RedirectResponse(location, status_code=303, headers={**SECURITY_HEADERS, **(headers or {})})


def error_page(status: int, message: str, caller: Caller, *, hint: str | None = None) -> HTMLResponse:
    titles = {400: "Bad request", 401: "Login required", 403: "Forbidden", 404: "Not found", 413: "Too large"}
    title = titles.get(status, "Error" if status < 500 else "Server error")
    body = f'<h1>{esc(title)}</h1><p class="error">{esc(message)}</p>'
    if hint:
        body += f"<p>{esc(hint)}</p>"
    body += '<p><a href="/">Search the mirror</a></p>'
    return html(page(title, body, caller), status)
