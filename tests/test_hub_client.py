"""Fast tier: the upstream client's own logic through its ``transport=`` seam (``httpx2.MockTransport``).

These run in milliseconds and pin down parsing, retries, redirects and error translation. They are for speed
only: the evidence that hubmirror speaks the Hub's protocol is the loopback tests against ``tests/hubserver.py``
and the real ``huggingface_hub`` client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx2
import pytest

from hubmirror.errors import (
    AccessDeniedError,
    EntryNotFoundError,
    GatedRepoError,
    Interrupted,
    RepoNotFoundError,
    RevisionNotFoundError,
    UpstreamProtocolError,
    UpstreamUnavailableError,
    UpstreamUnreachableError,
)
from hubmirror.hub import UpstreamClient

SHA = "a" * 40
ENDPOINT = "https://hub.test"


def client(handler: Callable[[httpx2.Request], httpx2.Response], **kw) -> UpstreamClient:
    kw.setdefault("backoff", 0.001)
    return UpstreamClient(ENDPOINT, kw.pop("token", "secret"), transport=httpx2.MockTransport(handler), **kw)


def info(**extra) -> httpx2.Response:
    return httpx2.Response(200, json={"id": "org/m", "sha": SHA, **extra})


@pytest.mark.parametrize(
    ("body", "private", "gated"),
    [
        ({}, False, None),
        ({"private": True}, True, None),
        ({"gated": "auto"}, False, "auto"),
        ({"gated": "manual", "private": False}, False, "manual"),
        ({"gated": False}, False, None),
        ({"gated": "something-new"}, False, "manual"),
        ({"private": "yes"}, True, None),
    ],
)
def test_revision_info_reads_the_flags_failing_closed(body: dict, private: bool, gated: str | None) -> None:
    with client(lambda r: info(**body)) as c:
        got = c.revision_info("model", "org/m", "main")
    assert (got.sha, got.private, got.gated) == (SHA, private, gated)


def test_the_token_goes_only_to_the_endpoints_origin() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "hub.test":
            return httpx2.Response(302, headers={"location": "https://cdn.test/blob"})
        return httpx2.Response(200, content=b"x")

    with client(handler) as c:
        response, _ = c.get_following(f"{ENDPOINT}/org/m/resolve/main/f", what="f")
    assert response.status_code == 200
    assert seen == [("hub.test", "Bearer secret"), ("cdn.test", None)]


def test_a_rename_redirect_names_the_canonical_repo() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if "/old/" in request.url.path:
            return httpx2.Response(307, headers={"location": "/api/models/new/name/revision/main"})
        return httpx2.Response(200, json={"sha": SHA})

    with client(handler) as c:
        assert c.revision_info("model", "old/name", "main").repo_id == "new/name"


@pytest.mark.parametrize("bad", ["../../etc", "a/b/c", "x" * 200, "name with space", "org/..", "-x/y"])
def test_a_hostile_canonical_name_is_refused(bad: str) -> None:
    with (
        client(lambda r: httpx2.Response(200, json={"id": bad, "sha": SHA})) as c,
        pytest.raises(UpstreamProtocolError),
    ):
        c.revision_info("model", "org/m", "main")


def test_retries_5xx_then_succeeds_and_counts_requests() -> None:
    answers = iter([httpx2.Response(503), httpx2.Response(502), info()])
    with client(lambda r: next(answers)) as c:
        assert c.revision_info("model", "org/m", "main").sha == SHA
        assert c.requests == 3


def test_gives_up_after_max_retries_with_the_last_status() -> None:
    with (
        client(lambda r: httpx2.Response(500), max_retries=2) as c,
        pytest.raises(UpstreamUnavailableError, match="HTTP 500, after 3 attempts"),
    ):
        c.revision_info("model", "org/m", "main")


def test_a_429_pauses_for_retry_after() -> None:
    answers = iter([httpx2.Response(429, headers={"retry-after": "0"}), info()])
    with client(lambda r: next(answers)) as c:
        assert c.revision_info("model", "org/m", "main").sha == SHA


def test_never_reached_fails_fast_but_later_connection_errors_are_retried() -> None:
    calls = {"n": 0}

    def refused(request: httpx2.Request) -> httpx2.Response:
        calls["n"] += 1
        raise httpx2.ConnectError("[Errno 111] Connection refused")

    with client(refused, max_retries=8) as c, pytest.raises(UpstreamUnreachableError, match="connection refused"):
        c.revision_info("model", "org/m", "main")
    assert calls["n"] == 2  # not 9: a host that never answered is not asked eight more times

    answers: list[object] = [info(), httpx2.ConnectError("reset"), httpx2.ConnectError("reset"), info()]

    def flaky(request: httpx2.Request) -> httpx2.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    with client(flaky, max_retries=8) as c:
        c.revision_info("model", "org/m", "main")
        assert c.revision_info("model", "org/m", "main").sha == SHA  # retried after reaching upstream once


def test_dns_failures_are_named() -> None:
    def no_dns(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno -2] Name or service not known")

    with client(no_dns) as c, pytest.raises(UpstreamUnreachableError, match="DNS lookup failed"):
        c.revision_info("model", "org/m", "main")


def test_a_stop_ends_a_retry_wait_at_once() -> None:
    stop = threading.Event()
    stop.set()
    with (
        client(lambda r: httpx2.Response(503, headers={"retry-after": "30"}), stop=stop) as c,
        pytest.raises(Interrupted),
    ):
        c.revision_info("model", "org/m", "main")


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (401, "RepoNotFound", RepoNotFoundError),
        (404, "RepoNotFound", RepoNotFoundError),
        (401, None, RepoNotFoundError),
        (404, "RevisionNotFound", RevisionNotFoundError),
        (404, "EntryNotFound", EntryNotFoundError),
        (403, "GatedRepo", GatedRepoError),
        (403, None, AccessDeniedError),
        (404, None, RepoNotFoundError),
    ],
)
def test_error_answers_become_our_classes(status: int, code: str | None, error: type[Exception]) -> None:
    headers = {"x-error-code": code} if code else {}
    with client(lambda r: httpx2.Response(status, headers=headers, json={"error": "no"})) as c, pytest.raises(error):
        c.revision_info("model", "org/m", "main")


def test_tree_listing_follows_pages_and_checks_every_entry() -> None:
    pages = {
        "/api/models/org/m/tree/main": (
            [
                {"type": "file", "path": "a.txt", "size": 1, "oid": "b" * 40},
                {"type": "directory", "path": "d", "oid": "c" * 40},
            ],
            {"link": f'<{ENDPOINT}/api/models/org/m/tree/main?cursor=2>; rel="next"'},
        ),
        "/api/models/org/m/tree/main?cursor=2": (
            [
                {
                    "type": "file",
                    "path": "d/w.bin",
                    "size": 9,
                    "oid": "d" * 40,
                    "lfs": {"oid": "e" * 64, "size": 9, "pointerSize": 130},
                }
            ],
            {},
        ),
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        key = request.url.path + (f"?{request.url.query.decode()}" if b"cursor" in request.url.query else "")
        body, headers = pages[key]
        return httpx2.Response(200, json=body, headers=headers)

    with client(handler) as c:
        entries = c.list_tree("model", "org/m", "main")
    assert [(e.path, e.is_lfs) for e in entries] == [("a.txt", False), ("d/w.bin", True)]


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "file", "path": "x", "size": -1, "oid": "b" * 40},
        {"type": "file", "path": "x", "size": 1, "oid": "../../etc/passwd"},
        {"type": "file", "path": "x", "size": 1, "oid": "b" * 40, "lfs": {"oid": "not-hex"}},
        {"type": "file", "path": "x", "size": "big", "oid": "b" * 40},
        ["not", "an", "object"],
        {"type": "file", "size": 1},
    ],
)
def test_malformed_tree_entries_are_protocol_errors(entry: object) -> None:
    with (
        client(lambda r: httpx2.Response(200, content=json.dumps([entry]).encode())) as c,
        pytest.raises(UpstreamProtocolError),
    ):
        c.list_tree("model", "org/m", "main")


def test_invalid_json_is_a_protocol_error() -> None:
    with client(lambda r: httpx2.Response(200, content=b"<html>")) as c, pytest.raises(UpstreamProtocolError):
        c.revision_info("model", "org/m", "main")
