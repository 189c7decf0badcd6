"""Database URLs as messages may show them: never with their password."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(text: str) -> bool:
    return text.lower().startswith(_SCHEMES)


def redact(url: object) -> str:
    """A database URL without its password (in the authority, or as a ``password=`` parameter)."""
    try:
        parts = urlsplit(str(url))
        userinfo, at, host = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = (f"{user}@{host}" if user else host) if at else parts.netloc
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"])
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    except ValueError:
        return f"{str(url).partition('://')[0]}://... (a malformed URL)"


def url_secrets(url: str) -> list[str]:
    """The password of ``url`` as written and decoded, to scrub from messages that might echo it."""
    found: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        found += [v for k, v in parse_qsl(parts.query) if k == "password"]
    except ValueError:
        pass
    return [secret for secret in found if secret]
