"""Who is asking, and what they may do: the admin token (``serve.token``), the tokens of ``serve.users``, and
anonymous callers (``serve.anonymous``).

A token serve does not know gets 401 in every route, as the Hub answers an invalid token; a request never
silently drops to anonymous. Tokens are compared in constant time and never logged.

The HTML pages also accept a login cookie (``caller(request, cookie=True)``); the API never does, since a
browser sends cookies along with any cross-site request (CSRF). The cookie holds a value derived from the
token (HMAC), not the token: a leaked cookie opens the pages, not the API.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from fnmatch import fnmatchcase

from starlette.requests import Request

from ..config import ServeConfig
from ..models import Repo
from .http import INVALID_TOKEN, HubHTTPError


@dataclass(frozen=True)
class Caller:
    """The identity behind a request."""

    name: str | None  # None: anonymous
    admin: bool = False
    read_private: bool = False
    write: tuple[str, ...] = ()

    @property
    def anonymous(self) -> bool:
        return self.name is None

    def may_write(self, repo_type: str, repo_id: str) -> bool:
        return self.admin or any(fnmatchcase(repo_id, pattern) for pattern in self.write)

    def may_read(self, repo: Repo) -> bool:
        """May see the repo at all (a private one needs rights)."""
        return not repo.private or self.admin or self.read_private or self.may_write(repo.type, repo.name)

    def may_download(self, repo: Repo) -> bool:
        """May read the repo's files (a gated one needs rights too: the mirror's access to the gate must
        not become everyone's)."""
        if not self.may_read(repo):
            return False
        return not repo.gated or self.admin or self.read_private or self.may_write(repo.type, repo.name)

    @property
    def can_push(self) -> bool:
        return self.admin or bool(self.write)


ANONYMOUS = Caller(None)
COOKIE = "hubmirror_session"


def session_value(token: str) -> str:
    """The login cookie's value for a token: stable across restarts and replicas, useless for the API."""
    return "v1." + hmac.new(token.encode(), b"hubmirror page session", hashlib.sha256).hexdigest()


class Tokens:
    """The tokens a server knows, from its config."""

    def __init__(self, config: ServeConfig) -> None:
        self.anonymous = config.anonymous
        self._known: list[tuple[bytes, Caller]] = []
        if config.token:
            self._known.append((config.token.encode(), Caller("admin", admin=True, read_private=True)))
        for user in config.users:
            self._known.append(
                (user.token.encode(), Caller(user.name, read_private=user.read_private, write=user.write))
            )
        self._sessions = [(session_value(token.decode()).encode(), caller) for token, caller in self._known]

    @property
    def any_known(self) -> bool:
        """Whether any token is configured (then some repos or pages may be meant for their holders only)."""
        return bool(self._known)

    @property
    def accepts_pushes(self) -> bool:
        return any(caller.can_push for _, caller in self._known)

    def caller(self, request: Request, *, cookie: bool = False) -> Caller:
        """The caller of a request; 401 for a token this server does not know, or for anonymous requests
        when ``serve.anonymous`` is off. With ``cookie`` (HTML pages only) a login cookie names the caller
        when there is no Authorization header; a stale cookie counts as no cookie."""
        given = _bearer(request)
        if given is None and cookie:
            found = _lookup(self._sessions, request.cookies.get(COOKIE, ""))
            if found is not None:
                return found
        if given is None:
            if not self.anonymous:
                raise HubHTTPError(
                    401,
                    "A token is required to read from this mirror",
                    hint="send Authorization: Bearer <token>, e.g. set HF_TOKEN",
                )
            return ANONYMOUS
        found = self.lookup(given)
        if found is None:
            raise HubHTTPError(
                401,
                INVALID_TOKEN,
                hint="this mirror does not know that token: use one of its "
                "serve tokens, or unset HF_TOKEN to read public repos anonymously",
            )
        return found

    def lookup(self, token: str) -> Caller | None:
        """The caller a token names, or None when this server does not know it."""
        return _lookup(self._known, token)


def _lookup(known: list[tuple[bytes, Caller]], given: str) -> Caller | None:
    if not given:
        return None
    found = None
    encoded = given.encode()
    for token, caller in known:  # every token is compared: the time says nothing about which
        if hmac.compare_digest(encoded, token):
            found = caller
    return found


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HubHTTPError(401, INVALID_TOKEN, hint="use 'Authorization: Bearer <token>'")
    return token.strip()
