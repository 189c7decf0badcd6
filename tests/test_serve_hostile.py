"""A hostile client against ``hubmirror serve``: every request below gets a 4xx within a second, while a
reader keeps downloading a file and getting the right bytes; afterwards the store verifies clean and the
server never held more than 300 MB.

Covered: traversal in every spelling, oversized and endless bodies, deep nesting, YAML alias bombs (in
validate-yaml and in a pushed README that repo info and listings then serve), malformed NDJSON commits,
preupload and LFS batch bodies, bad names and paths (``x`` beside ``x/y``, names over 255 bytes, ``.git/``),
forged and altered upload URLs, unknown tokens, wrong methods.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import run_cli, write_config
from hubserver import HubServer
from servekit import ServeProcess

pytestmark = pytest.mark.timeout(300)

TOKEN = "hostile-test-admin"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BIG = os.urandom(5 * 1024 * 1024)
BOMB = (
    b"---\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]"
    b"\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,"
    b"*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n---\n# a model card that expands to a billion values\n"
)


def ndjson(*lines: Any) -> bytes:
    return b"\n".join(json.dumps(line).encode() if not isinstance(line, bytes) else line for line in lines)


HEADER = {"key": "header", "value": {"summary": "hostile", "description": ""}}


def file_op(path: str, data: bytes = b"x") -> dict[str, Any]:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


def hostile_requests() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(label, method, raw path, httpx2 request kwargs): every one must be answered 4xx within 1 s."""
    json_h = {"Content-Type": "application/json"}
    nd = {**AUTH, "Content-Type": "application/x-ndjson"}
    commit = "/api/models/me/target/commit/main"
    cases: list[tuple[str, str, str, dict[str, Any]]] = []
    for spelling in (
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/%2e%2e/etc/passwd",
        "a/../../x",
        "..\\..\\etc\\passwd",
        "a%00b",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "a//b",
        "x" * 5000,
    ):
        cases.append((f"resolve {spelling[:20]}", "GET", f"/org/data/resolve/main/{spelling}", {}))
    cases += [
        ("repo id traversal", "GET", "/api/models/../../etc", {}),
        ("repo id encoded traversal", "GET", "/api/models/%2e%2e/%2e%2e", {}),
        ("revision NUL", "GET", "/api/models/org/data/revision/ma%00in", {}),
        ("revision huge", "GET", f"/api/models/org/data/revision/{'r' * 3000}", {}),
        ("tree traversal", "GET", "/api/models/org/data/tree/main/..%2F..", {}),
        ("tree cursor not a number", "GET", "/api/models/org/data/tree/main?cursor=abc", {}),
        ("tree cursor huge", "GET", "/api/models/org/data/tree/main?cursor=" + "9" * 40, {}),
        ("unknown endpoint", "GET", "/api/unknown/thing", {}),
        ("wrong method", "DELETE", "/api/models/org/data", {}),
        ("unknown token", "GET", "/api/models/org/data", {"headers": {"Authorization": "Bearer not-a-token"}}),
        ("basic auth", "GET", "/api/models/org/data", {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}}),
        ("huge token", "GET", "/api/models/org/data", {"headers": {"Authorization": "Bearer " + "t" * 8000}}),
        ("validate-yaml alias bomb", "POST", "/api/validate-yaml", {"json": {"content": BOMB.decode()}}),
        (
            "validate-yaml 10 MB",
            "POST",
            "/api/validate-yaml",
            {"content": b"{" + b" " * (10 * 1024 * 1024) + b"}", "headers": json_h},
        ),
        ("validate-yaml declared 1 GB", "POST", "/api/validate-yaml", {"raw_length": 1_000_000_000}),
        ("validate-yaml deep nesting", "POST", "/api/validate-yaml", {"content": b"[" * 200_000, "headers": json_h}),
        ("validate-yaml not an object", "POST", "/api/validate-yaml", {"json": [1, 2]}),
        ("create repo name null", "POST", "/api/repos/create", {"json": {"name": None}, "headers": AUTH}),
        ("create repo name traversal", "POST", "/api/repos/create", {"json": {"name": ".."}, "headers": AUTH}),
        ("create repo name with slash", "POST", "/api/repos/create", {"json": {"name": "a/b/c"}, "headers": AUTH}),
        ("create repo space", "POST", "/api/repos/create", {"json": {"name": "s", "type": "space"}, "headers": AUTH}),
        ("create repo body a list", "POST", "/api/repos/create", {"json": ["name"], "headers": AUTH}),
        ("create repo not JSON", "POST", "/api/repos/create", {"content": b"\xff\xfe", "headers": AUTH}),
        ("create repo anonymous", "POST", "/api/repos/create", {"json": {"name": "anon"}}),
        (
            "preupload size not a number",
            "POST",
            "/api/models/me/target/preupload/main",
            {"json": {"files": [{"path": "a", "size": "abc", "sample": ""}]}, "headers": AUTH},
        ),
        (
            "preupload files not a list",
            "POST",
            "/api/models/me/target/preupload/main",
            {"json": {"files": "a"}, "headers": AUTH},
        ),
        (
            "preupload item not an object",
            "POST",
            "/api/models/me/target/preupload/main",
            {"json": {"files": [7]}, "headers": AUTH},
        ),
        (
            "preupload sample not base64",
            "POST",
            "/api/models/me/target/preupload/main",
            {"json": {"files": [{"path": "a", "size": 1, "sample": "!!!"}]}, "headers": AUTH},
        ),
        (
            "lfs batch objects not objects",
            "POST",
            "/me/target.git/info/lfs/objects/batch",
            {"json": {"operation": "upload", "objects": 5}, "headers": AUTH},
        ),
        (
            "lfs batch download",
            "POST",
            "/me/target.git/info/lfs/objects/batch",
            {"json": {"operation": "download", "objects": []}, "headers": AUTH},
        ),
        (
            "lfs upload forged signature",
            "PUT",
            f"/lfs-upload/{'a' * 64}/1?caller=admin&exp=9999999999&sig=00",
            {"content": b"x"},
        ),
        ("lfs upload traversal oid", "PUT", "/lfs-upload/..%2F..%2Fx/1?sig=00", {"content": b"x"}),
        ("commit line is a list", "POST", commit, {"content": ndjson(HEADER, b"[1]"), "headers": nd}),
        (
            "commit header value a string",
            "POST",
            commit,
            {"content": ndjson({"key": "header", "value": "s"}), "headers": nd},
        ),
        ("commit without header", "POST", commit, {"content": ndjson(file_op("a")), "headers": nd}),
        (
            "commit empty summary",
            "POST",
            commit,
            {"content": ndjson({"key": "header", "value": {"summary": " "}}), "headers": nd},
        ),
        (
            "commit content a number",
            "POST",
            commit,
            {"content": ndjson(HEADER, {"key": "file", "value": {"path": "a", "content": 5}}), "headers": nd},
        ),
        (
            "commit content not base64",
            "POST",
            commit,
            {"content": ndjson(HEADER, {"key": "file", "value": {"path": "a", "content": "@@@"}}), "headers": nd},
        ),
        ("commit not JSON", "POST", commit, {"content": b"{nope\n", "headers": nd}),
        (
            "commit unknown op",
            "POST",
            commit,
            {"content": ndjson(HEADER, {"key": "chmod", "value": {"path": "a"}}), "headers": nd},
        ),
        (
            "commit x beside x/y",
            "POST",
            commit,
            {"content": ndjson(HEADER, file_op("x"), file_op("x/y")), "headers": nd},
        ),
        ("commit name over 255 bytes", "POST", commit, {"content": ndjson(HEADER, file_op("é" * 200)), "headers": nd}),
        ("commit .git path", "POST", commit, {"content": ndjson(HEADER, file_op(".git/config")), "headers": nd}),
        ("commit traversal path", "POST", commit, {"content": ndjson(HEADER, file_op("../x")), "headers": nd}),
        ("commit absolute path", "POST", commit, {"content": ndjson(HEADER, file_op("/etc/x")), "headers": nd}),
        (
            "commit lfs oid never uploaded",
            "POST",
            commit,
            {
                "content": ndjson(
                    HEADER,
                    {
                        "key": "lfsFile",
                        "value": {
                            "path": "w.bin",
                            "algo": "sha256",
                            "oid": hashlib.sha256(b"never uploaded").hexdigest(),
                            "size": 14,
                        },
                    },
                ),
                "headers": nd,
            },
        ),
        (
            "commit lfs bad oid",
            "POST",
            commit,
            {"content": ndjson(HEADER, {"key": "lfsFile", "value": {"path": "w.bin", "oid": "../x"}}), "headers": nd},
        ),
        (
            "commit delete missing",
            "POST",
            commit,
            {"content": ndjson(HEADER, {"key": "deletedFile", "value": {"path": "nope"}}), "headers": nd},
        ),
        (
            "commit bad parent",
            "POST",
            commit,
            {"content": ndjson({"key": "header", "value": {"summary": "s", "parentCommit": "zz"}}), "headers": nd},
        ),
        (
            "commit stale parent",
            "POST",
            commit,
            {"content": ndjson({"key": "header", "value": {"summary": "s", "parentCommit": "0" * 40}}), "headers": nd},
        ),
        ("commit declared 1 GB", "POST", commit, {"raw_length": 999_999_999, "headers": nd}),
        (
            "commit to a mirror",
            "POST",
            "/api/models/org/data/commit/main",
            {"content": ndjson(HEADER, file_op("a")), "headers": nd},
        ),
        (
            "paths-info 20k paths",
            "POST",
            "/api/models/org/data/paths-info/main",
            {
                "content": "&".join(f"paths=p{i}" for i in range(20_000)).encode(),
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
    ]
    return cases


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("hostile")
    with HubServer(root / "upstream") as up:
        up.commit("org/data", {"big.bin": BIG, "README.md": b"---\nlicense: mit\n---\n# data\n"})
        config = write_config(
            root / "hubmirror.yaml", up.url, root / "home", [{"repo": "org/data"}], serve={"token": TOKEN}
        )
        assert run_cli("-c", str(config), "sync").returncode == 0
    yield {"root": root, "config": config}


@pytest.fixture(scope="module")
def server(site: dict[str, Any]) -> Iterator[ServeProcess]:
    with ServeProcess(site["config"], site["root"] / "serve.log") as proc:
        made = httpx2.post(
            f"{proc.url}/api/repos/create", json={"name": "target", "organization": "me"}, headers=AUTH, timeout=30
        )
        assert made.status_code == 200, made.text
        yield proc


def raw_request(url: str, method: str, path: str, headers: dict[str, str], length: int) -> int:
    """A request that declares ``length`` bytes and sends a few (what no well-behaved client would do)."""
    host, port = url.removeprefix("http://").split(":")
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in headers.items()),
        "",
        "",
    ]
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall("\r\n".join(lines).encode() + b"{}")
        reply = sock.recv(4096).decode("latin-1")
    return int(reply.split(" ", 2)[1])


class Reader(threading.Thread):
    """Downloads the big file over and over, checking every byte."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.good, self.bad = url, threading.Event(), 0, []

    def run(self) -> None:
        with httpx2.Client(timeout=30) as http:
            while not self.stop.is_set():
                r = http.get(self.url)
                if r.status_code == 200 and r.content == BIG:
                    self.good += 1
                else:
                    self.bad.append((r.status_code, len(r.content)))


def test_every_hostile_request_gets_a_4xx_within_a_second_while_a_reader_gets_its_bytes(
    server: ServeProcess, site: dict[str, Any]
) -> None:
    cases = hostile_requests()
    assert len(cases) >= 40
    reader = Reader(f"{server.url}/org/data/resolve/main/big.bin")
    reader.start()
    slow, wrong = [], []
    try:
        with httpx2.Client(base_url=server.url, timeout=10) as http:
            for label, method, path, kwargs in cases:
                started = time.monotonic()
                text = ""
                if "raw_length" in kwargs:
                    status = raw_request(server.url, method, path, kwargs.get("headers", {}), kwargs["raw_length"])
                else:
                    try:
                        r = http.request(method, path, **kwargs)
                        status, text = r.status_code, r.text[:200]
                    except httpx2.RemoteProtocolError:  # the server closed an over-limit upload: also a refusal
                        status = 413
                took = time.monotonic() - started
                if not 400 <= status < 500:
                    wrong.append((label, status, text))
                if took > 1.0:
                    slow.append((label, round(took, 2)))
    finally:
        reader.stop.set()
        reader.join(timeout=30)
    assert not wrong, wrong
    assert not slow, slow
    assert reader.good > 0 and not reader.bad, (reader.good, reader.bad)
    log = server.log()
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]


def test_an_alias_bomb_in_a_pushed_readme_costs_nothing_to_readers(server: ServeProcess) -> None:
    body = ndjson(HEADER, file_op("README.md", BOMB))
    pushed = httpx2.post(
        f"{server.url}/api/models/me/target/commit/main",
        content=body,
        timeout=30,
        headers={**AUTH, "Content-Type": "application/x-ndjson"},
    )
    assert pushed.status_code == 200, pushed.text
    with httpx2.Client(base_url=server.url, timeout=10) as http:
        for path in ("/api/models/me/target", "/api/models?cardData=1&full=1", "/"):
            started = time.monotonic()
            r = http.get(path)
            assert r.status_code == 200 and time.monotonic() - started < 1.0, path
            assert len(r.content) < 200_000, (path, len(r.content))
        assert "cardData" not in http.get("/api/models/me/target").json()


def test_afterwards_the_store_verifies_and_the_server_stayed_small(server: ServeProcess, site: dict[str, Any]) -> None:
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    assert peak_kb < 300 * 1024, f"serve peaked at {peak_kb // 1024} MB"
    r = run_cli("-c", str(site["config"]), "verify")
    assert r.returncode == 0, r.stdout + r.stderr
