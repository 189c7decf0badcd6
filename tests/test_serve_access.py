"""Who may do what through ``hubmirror serve``: the admin token, ``serve.users`` with write patterns and
``read_private``, ``serve.anonymous``; mirrors are read-only; a branch pushed here is never moved by sync
(exit 11); upload URLs expire; the access log names callers and never tokens; 500s are logged.

One upstream, one synced home, one server per configuration, the real ``huggingface_hub`` client where a
client would be used.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import run_cli, write_config
from hubserver import HubServer, make_small_files
from servekit import ServeProcess, hf_client

pytestmark = pytest.mark.timeout(240)

ADMIN, CI, READER = "admin-secret", "ci-secret", "reader-secret"
MIRRORED = "org/upstream-model"
USERS = [
    {"name": "ci-bot", "token": CI, "write": ["team/*"]},
    {"name": "auditor", "token": READER, "read_private": True},
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("access")
    with HubServer(root / "upstream") as up:
        up.commit(MIRRORED, {"config.json": b'{"a": 1}', **make_small_files(3, seed=1)})
        config = write_config(
            root / "hubmirror.yaml",
            up.url,
            root / "home",
            [{"repo": MIRRORED}],
            serve={"token": ADMIN, "users": USERS, "access_log": True},
        )
        r = run_cli("-c", str(config), "sync")
        assert r.returncode == 0, r.stdout + r.stderr
        yield {"root": root, "config": config, "upstream": up}


@pytest.fixture(scope="module")
def server(site: dict[str, Any]) -> Iterator[ServeProcess]:
    with ServeProcess(site["config"], site["root"] / "serve.log") as proc:
        yield proc


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client(server: ServeProcess, tmp_path: Path, code: str) -> Any:
    r = hf_client(code, server.url, tmp_path / "hf-cache")
    assert r.ok, r
    return r.result


def test_users_write_where_their_patterns_allow_and_whoami_names_them(server: ServeProcess, tmp_path: Path) -> None:
    result = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        def attempt(call):
            try:
                return ["ok", call()]
            except Exception as exc:
                return [type(exc).__name__, getattr(getattr(exc, "response", None), "status_code", None)]
        ci, reader = HfApi(token={CI!r}), HfApi(token={READER!r})
        result = {{
            "whoami": [ci.whoami()["name"], reader.whoami()["name"], HfApi(token={ADMIN!r}).whoami()["name"]],
            "ci_create_team": attempt(lambda: str(ci.create_repo("team/private-run", private=True))),
            "ci_upload": attempt(lambda: ci.upload_file(path_or_fileobj=b"w", path_in_repo="w.txt",
                                                        repo_id="team/private-run").oid),
            "ci_create_other": attempt(lambda: str(ci.create_repo("other/run"))),
            "reader_create": attempt(lambda: str(reader.create_repo("team/nope"))),
            "reader_sees_private": attempt(lambda: reader.model_info("team/private-run").private),
            "ci_sees_its_private": attempt(lambda: ci.model_info("team/private-run").private),
            "anon_sees_private": attempt(lambda: HfApi(token=False).model_info("team/private-run").id),
        }}
    """,
    )
    assert result["whoami"] == ["ci-bot", "auditor", "admin"]
    assert result["ci_create_team"][0] == "ok" and result["ci_upload"][0] == "ok"
    assert result["ci_create_other"][1] == 403 and result["reader_create"][1] == 403
    assert result["reader_sees_private"] == ["ok", True] and result["ci_sees_its_private"] == ["ok", True]
    assert result["anon_sees_private"][0] == "RepositoryNotFoundError"


def test_a_push_without_a_namespace_lands_under_the_callers_name(server: ServeProcess, tmp_path: Path) -> None:
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        made = http.post("/api/repos/create", json={"name": "dummy-model"}, headers=bearer(CI))
        assert made.status_code == 403  # ci-bot may write team/* only, not ci-bot/*
        made = http.post("/api/repos/create", json={"name": "dummy-model"}, headers=bearer(ADMIN))
        assert made.status_code == 200 and made.json()["url"].endswith("/admin/dummy-model")


def test_a_mirror_is_read_only_and_says_where_to_push(
    server: ServeProcess, site: dict[str, Any], tmp_path: Path
) -> None:
    result = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        try:
            HfApi(token={ADMIN!r}).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id={MIRRORED!r})
            result = "accepted"
        except Exception as exc:
            result = [type(exc).__name__, exc.response.status_code, str(exc)]
    """,
    )
    assert result[1] == 403, result
    assert "mirror of upstream" in result[2] and site["upstream"].url in result[2] and "hubmirror push" in result[2]
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        batch = http.post(
            f"/{MIRRORED}.git/info/lfs/objects/batch",
            headers=bearer(ADMIN),
            json={"operation": "upload", "objects": [{"oid": "a" * 64, "size": 1}]},
        )
        assert batch.status_code == 403


def test_anonymous_reads_can_be_switched_off(site: dict[str, Any], tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "closed.yaml",
        site["upstream"].url,
        site["root"] / "home",
        [{"repo": MIRRORED}],
        serve={"token": ADMIN, "users": USERS, "anonymous": False},
    )
    with ServeProcess(config, tmp_path / "closed.log") as closed, httpx2.Client(base_url=closed.url) as http:
        for path in (f"/api/models/{MIRRORED}", f"/{MIRRORED}/resolve/main/config.json", "/api/models"):
            assert http.get(path).status_code == 401, path
            assert http.get(path, headers=bearer(READER)).status_code == 200, path


def test_a_branch_pushed_here_is_never_moved_by_sync(site: dict[str, Any], tmp_path: Path) -> None:
    """A local repo that later appears under repos: (or any ref whose commit was pushed here) diverges from
    upstream: sync keeps the local commit and says so with exit 11."""
    up = site["upstream"]
    home = tmp_path / "home"
    config = write_config(tmp_path / "c.yaml", up.url, home, [], serve={"token": ADMIN})
    with ServeProcess(config, tmp_path / "s.log") as proc:
        pushed = client(
            proc,
            tmp_path,
            f"""
            from huggingface_hub import HfApi
            api = HfApi(token={ADMIN!r})
            api.create_repo("team/shared")
            result = api.upload_file(path_or_fileobj=b"local work", path_in_repo="local.txt",
                                     repo_id="team/shared").oid
        """,
        )
    up.commit("team/shared", {"upstream.txt": b"upstream work"})
    config = write_config(tmp_path / "c.yaml", up.url, home, [{"repo": "team/shared"}], serve={"token": ADMIN})
    r = run_cli("-c", str(config), "sync", "--json")
    assert r.returncode == 11, r.stdout + r.stderr
    failure = json.loads(r.stdout)["results"][0]
    assert failure["error_type"] == "RefDivergedError" and pushed[:12] in failure["error"]
    status = json.loads(run_cli("-c", str(config), "status", "--json").stdout)
    assert next(x for x in status["repos"] if x["name"] == "team/shared")["refs"]["main"] == pushed
    r = run_cli("-c", str(config), "resolve", "team/shared", "local.txt")
    assert r.returncode == 0 and Path(r.stdout.strip()).read_bytes() == b"local work"


def test_upload_urls_expire_and_cannot_be_altered(
    site: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process server (real HTTP on loopback) whose URLs are born expired."""
    from prockit import free_port

    import hubmirror.serve.lfs as lfs
    from hubmirror.config import load_config
    from hubmirror.serve import BackgroundServer, ServeSettings

    home = tmp_path / "home"
    config = write_config(tmp_path / "c.yaml", site["upstream"].url, home, [], serve={"token": ADMIN})
    assert run_cli("-c", str(config), "import-hf-cache", str(tmp_path)).returncode == 0  # an empty store
    port = free_port()
    server = BackgroundServer(home, "127.0.0.1", port, ServeSettings.from_config(load_config(config)))
    server.start()
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert (
                http.post(
                    "/api/repos/create", json={"name": "up", "organization": "team"}, headers=bearer(ADMIN)
                ).status_code
                == 200
            )
            data = b"payload"
            import hashlib

            oid = hashlib.sha256(data).hexdigest()

            def href() -> str:
                batch = http.post(
                    "/team/up.git/info/lfs/objects/batch",
                    headers=bearer(ADMIN),
                    json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
                )
                return batch.json()["objects"][0]["actions"]["upload"]["href"]

            fresh = href()
            tampered = fresh.replace(f"/{len(data)}?", f"/{len(data) + 1}?")
            assert http.put(tampered, content=data + b"!").status_code == 403
            monkeypatch.setattr(lfs, "URL_LIFETIME", -10)
            expired = http.put(href(), content=data)
            assert expired.status_code == 403 and "expired" in expired.json()["error"]
            assert http.put(fresh, content=data).status_code == 200
    finally:
        server.stop()


def test_the_access_log_names_callers_and_never_tokens_and_500s_are_logged(
    server: ServeProcess, site: dict[str, Any]
) -> None:
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        assert http.get(f"/api/models/{MIRRORED}", headers=bearer(READER)).status_code == 200
        assert http.get("/api/models/x/y", headers=bearer("wrong-token-abc")).status_code == 401
        # a blob gone from the store: a 500 the server names, logged with the request
        status = json.loads(run_cli("-c", str(site["config"]), "status", "--json").stdout)
        sha = next(r for r in status["repos"] if r["name"] == MIRRORED)["refs"]["main"]
        config_blob = _blob_of(site, MIRRORED, sha, "config.json")
        config_blob.rename(config_blob.with_suffix(".moved"))
        try:
            assert http.get(f"/{MIRRORED}/resolve/main/config.json").status_code == 500
        finally:
            config_blob.with_suffix(".moved").rename(config_blob)
    log = server.log()
    assert f'"GET /api/models/{MIRRORED}" 200' in log and "auditor" in log
    assert f"GET /{MIRRORED}/resolve/main/config.json" in log and "500" in log
    for secret in (ADMIN, CI, READER, "wrong-token-abc", "sig="):
        assert secret not in log
    assert "Traceback" not in log


def _blob_of(site: dict[str, Any], repo: str, commit: str, path: str) -> Path:
    import sqlite3

    home = site["root"] / "home"
    with sqlite3.connect(f"file:{home / 'index.sqlite'}?mode=ro", uri=True) as db:
        (sha,) = db.execute(
            "SELECT f.sha256 FROM files f JOIN repos r ON r.id = f.repo_id WHERE r.name = ? AND "
            "f.commit_sha = ? AND f.path = ?",
            (repo, commit, path),
        ).fetchone()
    return home / "blobs" / "sha256" / sha[:2] / sha


def test_no_one_can_commit_an_object_they_could_not_read(server: ServeProcess, tmp_path: Path) -> None:
    """The LFS batch API is no oracle, and a commit cannot borrow a private repo's object by its oid."""
    secret = os.urandom(40_000)
    oid = hashlib.sha256(secret).hexdigest()
    client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        api = HfApi(token={ADMIN!r})
        api.create_repo("vault/model", private=True)
        result = api.upload_file(path_or_fileobj={secret!r}, path_in_repo="weights.bin", repo_id="vault/model").oid
    """,
    )
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        assert (
            http.post(
                "/api/repos/create", json={"name": "thief", "organization": "team"}, headers=bearer(CI)
            ).status_code
            == 200
        )
        batch = http.post(
            "/team/thief.git/info/lfs/objects/batch",
            headers=bearer(CI),
            json={"operation": "upload", "objects": [{"oid": oid, "size": len(secret)}]},
        )
        assert "actions" in batch.json()["objects"][0], "the batch API told ci-bot the object exists"
        line = {"key": "lfsFile", "value": {"path": "stolen.bin", "algo": "sha256", "oid": oid, "size": len(secret)}}
        body = json.dumps({"key": "header", "value": {"summary": "s"}}) + "\n" + json.dumps(line)
        stolen = http.post(
            "/api/models/team/thief/commit/main",
            content=body,
            headers={**bearer(CI), "Content-Type": "application/x-ndjson"},
        )
        assert stolen.status_code == 422, stolen.text
        assert http.get("/team/thief/resolve/main/stolen.bin", headers=bearer(CI)).status_code == 404
        # the admin, who may read the vault, may reuse it without uploading again
        batch = http.post(
            "/team/thief.git/info/lfs/objects/batch",
            headers=bearer(ADMIN),
            json={"operation": "upload", "objects": [{"oid": oid, "size": len(secret)}]},
        )
        assert "actions" not in batch.json()["objects"][0]


def test_a_1_gb_upload_does_not_stall_readers(server: ServeProcess, site: dict[str, Any]) -> None:
    """Hashing and writing an upload happen off the event loop: HEAD requests keep being answered."""
    size, block = 1024**3, os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    for _ in range(size // len(block)):
        digest.update(block)
    oid = digest.hexdigest()
    with httpx2.Client(base_url=server.url, timeout=120) as http:
        assert (
            http.post("/api/repos/create", json={"name": "big", "organization": "team"}, headers=bearer(CI)).status_code
            == 200
        )
        batch = http.post(
            "/team/big.git/info/lfs/objects/batch",
            headers=bearer(CI),
            json={"operation": "upload", "objects": [{"oid": oid, "size": size}]},
        )
        href = batch.json()["objects"][0]["actions"]["upload"]["href"]
        latencies: list[float] = []
        done = threading.Event()

        def heads() -> None:
            with httpx2.Client(base_url=server.url, timeout=30) as reader:
                while not done.is_set():
                    started = time.perf_counter()
                    assert reader.head(f"/{MIRRORED}/resolve/main/config.json").status_code == 200
                    latencies.append(time.perf_counter() - started)
                    time.sleep(0.005)

        def body() -> Iterator[bytes]:
            for _ in range(size // len(block)):
                yield block

        thread = threading.Thread(target=heads)
        thread.start()
        try:
            put = httpx2.put(href, content=body(), timeout=300)
        finally:
            done.set()
            thread.join(timeout=60)
        assert put.status_code == 200, put.text
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95)]
    print(f"HEAD p95 during a 1 GiB upload: {p95 * 1000:.1f} ms over {len(latencies)} requests")
    assert len(latencies) > 20
    assert p95 < 0.25, f"HEAD p95 {p95 * 1000:.0f} ms: the upload blocks the event loop"
    blob = site["root"] / "home" / "blobs" / "sha256" / oid[:2] / oid
    assert blob.stat().st_size == size
