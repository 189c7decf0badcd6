"""Pushes to ``hubmirror serve`` with the real ``huggingface_hub`` client (``HF_HUB_DISABLE_XET=1``).

One home (a dataset synced from the fake upstream, which is then stopped) and one ``hubmirror serve``
subprocess with ``serve.token`` per module; a second server without a token shows that writes are refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from conftest import run_cli
from servekit import DATASET, TOKEN, ServeProcess, Site, build_site, git_sha1, hf_client, read_tree, serve_site, sha256

pytestmark = pytest.mark.timeout(240)

CARD = b"---\nlicense: mit\npipeline_tag: text-classification\n---\n# pushed\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = build_site(tmp_path_factory.mktemp("serve-push"), minilm=False, many=0)
    site.upstream.stop()
    yield site


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[ServeProcess]:
    yield from serve_site(site)


def client(server: ServeProcess, tmp_path: Path, code: str, **kw):
    return hf_client(code, server.url, tmp_path / "hf-cache", **kw)


def write_tree(folder: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    return folder


def test_create_upload_delete_then_download_and_resolve_offline(
    site: Site, server: ServeProcess, tmp_path: Path
) -> None:
    files = {
        "README.md": CARD,
        "config.json": b'{"hidden_size": 8}\n',
        "sub/notes.txt": b"notes\n" * 100,
        "weights/small.bin": os.urandom(3000),  # binary → LFS
        "data/big.dat": os.urandom(11 * 1024 * 1024),  # > 10 MB → LFS
        "old.txt": b"to be deleted\n",
    }
    folder = write_tree(tmp_path / "folder", files)
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi, snapshot_download, hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError
        api = HfApi(token={TOKEN!r})
        url = api.create_repo("me/pushed")
        again = api.create_repo("me/pushed", exist_ok=True)
        try:
            api.create_repo("me/pushed")
            conflict = None
        except HfHubHTTPError as exc:
            conflict = exc.response.status_code
        first = api.upload_folder(folder_path={str(folder)!r}, repo_id="me/pushed", commit_message="first")
        second = api.delete_file("old.txt", repo_id="me/pushed")
        info = api.model_info("me/pushed", files_metadata=True)
        snap = snapshot_download("me/pushed")
        api.create_repo("me/pushed-data", repo_type="dataset")
        api.upload_file(path_or_fileobj=b"a,b\\n1,2\\n", path_in_repo="x.csv", repo_id="me/pushed-data",
                        repo_type="dataset")
        csv = open(hf_hub_download("me/pushed-data", "x.csv", repo_type="dataset"), "rb").read().decode()
        result = {{"url": str(url), "again": str(again), "conflict": conflict, "first": first.oid,
                  "second": second.oid, "sha": info.sha, "card": info.card_data.to_dict(), "snap": snap,
                  "siblings": {{s.rfilename: [s.size, s.blob_id, s.lfs.sha256 if s.lfs else None]
                               for s in info.siblings}},
                  "listed": [m.id for m in api.list_models(search="pushed")], "csv": csv}}
    """,
    )
    assert r.ok, r
    res = r.result
    assert res["url"] == res["again"] == f"{server.url}/me/pushed" and res["conflict"] == 409
    assert res["first"] != res["second"] and res["sha"] == res["second"]
    expected = {p: b for p, b in files.items() if p != "old.txt"}
    snap = Path(res["snap"])
    tree = read_tree(snap)  # a new repo starts, as on the Hub, with a .gitattributes sending binaries to LFS
    tree_gitattributes = tree.pop(".gitattributes")
    assert b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n" in tree_gitattributes
    assert snap.name == res["second"] and tree == expected
    assert sorted(res["siblings"]) == sorted([*expected, ".gitattributes"])
    res["siblings"].pop(".gitattributes")
    for path, (size, blob_id, lfs_sha) in res["siblings"].items():
        assert size == len(expected[path])
        if path in ("weights/small.bin", "data/big.dat"):
            assert lfs_sha == sha256(expected[path]), path
        else:
            assert lfs_sha is None and blob_id == git_sha1(expected[path]), path
    assert res["card"]["license"] == "mit" and res["listed"] == ["me/pushed"]
    assert res["csv"] == "a,b\n1,2\n"
    for data in expected.values():
        assert site.blob(data).read_bytes() == data
    # the push is an ordinary commit of the store: offline resolution sees it at once
    home = ["--home", str(site.home)]
    out = run_cli(*home, "resolve", "me/pushed", "data/big.dat", timeout=60)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).read_bytes() == files["data/big.dat"]
    out = run_cli(*home, "resolve", "me/pushed", timeout=60)
    resolved = read_tree(Path(out.stdout.strip()))
    assert out.returncode == 0 and resolved.pop(".gitattributes") == tree_gitattributes and resolved == expected
    out = run_cli(*home, "resolve", "me/pushed", "old.txt", "-r", res["first"], timeout=60)
    assert out.returncode == 0 and Path(out.stdout.strip()).read_bytes() == files["old.txt"]
    out = run_cli(*home, "resolve", "me/pushed", "old.txt", timeout=60)
    assert out.returncode == 4


def test_push_without_token_or_with_a_wrong_token_is_refused(site: Site, server: ServeProcess, tmp_path: Path) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        def attempt(token, call):
            try:
                call(HfApi(token=token))
                return None
            except Exception as exc:
                resp = getattr(exc, "response", None)
                return [type(exc).__name__, getattr(resp, "status_code", None), str(exc)]
        create = lambda api: api.create_repo("me/refused")
        upload = lambda api: api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id={DATASET!r},
                                             repo_type="dataset")
        result = {{"create_none": attempt(False, create), "create_wrong": attempt("wrong-token", create),
                  "upload_none": attempt(False, upload), "upload_wrong": attempt("wrong-token", upload)}}
        try:
            HfApi(token={TOKEN!r}).model_info("me/refused")
            result["created"] = True
        except Exception as exc:
            result["created"] = type(exc).__name__
        result["head"] = HfApi(token=False).dataset_info({DATASET!r}).sha
    """,
    )
    assert r.ok, r
    res = r.result
    for name in ("create_none", "upload_none"):
        assert res[name] is not None and res[name][1] == 401, res[name]
        assert "a token is required to push to this mirror" in res[name][2], res[name]
    for name in ("create_wrong", "upload_wrong"):
        assert res[name] is not None and res[name][1] == 401, res[name]
        assert "Invalid credentials in Authorization header" in res[name][2], res[name]
    assert res["created"] == "RepositoryNotFoundError"
    assert res["head"] == site.dataset_sha


def test_a_server_without_serve_token_refuses_writes_with_403(site: Site, tmp_path: Path) -> None:
    config = site.write_config("no-token.yaml")
    with ServeProcess(config, site.root / "serve-no-token.log") as plain:
        r = client(
            plain,
            tmp_path,
            f"""
            from huggingface_hub import HfApi
            def attempt(call):
                try:
                    call()
                    return None
                except Exception as exc:
                    resp = getattr(exc, "response", None)
                    return [type(exc).__name__, getattr(resp, "status_code", None), str(exc)]
            api = HfApi(token="any-token")
            result = {{"create": attempt(lambda: api.create_repo("me/never")),
                      "upload": attempt(lambda: api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt",
                                                                repo_id={DATASET!r}, repo_type="dataset")),
                      "read": HfApi(token=False).dataset_info({DATASET!r}).sha}}
        """,
        )
        lfs = httpx2.post(
            f"{plain.url}/datasets/{DATASET}.git/info/lfs/objects/batch",
            json={"operation": "upload", "objects": [{"oid": "0" * 64, "size": 1}]},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        log = plain.log()
    assert r.ok, r
    for name in ("create", "upload"):
        err = r.result[name]
        assert err is not None and err[1] == 403, err
        assert "this mirror accepts no pushes: set serve.token (or serve.users with write patterns)" in err[2], err
    assert r.result["read"] == site.dataset_sha  # reads still work
    assert lfs.status_code == 403 and "accepts no pushes" in lfs.json()["error"]
    assert "pushes disabled (no serve.token or writing user)" in log


def test_a_stale_parent_commit_gets_412(server: ServeProcess, tmp_path: Path) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import CommitOperationAdd, HfApi
        from huggingface_hub.errors import HfHubHTTPError
        api = HfApi(token={TOKEN!r})
        api.create_repo("me/race")
        one = api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id="me/race").oid
        two = api.upload_file(path_or_fileobj=b"2", path_in_repo="a.txt", repo_id="me/race").oid
        try:
            api.create_commit("me/race", [CommitOperationAdd("b.txt", b"b")], commit_message="late",
                              parent_commit=one)
            stale = None
        except HfHubHTTPError as exc:
            stale = [type(exc).__name__, exc.response.status_code, str(exc)]
        head = api.model_info("me/race").sha
        fresh = api.create_commit("me/race", [CommitOperationAdd("b.txt", b"b")], commit_message="on time",
                                  parent_commit=two).oid
        result = {{"one": one, "two": two, "stale": stale, "head": head, "fresh": fresh,
                  "files": sorted(api.list_repo_files("me/race"))}}
    """,
    )
    assert r.ok, r
    res = r.result
    assert res["stale"] is not None and res["stale"][1] == 412, res["stale"]
    assert "The branch was updated since you opened this page" in res["stale"][2]
    assert res["head"] == res["two"] and res["fresh"] not in (res["one"], res["two"])
    assert res["files"] == [".gitattributes", "a.txt", "b.txt"] or res["files"] == ["a.txt", "b.txt"]


def test_a_readme_with_broken_card_metadata_is_refused_before_any_commit(server: ServeProcess, tmp_path: Path) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        api = HfApi(token={TOKEN!r})
        api.create_repo("me/cards")
        head = api.model_info("me/cards").sha
        try:
            api.upload_file(path_or_fileobj=b"---\\nlicense: [mit\\n---\\n# x\\n", path_in_repo="README.md",
                            repo_id="me/cards")
            broken = None
        except ValueError as exc:
            broken = str(exc)
        ok = api.upload_file(path_or_fileobj=b"---\\nlicense: mit\\n---\\n# x\\n", path_in_repo="README.md",
                             repo_id="me/cards").oid
        result = {{"broken": broken, "head": head, "after": api.model_info("me/cards").sha, "ok": ok,
                  "card": api.model_info("me/cards").card_data.to_dict()}}
    """,
    )
    assert r.ok, r
    assert r.result["broken"] is not None and "Invalid metadata in README.md" in r.result["broken"]
    assert "not valid YAML" in r.result["broken"]
    assert r.result["after"] == r.result["ok"] != r.result["head"]
    assert r.result["card"] == {"license": "mit"}


def test_an_lfs_upload_with_wrong_bytes_is_rejected_and_not_stored(site: Site, server: ServeProcess) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    good = os.urandom(200_000)
    oid = hashlib.sha256(good).hexdigest()
    blob = site.blob(good)
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/api/repos/create", json={"name": "lfs-check", "organization": "me"}, headers=auth)
        assert r.status_code == 200, r.text
        head = http.get("/api/models/me/lfs-check", headers=auth).json()["sha"]
        batch = http.post(
            "/me/lfs-check.git/info/lfs/objects/batch",
            headers={**auth, "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"},
            content=json.dumps(
                {
                    "operation": "upload",
                    "transfers": ["basic", "multipart"],
                    "hash_algo": "sha256",
                    "objects": [{"oid": oid, "size": len(good)}],
                }
            ),
        )
        assert batch.status_code == 200, batch.text
        (obj,) = batch.json()["objects"]
        href, verify = obj["actions"]["upload"]["href"], obj["actions"]["verify"]["href"]
        assert href.startswith(server.url)
        tmp_before = sorted(os.listdir(site.home / "tmp"))

        wrong = bytearray(good)
        wrong[100_000] ^= 0xFF
        for payload in (bytes(wrong), good[:-1], good + b"x"):
            r = http.put(href, content=payload)  # no auth: the signed URL is the credential, as on the Hub
            assert r.status_code == 400, (r.status_code, r.text)
            assert oid in r.json()["error"] and not blob.exists()
        r = http.put(href.replace("sig=", "sig=0"), content=good)
        assert r.status_code == 403 and not blob.exists()
        assert http.post(verify, json={"oid": oid, "size": len(good)}).status_code == 404
        commit = "\n".join(
            json.dumps(x)
            for x in [
                {"key": "header", "value": {"summary": "uses a missing object", "description": ""}},
                {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(good)}},
            ]
        )
        r = http.post(
            "/api/models/me/lfs-check/commit/main",
            content=commit,
            headers={**auth, "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 422 and "never uploaded" in r.json()["error"]
        assert http.get("/api/models/me/lfs-check", headers=auth).json()["sha"] == head
        assert sorted(os.listdir(site.home / "tmp")) == tmp_before  # no partial upload left behind

        # the right bytes are accepted: stored, verified, and not asked for again
        assert http.put(href, content=good).status_code == 200
        assert blob.read_bytes() == good
        assert http.post(verify, json={"oid": oid, "size": len(good)}).status_code == 200
        again = http.post(
            "/me/lfs-check.git/info/lfs/objects/batch",
            headers=auth,
            json={"operation": "upload", "objects": [{"oid": oid, "size": len(good)}]},
        )
        assert "actions" not in again.json()["objects"][0]
        r = http.post(
            "/api/models/me/lfs-check/commit/main",
            content=commit,
            headers={**auth, "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 200, r.text
        assert http.get("/me/lfs-check/resolve/main/w.bin", headers=auth).content == good


def test_private_repos_are_invisible_without_the_token(server: ServeProcess, tmp_path: Path) -> None:
    secret = base64.b64encode(os.urandom(30))
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi, hf_hub_download
        owner = HfApi(token={TOKEN!r})
        owner.create_repo("me/secret", private=True)
        owner.upload_file(path_or_fileobj={secret!r}, path_in_repo="s.txt", repo_id="me/secret")
        def attempt(call):
            try:
                return ["ok", call()]
            except Exception as exc:
                return [type(exc).__name__, [c.__name__ for c in type(exc).__mro__]]
        anon = HfApi(token=False)
        result = {{
            "info": attempt(lambda: anon.model_info("me/secret").id),
            "download": attempt(lambda: hf_hub_download("me/secret", "s.txt", token=False)),
            "tree": attempt(lambda: list(anon.list_repo_tree("me/secret"))),
            "listed": [m.id for m in anon.list_models(author="me")],
            "owner_info": owner.model_info("me/secret").private,
            "owner_bytes": open(hf_hub_download("me/secret", "s.txt", token={TOKEN!r}), "rb").read().decode(),
            "owner_listed": [m.id for m in owner.list_models(author="me")],
        }}
    """,
    )
    assert r.ok, r
    res = r.result
    for name in ("info", "download", "tree"):
        assert "RepositoryNotFoundError" in res[name][1], (name, res[name])
    assert "me/secret" not in res["listed"] and "me/secret" in res["owner_listed"]
    assert res["owner_info"] is True and res["owner_bytes"].encode() == secret
    page = httpx2.get(server.url + "/").text
    assert "me/secret" not in page
    assert "me/secret" in httpx2.get(server.url + "/", headers={"Authorization": f"Bearer {TOKEN}"}).text


def test_server_log_has_no_tracebacks(server: ServeProcess) -> None:
    log = server.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-5000:]
