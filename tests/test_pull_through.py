"""Pull-through (``serve.pull_through``): ``hubmirror serve`` with no ``repos:`` fetches what a client asks for
from the fake upstream on first use, once, verified, and keeps answering when upstream is gone.

Evidence comes from the real clients (``huggingface_hub``, ``transformers``) through ``HF_ENDPOINT`` and from
raw HTTP where a client would hide the status; the upstream's request log says what it was asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import MINILM, run_cli, write_config
from hubserver import HubServer, add_minilm
from servekit import EMBED_MINILM, ServeProcess, hf_client

UP_TOKEN = "upstream-token-of-the-mirror"
ADMIN = "pull-admin-token"
READER = "pull-reader-token"  # a user without read_private
PUBLIC = "org/small"
PRIVATE = "org/secret"
GATED = "org/gated"
DENIED = "blocked/thing"
DATA = "org/pulled-data"
DATA_FILES = {"README.md": b"---\nlicense: cc-by-4.0\n---\n# data\n", "data/train.csv": b"text,label\nhi,1\n"}
BIG = os.urandom(8 * 1024 * 1024)
HUGE = b"h" * (3 * 1024 * 1024)
LATE = os.urandom(3 * 1024 * 1024)
BAD = os.urandom(2_000_000)
BAD_SMALL = b"small and regular\n" * 1000
SMALL_FILES = {"config.json": b'{"hidden_size": 8}\n', "README.md": b"---\nlicense: mit\n---\n# small\n"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def eventually(check: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def pull_config(root: Path, up: HubServer, **pull: Any) -> Path:
    settings = {"enabled": True, "deny": ["blocked/*"], "max_file_size": "10MB", **pull}
    serve = {
        "token": ADMIN,
        "users": [{"name": "reader", "token": READER}],
        "pull_through": settings,
    }
    root.mkdir(parents=True, exist_ok=True)
    return write_config(root / "hubmirror.yaml", up.url, root / "home", [], serve=serve, upstream={"token": UP_TOKEN})


@dataclass
class World:
    root: Path
    up: HubServer
    serve: ServeProcess
    config: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    def get(self, path: str, token: str | None = None, method: str = "GET") -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx2.request(method, self.serve.url + path, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("pull")
    up = HubServer(root / "upstream", token=UP_TOKEN).start()
    up.lfs_threshold = 1024 * 1024
    up.commit(
        PUBLIC,
        {**SMALL_FILES, "big.bin": BIG, "huge.bin": HUGE, "bad.bin": BAD, "bad.txt": BAD_SMALL, "late.bin": LATE},
    )
    up.create_repo(PRIVATE, private=True)
    up.commit(PRIVATE, {"config.json": b'{"secret": true}\n'})
    up.create_repo(GATED, gated=True)
    up.commit(GATED, {"config.json": b'{"gated": true}\n'})
    up.commit(DENIED, {"config.json": b"{}\n"})
    up.commit(DATA, DATA_FILES, repo_type="dataset")
    config = pull_config(root, up, max_total_size="40MB")
    with ServeProcess(config, root / "serve.log") as serve:
        yield World(root, up, serve, config)
        assert serve.proc is not None and serve.proc.poll() is None, f"serve died:\n{serve.log()}"
        assert "Traceback" not in serve.log(), serve.log()
    up.stop()


def test_hf_hub_download_pulls_one_file_and_lists_the_whole_repo(world: World, tmp_path: Path) -> None:
    world.up.reset_log()
    r = hf_client(
        f"""
        from huggingface_hub import HfApi, hf_hub_download
        path = hf_hub_download({PUBLIC!r}, "config.json")
        info = HfApi().model_info({PUBLIC!r}, files_metadata=True)
        result = {{"text": open(path).read(), "sha": info.sha,
                  "files": sorted((s.rfilename, s.size) for s in info.siblings)}}
        """,
        world.serve.url,
        tmp_path / "cache",
    )
    assert r.ok, r
    assert r.result["text"] == SMALL_FILES["config.json"].decode()
    assert r.result["sha"] == world.up.head(PUBLIC)
    expected = {**SMALL_FILES, "big.bin": BIG, "huge.bin": HUGE, "bad.bin": BAD, "bad.txt": BAD_SMALL, "late.bin": LATE}
    assert r.result["files"] == sorted([p, len(b)] for p, b in expected.items())
    # one file was asked for: one file came from upstream (the rest of the listing costs nothing yet)
    assert world.up.count(path_contains="/resolve/") == 1
    # in the HF-cache view, as synced commits are (recorded just after the client had its verified bytes)
    view = world.home / "hf" / "hub" / f"models--{PUBLIC.replace('/', '--')}" / "snapshots" / world.up.head(PUBLIC)
    assert eventually((view / "config.json").exists)
    assert (view / "config.json").read_bytes() == SMALL_FILES["config.json"]
    status = json.loads(run_cli("-c", str(world.config), "status", "--json").stdout)
    small = next(r for r in status["repos"] if r["name"] == PUBLIC)
    assert small["pulled"] is True and small["refs"] == {"main": world.up.head(PUBLIC)}
    assert [c["files"] for c in small["commits"]] == [1]
    # the repo page lists every file; the card is fetched when someone downloads it
    page = world.get(f"/{PUBLIC}")
    assert page.status_code == 200 and "big.bin" in page.text and "not on this mirror yet" in page.text
    # it resolves offline now, like a synced file
    resolved = run_cli("-c", str(world.config), "resolve", PUBLIC, "config.json")
    assert resolved.returncode == 0, resolved.stderr
    assert Path(resolved.stdout.strip()).read_bytes() == SMALL_FILES["config.json"]


def test_snapshot_download_of_a_dataset_through_pull_through(world: World, tmp_path: Path) -> None:
    r = hf_client(
        f"""
        import os
        from huggingface_hub import snapshot_download
        folder = snapshot_download({DATA!r}, repo_type="dataset")
        result = {{os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f)).read()
                  for d, _, fs in os.walk(folder) for f in fs}}
        """,
        world.serve.url,
        tmp_path / "cache",
    )
    assert r.ok, r
    assert r.result == {path: data.decode() for path, data in DATA_FILES.items()}
    # datasets are kept apart from models: the same name as a model is another repo
    assert world.get(f"/api/models/{DATA}").status_code in (401, 404)


def test_eight_concurrent_clients_cause_one_upstream_download(world: World) -> None:
    world.up.reset_log()
    world.up.latency = 0.2  # every client's request arrives while the one fetch is under way
    bodies: list[bytes | int] = []
    lock = threading.Lock()

    def fetch() -> None:
        response = world.get(f"/{PUBLIC}/resolve/main/big.bin")
        with lock:
            bodies.append(response.content if response.status_code == 200 else response.status_code)

    try:
        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        world.up.latency = 0.0
    assert len(bodies) == 8 and all(body == BIG for body in bodies), [
        b if isinstance(b, int) else len(b) for b in bodies
    ]
    assert world.up.count(path_contains="big.bin") == 1  # upstream sent it once (its CDN redirect included)


def test_a_client_that_goes_away_does_not_cancel_the_fetch(world: World) -> None:
    world.up.reset_log()
    world.up.latency = 0.5
    try:
        with pytest.raises(httpx2.TimeoutException):
            httpx2.get(f"{world.serve.url}/{PUBLIC}/resolve/main/late.bin", timeout=0.2)  # gives up, disconnects
    finally:
        world.up.latency = 0.0
    blob = world.home / "blobs" / "sha256" / sha256(LATE)[:2] / sha256(LATE)
    assert eventually(blob.exists)  # the fetch went on without its client
    again = world.get(f"/{PUBLIC}/resolve/main/late.bin")
    assert again.status_code == 200 and again.content == LATE
    assert world.up.count(path_contains="/blobs/") == 1


def _received(url: str, headers: dict[str, str] | None = None) -> tuple[int | None, bytes]:
    """(status, body) of a GET; status None when the body ended short of its Content-Length."""
    got = b""
    try:
        with httpx2.stream("GET", url, headers=headers, timeout=60) as response:
            for chunk in response.iter_bytes():
                got += chunk
            return response.status_code, got
    except httpx2.RemoteProtocolError:
        return None, got


@pytest.mark.parametrize("name", ["bad.bin", "bad.txt"])
def test_a_corrupted_upstream_body_reaches_nobody_and_the_next_request_succeeds(world: World, name: str) -> None:
    """bad.bin (LFS) is asked for with a plain GET: streamed while it arrives; bad.txt (regular) with a Range:
    answered once stored."""
    good = BAD if name == "bad.bin" else BAD_SMALL
    where = "/blobs/" if name == "bad.bin" else name  # an LFS file's bytes come from the CDN
    world.up.faults.once("corrupt", path_contains=where)
    injected = world.up.faults.injected
    ranged = {"Range": "bytes=0-"} if name == "bad.txt" else None
    status, body = _received(f"{world.serve.url}/{PUBLIC}/resolve/main/{name}", ranged)
    assert world.up.faults.injected == injected + 1
    assert body != good and len(body) < len(good)  # nobody holds a complete file
    # the streamed one ends short of its length (its last byte was held back); the other is a 502
    assert status == (None if name == "bad.bin" else 502), (status, body[:200])
    blob = world.home / "blobs" / "sha256" / sha256(good)[:2] / sha256(good)
    assert not blob.exists()
    status, body = _received(f"{world.serve.url}/{PUBLIC}/resolve/main/{name}")
    assert status == 200 and body == good
    assert eventually(blob.exists)  # the client may finish before the store's rename: the bytes verified first


def test_a_range_request_for_a_file_not_pulled_yet_waits_for_it(world: World) -> None:
    response = httpx2.get(
        f"{world.serve.url}/{PUBLIC}/resolve/main/README.md", headers={"Range": "bytes=4-15"}, timeout=60
    )
    assert response.status_code == 206 and response.content == SMALL_FILES["README.md"][4:16]


def test_a_file_above_max_file_size_is_refused_with_the_sync_command(world: World) -> None:
    world.up.reset_log()
    big = pull_config(world.root / "small-limit", world.up, max_file_size="1MB")
    with ServeProcess(big, world.root / "small-limit.log") as serve:
        response = httpx2.get(f"{serve.url}/{PUBLIC}/resolve/main/huge.bin", timeout=60)
    assert response.status_code == 413, response.text
    assert f"hubmirror sync {PUBLIC}" in response.json()["error"]
    assert response.headers["X-Error-Code"] == "PullThroughTooLarge"
    assert world.up.count(path_contains="huge.bin") == 0


def test_max_total_size_stops_pulls_past_it(world: World) -> None:
    tight = pull_config(world.root / "total-limit", world.up, max_total_size="1MB")
    with ServeProcess(tight, world.root / "total-limit.log") as serve:
        small = httpx2.get(f"{serve.url}/{PUBLIC}/resolve/main/config.json", timeout=60)
        past = httpx2.get(f"{serve.url}/{PUBLIC}/resolve/main/huge.bin", timeout=60)
    assert small.status_code == 200
    assert past.status_code == 413 and "max_total_size" in past.json()["error"], past.text


def test_a_denied_repo_answers_403_with_what_to_do(world: World, tmp_path: Path) -> None:
    raw = world.get(f"/api/models/{DENIED}/revision/main")
    assert raw.status_code == 403
    assert "hubmirror sync" in raw.json()["error"] and raw.headers["X-Error-Code"] == "PullThroughDenied"
    r = hf_client(
        f"from huggingface_hub import HfApi\nHfApi().model_info({DENIED!r})", world.serve.url, tmp_path / "cache"
    )
    assert not r.ok and r.status == 403 and "hubmirror sync" in r.message, r
    assert world.up.count(path_contains=DENIED) == 0


def test_a_private_repo_is_pulled_only_for_a_caller_who_may_read_private_repos(world: World, tmp_path: Path) -> None:
    code = f"""
        from huggingface_hub import hf_hub_download
        result = open(hf_hub_download({PRIVATE!r}, "config.json")).read()
        """
    world.up.reset_log()
    anonymous = hf_client(code, world.serve.url, tmp_path / "a")
    assert anonymous.raised("RepositoryNotFoundError"), anonymous
    for _ in range(3):
        assert world.get(f"/api/models/{PRIVATE}/revision/main").status_code in (401, 404)
    assert world.up.count(path_contains=f"{PRIVATE}/revision/main") == 1  # upstream's "private" is remembered
    reader = hf_client(code, world.serve.url, tmp_path / "r", HF_TOKEN=READER)
    assert reader.raised("RepositoryNotFoundError"), reader
    assert world.get(f"/api/models/{PRIVATE}").status_code in (401, 404)
    admin = hf_client(code, world.serve.url, tmp_path / "ad", HF_TOKEN=ADMIN)
    assert admin.ok and admin.result == '{"secret": true}\n', admin
    # stored with upstream's flags: still invisible to the others
    again = hf_client(code, world.serve.url, tmp_path / "a2")
    assert again.raised("RepositoryNotFoundError"), again
    assert world.get(f"/api/models/{PRIVATE}", READER).status_code == 404
    status = json.loads(run_cli("-c", str(world.config), "status", "--json").stdout)
    assert next(r for r in status["repos"] if r["name"] == PRIVATE)["private"] is True


def test_a_gated_repo_is_not_pulled_for_an_anonymous_caller(world: World) -> None:
    assert world.get(f"/{GATED}/resolve/main/config.json").status_code in (401, 404)
    assert world.get(f"/{GATED}/resolve/main/config.json", READER).status_code == 404
    admin = world.get(f"/{GATED}/resolve/main/config.json", ADMIN)
    assert admin.status_code == 200 and admin.content == b'{"gated": true}\n'
    # now mirrored and gated: metadata is public, the files are not
    assert world.get(f"/api/models/{GATED}").status_code == 200
    assert world.get(f"/{GATED}/resolve/main/config.json").status_code in (401, 403)


def test_a_repo_upstream_does_not_have_answers_404(world: World, tmp_path: Path) -> None:
    r = hf_client(
        "from huggingface_hub import HfApi\nHfApi().model_info('org/never-was')", world.serve.url, tmp_path / "c"
    )
    assert r.raised("RepositoryNotFoundError"), r
    missing = world.get(f"/{PUBLIC}/resolve/main/no-such-file.txt")
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "EntryNotFound"
    # upstream's "no such repo" is remembered for a while: asking again costs upstream nothing
    world.up.reset_log()
    for _ in range(3):
        assert world.get("/api/models/org/never-was").status_code in (401, 404)
        assert world.get(f"/api/models/{PUBLIC}/revision/no-such-branch").status_code == 404
    assert world.up.count(path_contains="never-was") == 0
    assert world.up.count(path_contains="no-such-branch") == 1


def test_hostile_names_never_reach_upstream(world: World) -> None:
    world.up.reset_log()
    paths = [
        "/api/models/..%2F..%2Fapi%2Fwhoami-v2/revision/main",
        "/api/models/org/..%2Fsecret/revision/main",
        "/api/models/org/na%00me/revision/main",
        "/api/models/" + "a" * 200 + "/revision/main",
        f"/api/models/{PUBLIC}/revision/" + "x" * 300,
        "/api/spaces/org/some-space/revision/main",
        "/org/.hidden/resolve/main/config.json",
    ]
    for path in paths:
        response = world.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code)
    assert world.up.count() == 0, [e.path for e in world.up.requests][:5]


# ============================================================== a cold model load, then upstream gone
@pytest.fixture
def minilm_world(tmp_path: Path) -> Iterator[World]:
    up = HubServer(tmp_path / "upstream", token=UP_TOKEN).start()
    try:
        add_minilm(up)
        config = pull_config(
            tmp_path, up, metadata_ttl="0s", max_file_size="1GB"
        )  # every request asks upstream while it is there
        with ServeProcess(config, tmp_path / "serve.log") as serve:
            yield World(tmp_path, up, serve, config)
            assert serve.proc is not None and serve.proc.poll() is None, f"serve died:\n{serve.log()}"
    finally:
        up.stop()


EMBED = (
    EMBED_MINILM
    + f"""
from huggingface_hub import HfApi
config, remote = embed({MINILM!r})
_, local = embed(str(minilm_dir()))
api = HfApi()
result = {{"diff": float((remote - local).abs().max()), "hidden": config.hidden_size,
          "sha": api.model_info({MINILM!r}).sha, "refs": [b.name for b in api.list_repo_refs({MINILM!r}).branches],
          "files": len(api.list_repo_files({MINILM!r}))}}
"""
)


def test_cold_from_pretrained_through_pull_through_then_with_upstream_stopped(
    minilm_world: World, tmp_path: Path
) -> None:
    w = minilm_world
    head = w.up.head(MINILM)
    listed = httpx2.get(
        f"{w.up.url}/api/models/{MINILM}/tree/main?recursive=1", headers={"Authorization": f"Bearer {UP_TOKEN}"}
    ).json()
    env = {"PYTHONPATH": str(Path(__file__).parent)}
    cold = hf_client(EMBED, w.serve.url, tmp_path / "cold", timeout=240, **env)
    assert cold.ok, cold
    assert cold.result["diff"] <= 1e-6 and cold.result["hidden"] == 384 and cold.result["sha"] == head
    assert cold.result["files"] == sum(1 for e in listed if e["type"] == "file")
    fetched = w.up.count(path_contains="/resolve/")
    assert fetched >= 3  # config, tokenizer files, weights: each once
    w.up.stop()
    # a new client, empty cache, upstream gone: the same load works, and metadata still answers
    warm = hf_client(EMBED, w.serve.url, tmp_path / "warm", timeout=240, **env)
    assert warm.ok, warm
    assert warm.result["diff"] <= 1e-6 and warm.result["sha"] == head and warm.result["refs"] == ["main"]
    assert warm.result["files"] == cold.result["files"]
    assert "serving the last commit mirrored here" in w.serve.log()
    # and offline, from the store: the pulled files resolve with no server at all
    resolved = run_cli("-c", str(w.config), "resolve", MINILM, "config.json")
    assert resolved.returncode == 0, resolved.stderr


def test_a_revision_answer_is_trusted_for_metadata_ttl(tmp_path: Path) -> None:
    with HubServer(tmp_path / "upstream", token=UP_TOKEN) as up:
        first = up.commit(PUBLIC, {"a.txt": b"one\n"})
        config = pull_config(tmp_path, up, metadata_ttl="10m")
        with ServeProcess(config, tmp_path / "serve.log") as serve:
            got = httpx2.get(f"{serve.url}/api/models/{PUBLIC}/revision/main", timeout=30).json()
            assert got["sha"] == first
            second = up.commit(PUBLIC, {"a.txt": b"two\n"})
            up.reset_log()
            cached = httpx2.get(f"{serve.url}/{PUBLIC}/resolve/main/a.txt", timeout=30)
            assert cached.content == b"one\n" and cached.headers["X-Repo-Commit"] == first
            assert up.count(path_contains="/revision/") == 0  # within the TTL: upstream not asked
            pinned = httpx2.get(f"{serve.url}/{PUBLIC}/resolve/{second}/a.txt", timeout=30)
            assert pinned.content == b"two\n"  # a commit sha is fetched at once: it never changes


def test_upstream_answering_503_serves_the_last_good_commit(tmp_path: Path) -> None:
    with HubServer(tmp_path / "upstream", token=UP_TOKEN) as up:
        first = up.commit(PUBLIC, {"a.txt": b"one\n"})
        config = pull_config(tmp_path, up, metadata_ttl="0s")
        with ServeProcess(config, tmp_path / "serve.log") as serve:
            assert httpx2.get(f"{serve.url}/{PUBLIC}/resolve/main/a.txt", timeout=30).content == b"one\n"
            up.faults.set(rate=1.0, kinds=["503"], paths="/revision/")
            down = httpx2.get(f"{serve.url}/api/models/{PUBLIC}", timeout=60)
            assert down.status_code == 200 and down.json()["sha"] == first
            file = httpx2.get(f"{serve.url}/{PUBLIC}/resolve/main/a.txt", timeout=60)
            assert file.status_code == 200 and file.content == b"one\n"
            up.faults.clear()
            assert up.faults.injected >= 1
            assert "upstream could not answer" in serve.log()


def test_upstream_down_before_a_repo_was_ever_pulled_is_a_clear_503(tmp_path: Path) -> None:
    up = HubServer(tmp_path / "upstream", token=UP_TOKEN).start()
    config = pull_config(tmp_path, up)
    up.stop()
    with ServeProcess(config, tmp_path / "serve.log") as serve:
        response = httpx2.get(f"{serve.url}/api/models/{PUBLIC}", timeout=60)
    assert response.status_code == 503, response.text
    assert "upstream could not be asked" in response.json()["error"]


def test_a_listed_repo_is_never_pulled(tmp_path: Path) -> None:
    with HubServer(tmp_path / "upstream", token=UP_TOKEN) as up:
        up.commit(PUBLIC, {"a.txt": b"one\n"})
        config = pull_config(tmp_path, up)
        text = config.read_text().replace("repos: []", f"repos:\n- repo: {PUBLIC}")
        config.write_text(text)
        with ServeProcess(config, tmp_path / "serve.log") as serve:
            response = httpx2.get(f"{serve.url}/{PUBLIC}/resolve/main/a.txt", timeout=30)
        assert response.status_code in (401, 404)  # sync's to fetch: 'hubmirror sync' has not run
        assert up.count(path_contains="a.txt") == 0
