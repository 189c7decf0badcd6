"""The ASGI application: route on the raw path, find the caller, call the endpoint, map errors; and ``run``.

Every failure we can name answers as the Hub would (status, ``X-Error-Code``, message). Anything else is a
bug: it is logged with the request line and answered with a plain 500, never a traceback. The optional
access log has one line per request (no query strings, no tokens).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from ..config import Config, ServeConfig, UpstreamConfig
from ..errors import HubMirrorError
from ..models import Backends
from . import reads, web
from .auth import Caller, Tokens
from .catalog import Catalog
from .discussions import Discussions
from .history import list_commits
from .http import HubHTTPError, gated_refusal, translate
from .lfs import LfsEndpoints
from .pull import PullThrough
from .refs import RefWriter, list_refs
from .repo_admin import RepoAdmin
from .routing import Route, route
from .writes import Writer

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("hubmirror.access")

WRITES = (
    "create_repo",
    "preupload",
    "commit",
    "lfs_batch",
    "lfs_upload",
    "lfs_verify",
    "branch",
    "tag",
    "settings",
    "delete_repo",
    "move_repo",
)
METHODS = {
    "page_search": ("GET",),
    "page_repo": ("GET",),
    "page_status": ("GET",),
    "page_login": ("GET", "POST"),
    "page_logout": ("POST",),
    "list": ("GET",),
    "whoami": ("GET",),
    "health": ("GET", "HEAD"),
    "validate_yaml": ("POST",),
    "create_repo": ("POST",),
    "preupload": ("POST",),
    "commit": ("POST",),
    "lfs_batch": ("POST",),
    "lfs_upload": ("PUT",),
    "lfs_verify": ("POST",),
    "refs": ("GET",),
    "commits": ("GET",),
    "branch": ("POST", "DELETE"),
    "tag": ("POST", "DELETE"),
    "settings": ("PUT",),
    "delete_repo": ("DELETE",),
    "move_repo": ("POST",),
    "discussions": ("GET", "POST"),
    "xet_token": ("GET", "POST"),
    "repo_info": ("GET",),
    "tree": ("GET",),
    "paths_info": ("POST",),
    "resolve": ("GET", "HEAD"),
}


# What pull-through answers (serve.pull_through): a missing repo or revision is fetched first for these.
PULLED = ("refs", "commits", "repo_info", "tree", "paths_info", "resolve")


@dataclass(frozen=True)
class ServeSettings:
    """What a server is told besides its home: its tokens and switches, and what it mirrors."""

    config: ServeConfig = field(default_factory=ServeConfig)
    mirrored: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (type, repo) listed under repos:
    upstream: UpstreamConfig | None = None
    backends: Backends = field(default_factory=Backends)  # where the config puts index and blobs

    @classmethod
    def from_config(cls, config: Config | None) -> ServeSettings:
        """The serve: section, the repos the config mirrors, and where upstream is (defaults with no config)."""
        if config is None:
            return cls()
        return cls(
            config.serve,
            frozenset((s.type, s.repo) for s in config.repos),
            config.upstream,
            config.backends,
        )


class HubApp:
    """Hub-compatible HTTP API over one store."""

    def __init__(self, home: Path, settings: ServeSettings | None = None) -> None:
        settings = settings or ServeSettings()
        self.catalog = Catalog(home, settings.backends)
        self.catalog.redirect = settings.config.redirect
        self.catalog.presigned_expiry = settings.config.presigned_expiry
        self.tokens = Tokens(settings.config)
        self.lfs = LfsEndpoints(self.catalog, settings.config)
        upstream = settings.upstream.endpoint if settings.upstream else None
        self.writer = Writer(self.catalog, self.lfs, settings.mirrored, upstream)
        self.ref_writer = RefWriter(self.catalog, self.writer)
        self.admin = RepoAdmin(self.catalog, self.writer)
        self.discussions = Discussions(self.catalog, self.writer)
        self.access_log = settings.config.access_log
        self._xet_warned = False
        self.pull: PullThrough | None = None
        if settings.config.pull_through.enabled:
            self.pull = PullThrough(
                self.catalog, settings.config.pull_through, settings.upstream or UpstreamConfig(), settings.mirrored
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if self.pull is not None:  # fetches in flight finish (their bytes verified and recorded) first
                await run_in_threadpool(self.pull.close)
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request = Request(scope, receive)
        caller: Caller | None = None
        try:
            r = route(scope_raw_path(request))
            if r.endpoint in WRITES and not self.tokens.accepts_pushes:  # said before any token is looked at
                raise HubHTTPError(
                    403,
                    "this mirror accepts no pushes: set serve.token (or serve.users with write "
                    "patterns) in its config to enable them",
                )
            if r.endpoint in ("lfs_upload", "lfs_verify"):
                caller = None  # a signed URL: the signature names the caller, the client sends no token
            elif r.endpoint in web.PAGES:
                caller = None  # pages find their caller: a login cookie counts there, a login page replaces a 401
            else:
                caller = self.tokens.caller(request)
            response = await self._dispatch(request, r, caller)
        except HubHTTPError as exc:
            response = exc.response()
            if exc.status >= 500:
                logger.error("%d on %s %s: %s", exc.status, request.method, request.url.path, exc.message)
        except HubMirrorError as exc:
            translated = translate(exc, anonymous=caller is None or caller.anonymous)
            if translated.status >= 500:
                logger.error("%d on %s %s: %s", translated.status, request.method, request.url.path, exc)
            response = translated.response()
        except Exception:
            logger.exception("500 on %s %s", request.method, request.url.path)
            response = HubHTTPError(500, "internal error in hubmirror serve (logged on the server)").response()
        status: list[int] = []

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await response(scope, receive, send_noting_status)
        if self.access_log:
            access_logger.info(
                '%s "%s %s" %s %.1fms %s',
                request.client.host if request.client else "-",
                request.method,
                request.url.path,
                status[0] if status else "-",
                (time.perf_counter() - started) * 1000,
                (caller.name if caller else None) or "-",
            )

    async def _dispatch(self, request: Request, r: Route, caller: Caller | None) -> Response:
        allowed = METHODS.get(r.endpoint)
        if allowed is None:
            raise HubHTTPError(404, f"no such endpoint: {request.method} {request.url.path[:200]}")
        if request.method not in allowed:
            raise HubHTTPError(405, f"{request.method} is not allowed here", headers={"Allow": ", ".join(allowed)})
        if r.endpoint == "lfs_upload":
            return await self.lfs.upload(request, r.revision or "", r.path)
        if r.endpoint == "lfs_verify":
            return await self.lfs.verify(request, r.revision or "", r.path)
        if r.endpoint in web.PAGES:
            return await web.dispatch(request, r, self.catalog, self.tokens)
        assert caller is not None
        catalog = self.catalog
        if r.endpoint == "list":
            return reads.listing(request, catalog, r.repo_type, caller)
        if r.endpoint == "health":
            # For load balancers' checks: cheap (one query), and 503 when this replica cannot read its index.
            try:
                version = await run_in_threadpool(lambda: catalog.index().data_version())
            except HubMirrorError as exc:
                raise HubHTTPError(503, f"unhealthy: {exc}") from exc
            return JSONResponse({"status": "ok", "index_version": version})
        if r.endpoint == "whoami":
            if caller.anonymous:
                raise HubHTTPError(401, "Invalid user token", hint="send a token of this mirror")
            return reads.whoami(caller)
        if r.endpoint == "validate_yaml":
            return await reads.validate_yaml(request)
        if r.endpoint in WRITES:
            return await self._write(request, r, caller)
        if r.endpoint == "xet_token":
            if not self._xet_warned:  # hf_xet shows the client only the status: the log says what to do
                self._xet_warned = True
                logger.warning(
                    "a client asked for a Xet token (%s): hubmirror serve does not speak Xet; clients must "
                    "set HF_HUB_DISABLE_XET=1 to upload and download over HTTP and LFS",
                    request.url.path,
                )
            raise HubHTTPError(
                501,
                "Xet storage is not supported by hubmirror serve: set HF_HUB_DISABLE_XET=1 in the client's "
                "environment to upload and download over plain HTTP and LFS",
                "XetNotSupported",
            )
        if self.pull is not None and r.endpoint in PULLED:
            await self.pull.revision(r.repo_type, r.repo_id, r.revision or "main", caller)
        if r.endpoint == "refs":
            return list_refs(request, catalog, catalog.repo(r.repo_type, r.repo_id, caller))
        if r.endpoint == "discussions":
            return await self._discussion(request, r, caller)
        if r.endpoint == "commits":
            repo = catalog.repo(r.repo_type, r.repo_id, caller)
            return list_commits(request, catalog, repo, catalog.commit(repo, r.revision or "main"))
        snapshot = catalog.snapshot(r.repo_type, r.repo_id, r.revision or "main", caller)
        if r.endpoint == "repo_info":
            return await reads.repo_info(request, catalog, snapshot)
        if r.endpoint == "tree":
            return reads.tree(request, catalog, snapshot, r.path)
        if r.endpoint == "paths_info":
            return await reads.paths_info(request, catalog, snapshot)
        if not caller.may_download(snapshot.repo):  # a gated repo: metadata is public, files are not
            raise gated_refusal(snapshot.repo, authenticated=not caller.anonymous)
        if self.pull is not None and r.path in snapshot.missing:
            answer = await self.pull.resolve(request, snapshot, r.path)
            if answer is not None:
                return answer
            snapshot = catalog.at(snapshot.repo, snapshot.commit)
        if not catalog.store.blobs_local:  # object-store reads block: off the event loop
            return await run_in_threadpool(reads.resolve_file, request, catalog, snapshot, r.path)
        return reads.resolve_file(request, catalog, snapshot, r.path)

    async def _write(self, request: Request, r: Route, caller: Caller) -> Response:
        if not self.tokens.accepts_pushes:
            raise HubHTTPError(
                403,
                "this mirror accepts no pushes: set serve.token (or serve.users with write "
                "patterns) in its config to enable them",
            )
        if caller.anonymous:
            raise HubHTTPError(401, "a token is required to push to this mirror (Authorization: Bearer ...)")
        if r.endpoint == "create_repo":
            return await self.writer.create_repo(request, caller)
        if r.endpoint == "delete_repo":
            return await self.admin.delete(request, caller)
        if r.endpoint == "move_repo":
            return await self.admin.move(request, caller)
        if r.endpoint == "settings":
            return await self.admin.settings(request, caller, r.repo_type, r.repo_id)
        repo = self.catalog.repo(r.repo_type, r.repo_id, caller)
        if r.endpoint == "branch":
            return await self.ref_writer.branch(request, caller, repo, r.revision or "")
        if r.endpoint == "tag":
            return await self.ref_writer.tag(request, caller, repo, r.revision or "")
        if r.endpoint == "lfs_batch":  # uploading objects changes no repo: readers may, for pull requests
            self.writer.check_writable(caller, repo.type, repo.name, repo, propose=True)
            return await self.lfs.batch(request, caller)
        if r.endpoint == "preupload":
            return await self.writer.preupload(request, caller, repo, r.revision or "main")
        return await self.writer.commit(request, caller, repo, r.revision or "main")

    async def _discussion(self, request: Request, r: Route, caller: Caller) -> Response:
        repo = self.catalog.repo(r.repo_type, r.repo_id, caller)
        number, action = r.revision, r.path
        if request.method == "GET" and not action:
            if number is None:
                return self.discussions.listing(request, repo)
            return await self.discussions.details(request, repo, number)
        if request.method == "POST" and number is None:
            return await self.discussions.create(request, caller, repo)
        if request.method == "POST" and number is not None and action:
            return await self.discussions.act(request, caller, repo, number, action)
        raise HubHTTPError(405, f"{request.method} is not allowed here")


def scope_raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.scope["path"]


def create_app(home: Path, settings: ServeSettings | None = None) -> HubApp:
    return HubApp(home, settings)


def _uvicorn_config(home: Path, host: str, port: int, settings: ServeSettings, log_level: str) -> Any:
    import uvicorn

    return uvicorn.Config(
        create_app(home, settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=64 * 1024,
    )


def run(home: Path, host: str, port: int, settings: ServeSettings | None = None, log_level: str = "info") -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    import uvicorn

    settings = settings or ServeSettings()
    pushes = "enabled" if Tokens(settings.config).accepts_pushes else "disabled (no serve.token or writing user)"
    logger.info("serving %s on http://%s:%d (pushes %s)", home, host, port, pushes)
    uvicorn.Server(_uvicorn_config(home, host, port, settings, log_level)).run()


class BackgroundServer:
    """uvicorn in a thread, for ``hubmirror run`` (signals stay with the main thread)."""

    def __init__(self, home: Path, host: str, port: int, settings: ServeSettings | None = None) -> None:
        import uvicorn

        self._server = uvicorn.Server(_uvicorn_config(home, host, port, settings or ServeSettings(), "warning"))
        self._host, self._port = host, port
        self._thread = threading.Thread(target=self._server.run, name="hubmirror-serve", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        """Start serving; raises if the server could not bind (port in use, bad address)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._server.started:
            self.stop()
            raise HubMirrorError(f"could not serve on http://{self._host}:{self._port} (is the port in use?)")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
