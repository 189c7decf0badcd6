"""Private and gated repos stay private through ``hubmirror serve``: in every route, for repos that
``hubmirror sync`` brought from a private or gated upstream repo and for repos pushed private through serve.

The fake upstream requires its token for ``org/private``; ``org/gated`` has public metadata and refuses
downloads without access. The mirror syncs both with the upstream token; serve runs with its own admin
token. Checked with raw HTTP (status and ``X-Error-Code``) and with the real ``huggingface_hub`` client
(the exception class it raises), and after upstream changes a repo's flags.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import run_cli, write_config
from hubserver import HubServer
from servekit import ServeProcess, hf_client

pytestmark = pytest.mark.timeout(240)

UP_TOKEN = "upstream-secret"
TOKEN = "serve-admin-token"
PUBLIC, PRIVATE, GATED, PUSHED = "org/public", "org/private", "org/gated", "me/pushed-secret"
CONFIG = b'{"hidden": 8}'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("privacy")
    with HubServer(root / "upstream", token=UP_TOKEN) as up:
        up.create_repo(PRIVATE, private=True)
        up.create_repo(GATED, gated=True)
        for repo in (PUBLIC, PRIVATE, GATED):
            up.commit(repo, {"config.json": CONFIG, "README.md": f"# {repo}\n".encode()})
        cfg = write_config(
            root / "hubmirror.yaml",
            up.url,
            root / "home",
            [{"repo": PUBLIC}, {"repo": PRIVATE}, {"repo": GATED}],
            upstream={"token": UP_TOKEN},
            serve={"token": TOKEN},
        )
        r = run_cli("-c", str(cfg), "sync")
        assert r.returncode == 0, r.stdout + r.stderr
        yield {"root": root, "config": cfg, "upstream": up}


@pytest.fixture(scope="module")
def server(site: dict[str, Any]) -> Iterator[ServeProcess]:
    with ServeProcess(site["config"], site["root"] / "serve.log") as proc:
        r = hf_client(
            f"""
            from huggingface_hub import HfApi
            api = HfApi(token={TOKEN!r})
            api.create_repo({PUSHED!r}, private=True)
            api.upload_file(path_or_fileobj={CONFIG!r}, path_in_repo="config.json", repo_id={PUSHED!r})
        """,
            proc.url,
            site["root"] / "push-cache",
        )
        assert r.ok, r
        yield proc
        log = proc.log()
        assert "Traceback" not in log, log[-3000:]


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def routes(repo: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every read route that names a repo: (method, path, request kwargs)."""
    return [
        ("GET", f"/api/models/{repo}", {}),
        ("GET", f"/api/models/{repo}/revision/main", {}),
        ("GET", f"/api/models/{repo}/tree/main?recursive=true", {}),
        ("POST", f"/api/models/{repo}/paths-info/main", {"data": {"paths": ["config.json"]}}),
        ("GET", f"/api/models/{repo}/refs", {}),
        ("HEAD", f"/{repo}/resolve/main/config.json", {}),
        ("GET", f"/{repo}/resolve/main/config.json", {}),
    ]


@pytest.mark.parametrize("repo", [PRIVATE, PUSHED])
def test_a_private_repo_answers_401_in_every_route_without_the_token_and_200_with_it(
    server: ServeProcess, repo: str
) -> None:
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        for method, path, kw in routes(repo):
            r = http.request(method, path, **kw)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers.get("x-error-code") == "RepoNotFound", (method, path)
            assert b"hidden" not in r.content, (method, path)
            ok = http.request(method, path, headers=admin(), **kw)
            assert ok.status_code == 200, (method, path, ok.status_code, ok.text[:300])
        assert http.get(f"/api/models/{repo}", headers=admin()).json()["private"] is True
        assert http.get(f"/{repo}/resolve/main/config.json", headers=admin()).content == CONFIG


@pytest.mark.parametrize("repo", [PRIVATE, PUSHED])
def test_a_private_repo_is_missing_from_listings_search_and_the_page_without_the_token(
    server: ServeProcess, repo: str
) -> None:
    name = repo.split("/")[1]
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        for query in ("", f"?search={name}", f"?author={repo.split('/')[0]}", "?full=true&cardData=true"):
            anon = [m["id"] for m in http.get(f"/api/models{query}").json()]
            assert repo not in anon, query
            assert repo in [m["id"] for m in http.get(f"/api/models{query}", headers=admin()).json()], query
        assert repo not in http.get("/").text
        assert repo in http.get("/", headers=admin()).text


def test_a_gated_repo_shows_its_metadata_and_refuses_its_files_without_the_token(server: ServeProcess) -> None:
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        info = http.get(f"/api/models/{GATED}")
        assert info.status_code == 200 and info.json()["gated"] == "auto" and info.json()["private"] is False
        assert http.get(f"/api/models/{GATED}/tree/main").status_code == 200
        assert GATED in [m["id"] for m in http.get("/api/models").json()]
        assert GATED in http.get("/").text
        for method in ("HEAD", "GET"):
            r = http.request(method, f"/{GATED}/resolve/main/config.json")
            assert r.status_code == 401 and r.headers["x-error-code"] == "GatedRepo", (method, r.status_code)
            assert b"hidden" not in r.content
            ok = http.request(method, f"/{GATED}/resolve/main/config.json", headers=admin())
            assert ok.status_code == 200
        assert http.get(f"/{GATED}/resolve/main/config.json", headers=admin()).content == CONFIG
        # the public repo needs nothing
        assert http.get(f"/{PUBLIC}/resolve/main/config.json").content == CONFIG


def test_a_token_the_server_does_not_know_gets_401_everywhere(server: ServeProcess) -> None:
    bad = {"Authorization": "Bearer hf_not_a_token_of_this_mirror"}
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        for method, path, kw in [*routes(PUBLIC), ("GET", "/api/models", {}), ("GET", "/api/whoami-v2", {})]:
            r = http.request(method, path, headers=bad, **kw)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["x-error-message"] == "Invalid credentials in Authorization header"
            assert b"hidden" not in r.content


def test_the_real_client_gets_the_hubs_errors_without_a_token_and_the_bytes_with_one(
    server: ServeProcess, tmp_path: Path
) -> None:
    r = hf_client(
        f"""
        from huggingface_hub import HfApi, hf_hub_download
        def attempt(call):
            try:
                return ["ok", call()]
            except Exception as exc:
                return [type(exc).__name__, [c.__name__ for c in type(exc).__mro__]]
        anon, owner = HfApi(token=False), HfApi(token={TOKEN!r})
        result = {{}}
        for repo in ({PRIVATE!r}, {PUSHED!r}, {GATED!r}):
            result[repo] = {{
                "info": attempt(lambda: anon.model_info(repo).gated),
                "download": attempt(lambda: hf_hub_download(repo, "config.json", token=False,
                                                             cache_dir={str(tmp_path)!r} + "/anon-" + repo.replace("/", "-"))),
                "files": attempt(lambda: anon.list_repo_files(repo)),
                "owner_download": open(hf_hub_download(repo, "config.json", token={TOKEN!r}), "rb").read().decode(),
                "owner_private": owner.model_info(repo).private,
            }}
    """,
        server.url,
        tmp_path / "hf-cache",
    )
    assert r.ok, r
    for repo in (PRIVATE, PUSHED):
        got = r.result[repo]
        for call in ("info", "download", "files"):
            assert "RepositoryNotFoundError" in got[call][1], (repo, call, got[call])
        assert got["owner_download"].encode() == CONFIG and got["owner_private"] is True
    gated = r.result[GATED]
    assert gated["info"] == ["ok", "auto"] and gated["files"][0] == "ok"
    assert "GatedRepoError" in gated["download"][1], gated["download"]
    assert gated["owner_download"].encode() == CONFIG and gated["owner_private"] is False


def test_flags_follow_upstream_on_every_sync_and_a_vanished_repo_is_hidden(tmp_path: Path) -> None:
    """Made private upstream → hidden at the next sync; public again → visible; deleted upstream (or no
    longer visible to our token) → hidden, failing closed. Also for a repo listed only by a commit sha."""
    with HubServer(tmp_path / "upstream", token=UP_TOKEN) as up:
        sha = up.commit("org/flip", {"config.json": CONFIG})
        up.commit("org/pinned", {"config.json": CONFIG})
        pinned = up.head("org/pinned")
        cfg = write_config(
            tmp_path / "hubmirror.yaml",
            up.url,
            tmp_path / "home",
            [{"repo": "org/flip"}, {"repo": "org/pinned", "revisions": [pinned]}],
            upstream={"token": UP_TOKEN},
            serve={"token": TOKEN},
        )

        def flags() -> dict[str, Any]:
            r = run_cli("-c", str(cfg), "status", "--json")
            assert r.returncode == 0, r.stderr
            return {repo["name"]: (repo["private"], repo["gated"]) for repo in json.loads(r.stdout)["repos"]}

        def sync() -> None:
            r = run_cli("-c", str(cfg), "sync")
            assert r.returncode == 0, r.stdout + r.stderr

        sync()
        assert flags() == {"org/flip": (False, None), "org/pinned": (False, None)}
        up.update_repo("org/flip", private=True)
        up.update_repo("org/pinned", gated=True)
        up.reset_log()
        sync()
        assert flags() == {"org/flip": (True, None), "org/pinned": (False, "auto")}
        assert up.count(path_contains="/tree/") == 0 and up.count(origin="cdn") == 0  # only flags changed
        with ServeProcess(cfg, tmp_path / "serve.log") as proc:
            assert httpx2.get(f"{proc.url}/api/models/org/flip").status_code == 401
            assert httpx2.get(f"{proc.url}/org/pinned/resolve/{pinned}/config.json").status_code == 401
        up.update_repo("org/flip", private=False)
        sync()
        assert flags()["org/flip"] == (False, None)
        up.delete_repo("org/flip")
        r = run_cli("-c", str(cfg), "sync")
        assert r.returncode == 5 and "org/flip" in r.stdout
        assert flags()["org/flip"] == (True, None), "a repo upstream no longer shows must not stay public"
        assert sha  # the mirrored commit itself is kept
        r = run_cli("-c", str(cfg), "resolve", "org/flip", "config.json")
        assert r.returncode == 0 and Path(r.stdout.strip()).read_bytes() == CONFIG
