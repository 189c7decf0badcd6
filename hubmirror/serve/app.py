"""The ASGI application: route on the raw path, check access, call the endpoint, map errors; and ``run``."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import HubMirrorError
from . import reads
from .catalog import Catalog
from .http import HubHTTPError, check_token, gated_refusal, require_write, translate
from .page import index_page
from .routing import Route, route
from .writes import Writer

logger = logging.getLogger(__name__)

WRITE_ENDPOINTS = ("create_repo", "preupload", "commit", "lfs_batch", "lfs_upload", "lfs_verify")


class HubApp:
    """Hub-compatible HTTP API over one store."""

    def __init__(self, home: Path, token: str | None = None) -> None:
        self.catalog = Catalog(home)
        self.token = token
        self.writer = Writer(self.catalog, token) if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        authorized = False
        try:
            r = route(scope_raw_path(request))
            if r.endpoint in WRITE_ENDPOINTS and self.writer is None:
                raise HubHTTPError(403, "this mirror accepts no pushes: set serve.token in its config to enable them")
            authorized = check_token(request, self.token)
            response = await self._dispatch(request, r, authorized)
        except HubHTTPError as exc:
            response = exc.response()
        except HubMirrorError as exc:
            response = translate(exc, authorized=authorized).response()
        await response(scope, receive, send)

    async def _dispatch(self, request: Request, r: Route, authorized: bool) -> Response:
        method = request.method
        catalog = self.catalog
        if r.endpoint == "index_page" and method == "GET":
            return index_page(catalog, authorized)
        if r.endpoint == "list" and method == "GET":
            return reads.listing(request, catalog, r.repo_type, authorized)
        if r.endpoint == "whoami" and method == "GET":
            if not authorized:
                raise HubHTTPError(401, "Invalid user token")
            return reads.whoami()
        if r.endpoint == "validate_yaml" and method == "POST":
            return await reads.validate_yaml(request)
        if r.endpoint in WRITE_ENDPOINTS:
            return await self._write(request, r, authorized)
        if r.endpoint in ("repo_info", "tree", "paths_info", "resolve") and method in ("GET", "HEAD", "POST"):
            snapshot = catalog.snapshot(r.repo_type, r.repo_id, r.revision or "main", authorized=authorized)
            if r.endpoint == "repo_info":
                return reads.repo_info(request, catalog, snapshot)
            if r.endpoint == "tree":
                return reads.tree(request, snapshot, r.path)
            if r.endpoint == "paths_info":
                return await reads.paths_info(request, snapshot)
            if snapshot.repo.gated and not authorized:  # metadata is public, files are not
                raise gated_refusal(snapshot.repo, authenticated=False)
            return reads.resolve_file(request, catalog, snapshot, r.path)
        if r.endpoint == "refs" and method == "GET":
            return reads.refs(catalog, catalog.repo(r.repo_type, r.repo_id, authorized=authorized))
        raise HubHTTPError(404, f"no such endpoint: {method} {request.url.path}")

    async def _write(self, request: Request, r: Route, authorized: bool) -> Response:
        writer = self.writer
        if r.endpoint == "lfs_upload" and writer is not None:  # signed URL, no token (as the Hub's CDN)
            return await writer.lfs_upload(request, r.revision or "", r.path)
        if r.endpoint == "lfs_verify" and writer is not None:
            return await writer.lfs_verify(request, r.revision or "")
        require_write(request, self.token)
        assert writer is not None
        if r.endpoint == "create_repo":
            return await writer.create_repo(request)
        repo = self.catalog.repo(r.repo_type, r.repo_id, authorized=authorized)
        if r.endpoint == "lfs_batch":
            return await writer.lfs_batch(request)
        if r.endpoint == "preupload":
            return await writer.preupload(request, repo, r.revision or "main")
        return await writer.commit(request, repo, r.revision or "main")


def scope_raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.scope["path"]


def create_app(home: Path, token: str | None = None) -> HubApp:
    return HubApp(home, token)


def run(home: Path, host: str, port: int, token: str | None = None, log_level: str = "info") -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    import uvicorn

    logger.info(
        "serving %s on http://%s:%d (pushes %s)", home, host, port, "enabled" if token else "disabled: no serve.token"
    )
    uvicorn.run(
        create_app(home, token),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_keep_alive=30,
    )


class BackgroundServer:
    """uvicorn in a thread, for ``hubmirror run`` (signals stay with the main thread)."""

    def __init__(self, home: Path, host: str, port: int, token: str | None = None) -> None:
        import uvicorn

        config = uvicorn.Config(
            create_app(home, token),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
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
