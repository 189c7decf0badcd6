"""The fake Hub (`tests/hubserver.py`) is faithful: the real huggingface_hub client (run in a subprocess with
HF_ENDPOINT pointing at it) is the oracle, plus direct httpx2 checks of the HTTP details."""

from __future__ import annotations

import filecmp
import gzip
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2
import pytest

try:
    from hubserver import HubServer, add_minilm, make_small_files, minilm_dir
    from hubserver_repos import git_blob_sha1, lfs_pointer
except ImportError:  # tests/ is a package
    from tests.hubserver import HubServer, add_minilm, make_small_files, minilm_dir
    from tests.hubserver_repos import git_blob_sha1, lfs_pointer

TOKEN = "hf_test_secret_token"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
DATASET = "org/ds"
DS_FILES = {
    "README.md": b"# a dataset\n",
    "data/train.csv": b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(2000)),
    "data/part-0.parquet": bytes(range(256)) * 64,
}

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = HubServer(tmp_path_factory.mktemp("hubroot"), token=TOKEN).start()
    server.minilm_sha = add_minilm(server, MINILM)
    server.create_repo(DATASET, repo_type="dataset")
    server.commit(DATASET, DS_FILES, repo_type="dataset")
    server.commit(DATASET, {"data/train.csv": b"pr,version\n"}, repo_type="dataset", branch="refs/pr/1")
    server.tag(DATASET, "v1", "main", repo_type="dataset")
    server.create_repo("org/private", private=True)
    server.commit("org/private", {"secret.txt": b"top secret\n"})
    server.create_repo("org/gated", gated=True)
    server.commit("org/gated", {"config.json": b'{"gated": true}\n'})
    server.create_repo("org/many")
    server.commit("org/many", make_small_files(60, seed=1))
    server.create_repo("org/old-name")
    server.commit("org/old-name", {"config.json": b'{"renamed": true}\n', "w.bin": b"\x00\x01" * 100})
    server.rename_repo("org/old-name", "org/new-name")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean(hub):
    hub.faults.clear()
    hub.page_size = 1000
    yield
    hub.faults.clear()
    hub.page_size = 1000


@pytest.fixture
def client():
    with httpx2.Client(timeout=10) as c:
        yield c


def run_hf(hub: HubServer, tmp_path: Path, code: str, timeout: float = 50) -> dict:
    """Run ``code`` with the real huggingface_hub pointed at ``hub``; it must print one JSON line last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_CACHE=str(tmp_path / "cache"),
        HF_HOME=str(tmp_path / "hfhome"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ============================================================================================ oracle tests
def test_snapshot_download_minilm_is_byte_identical(hub, tmp_path):
    hub.reset_log()
    out = run_hf(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import snapshot_download
        print(json.dumps({{"path": snapshot_download({MINILM!r})}}))
    """,
    )
    snap = Path(out["path"])
    assert snap.name == hub.minilm_sha
    expected = sorted(p.relative_to(minilm_dir()).as_posix() for p in minilm_dir().rglob("*") if p.is_file())
    got = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
    assert got == expected and "1_Pooling/config.json" in got and ".gitattributes" in got
    for rel in expected:
        assert filecmp.cmp(snap / rel, minilm_dir() / rel, shallow=False), rel
    blobs = snap.parent.parent / "blobs"
    sha256 = hub.file_entry(MINILM, "model.safetensors").blob.sha256
    assert (blobs / sha256).is_file()  # LFS blob named by sha256, regular files by git sha1
    assert (blobs / git_blob_sha1((minilm_dir() / "config.json").read_bytes())).is_file()
    cdn = [r for r in hub.requests if r.origin == "cdn" and r.method == "GET"]
    assert cdn and all("authorization" not in r.headers for r in cdn)
    assert hub.count("GET", "/resolve/", origin="api") >= len(expected) - 1
    tok = [r for r in hub.requests if r.method == "GET" and r.path.endswith("/tokenizer.json")]
    assert tok and "gzip" in tok[0].headers["accept-encoding"]  # answered gzip-encoded, client decoded it
    assert 0 < tok[0].bytes_sent < (minilm_dir() / "tokenizer.json").stat().st_size


def test_client_recovers_from_drop_and_503(hub, tmp_path):
    hub.reset_log()
    before = hub.faults.injected
    dropped_at = 25 * 1024 * 1024  # the client writes in 10 MiB chunks, so it resumes at 20 MiB
    hub.faults.once("drop", path_contains="/blobs/", after_bytes=dropped_at)
    hub.faults.once("503", path_contains="/resolve/main/config.json")
    out = run_hf(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import hf_hub_download
        print(json.dumps({{"w": hf_hub_download({MINILM!r}, "model.safetensors"),
                          "c": hf_hub_download({MINILM!r}, "config.json")}}))
    """,
    )
    assert filecmp.cmp(out["w"], minilm_dir() / "model.safetensors", shallow=False)
    assert filecmp.cmp(out["c"], minilm_dir() / "config.json", shallow=False)
    cdn = [r for r in hub.requests if r.origin == "cdn" and r.method == "GET"]
    assert [r.fault for r in cdn] == ["drop", None] and cdn[0].bytes_sent == dropped_at
    assert cdn[1].range == f"bytes={20 * 1024 * 1024}-" and hub.faults.injected - before == 2
    assert [r.status for r in hub.requests if "/resolve/main/config.json" in r.path][:2] == [503, 200]


def test_hf_hub_download_dataset_and_revisions(hub, tmp_path):
    out = run_hf(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import hf_hub_download
        r = {{}}
        for name in ["data/train.csv", "data/part-0.parquet", "README.md"]:
            r[name] = open(hf_hub_download({DATASET!r}, name, repo_type="dataset"), "rb").read().hex()
        r["pr"] = open(hf_hub_download({DATASET!r}, "data/train.csv", repo_type="dataset",
                                       revision="refs/pr/1"), "rb").read().hex()
        r["tag"] = open(hf_hub_download({DATASET!r}, "README.md", repo_type="dataset", revision="v1"), "rb").read().hex()
        print(json.dumps(r))
    """,
    )
    for name, content in DS_FILES.items():
        assert bytes.fromhex(out[name]) == content
    assert bytes.fromhex(out["pr"]) == b"pr,version\n"
    assert bytes.fromhex(out["tag"]) == DS_FILES["README.md"]
    assert hub.count(path_contains="/resolve/refs%2Fpr%2F1/") >= 1


def test_list_repo_tree_paginates(hub, tmp_path):
    hub.page_size = 7
    files = make_small_files(60, seed=1)
    dirs = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
    hub.reset_log()
    out = run_hf(
        hub,
        tmp_path,
        """
        import json
        from huggingface_hub import HfApi
        api = HfApi()
        tree = [(e.path, type(e).__name__) for e in api.list_repo_tree("org/many", recursive=True)]
        top = [e.path for e in api.list_repo_tree("org/many")]
        expanded = [e.last_commit.oid for e in api.list_repo_tree("org/many", recursive=True, expand=True)]
        info = [(e.path, getattr(e, "size", None)) for e in api.get_paths_info("org/many", ["dir1", "nope.txt", "file_00000.txt"])]
        refs = api.list_repo_refs("org/ds", repo_type="dataset", include_pull_requests=True)
        lfs = {e.path: [e.blob_id, e.lfs.sha256 if e.lfs else None, e.lfs.pointer_size if e.lfs else None]
               for e in api.list_repo_tree("org/ds", "data", repo_type="dataset")}
        print(json.dumps({"tree": tree, "top": top, "expanded": expanded, "info": info, "lfs": lfs,
                          "branches": [b.name for b in refs.branches], "tags": [t.name for t in refs.tags],
                          "prs": [p.ref for p in refs.pull_requests]}))
    """,
    )
    paths = {p for p, _ in out["tree"]}
    assert len(out["tree"]) == len(files) + len(dirs) and paths == set(files) | dirs
    assert {p for p, kind in out["tree"] if kind == "RepoFolder"} == dirs
    assert set(out["top"]) == {p for p in paths if "/" not in p}
    assert len(out["expanded"]) == len(out["tree"]) and set(out["expanded"]) == {hub.head("org/many")}
    assert hub.count("GET", "/api/models/org/many/tree/main") >= (len(out["tree"]) + 6) // 7
    assert {p for p, _ in out["info"]} <= {"dir1", "file_00000.txt"} and "nope.txt" not in dict(out["info"])
    parquet = DS_FILES["data/part-0.parquet"]
    pointer = lfs_pointer(hashlib.sha256(parquet).hexdigest(), len(parquet))
    assert out["lfs"]["data/part-0.parquet"] == [
        git_blob_sha1(pointer),
        hashlib.sha256(parquet).hexdigest(),
        len(pointer),
    ]
    assert out["lfs"]["data/train.csv"] == [git_blob_sha1(DS_FILES["data/train.csv"]), None, None]
    assert out["branches"] == ["main"] and out["tags"] == ["v1"] and out["prs"] == ["refs/pr/1"]


def test_client_error_classes(hub, tmp_path):
    out = run_hf(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import hf_hub_download, HfApi
        def cls(fn):
            try:
                fn()
                return ["ok"]
            except Exception as e:
                return [c.__name__ for c in type(e).__mro__]
        api = HfApi()
        print(json.dumps({{
            "repo": cls(lambda: hf_hub_download("nobody/nothing", "config.json")),
            "repo_info": cls(lambda: api.model_info("nobody/nothing")),
            "rev": cls(lambda: hf_hub_download({MINILM!r}, "config.json", revision="no-such-branch")),
            "entry": cls(lambda: hf_hub_download({MINILM!r}, "missing.json")),
            "gated": cls(lambda: hf_hub_download("org/gated", "config.json")),
            "gated_token": cls(lambda: hf_hub_download("org/gated", "config.json", token={TOKEN!r})),
            "private": cls(lambda: hf_hub_download("org/private", "secret.txt")),
            "private_token": cls(lambda: hf_hub_download("org/private", "secret.txt", token={TOKEN!r})),
            "bad_token": cls(lambda: api.model_info({MINILM!r}, token="hf_wrong")),
            "renamed": [hf_hub_download("org/old-name", "config.json"), api.model_info("org/old-name").id],
        }}))
    """,
    )
    assert out["repo"][0] == "RepositoryNotFoundError" and out["repo_info"][0] == "RepositoryNotFoundError"
    assert out["rev"][0] == "RevisionNotFoundError"
    assert "EntryNotFoundError" in out["entry"]
    assert out["gated"][0] == "GatedRepoError" and out["gated_token"] == ["ok"]
    assert out["private"][0] == "RepositoryNotFoundError" and out["private_token"] == ["ok"]
    assert "HfHubHTTPError" in out["bad_token"] and "RepositoryNotFoundError" not in out["bad_token"]
    assert Path(out["renamed"][0]).read_bytes() == b'{"renamed": true}\n' and out["renamed"][1] == "org/new-name"


# ============================================================================================ direct HTTP tests
def test_hashes():
    assert git_blob_sha1(b"Hello, World!") == "b45ef6fec89518d314f546fd6c3025367b721684"
    assert git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_resolve_regular_file_headers_and_ranges(hub, client):
    content = DS_FILES["data/train.csv"]
    url = f"{hub.url}/datasets/{DATASET}/resolve/main/data/train.csv"
    plain = {"Accept-Encoding": "identity"}
    r = client.head(url, headers=plain)
    assert r.status_code == 200 and r.headers["etag"] == f'"{git_blob_sha1(content)}"'
    assert r.headers["x-repo-commit"] == hub.head(DATASET, repo_type="dataset")
    assert int(r.headers["content-length"]) == len(content) and r.headers["accept-ranges"] == "bytes"
    r = client.get(url, headers={**plain, "Range": "bytes=10-"})
    assert r.status_code == 206 and r.content == content[10:]
    assert r.headers["content-range"] == f"bytes 10-{len(content) - 1}/{len(content)}"
    r = client.get(url, headers={**plain, "Range": "bytes=3-7"})
    assert r.status_code == 206 and r.content == content[3:8]
    r = client.get(url, headers={**plain, "Range": f"bytes={len(content)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(content)}"
    r = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip" and r.content == content
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip, deflate"}) as s:
        raw = b"".join(s.iter_raw())
    assert int(s.headers["content-length"]) == len(raw) < len(content) and gzip.decompress(raw) == content


def test_resolve_errors(hub, client):
    def get(path, **headers):
        return client.get(hub.url + path, headers=headers)

    r = get(f"/{MINILM}/resolve/main/nope.txt")
    assert r.status_code == 404 and r.headers["x-error-code"] == "EntryNotFound"
    assert r.headers["x-repo-commit"] == hub.minilm_sha and "x-error-message" in r.headers
    r = get(f"/{MINILM}/resolve/nobranch/config.json")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound" and r.json()["error"]
    assert get("/nobody/x/resolve/main/a").status_code == 401
    r = get("/nobody/x/resolve/main/a", Authorization=f"Bearer {TOKEN}")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    r = get(f"/{MINILM}/resolve/main/config.json", Authorization="Bearer wrong")
    assert r.status_code == 401 and r.headers["x-error-message"] == "Invalid credentials in Authorization header"
    r = get("/org/private/resolve/main/secret.txt")
    assert r.status_code == 401 and r.headers["x-error-code"] == "RepoNotFound"
    assert get("/org/private/resolve/main/secret.txt", Authorization=f"Bearer {TOKEN}").content == b"top secret\n"
    assert get("/api/models/org/private").status_code == 401
    assert get("/api/models/org/private", Authorization=f"Bearer {TOKEN}").json()["private"] is True
    assert get("/api/models/org/gated").json()["gated"] == "auto"
    r = get("/org/gated/resolve/main/config.json")
    assert r.status_code == 403 and r.headers["x-error-code"] == "GatedRepo"
    assert r.headers["x-error-message"].startswith("Access to model org/gated is restricted")
    sha = hub.head("org/gated")
    assert get(f"/org/gated/resolve/{sha}/config.json", Authorization=f"Bearer {TOKEN}").status_code == 200
    for path in ("/", "/api/unknown", f"/api/models/{MINILM}/nonsense", f"/{MINILM}/blob/main/config.json"):
        r = get(path)
        assert r.status_code == 404 and "x-error-code" not in r.headers, path


def test_lfs_redirect_to_cdn_without_authorization(hub):
    entry = hub.file_entry(MINILM, "model.safetensors")
    url = f"{hub.url}/{MINILM}/resolve/main/model.safetensors"
    with httpx2.Client(timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        r = c.head(url)
        assert r.status_code == 302 and r.headers["location"].startswith(f"{hub.cdn_url}/blobs/{entry.blob.sha256}?")
        assert r.headers["x-linked-etag"] == f'"{entry.blob.sha256}"'
        assert int(r.headers["x-linked-size"]) == entry.size == (minilm_dir() / "model.safetensors").stat().st_size
        assert r.headers["x-repo-commit"] == hub.minilm_sha and r.headers["etag"] == f'"{entry.oid}"'
        hub.reset_log()
        r = c.get(url, headers={"Range": "bytes=100-199"}, follow_redirects=True)
        assert r.status_code == 206 and len(r.content) == 100
        with (minilm_dir() / "model.safetensors").open("rb") as fh:
            fh.seek(100)
            assert r.content == fh.read(100)
        cdn = [x for x in hub.requests if x.origin == "cdn"]
        assert len(cdn) == 1 and "authorization" not in cdn[0].headers and cdn[0].range == "bytes=100-199"
        assert cdn[0].bytes_sent == 100
        api = [x for x in hub.requests if x.origin == "api"]
        assert api[0].headers["authorization"] == f"Bearer {TOKEN}" and api[0].status == 302
        loc = c.head(url).headers["location"]
        assert c.get(loc, headers={"Range": f"bytes={entry.size}-"}).status_code == 416
        assert c.head(loc).headers["content-length"] == str(entry.size)
        assert c.get(loc.split("?")[0] + "?sig=bad").status_code == 403


def test_repo_info_tree_and_paths_info(hub, client):
    r = client.get(f"{hub.url}/api/models/{MINILM}/revision/main", params={"blobs": "true"})
    info = r.json()
    assert info["id"] == MINILM and info["sha"] == hub.minilm_sha and info["private"] is False
    sib = {s["rfilename"]: s for s in info["siblings"]}
    assert sib["model.safetensors"]["lfs"]["sha256"] == hub.file_entry(MINILM, "model.safetensors").blob.sha256
    assert (
        "lfs" not in sib["config.json"] and sib["config.json"]["size"] == (minilm_dir() / "config.json").stat().st_size
    )
    sha = hub.head(DATASET, branch="refs/pr/1", repo_type="dataset")
    assert client.get(f"{hub.url}/api/datasets/{DATASET}/revision/refs%2Fpr%2F1").json()["sha"] == sha
    assert client.get(f"{hub.url}/api/datasets/{DATASET}/revision/{sha}").json()["sha"] == sha
    hub.page_size = 5
    url = f"{hub.url}/api/models/org/many/tree/main?recursive=true&expand=false"
    seen, pages = [], 0
    while url:
        r = client.get(url)
        seen += r.json()
        pages += 1
        url = r.links.get("next", {}).get("url")
        assert url is None or url.startswith(hub.url + "/api/models/org/many/tree/main?")
    assert pages > 5 and len({e["path"] for e in seen}) == len(seen)
    r = client.get(f"{hub.url}/api/models/org/many/tree/main/nope%2Fdir")
    assert r.status_code == 404 and r.headers["x-error-code"] == "EntryNotFound"
    r = client.post(
        f"{hub.url}/api/datasets/{DATASET}/paths-info/main",
        data={"paths": ["data/train.csv", "data", "missing"], "expand": "false"},
    )
    assert [(e["path"], e["type"]) for e in r.json()] == [("data/train.csv", "file"), ("data", "directory")]


def test_rename_answers_relative_307(hub, client):
    r = client.get(f"{hub.url}/api/models/org/old-name/revision/main?blobs=true")
    assert r.status_code == 307 and r.headers["location"] == "/api/models/org/new-name/revision/main?blobs=true"
    r = client.head(f"{hub.url}/org/old-name/resolve/main/config.json")
    assert r.status_code == 307 and r.headers["location"] == "/org/new-name/resolve/main/config.json"
    r = client.get(f"{hub.url}/api/models/org/old-name", follow_redirects=True)
    assert r.status_code == 200 and r.json()["id"] == "org/new-name"


# ============================================================================================ faults
def test_status_faults(hub, client):
    url = f"{hub.url}/{MINILM}/resolve/main/config.json"
    before = hub.faults.injected
    hub.faults.once("500", path_contains="config.json")
    hub.faults.once("503", path_contains="config.json")
    hub.faults.once("429", path_contains="config.json")
    r1, r2, r3, r4 = (client.get(url) for _ in range(4))
    assert r1.status_code == 500
    assert r2.status_code == 503 and r2.headers["retry-after"] == "1"
    assert r3.status_code == 429 and r3.headers["retry-after"] == "1" and r3.headers["ratelimit"] == '"api";r=0;t=1'
    assert r4.status_code == 200 and hub.faults.injected - before == 3
    assert [x.fault for x in hub.requests[-4:]] == ["500", "503", "429", None]


def test_drop_corrupt_reset_faults(hub, client):
    url = f"{hub.url}/datasets/{DATASET}/resolve/main/data/part-0.parquet"
    content = DS_FILES["data/part-0.parquet"]
    loc = client.head(url).headers["location"]
    hub.faults.once("drop", path_contains="/blobs/", after_bytes=1000)
    got = bytearray()
    with pytest.raises(httpx2.RemoteProtocolError):
        with client.stream("GET", loc) as s:
            assert s.headers["content-length"] == str(len(content))
            for chunk in s.iter_bytes():
                got += chunk
    assert bytes(got) == content[:1000] and hub.requests[-1].bytes_sent == 1000
    hub.faults.once("drop", path_contains="/blobs/")  # default: about half the body
    with pytest.raises(httpx2.RemoteProtocolError):
        client.get(loc)
    assert 0 < hub.requests[-1].bytes_sent < len(content)
    hub.faults.once("corrupt", path_contains="/blobs/")
    r = client.get(loc)
    assert r.status_code == 200 and len(r.content) == len(content) and r.content != content
    hub.faults.once("reset", path_contains="/blobs/")
    with pytest.raises(httpx2.TransportError):
        client.get(loc)
    assert hub.requests[-1].status == 0 and hub.requests[-1].fault == "reset"
    assert client.get(loc).content == content


def test_random_faults_are_seeded_and_capped(hub, client):
    url = f"{hub.url}/api/models/{MINILM}"

    def run():
        hub.faults.set(rate=0.5, kinds=["500", "503"], seed=42, paths="/api/models/")
        return [client.get(url).status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second and {500, 503, 200} >= set(first) and 200 in first and len(set(first)) > 1
    hub.faults.set(rate=1.0, kinds=["500"], max_faults=2)
    assert [client.get(url).status_code for _ in range(4)] == [500, 500, 200, 200] and hub.faults.injected == 2
    hub.faults.set(rate=1.0, kinds=["500"], paths="/resolve/")
    assert client.get(url).status_code == 200


# ============================================================================================ server mechanics
def test_keep_alive_concurrency_and_latency(hub):
    import http.client
    import threading
    import time

    conn = http.client.HTTPConnection("127.0.0.1", int(hub.url.rsplit(":", 1)[1]), timeout=10)
    conn.request("HEAD", f"/{MINILM}/resolve/main/config.json")
    r = conn.getresponse()
    r.read()
    sock = conn.sock
    conn.request("GET", f"/api/models/{MINILM}")
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["id"] == MINILM and conn.sock is sock
    conn.close()

    hub.latency = 0.05
    try:
        errors: list[BaseException] = []

        def worker():
            try:
                with httpx2.Client(timeout=10) as c:
                    for _ in range(4):
                        assert c.get(f"{hub.url}/{MINILM}/resolve/main/modules.json").status_code == 200
            except BaseException as exc:
                errors.append(exc)

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        hub.latency = 0.0
    assert not errors and 0.2 <= elapsed < 16 * 4 * 0.05 / 2


def test_start_stop_context_manager(tmp_path):
    with HubServer(tmp_path / "root") as server:
        server.commit("solo", {"big.bin": b"x" * 10, "a.txt": b"a"})
        c = httpx2.Client(timeout=5)
        assert c.get(f"{server.url}/solo/resolve/main/a.txt").content == b"a"
        r = c.get(f"{server.url}/solo/resolve/main/big.bin", follow_redirects=True)
        assert r.content == b"x" * 10 and str(r.url).startswith(server.cdn_url)
        assert server.file_bytes("solo", "big.bin") == b"x" * 10
        assert server.count(origin="cdn") == 1 and server.count("GET", "a.txt") == 1
    with pytest.raises(httpx2.TransportError):
        c.get(f"{server.url}/solo/resolve/main/a.txt")
    c.close()
