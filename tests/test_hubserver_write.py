"""The write side of the fake Hub (`tests/hubserver.py`, protocol doc section D): the real huggingface_hub client
(subprocess, HF_ENDPOINT pointing at it, HF_HUB_DISABLE_XET=1) is the oracle, plus direct httpx2 checks."""

from __future__ import annotations

import base64
import filecmp
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx2
import pytest

try:
    from hubserver import HubServer
    from hubserver_repos import git_blob_sha1
except ImportError:  # tests/ is a package
    from tests.hubserver import HubServer
    from tests.hubserver_repos import git_blob_sha1

TOKEN = "hf_write_secret_token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LFS_HEADERS = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = HubServer(tmp_path_factory.mktemp("hubroot"), token=TOKEN).start()
    server.create_repo("org/private-w", private=True)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean(hub):
    hub.faults.clear()
    yield
    hub.faults.clear()
    hub.multipart_threshold = None
    hub.lfs_threshold = 10 * 1024 * 1024


@pytest.fixture
def client():
    with httpx2.Client(timeout=10) as c:
        yield c


def run_hf(hub: HubServer, tmp_path: Path, code: str, token: str = TOKEN, timeout: float = 50) -> dict:
    """Run ``code`` with the real huggingface_hub pointed at ``hub`` (HF_TOKEN set); it prints one JSON line last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_TOKEN=token,
        HF_HUB_CACHE=str(tmp_path / "cache"),
        HF_HOME=str(tmp_path / "hfhome"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def ndjson(*items: tuple[str, dict]) -> bytes:
    return b"".join(json.dumps({"key": k, "value": v}).encode() + b"\n" for k, v in items)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ============================================================================================ oracle tests
def test_client_upload_round_trip(hub, tmp_path):
    rng = random.Random(7)
    big = rng.randbytes(10 * 1024 * 1024 + 12345)  # > lfs_threshold: LFS by size (".dat" matches no pattern)
    files = {
        "README.md": b"---\nlicense: mit\n---\n# up\n",  # makes the client call /api/validate-yaml first
        "top.txt": b"top\n",
        "empty.txt": b"",
        "docs/a.txt": b"a\n" * 100,
        "docs/deep/b.md": b"# b\n",
        "docs/deep/c.txt": b"c\n",
        "weights/big.dat": big,
        "weights/small.bin": bytes(range(100)),  # LFS by name pattern
        "blob.raw": b"head\x00" + rng.randbytes(2000),  # LFS because the sample has a NUL byte
    }
    folder = tmp_path / "folder"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    hub.reset_log()
    out = run_hf(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import HfApi, snapshot_download, CommitOperationAdd
        from huggingface_hub.errors import HfHubHTTPError
        api = HfApi()
        r = {{"url": str(api.create_repo("org/up")), "again": str(api.create_repo("org/up", exist_ok=True))}}
        try:
            api.create_repo("org/up")
        except HfHubHTTPError as e:
            r["conflict"] = e.response.status_code
        r["ds"] = str(api.create_repo("org/ds-w", repo_type="dataset", private=True))
        r["ds_commit"] = api.upload_file(path_or_fileobj=b"PAR1" + bytes(300), path_in_repo="d/x.parquet",
                                         repo_id="org/ds-w", repo_type="dataset").oid
        r["c1"] = api.upload_folder(repo_id="org/up", folder_path={str(folder)!r}, commit_message="first").oid
        r["c1_again"] = api.upload_folder(repo_id="org/up", folder_path={str(folder)!r}).oid  # unchanged: no commit
        r["c2"] = api.upload_file(path_or_fileobj=b"changed\\n", path_in_repo="docs/a.txt", repo_id="org/up").oid
        r["c3"] = api.delete_file("top.txt", "org/up").oid
        r["c4"] = api.delete_folder("docs/deep", "org/up").oid
        try:
            api.delete_file("nope.txt", "org/up")
        except HfHubHTTPError as e:
            r["missing"] = [type(e).__name__, e.response.status_code]
        try:
            api.create_commit("org/up", [CommitOperationAdd("late.txt", b"late")], commit_message="stale",
                              parent_commit=r["c1"])
        except HfHubHTTPError as e:
            r["stale"] = [e.response.status_code, str(e)]
        r["c5"] = api.create_commit("org/up", [CommitOperationAdd("late.txt", b"late")], commit_message="fresh",
                                    parent_commit=r["c4"]).oid
        r["snap"] = snapshot_download("org/up")
        r["history"] = [c.commit_id for c in api.list_repo_commits("org/up")]
        print(json.dumps(r))
    """,
    )
    assert out["url"] == out["again"] == f"{hub.url}/org/up" and out["conflict"] == 409
    assert out["ds"] == f"{hub.url}/datasets/org/ds-w" and hub.store.require("dataset", "org/ds-w").private
    assert hub.file_entry("org/ds-w", "d/x.parquet", repo_type="dataset").lfs
    assert hub.count("POST", "/datasets/org/ds-w.git/info/lfs/objects/batch") == 1

    # what arrived by LFS, in which commit, with which operation kinds
    lfs_paths = ["weights/big.dat", "weights/small.bin", "blob.raw"]
    sha = {p: hashlib.sha256(files[p]).hexdigest() for p in lfs_paths}
    uploads = {path.rsplit("/", 1)[-1]: n for origin, path, n in hub.uploads if origin == "cdn"}
    assert {sha[p]: len(files[p]) for p in lfs_paths}.items() <= uploads.items()
    puts = [r for r in hub.requests if r.method == "PUT"]
    assert puts and all(r.origin == "cdn" and "authorization" not in r.headers and r.status == 200 for r in puts)
    assert hub.count("POST", "/info/lfs/objects/verify", origin="api") == len(puts)
    first = next(c for c in hub.commits_made if c["sha"] == out["c1"])
    kinds = dict((path, kind) for kind, path in first["ops"])
    assert {p for p, k in kinds.items() if k == "lfsFile"} == set(lfs_paths)
    assert {p for p, k in kinds.items() if k == "file"} == set(files) - set(lfs_paths)
    assert sorted(first["added"]) == sorted(files) and first["revision"] == "main" and first["summary"] == "first"
    for path, data in files.items():
        entry = hub.file_entry("org/up", path, revision=out["c1"])
        assert entry.lfs == (path in lfs_paths) and hub.store.blobs.path(entry.blob.sha256).read_bytes() == data
    assert hub.count("POST", "/api/validate-yaml") >= 1

    # the re-upload of an unchanged folder was skipped thanks to the preupload oids
    assert out["c1_again"] == out["c1"]
    assert len([c for c in hub.commits_made if c["repo"] == "org/up"]) == 5
    ops = {c["sha"]: c for c in hub.commits_made}
    assert ops[out["c2"]]["ops"] == [("file", "docs/a.txt")] and ops[out["c2"]]["changed"] == ["docs/a.txt"]
    assert ops[out["c3"]]["ops"] == [("deletedFile", "top.txt")] and ops[out["c3"]]["deleted"] == ["top.txt"]
    assert ops[out["c4"]]["ops"][0][0] == "deletedFolder"
    assert ops[out["c4"]]["deleted"] == ["docs/deep/b.md", "docs/deep/c.txt"]
    assert out["missing"] == ["RemoteEntryNotFoundError", 404]
    assert out["stale"][0] == 412 and "The branch was updated" in out["stale"][1]

    # history and the downloaded snapshot
    assert out["history"] == [out["c5"], out["c4"], out["c3"], out["c2"], out["c1"], out["history"][-1]]
    assert hub.head("org/up") == out["c5"] and ops[out["c5"]]["parent"] == out["c4"]
    expected = {k: v for k, v in files.items() if k != "top.txt" and not k.startswith("docs/deep/")}
    expected.update({"docs/a.txt": b"changed\n", "late.txt": b"late"})
    snap = Path(out["snap"])
    assert snap.name == out["c5"] and tree(snap) == expected
    assert filecmp.cmp(snap / "weights/big.dat", folder / "weights/big.dat", shallow=False)


def test_client_multipart_upload(hub, tmp_path):
    hub.create_repo("org/mp")
    hub.multipart_threshold = 1024 * 1024
    data = random.Random(3).randbytes(3 * 1000 * 1000 + 5)  # 3 parts of multipart_chunk_size (1 MiB)
    src = tmp_path / "model.safetensors"
    src.write_bytes(data)
    hub.reset_log()
    out = run_hf(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import HfApi
        c = HfApi().upload_file(path_or_fileobj={str(src)!r}, path_in_repo="w/model.safetensors", repo_id="org/mp")
        print(json.dumps({{"oid": c.oid}}))
    """,
    )
    oid = hashlib.sha256(data).hexdigest()
    chunk = hub.multipart_chunk_size
    parts = [r for r in hub.requests if r.method == "PUT"]
    assert [r.path.split("?")[0].rsplit("/", 1)[-1] for r in parts] == ["1", "2", "3"]
    assert all(r.origin == "cdn" and r.status == 200 and f"/upload/{oid}/" in r.path for r in parts)
    assert [n for _, _, n in hub.uploads] == [chunk, chunk, len(data) - 2 * chunk]
    done = [r for r in hub.requests if "/api/complete_multipart" in r.path]
    assert len(done) == 1 and done[0].method == "POST" and done[0].origin == "api" and done[0].status == 200
    assert hub.count("POST", "/info/lfs/objects/verify") == 1
    assert hub.head("org/mp") == out["oid"] and hub.file_bytes("org/mp", "w/model.safetensors") == data
    assert hub.file_entry("org/mp", "w/model.safetensors").lfs
    assert not hub._multipart and not any((hub.root / "uploads").iterdir())


def test_client_recovers_from_faults_on_write_endpoints(hub, tmp_path):
    hub.create_repo("org/faulty")
    data = random.Random(5).randbytes(300_000)
    hub.faults.once("503", path_contains="/preupload/")
    hub.faults.once("503", path_contains="/info/lfs/objects/batch")
    hub.faults.once("500", path_contains="/upload/")
    before = hub.faults.injected
    hub.reset_log()
    src = tmp_path / "w.bin"
    src.write_bytes(data)
    out = run_hf(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import HfApi
        c = HfApi().upload_file(path_or_fileobj={str(src)!r}, path_in_repo="w.bin", repo_id="org/faulty")
        print(json.dumps({{"oid": c.oid}}))
    """,
    )
    assert hub.faults.injected - before == 3
    assert [r.status for r in hub.requests if r.method == "PUT"] == [500, 200]
    assert [r.status for r in hub.requests if "/preupload/" in r.path] == [503, 200]
    assert hub.uploads == [("cdn", f"/upload/{hashlib.sha256(data).hexdigest()}", len(data))]
    assert hub.head("org/faulty") == out["oid"] and hub.file_bytes("org/faulty", "w.bin") == data


def test_client_refused_without_valid_token(hub, tmp_path):
    hub.create_repo("org/locked")
    out = run_hf(
        hub,
        tmp_path,
        """
        import json
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError
        def status(fn):
            try:
                fn()
                return "ok"
            except HfHubHTTPError as e:
                return e.response.status_code
        api = HfApi()
        print(json.dumps({"create": status(lambda: api.create_repo("org/nope")),
                          "upload": status(lambda: api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt",
                                                                   repo_id="org/locked"))}))
    """,
        token="hf_wrong_token",
    )
    assert out == {"create": 401, "upload": 401}
    assert hub.store.get("model", "tester/nope") is None and hub.store.get("model", "org/nope") is None
    assert "x.txt" not in hub.store.require("model", "org/locked").resolve("main").files


# ============================================================================================ direct HTTP tests
def test_lfs_put_checks_bytes_by_hand(hub, client):
    hub.create_repo("org/hand")
    data = b"the real bytes " * 1000
    oid, size = hashlib.sha256(data).hexdigest(), len(data)
    batch_url = f"{hub.url}/org/hand.git/info/lfs/objects/batch"
    batch = {
        "operation": "upload",
        "transfers": ["basic", "multipart"],
        "hash_algo": "sha256",
        "objects": [{"oid": oid, "size": size}],
        "ref": {"name": "main"},
    }
    r = client.post(batch_url, json=batch, headers={**LFS_HEADERS, **AUTH})
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.git-lfs+json"
    obj = r.json()["objects"][0]
    assert r.json()["transfer"] == "basic" and obj["oid"] == oid and obj["size"] == size
    put, verify = obj["actions"]["upload"]["href"], obj["actions"]["verify"]["href"]
    assert put.startswith(f"{hub.cdn_url}/upload/{oid}?") and "sig=" in put and "header" not in obj["actions"]["upload"]
    assert verify == f"{hub.url}/org/hand.git/info/lfs/objects/verify"

    def check(oid_, size_):
        return client.post(verify, json={"oid": oid_, "size": size_}, headers=AUTH).status_code

    hub.reset_log()
    wrong = bytearray(data)
    wrong[5] ^= 1
    assert client.put(put, content=bytes(wrong)).status_code == 400  # same size, wrong sha256
    assert client.put(put, content=data[:-1]).status_code == 400  # short
    assert client.put(put, content=data + b"!").status_code == 400  # long
    assert client.put(put.split("?")[0] + f"?size={size}&sig=bad", content=data).status_code == 403
    assert not hub.store.blobs.has(oid) and not list(hub.store.blobs.dir.glob(".incoming-*"))
    assert check(oid, size) == 404 and hub.uploads == []
    commit_url = f"{hub.url}/api/models/org/hand/commit/main"
    lfs_line = ("lfsFile", {"path": "w.bin", "algo": "sha256", "oid": oid, "size": size})
    r = client.post(
        commit_url,
        content=ndjson(("header", {"summary": "s", "description": ""}), lfs_line),
        headers={"Content-Type": "application/x-ndjson", **AUTH},
    )
    assert r.status_code == 400 and "does not exist" in r.json()["error"]
    hub.faults.once("reset", path_contains="/upload/")  # the connection dies before the body is read
    with pytest.raises(httpx2.TransportError):
        client.put(put, content=data)
    assert not hub.store.blobs.has(oid)

    def body():  # no length: chunked transfer encoding, streamed by the server
        for i in range(0, size, 1000):
            yield data[i : i + 1000]

    r = client.put(put, content=body())
    assert r.status_code == 200 and hub.requests[-1].headers.get("transfer-encoding") == "chunked"
    assert hub.store.blobs.path(oid).read_bytes() == data and hub.uploads == [("cdn", f"/upload/{oid}", size)]
    assert check(oid, size) == 200 and check(oid, size + 1) == 404
    r = client.post(batch_url, json=batch, headers={**LFS_HEADERS, **AUTH})
    assert "actions" not in r.json()["objects"][0]  # already stored: nothing to do
    r = client.post(
        commit_url,
        content=ndjson(
            ("header", {"summary": "s"}), lfs_line, ("lfsFile", {"path": "copy.bin", "algo": "sha256", "oid": oid})
        ),
        headers={"Content-Type": "application/x-ndjson", **AUTH},
    )
    assert r.status_code == 200 and r.json()["commitOid"] == hub.head("org/hand")
    assert r.json()["commitUrl"] == f"{hub.url}/org/hand/commit/{hub.head('org/hand')}"
    assert hub.file_entry("org/hand", "copy.bin").lfs and hub.file_bytes("org/hand", "copy.bin") == data
    bad = {**batch, "objects": [{"oid": "xyz", "size": 1}]}
    assert "error" in client.post(batch_url, json=bad, headers={**LFS_HEADERS, **AUTH}).json()["objects"][0]


def test_lfs_put_is_streamed_not_buffered(hub, client):
    import tracemalloc

    hub.create_repo("org/stream")
    piece, count = random.Random(9).randbytes(1024 * 1024), 40
    digest = hashlib.sha256()
    for _ in range(count):
        digest.update(piece)
    oid, size = digest.hexdigest(), len(piece) * count
    r = client.post(
        f"{hub.url}/org/stream.git/info/lfs/objects/batch",
        headers={**LFS_HEADERS, **AUTH},
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]},
    )
    href = r.json()["objects"][0]["actions"]["upload"]["href"]
    tracemalloc.start()
    try:
        r = client.put(href, content=(piece for _ in range(count)), headers={"Content-Length": str(size)})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.status_code == 200 and hub.store.blobs.path(oid).stat().st_size == size
    assert peak < 12 * 1024 * 1024  # a 40 MiB body went through a few MiB of buffers


def test_multipart_by_hand(hub, client):
    hub.create_repo("org/mp-hand")
    hub.multipart_threshold = 10
    data = bytes(range(256)) * 9000  # 2,304,000 bytes: 3 parts
    oid = hashlib.sha256(data).hexdigest()
    r = client.post(
        f"{hub.url}/org/mp-hand.git/info/lfs/objects/batch",
        headers={**LFS_HEADERS, **AUTH},
        json={
            "operation": "upload",
            "transfers": ["basic", "multipart"],
            "hash_algo": "sha256",
            "objects": [{"oid": oid, "size": len(data)}],
        },
    )
    upload = r.json()["objects"][0]["actions"]["upload"]
    header, done = upload["header"], upload["href"]
    chunk = int(header["chunk_size"])
    assert sorted(k for k in header if k.isdigit()) == ["1", "2", "3"] and done.startswith(f"{hub.url}/api/")
    assert all(header[k].startswith(f"{hub.cdn_url}/upload/{oid}/") for k in "123")
    etags = []
    for i in range(3):
        piece = data[i * chunk : (i + 1) * chunk]
        r = client.put(header[str(i + 1)], content=piece if i != 1 else b"x" * len(piece))  # part 2 is wrong
        assert r.status_code == 200 and r.headers["etag"]
        etags.append(r.headers["etag"])
    parts = [{"partNumber": i + 1, "etag": e} for i, e in enumerate(etags)]
    r = client.post(done, json={"oid": oid, "parts": parts[:2]}, headers=LFS_HEADERS)
    assert r.status_code == 400  # a part is missing: the upload stays open
    r = client.post(done, json={"oid": oid, "parts": parts}, headers=LFS_HEADERS)
    assert r.status_code == 400 and "sha256 mismatch" in r.json()["error"] and not hub.store.blobs.has(oid)
    assert client.post(done, json={"oid": oid, "parts": parts}, headers=LFS_HEADERS).status_code == 404  # gone
    assert client.put(header["1"].split("?")[0] + "?sig=nope", content=b"x").status_code == 403


def test_commit_errors_by_hand(hub, client):
    hub.create_repo("org/errs")
    hub.commit("org/errs", {"keep.txt": b"keep\n", "dir/f.txt": b"f\n"})
    hub.tag("org/errs", "v1", "main")
    head = hub.head("org/errs")
    url = f"{hub.url}/api/models/org/errs/commit"
    headers = {"Content-Type": "application/x-ndjson", **AUTH}

    def post(*items, rev="main", header=None, query=""):
        head_line = ("header", header if header is not None else {"summary": "msg", "description": ""})
        return client.post(f"{url}/{rev}{query}", content=ndjson(head_line, *items), headers=headers)

    add = ("file", {"path": "new.txt", "content": b64(b"new\n"), "encoding": "base64"})
    assert post(add, header={"summary": "", "description": ""}).status_code == 400
    assert post(add, header={"summary": "   "}).status_code == 400
    assert post(("file", {"path": "x.txt", "content": "%%%not base64", "encoding": "base64"})).status_code == 400
    for bad in ("../up.txt", "a/../../b", "/abs.txt", "back\\slash.txt", "nul\x00.txt", "a//b", ".git/config", ""):
        r = post(("file", {"path": bad, "content": b64(b"x"), "encoding": "base64"}))
        assert r.status_code == 400, bad
    assert post(("deletedFile", {"path": "../keep.txt"})).status_code == 400
    r = post(("deletedFile", {"path": "nope.txt"}))
    assert r.status_code == 404 and r.headers["x-error-code"] == "EntryNotFound"
    assert "A file with this name doesn't exist" in r.headers["x-error-message"]
    r = post(("deletedFolder", {"path": "nodir/"}))
    assert r.status_code == 404 and r.headers["x-error-code"] == "EntryNotFound"
    r = post(add, header={"summary": "s", "parentCommit": "0" * 40})
    assert r.status_code == 412 and r.json()["error"].startswith("The branch was updated since")
    r = post(add, rev="nobranch")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound"
    assert post(add, rev="v1").status_code == 400  # a tag is not a branch
    assert post(add, query="?create_pr=1").status_code == 400
    assert post(("renamedFile", {"path": "x"})).status_code == 400
    assert client.post(f"{url}/main", content=ndjson(add), headers=headers).status_code == 400  # no header line
    hub.lfs_threshold = 100
    assert post(("file", {"path": "big.txt", "content": b64(b"x" * 100), "encoding": "base64"})).status_code == 400
    hub.lfs_threshold = 10 * 1024 * 1024
    assert hub.head("org/errs") == head and not [c for c in hub.commits_made if c["repo"] == "org/errs"]

    r = post(
        add,
        ("deletedFolder", {"path": "dir"}),
        ("deletedFile", {"path": "keep.txt"}),
        header={"summary": "ok", "description": "body text", "parentCommit": head[:7]},
        rev="refs%2Fheads%2Fmain",
    )
    assert r.status_code == 200
    sha = r.json()["commitOid"]
    assert hub.head("org/errs") == sha and hub.file_bytes("org/errs", "new.txt") == b"new\n"
    assert set(hub.store.require("model", "org/errs").resolve("main").files) == {"new.txt"}
    assert hub.store.require("model", "org/errs").commits[sha].message == "ok\n\nbody text"
    made = hub.commits_made[-1]
    assert made["sha"] == sha and made["parent"] == head and made["added"] == ["new.txt"]
    assert made["deleted"] == ["dir/f.txt", "keep.txt"]
    assert made["ops"] == [("file", "new.txt"), ("deletedFolder", "dir"), ("deletedFile", "keep.txt")]


def test_preupload_by_hand(hub, client):
    hub.create_repo("org/pre")
    hub.commit("org/pre", {"reg.txt": b"regular\n", "w.safetensors": b"weights"})
    url = f"{hub.url}/api/models/org/pre/preupload/main"
    files = [
        {"path": "reg.txt", "sample": b64(b"regular\n"), "size": 8},
        {"path": "w.safetensors", "sample": b64(b"weights"), "size": 7},
        {"path": "huge.txt", "sample": b64(b"text"), "size": hub.lfs_threshold},
        {"path": "bin.dat", "sample": b64(b"ab\x00cd"), "size": 5},
        {"path": "empty.bin", "sample": "", "size": 0},
        {"path": "new.txt", "sample": b64(b"hi"), "size": 2},
    ]
    r = client.post(url, json={"files": files}, headers=AUTH)
    assert r.status_code == 200
    got = {f["path"]: (f["uploadMode"], f["oid"]) for f in r.json()["files"]}
    assert all(f["shouldIgnore"] is False for f in r.json()["files"])
    assert got == {
        "reg.txt": ("regular", git_blob_sha1(b"regular\n")),
        "w.safetensors": ("lfs", hashlib.sha256(b"weights").hexdigest()),
        "huge.txt": ("lfs", None),
        "bin.dat": ("lfs", None),
        "empty.bin": ("regular", None),
        "new.txt": ("regular", None),
    }
    r = client.post(f"{hub.url}/api/models/org/nothing/preupload/main", json={"files": files}, headers=AUTH)
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    r = client.post(f"{hub.url}/api/models/org/pre/preupload/nobranch", json={"files": files}, headers=AUTH)
    assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound"
    r = client.post(url, json={"files": [{"path": "../x", "sample": "", "size": 1}]}, headers=AUTH)
    assert r.status_code == 400
    assert client.post(
        f"{hub.url}/api/validate-yaml", json={"content": "x", "repoType": "model"}, headers=AUTH
    ).json() == {"errors": [], "warnings": []}


def test_write_auth_by_hand(hub, client, tmp_path):
    hub.create_repo("org/pub")
    lfs = {"operation": "upload", "transfers": ["basic"], "hash_algo": "sha256", "objects": []}
    calls = [
        ("POST", "/api/repos/create", {"json": {"name": "denied", "organization": "org"}}),
        ("POST", "/api/models/org/pub/preupload/main", {"json": {"files": []}}),
        ("POST", "/org/pub.git/info/lfs/objects/batch", {"json": lfs, "headers": LFS_HEADERS}),
        ("POST", "/org/pub.git/info/lfs/objects/verify", {"json": {"oid": "0" * 64, "size": 1}}),
        ("POST", "/api/models/org/pub/commit/main", {"content": ndjson(("header", {"summary": "s"}))}),
    ]
    for method, path, kw in calls:
        headers = kw.pop("headers", {})
        r = client.request(method, hub.url + path, headers=headers, **kw)
        assert r.status_code == 401, path
        r = client.request(method, hub.url + path, headers={**headers, "Authorization": "Bearer wrong"}, **kw)
        assert r.status_code == 401 and r.headers["x-error-message"] == "Invalid credentials in Authorization header"
    assert hub.store.get("model", "org/denied") is None and hub.head("org/pub") == hub.head("org/pub")
    r = client.post(f"{hub.url}/api/models/org/private-w/preupload/main", json={"files": []})
    assert r.status_code == 401 and r.headers["x-error-code"] == "RepoNotFound"  # private without auth: unknown
    r = client.post(f"{hub.url}/api/models/org/private-w/preupload/main", json={"files": []}, headers=AUTH)
    assert r.status_code == 200

    r = client.post(
        f"{hub.url}/api/repos/create",
        json={"name": "mine", "organization": None, "visibility": "private"},
        headers=AUTH,
    )
    assert r.status_code == 200 and r.json()["url"] == f"{hub.url}/tester/mine"
    assert hub.store.require("model", "tester/mine").private and hub.head("tester/mine")
    r = client.post(f"{hub.url}/api/repos/create", json={"name": "mine", "organization": None}, headers=AUTH)
    assert r.status_code == 409 and r.json()["url"] == f"{hub.url}/tester/mine"
    for bad in (
        {"name": "a/b", "organization": "org"},
        {"name": "x", "organization": "org", "type": "kernel"},
        {"organization": "org"},
        {"name": "x--y", "organization": "org"},
    ):
        assert client.post(f"{hub.url}/api/repos/create", json=bad, headers=AUTH).status_code == 400, bad

    with HubServer(tmp_path / "open") as open_hub:  # token=None: any bearer may write, none may not
        create = f"{open_hub.url}/api/repos/create"
        assert client.post(create, json={"name": "r", "organization": "o"}).status_code == 401
        r = client.post(
            create,
            json={"name": "r", "organization": "o", "type": "space"},
            headers={"Authorization": "Bearer anything"},
        )
        assert r.status_code == 200 and r.json()["url"] == f"{open_hub.url}/spaces/o/r"


def test_concurrent_commits_advance_the_branch(hub):
    hub.create_repo("org/busy")
    start = hub.head("org/busy")
    results: list[int] = []

    def worker(i: int) -> None:
        with httpx2.Client(timeout=10) as c:
            for j in range(3):
                line = ("file", {"path": f"w{i}/f{j}.txt", "content": b64(b"%d-%d" % (i, j)), "encoding": "base64"})
                r = c.post(
                    f"{hub.url}/api/models/org/busy/commit/main",
                    headers={**AUTH},
                    content=ndjson(("header", {"summary": f"w{i} f{j}"}), line),
                )
                results.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 24
    repo = hub.store.require("model", "org/busy")
    chain, sha = [], hub.head("org/busy")
    while sha != start:
        chain.append(sha)
        sha = repo.commits[sha].parent
    assert len(chain) == 24 and len(repo.resolve("main").files) == 24
