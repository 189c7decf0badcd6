"""``hubmirror serve`` answers the real ``huggingface_hub`` client and transformers over HTTP (reads).

One home is filled by ``hubmirror sync`` from the fake upstream (all-MiniLM-L6-v2 with ``main`` and the tags
``v1.0`` / ``release/1.0`` on an older commit whose files differ, a 600-file repo, a dataset with an LFS
file); the upstream is stopped before any test runs. One ``hubmirror serve`` subprocess on 127.0.0.1 serves
the module; the real client runs in subprocesses with ``HF_ENDPOINT`` pointing at it. Pushes are in
test_serve_push.py.
"""

from __future__ import annotations

import http.client as httplib
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from conftest import MINILM
from servekit import (
    CANARY,
    DATASET,
    EMBED_MINILM,
    MANY,
    TAG_WITH_SLASH,
    ServeProcess,
    Site,
    build_site,
    git_sha1,
    hf_client,
    read_tree,
    serve_site,
    sha256,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = build_site(tmp_path_factory.mktemp("serve"))
    site.upstream.stop()  # everything below is answered by the mirror alone
    yield site


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[ServeProcess]:
    yield from serve_site(site)


@pytest.fixture(scope="module")
def http(server: ServeProcess) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.url, timeout=30) as client:
        yield client


def client(server: ServeProcess, tmp_path: Path, code: str, **kw):
    return hf_client(code, server.url, tmp_path / "hf-cache", **kw)


def assert_same_as_store(site: Site, got: dict[str, bytes], expected: dict[str, bytes]) -> None:
    assert sorted(got) == sorted(expected)
    for path, data in got.items():
        assert data == expected[path], path
        assert site.blob(data).read_bytes() == data, f"{path}: not the store's blob"


# ============================================================================================ downloads
def test_snapshot_download_of_all_files_is_byte_identical_to_the_store(
    site: Site, server: ServeProcess, tmp_path: Path
) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import snapshot_download
        result = [snapshot_download({MINILM!r}), snapshot_download({DATASET!r}, repo_type="dataset")]
    """,
    )
    assert r.ok, r
    model, data = (Path(p) for p in r.result)
    assert model.name == site.minilm_main and data.name == site.dataset_sha
    assert_same_as_store(site, read_tree(model), site.files[(MINILM, site.minilm_main)])
    assert_same_as_store(site, read_tree(data), site.files[(DATASET, site.dataset_sha)])
    refs = tmp_path / "hf-cache" / f"models--{MINILM.replace('/', '--')}" / "refs" / "main"
    assert refs.read_text() == site.minilm_main


def test_snapshot_download_with_allow_patterns(site: Site, server: ServeProcess, tmp_path: Path) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import snapshot_download
        result = snapshot_download({MINILM!r}, allow_patterns=["*.json", "1_Pooling/*"])
    """,
    )
    assert r.ok, r
    expected = {
        p: b
        for p, b in site.files[(MINILM, site.minilm_main)].items()
        if p.endswith(".json") or p.startswith("1_Pooling/")
    }
    assert "model.safetensors" not in expected and "1_Pooling/config.json" in expected
    assert_same_as_store(site, read_tree(Path(r.result)), expected)


@pytest.mark.parametrize("revision", ["v1.0", TAG_WITH_SLASH, "full-sha"])
def test_snapshot_download_of_a_tag_on_an_older_commit(
    site: Site, server: ServeProcess, tmp_path: Path, revision: str
) -> None:
    rev = site.minilm_v1 if revision == "full-sha" else revision
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import snapshot_download
        result = snapshot_download({MINILM!r}, revision={rev!r})
    """,
    )
    assert r.ok, r
    snap = Path(r.result)
    assert snap.name == site.minilm_v1
    got = read_tree(snap)
    assert "extra.txt" not in got  # added on main only
    assert b"Second revision" not in got["README.md"]
    assert_same_as_store(site, got, site.files[(MINILM, site.minilm_v1)])


def test_hf_hub_download_of_a_regular_and_an_lfs_file(site: Site, server: ServeProcess, tmp_path: Path) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import hf_hub_download
        result = [hf_hub_download({MINILM!r}, "config.json"),
                  hf_hub_download({MINILM!r}, "model.safetensors"),
                  hf_hub_download({DATASET!r}, "data/train-00000.bin", repo_type="dataset"),
                  hf_hub_download({MINILM!r}, "README.md", revision="v1.0")]
    """,
    )
    assert r.ok, r
    config, weights, shard, old_readme = (Path(p) for p in r.result)
    files = site.files[(MINILM, site.minilm_main)]
    for path, expected in [
        (config, files["config.json"]),
        (weights, files["model.safetensors"]),
        (shard, site.files[(DATASET, site.dataset_sha)]["data/train-00000.bin"]),
        (old_readme, site.files[(MINILM, site.minilm_v1)]["README.md"]),
    ]:
        assert path.read_bytes() == expected == site.blob(expected).read_bytes()
    # the client names cache blobs by the etag: git sha1 for a regular file, sha256 for an LFS file
    assert config.resolve().name == git_sha1(files["config.json"])
    assert weights.resolve().name == sha256(files["model.safetensors"])
    assert old_readme.parent.name == site.minilm_v1


def test_model_info_with_files_metadata(site: Site, server: ServeProcess, tmp_path: Path) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        def info(i):
            return {{"sha": i.sha, "card": i.card_data.to_dict() if i.card_data else None,
                    "pipeline_tag": getattr(i, "pipeline_tag", None), "tags": i.tags,
                    "siblings": {{s.rfilename: [s.size, s.blob_id, s.lfs.sha256 if s.lfs else None]
                                 for s in i.siblings}}}}
        result = [info(api.model_info({MINILM!r}, files_metadata=True)),
                  info(api.model_info({MINILM!r}, revision="v1.0", files_metadata=True)),
                  info(api.dataset_info({DATASET!r}, files_metadata=True))]
    """,
    )
    assert r.ok, r
    main, v1, data = r.result
    assert main["sha"] == site.minilm_main and v1["sha"] == site.minilm_v1 and data["sha"] == site.dataset_sha
    for info, files in [
        (main, site.files[(MINILM, site.minilm_main)]),
        (v1, site.files[(MINILM, site.minilm_v1)]),
        (data, site.files[(DATASET, site.dataset_sha)]),
    ]:
        assert sorted(info["siblings"]) == sorted(files)
        for path, (size, blob_id, lfs_sha) in info["siblings"].items():
            assert size == len(files[path]), path
            if lfs_sha is not None:
                assert lfs_sha == sha256(files[path]), path
            else:
                assert blob_id == git_sha1(files[path]), path
    assert main["siblings"]["model.safetensors"][2] == sha256(
        site.files[(MINILM, site.minilm_main)]["model.safetensors"]
    )
    assert data["siblings"]["data/train-00000.bin"][2] is not None  # LFS in the dataset too
    assert main["card"]["license"] == "apache-2.0" and main["pipeline_tag"] == "sentence-similarity"
    assert main["card"]["library_name"] == "sentence-transformers"
    assert "sentence-transformers" in main["tags"]
    assert data["card"]["license"] == "cc-by-4.0"


def test_list_repo_tree_recursive_expanded_across_pages(
    site: Site, server: ServeProcess, tmp_path: Path, http: httpx2.Client
) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        def entries(repo, **kw):
            out = []
            for e in api.list_repo_tree(repo, recursive=True, **kw):
                lfs = getattr(e, "lfs", None)
                out.append([type(e).__name__, e.path, getattr(e, "size", None), getattr(e, "blob_id", None),
                            lfs.sha256 if lfs else None, getattr(e, "last_commit", None) is not None])
            return out
        result = [entries({MANY!r}, expand=True), entries({MANY!r}), entries({MINILM!r}, expand=True)]
    """,
    )
    assert r.ok, r
    expanded, plain, minilm = r.result
    files = site.files[(MANY, site.many_sha)]
    folders = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
    assert len(expanded) == len(files) + len(folders) > 10 * 50  # many pages of 50
    assert {e[1] for e in expanded if e[0] == "RepoFile"} == set(files)
    assert {e[1] for e in expanded if e[0] == "RepoFolder"} == folders
    assert len({e[1] for e in expanded}) == len(expanded)  # no entry twice across pages
    assert all(e[5] for e in expanded)  # expand=True → lastCommit
    assert sorted(map(tuple, plain)) == sorted((e[0], *e[1:5], False) for e in expanded)
    for kind, path, size, blob_id, _lfs, _ in expanded:
        if kind == "RepoFile":
            assert size == len(files[path]) and blob_id == git_sha1(files[path])
    weights = next(e for e in minilm if e[1] == "model.safetensors")
    assert weights[4] == sha256(site.files[(MINILM, site.minilm_main)]["model.safetensors"])
    # the wire format: pages of 50 with an absolute Link to the next, and never a xetHash
    first = http.get(f"/api/models/{MANY}/tree/main", params={"recursive": "true", "expand": "true"})
    assert first.status_code == 200 and len(first.json()) == 50
    assert first.headers["link"].startswith(f"<{server.url}/api/models/{MANY}/tree/main?")
    assert first.headers["link"].endswith('>; rel="next"')
    tree = http.get(f"/api/models/{MINILM}/tree/main", params={"recursive": "true"})
    assert tree.status_code == 200 and "xetHash" not in tree.text and "link" not in tree.headers


def test_list_repo_refs_and_list_models_search(site: Site, server: ServeProcess, tmp_path: Path) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        refs = api.list_repo_refs({MINILM!r})
        result = {{
            "refs": {{r.name: r.target_commit for r in [*refs.branches, *refs.tags]}},
            "minilm": [m.id for m in api.list_models(search="MiniLM")],
            "many": [m.id for m in api.list_models(search="many-files")],
            "org": sorted(m.id for m in api.list_models(author="org")),
            "none": [m.id for m in api.list_models(search="no-such-model-anywhere")],
            "datasets": [d.id for d in api.list_datasets(search="tiny")],
        }}
    """,
    )
    assert r.ok, r
    res = r.result
    assert res["refs"] == {"main": site.minilm_main, "v1.0": site.minilm_v1, TAG_WITH_SLASH: site.minilm_v1}
    assert res["minilm"] == [MINILM] and res["many"] == [MANY] and res["org"] == [MANY]
    assert res["none"] == [] and res["datasets"] == [DATASET]


def test_paths_info_and_hf_file_system(site: Site, server: ServeProcess, tmp_path: Path) -> None:
    r = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi, HfFileSystem
        api = HfApi()
        infos = api.get_paths_info({MINILM!r}, ["config.json", "1_Pooling", "model.safetensors", "extra.txt",
                                                "no-such-file"], revision="v1.0")
        fs = HfFileSystem()
        with fs.open({MINILM!r} + "/model.safetensors", "rb", block_size=4096) as fh:
            fh.seek(1000)
            middle = fh.read(100)
        result = {{"infos": [[type(i).__name__, i.path, getattr(i, "size", None),
                             i.lfs.sha256 if getattr(i, "lfs", None) else None] for i in infos],
                  "config": fs.read_text({MINILM!r} + "/config.json"),
                  "ls": sorted(fs.ls("datasets/" + {DATASET!r} + "/data", detail=False)),
                  "middle": middle.hex()}}
    """,
    )
    assert r.ok, r
    v1 = site.files[(MINILM, site.minilm_v1)]
    assert sorted(map(tuple, r.result["infos"])) == [
        ("RepoFile", "config.json", len(v1["config.json"]), None),
        ("RepoFile", "model.safetensors", len(v1["model.safetensors"]), sha256(v1["model.safetensors"])),
        ("RepoFolder", "1_Pooling", None, None),
    ]
    assert r.result["config"].encode() == v1["config.json"]
    assert r.result["ls"] == [f"datasets/{DATASET}/data/train-00000.bin"]
    assert bytes.fromhex(r.result["middle"]) == v1["model.safetensors"][1000:1100]


# ============================================================================================ transformers
@pytest.mark.slow
def test_transformers_from_pretrained_via_hf_endpoint_matches_direct_load(
    site: Site, server: ServeProcess, tmp_path: Path
) -> None:
    r = client(
        server,
        tmp_path,
        EMBED_MINILM
        + f"""
config, remote = embed({MINILM!r})
_, local = embed(str(minilm_dir()))
result = {{"diff": float((remote - local).abs().max()), "shape": list(remote.shape), "hidden": config.hidden_size}}
""",
        PYTHONPATH=str(Path(__file__).parent),
        timeout=240,
    )
    assert r.ok, r
    assert r.result["shape"] == [2, 384] and r.result["hidden"] == 384
    assert r.result["diff"] <= 1e-6
    snaps = tmp_path / "hf-cache" / f"models--{MINILM.replace('/', '--')}" / "snapshots"
    assert [p.name for p in snaps.iterdir()] == [site.minilm_main]


# ============================================================================================ errors
def test_client_gets_the_right_exception_classes(site: Site, server: ServeProcess, tmp_path: Path) -> None:
    cases = {
        "unknown_repo_info": ("RepositoryNotFoundError", "HfApi().model_info('nobody/nothing')"),
        "unknown_repo_download": ("RepositoryNotFoundError", "hf_hub_download('nobody/nothing', 'config.json')"),
        "dataset_as_model": ("RepositoryNotFoundError", f"HfApi().model_info({DATASET!r})"),
        "unknown_revision": ("RevisionNotFoundError", f"hf_hub_download({MINILM!r}, 'config.json', revision='v9')"),
        "unknown_pr": ("RevisionNotFoundError", f"hf_hub_download({MINILM!r}, 'config.json', revision='refs/pr/1')"),
        "unknown_revision_info": ("RevisionNotFoundError", f"HfApi().model_info({MINILM!r}, revision='v9')"),
        "unknown_file": ("RemoteEntryNotFoundError", f"hf_hub_download({MINILM!r}, 'no-such-file.bin')"),
        "file_not_at_tag": ("EntryNotFoundError", f"hf_hub_download({MINILM!r}, 'extra.txt', revision='v1.0')"),
        "unknown_folder": ("EntryNotFoundError", f"list(HfApi().list_repo_tree({MINILM!r}, 'no/such/dir'))"),
    }
    code = "from huggingface_hub import HfApi, hf_hub_download\nresult = {}\n"
    for name, (_, call) in cases.items():
        code += (
            f"try:\n    {call}\n    result[{name!r}] = None\n"
            f"except Exception as exc:\n"
            f"    result[{name!r}] = [c.__name__ for c in type(exc).__mro__]\n"
        )
    r = client(server, tmp_path, code)
    assert r.ok, r
    for name, (expected, _) in cases.items():
        assert r.result[name] is not None and expected in r.result[name], (name, r.result[name])
    # a file missing at a commit is remembered as absent by the client (needs X-Repo-Commit on the 404)
    no_exist = tmp_path / "hf-cache" / f"models--{MINILM.replace('/', '--')}" / ".no_exist"
    assert (no_exist / site.minilm_main / "no-such-file.bin").exists()
    assert (no_exist / site.minilm_v1 / "extra.txt").exists()


def test_range_requests(site: Site, http: httpx2.Client) -> None:
    files = site.files[(MINILM, site.minilm_main)]
    for path in ("config.json", "model.safetensors"):
        data = files[path]
        url = f"/{MINILM}/resolve/main/{path}"
        r = http.get(url, headers={"Range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == data[10:20]
        assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
        r = http.get(url, headers={"Range": f"bytes={len(data) - 7}-"})  # resume the tail
        assert r.status_code == 206 and r.content == data[-7:]
        assert r.headers["content-range"] == f"bytes {len(data) - 7}-{len(data) - 1}/{len(data)}"
        r = http.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
        r = http.get(url, headers={"Range": f"bytes={len(data) + 1000}-{len(data) + 2000}"})
        assert r.status_code == 416
    big = files["model.safetensors"]
    r = http.get(f"/{MINILM}/resolve/main/model.safetensors", headers={"Range": "bytes=50000000-50999999"})
    assert r.status_code == 206 and r.content == big[50_000_000:51_000_000]
    r = http.head(f"/{MINILM}/resolve/main/config.json", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and r.content == b"" and r.headers["content-length"] == "10"
    assert r.headers["content-range"] == f"bytes 0-9/{len(files['config.json'])}"


def test_head_headers_for_regular_and_lfs_files(site: Site, http: httpx2.Client) -> None:
    files = site.files[(MINILM, site.minilm_main)]
    regular = http.head(f"/{MINILM}/resolve/main/config.json")
    assert regular.status_code == 200 and regular.content == b""
    h = regular.headers
    assert h["etag"] == f'"{git_sha1(files["config.json"])}"'
    assert h["x-repo-commit"] == site.minilm_main
    assert h["content-length"] == str(len(files["config.json"])) and h["accept-ranges"] == "bytes"
    assert "x-linked-etag" not in h
    lfs = http.head(f"/{MINILM}/resolve/main/model.safetensors")
    assert lfs.status_code == 200
    h = lfs.headers
    assert h["x-linked-etag"] == f'"{sha256(files["model.safetensors"])}"'
    assert h["x-linked-size"] == h["content-length"] == str(len(files["model.safetensors"]))
    assert h["x-repo-commit"] == site.minilm_main and h["accept-ranges"] == "bytes"
    for path, head in (("config.json", regular), ("model.safetensors", lfs)):  # GET says what HEAD said
        with http.stream("GET", f"/{MINILM}/resolve/main/{path}") as got:
            assert got.status_code == 200
            for key in ("etag", "x-repo-commit", "content-length", "x-linked-etag", "x-linked-size"):
                assert got.headers.get(key) == head.headers.get(key), (path, key)
    data = http.head(f"/datasets/{DATASET}/resolve/main/train.csv")
    assert data.status_code == 200 and data.headers["x-repo-commit"] == site.dataset_sha
    for resp in (regular, lfs, data):
        assert not [k for k in resp.headers if k.lower().startswith("x-xet")]
        assert "xet-auth" not in resp.headers.get("link", "")


def test_revisions_as_full_sha_and_encoded_names(site: Site, http: httpx2.Client) -> None:
    old = site.files[(MINILM, site.minilm_v1)]["README.md"]
    for rev in (site.minilm_v1, "v1.0", "release%2F1.0", site.minilm_v1[:12]):
        r = http.get(f"/{MINILM}/resolve/{rev}/README.md")
        assert r.status_code == 200 and r.content == old, rev
        assert r.headers["x-repo-commit"] == site.minilm_v1
        info = http.get(f"/api/models/{MINILM}/revision/{rev}")
        assert info.status_code == 200 and info.json()["sha"] == site.minilm_v1
        tree = http.get(f"/api/models/{MINILM}/tree/{rev}/1_Pooling")
        assert tree.status_code == 200 and [e["path"] for e in tree.json()] == ["1_Pooling/config.json"]
    r = http.post(f"/api/models/{MINILM}/paths-info/release%2F1.0", data={"paths": ["README.md", "extra.txt"]})
    assert r.status_code == 200 and [e["path"] for e in r.json()] == ["README.md"]
    for rev in ("refs%2Fpr%2F1", "feat%2Fx", "0" * 40, "v9"):
        r = http.head(f"/{MINILM}/resolve/{rev}/README.md")
        assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound", rev
        r = http.get(f"/api/models/{MINILM}/revision/{rev}")
        assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound", rev
    # the raw slash form is a different file path, not the tag
    r = http.head(f"/{MINILM}/resolve/release/1.0/README.md")
    assert r.status_code == 404


# ========================================================================================= hostile requests
def _raw(
    server: ServeProcess, method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, str]:
    """A request with the path sent exactly as given (httpx would normalise dot segments)."""
    conn = httplib.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in {**(headers or {}), "Content-Length": str(len(body or b""))}.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read(), str(resp.headers)
    finally:
        conn.close()


HOSTILE = [
    "/{m}/resolve/main/../../../canary.txt",
    "/{m}/resolve/main/../../../../../../../../etc/passwd",
    "/{m}/resolve/main/%2e%2e/%2e%2e/%2e%2e/canary.txt",
    "/{m}/resolve/main/%2E%2E%2F%2E%2E%2F%2E%2E%2Fcanary.txt",
    "/{m}/resolve/main/1_Pooling%2F..%2F..%2F..%2F..%2Fcanary.txt",
    "/{m}/resolve/main/%2Fetc%2Fpasswd",
    "/{m}/resolve/main//etc/passwd",
    "/{m}/resolve/main/{abs}",
    "/{m}/resolve/main/config.json%00.txt",
    "/{m}/resolve/main/..%5C..%5C..%5Ccanary.txt",
    "/{m}/resolve/main/1_Pooling\\config.json",
    "/{m}/resolve/main/C:%5Ccanary.txt",
    "/{m}/resolve/..%2F..%2F..%2Fcanary.txt/config.json",
    "/{m}/resolve/%2e%2e/config.json",
    "/{m}/resolve/main%00/config.json",
    "/{m}/resolve/main%0D%0AX-Injected:%201/config.json",
    "/{m}/resolve/main/a%0D%0AX-Injected:%201",
    "/{m}/resolve/main/caf%C3%A9%FF.json",
    "/{m}/resolve/" + "a" * 10_000 + "/config.json",
    "/{m}/resolve/main/" + "a/" * 5_000 + "x",
    "/{m}/resolve/main/" + "b" * 10_000,
    "/../../canary.txt/resolve/main/config.json",
    "/%2e%2e/%2e%2e/resolve/main/canary.txt",
    "/datasets/..%2F..%2F/resolve/main/canary.txt",
    "/api/models/{m}/tree/main/..%2F..%2F..",
    "/api/models/{m}/tree/main/%2e%2e/%2e%2e?recursive=true",
    "/api/models/{m}/tree/main/%2Fetc",
    "/api/models/{m}/tree/..%2F..%2F..%2Fcanary.txt?recursive=true",
    "/api/models/{m}/tree/main?recursive=true&cursor=abc",
    "/api/models/{m}/tree/main?cursor=-5",
    "/api/models/{m}/tree/main?cursor=99999999999999999999999",
    "/api/models/{m}/revision/%00",
    "/api/models/{m}/revision/" + "c" * 10_000,
    "/api/models/..%2F..%2Fcanary.txt",
    "/api/models/../../canary.txt",
    "/api/models?limit=abc",
    "/api/models?limit=-1&search=%00",
    "/api/datasets/{d}/tree/main/" + "%2e%2e%2f" * 50,
    "/lfs-upload/..%2F..%2Fcanary.txt/5?sig=x",
    "/lfs-verify/..%2F..%2Fcanary.txt?sig=x",
    "/{m}.git/info/lfs/objects/batch",
]


def test_hostile_requests_never_reach_outside_the_store(site: Site, server: ServeProcess) -> None:
    canary_abs = str(site.root / "canary.txt")
    statuses = {}
    for template in HOSTILE:
        target = template.replace("{m}", MINILM).replace("{d}", DATASET).replace("{abs}", canary_abs.lstrip("/"))
        for method in ("GET", "HEAD"):
            status, body, headers = _raw(server, method, target)
            statuses[(method, target[:80])] = status
            assert 400 <= status < 500, (method, target[:200], status, body[:300])
            assert CANARY.strip() not in body and b"root:x:0:0" not in body
            assert CANARY.strip().decode() not in headers
            assert not any(line.lower().startswith("x-injected") for line in headers.splitlines())
    # paths-info and LFS verify/upload bodies with hostile paths: nothing outside the store either
    form = "&".join(
        f"paths={p}" for p in ("..%2F..%2Fcanary.txt", "%2Fetc%2Fpasswd", canary_abs, "..%5Ccanary.txt", "a%00b")
    )
    status, body, _ = _raw(
        server,
        "POST",
        f"/api/models/{MINILM}/paths-info/main",
        form.encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status in (200, 400) and CANARY.strip() not in body
    if status == 200:
        assert json.loads(body) == []
    for target, payload in [
        ("/lfs-upload/" + "0" * 64 + "/5?sig=x", b"hello"),
        ("/lfs-upload/..%2F..%2Fcanary.txt/5?sig=x", b"hello"),
    ]:
        status, body, _ = _raw(server, "PUT", target, payload)
        assert 400 <= status < 500 and CANARY.strip() not in body
    assert (site.root / "canary.txt").read_bytes() == CANARY  # and it was not overwritten


# ======================================================================================= page, latency, log
def test_search_page_lists_repos_with_card_metadata_and_the_repo_page_its_revisions(
    site: Site, http: httpx2.Client
) -> None:
    r = http.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    for name in (MINILM, MANY, DATASET):
        assert name in page
    assert "license: apache-2.0" in page and "pipeline: sentence-similarity" in page
    assert "license: cc-by-4.0" in page
    assert "600 files" in page
    repo_page = http.get(f"/{MINILM}").text
    for rev, sha in (("main", site.minilm_main), ("v1.0", site.minilm_v1), (TAG_WITH_SLASH, site.minilm_v1)):
        assert f">{rev}</a>" in repo_page and f"<code>{sha[:12]}</code>" in repo_page


def test_metadata_latency_on_loopback(site: Site, http: httpx2.Client) -> None:
    def median_ms(method: str, url: str, n: int = 200) -> float:
        for _ in range(20):  # warm caches and the connection
            http.request(method, url)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            r = http.request(method, url)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200
        return statistics.median(times) * 1000

    head = median_ms("HEAD", f"/{MINILM}/resolve/main/config.json")
    head_sha = median_ms("HEAD", f"/{MINILM}/resolve/{site.minilm_v1}/model.safetensors")
    info = median_ms("GET", f"/api/models/{MINILM}")
    info_rev = median_ms("GET", f"/api/models/{MINILM}/revision/v1.0")
    # the same over a bare http.client connection: what the server costs without httpx2's own overhead
    conn = httplib.HTTPConnection("127.0.0.1", http.base_url.port, timeout=30)
    times = []
    for i in range(220):
        t = time.perf_counter()
        conn.request("HEAD", f"/{MINILM}/resolve/main/config.json")
        resp = conn.getresponse()
        resp.read()
        times.append(time.perf_counter() - t)
        assert resp.status == 200
    conn.close()
    bare = statistics.median(times[20:]) * 1000
    print(
        f"\nserve latency (median of 200, keep-alive httpx2): HEAD resolve {head:.3f} ms, "
        f"HEAD resolve by sha (LFS) {head_sha:.3f} ms, repo info {info:.3f} ms, "
        f"repo info @tag {info_rev:.3f} ms; "
        f"HEAD resolve over bare http.client {bare:.3f} ms"
    )


def test_server_log_has_no_tracebacks(server: ServeProcess) -> None:
    log = server.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-5000:]
