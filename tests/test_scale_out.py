"""The scale-out setup end to end, with real parts only: blobs in S3-compatible object storage (moto's server,
tests/s3kit.py), the index in PostgreSQL (tests/pgkit.py), ``hubmirror serve`` replicas with their own homes
behind HAProxy (tests/lbkit.py), and the real ``huggingface_hub`` (and ``transformers``) client.

* ``hubmirror sync`` puts every blob in the bucket (one object per sha256, a large one as a multipart upload)
  and none in the home; a second sync fetches nothing.
* Two replicas, each with a fresh home of its own and the same config otherwise, answer ``snapshot_download``.
* Behind the balancer, the replica streaming a large file is killed mid-transfer: the client resumes on the
  other with a Range request and gets the right bytes.
* ``serve.redirect: presigned``: LFS files answer 302 to a presigned object URL with the Hub's headers, and
  the real clients download through it.
* ``resolve`` from the home alone, ``hf-cache --dir`` (real files), and an export/import round trip through a
  plain local store into a fresh S3 + PostgreSQL site.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import run_cli, write_config
from hubserver import HubServer, make_small_files
from lbkit import balancer
from pgkit import PASSWORD, Cluster
from s3kit import AWS_SETTINGS, FOREIGN_AWS_VARS, S3Bucket, S3Server
from servekit import ServeProcess, hf_client, read_tree

from hubmirror.store._s3 import PART_SIZE

pytestmark = pytest.mark.timeout(600)

MANY, BIG = "org/many", "org/big"
BIG_FILE = "model.bin"
BIG_SIZE = 48 * 1024 * 1024  # more than one S3 part: a multipart upload
BERT_CONFIG = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_attention_heads": 2,
    "num_hidden_layers": 1,
    "intermediate_size": 37,
    "vocab_size": 99,
}
CLI_TIMEOUT = 240
BLOB_PREFIX = "store/blobs/sha256/"
HEALTH_PATH = "/api/health"  # serve answers 200 while it can read its index


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ScaleSite:
    root: Path
    home: Path
    config: Path
    upstream: HubServer
    s3: S3Server
    bucket: S3Bucket
    db_url: str  # without password: PGPASSWORD carries it
    files: dict[str, dict[str, bytes]]
    commits: dict[str, str]
    repos: list[dict[str, Any]]
    first_sync: dict[str, Any] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """What every hubmirror process of the site needs: the S3 credentials and the database password."""
        return {**AWS_SETTINGS, "PGPASSWORD": PASSWORD}

    def cli(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **kw.pop("env", {})}
        kw.setdefault("timeout", CLI_TIMEOUT)
        return run_cli(*args, env=env, **kw)

    def config_for(self, name: str, home: Path, **serve: Any) -> Path:
        """The site's config with another home (a replica's) and these serve settings."""
        extra: dict[str, Any] = {
            "store": {"url": self.bucket.url, "endpoint_url": self.bucket.endpoint_url},
            "index": {"url": self.db_url},
        }
        if serve:
            extra["serve"] = serve
        return write_config(self.root / name, self.upstream.url, home, self.repos, **extra)

    def replica(self, stack: ExitStack, name: str, config: Path | None = None, **serve: Any) -> ServeProcess:
        """A started ``hubmirror serve`` over the site with a fresh home of its own; stopped with ``stack``."""
        config = config or self.config_for(f"{name}.yaml", self.root / f"{name}-home", **serve)
        proc = ServeProcess(config, self.root / f"{name}.log", extra_env=self.env)
        return stack.enter_context(proc)


def bucket_blobs(s3: S3Server, bucket: str) -> dict[str, str]:
    """sha256 → object key of every blob object in ``bucket``."""
    found: dict[str, str] = {}
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=BLOB_PREFIX):
        for item in page.get("Contents", []):
            found[item["Key"].rsplit("/", 1)[1]] = item["Key"]
    return found


def local_blob_files(home: Path) -> list[Path]:
    return [p for p in (home / "blobs").rglob("*") if p.is_file()] if (home / "blobs").exists() else []


@pytest.fixture(scope="module")
def site(pg_cluster: Cluster, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleSite]:
    root = tmp_path_factory.mktemp("scale")
    with pytest.MonkeyPatch.context() as mp:  # nothing of the developer's own AWS setup reaches a process
        for name in FOREIGN_AWS_VARS:
            mp.delenv(name, raising=False)
        upstream = HubServer(root / "upstream").start()
        try:
            files = {
                MANY: make_small_files(60, seed=11),
                BIG: {
                    BIG_FILE: os.urandom(BIG_SIZE),
                    "config.json": json.dumps(BERT_CONFIG, indent=2).encode() + b"\n",
                },
            }
            commits = {name: upstream.commit(name, data) for name, data in files.items()}
            assert upstream.file_entry(BIG, BIG_FILE).blob.sha256 == sha256(files[BIG][BIG_FILE])
            bucket = s3_server.bucket("scale")
            db = pg_cluster.database("scale").rsplit("/", 1)[1]
            repos: list[dict[str, Any]] = [{"repo": MANY}, {"repo": BIG}]
            home = root / "home"
            site = ScaleSite(
                root,
                home,
                root / "hubmirror.yaml",
                upstream,
                s3_server,
                bucket,
                pg_cluster.url(db, password=False),
                files,
                commits,
                repos,
            )
            site.config = site.config_for("hubmirror.yaml", home)
            result = site.cli("-c", str(site.config), "sync", "--json")
            assert result.returncode == 0, result.stdout + result.stderr
            site.first_sync = json.loads(result.stdout)
            yield site
        finally:
            upstream.stop()


# ============================================================================ sync into S3 + PostgreSQL
def test_sync_puts_every_blob_in_the_bucket_and_none_in_the_home(site: ScaleSite) -> None:
    assert site.first_sync["files_fetched"] == 62, site.first_sync
    assert local_blob_files(site.home) == []
    assert not (site.home / "index.sqlite").exists()
    assert (site.home / "index.url").read_text().strip() == site.db_url  # recorded, without password
    assert site.bucket.bucket in (site.home / "store.json").read_text()
    # one object per blob, at store/blobs/sha256/ab/<sha256>
    objects = bucket_blobs(site.s3, site.bucket.bucket)
    wanted = {sha256(data) for repo in site.files.values() for data in repo.values()}
    assert set(objects) == wanted
    for digest, key in objects.items():
        assert key == f"{BLOB_PREFIX}{digest[:2]}/{digest}"
    client = site.s3.client()
    big = sha256(site.files[BIG][BIG_FILE])
    small = sorted(sha256(data) for data in site.files[MANY].values())[:3]
    for digest in [big, *small]:
        body = client.get_object(Bucket=site.bucket.bucket, Key=objects[digest])["Body"].read()
        assert sha256(body) == digest
    # the large blob went up in parts (an S3 multipart ETag ends in -<number of parts>)
    etag = client.head_object(Bucket=site.bucket.bucket, Key=objects[big])["ETag"].strip('"')
    assert etag.endswith(f"-{math.ceil(BIG_SIZE / PART_SIZE)}"), etag
    # nothing changed upstream: nothing is fetched again
    again = site.cli("-c", str(site.config), "sync", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["files_fetched"] == 0, again.stdout
    assert PASSWORD not in again.stdout + again.stderr
    assert local_blob_files(site.home) == []


# ============================================================================ replicas
SNAPSHOTS = f"""
from huggingface_hub import snapshot_download
result = [snapshot_download({MANY!r}), snapshot_download({BIG!r})]
"""


def check_snapshots(site: ScaleSite, paths: list[str]) -> None:
    """``paths`` are the snapshot folders of MANY and BIG the client returned."""
    for name, path in zip((MANY, BIG), paths, strict=True):
        assert Path(path).name == site.commits[name]
        assert read_tree(Path(path)) == site.files[name], name


def test_two_replicas_with_their_own_homes_serve_the_same_bytes(site: ScaleSite) -> None:
    with ExitStack() as stack:
        replicas = [site.replica(stack, name) for name in ("replica-a", "replica-b")]
        assert replicas[0].port != replicas[1].port
        for n, replica in enumerate(replicas):
            result = hf_client(SNAPSHOTS, replica.url, site.root / f"hf-replica-{n}", timeout=180)
            assert result.ok, (result, replica.log()[-3000:])
            check_snapshots(site, result.result)
        for replica in replicas:
            assert replica.proc is not None and replica.proc.poll() is None, replica.log()
            assert PASSWORD not in replica.log()
    for name in ("replica-a", "replica-b"):
        assert local_blob_files(site.root / f"{name}-home") == []  # a replica's home keeps no blobs


# ============================================================================ a replica dies mid-download
RATE = 16 * 1024 * 1024  # bytes/s the client takes in: the transfer lasts seconds, not a fraction of one
KILL_AFTER = 4 * 1024 * 1024  # bytes the client holds when the serving replica is killed

SLOW_DOWNLOAD = f"""
import time
import huggingface_hub.constants
from huggingface_hub import hf_hub_download
from tqdm import tqdm

huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE = 64 * 1024

class Slow(tqdm):
    # a slow link: the client reads at {RATE} bytes/s (TCP pushes back on the server through the balancer)
    def __init__(self, *args, **kwargs):
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)

    def update(self, n=1):
        time.sleep(max(n, 0) / {RATE})
        return super().update(n)

path = hf_hub_download({BIG!r}, {BIG_FILE!r}, tqdm_class=Slow)
import hashlib
with open(path, "rb") as f:
    result = [path, hashlib.file_digest(f, "sha256").hexdigest()]
"""


def bytes_sent(port: int) -> int:
    """Bytes sent so far on the established TCP connections whose local port is ``port`` (a replica's accepted
    connections, from the kernel's TCP info via ``ss``): the replica streaming the file has sent megabytes, an
    idle one a few health-check answers on connections already closed."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    return sum(int(n) for n in re.findall(r"bytes_sent:(\d+)", out))


def incomplete_bytes(cache: Path) -> int:
    sizes = [p.stat().st_size for p in cache.rglob("*.incomplete") if p.is_file()]
    return max(sizes, default=0)


def test_a_replica_killed_mid_download_behind_the_balancer(site: ScaleSite) -> None:
    cache = site.root / "hf-lb"
    with ExitStack() as stack:
        replicas = [site.replica(stack, name, access_log=True) for name in ("lb-a", "lb-b")]
        lb = stack.enter_context(balancer([f"127.0.0.1:{r.port}" for r in replicas], check_path=HEALTH_PATH))
        assert httpx2.get(lb.url + HEALTH_PATH, timeout=10).status_code == 200
        pool = stack.enter_context(ThreadPoolExecutor(1))
        download = pool.submit(hf_client, SLOW_DOWNLOAD, lb.url, cache, timeout=180)
        deadline = time.monotonic() + 90
        while incomplete_bytes(cache) < KILL_AFTER:
            assert not download.done(), f"the download ended before it could be cut: {download.result()}"
            assert time.monotonic() < deadline, "the download did not start"
            time.sleep(0.02)
        # the replica serving it is the one that has sent megabytes to the balancer
        sent = [bytes_sent(r.port) for r in replicas]
        serving = sent.index(max(sent))
        assert sent[serving] >= KILL_AFTER and sent[1 - serving] < 1024 * 1024, sent
        victim, survivor = replicas[serving], replicas[1 - serving]
        assert victim.proc is not None
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(timeout=30)
        held = incomplete_bytes(cache)
        assert held < BIG_SIZE, "the file was complete before the replica was killed"
        result = download.result(timeout=200)
        assert result.ok, (result, lb.log(), survivor.log()[-3000:])
        path, digest = result.result
        assert digest == sha256(site.files[BIG][BIG_FILE])
        assert Path(path).read_bytes() == site.files[BIG][BIG_FILE]
        # the client resumed where it was cut (a Range request answered 206 by the survivor), not from zero
        resume = f'"GET /{BIG}/resolve/main/{BIG_FILE}" 206'
        assert resume in survivor.log(), (held, survivor.log()[-3000:])
        assert f'"GET /{BIG}/resolve/main/{BIG_FILE}" 200' not in victim.log()  # killed before it finished
        assert survivor.proc is not None and survivor.proc.poll() is None, survivor.log()


# ============================================================================ presigned redirects
def test_presigned_mode_redirects_lfs_files_to_the_object_store(site: ScaleSite) -> None:
    big = site.files[BIG][BIG_FILE]
    with ExitStack() as stack:
        replica = site.replica(stack, "presigned", redirect="presigned")
        head = httpx2.head(f"{replica.url}/{BIG}/resolve/main/{BIG_FILE}", follow_redirects=False, timeout=30)
        assert head.status_code == 302, (head.status_code, head.headers, replica.log())
        location = head.headers["location"]
        assert location.startswith(f"{site.bucket.endpoint_url}/"), location
        assert sha256(big) in location and site.bucket.bucket in location
        assert head.headers["x-repo-commit"] == site.commits[BIG]
        assert head.headers["x-linked-etag"] == f'"{sha256(big)}"'
        assert head.headers["x-linked-size"] == str(len(big))
        fetched = httpx2.get(location, timeout=60)  # the URL itself works, without any credentials
        assert fetched.status_code == 200 and sha256(fetched.content) == sha256(big)
        # a non-LFS file is streamed by the replica itself
        config = httpx2.get(f"{replica.url}/{BIG}/resolve/main/config.json", follow_redirects=False, timeout=30)
        assert config.status_code == 200 and config.content == site.files[BIG]["config.json"]
        result = hf_client(
            f"""
            import hashlib
            from huggingface_hub import hf_hub_download, snapshot_download
            from transformers import AutoConfig
            one = hf_hub_download({BIG!r}, {BIG_FILE!r}, cache_dir={str(site.root / "hf-presigned-one")!r})
            with open(one, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            config = AutoConfig.from_pretrained({BIG!r})
            result = [digest, snapshot_download({MANY!r}), snapshot_download({BIG!r}),
                      config.model_type, config.hidden_size, config.num_hidden_layers]
            """,
            replica.url,
            site.root / "hf-presigned",
            timeout=240,
        )
        assert result.ok, (result, replica.log()[-3000:])
        digest, many, whole, model_type, hidden, layers = result.result
        assert digest == sha256(big)
        check_snapshots(site, [many, whole])
        assert (model_type, hidden, layers) == ("bert", 32, 1)
        assert replica.proc is not None and replica.proc.poll() is None, replica.log()


# ============================================================================ resolve and hf-cache
def test_resolve_from_the_home_alone_finds_the_bucket_and_the_database(site: ScaleSite, tmp_path: Path) -> None:
    for name in (MANY, BIG):
        result = site.cli("--home", str(site.home), "resolve", name, cwd=tmp_path)  # no config anywhere
        assert result.returncode == 0, result.stdout + result.stderr
        snapshot = Path(result.stdout.strip())
        assert snapshot.name == site.commits[name]
        assert read_tree(snapshot) == site.files[name], name
    one = site.cli("--home", str(site.home), "resolve", BIG, "config.json", cwd=tmp_path)
    assert one.returncode == 0, one.stdout + one.stderr
    assert Path(one.stdout.strip()).read_bytes() == site.files[BIG]["config.json"]


def test_resolve_on_a_machine_with_only_the_config(site: ScaleSite, tmp_path: Path) -> None:
    """A GPU node: the site's config with a home of its own that does not exist yet; resolve lays out just
    the commit asked for, copied down from the bucket."""
    config = site.config_for("node", tmp_path / "node-home")
    result = site.cli("-c", str(config), "resolve", MANY, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    snapshot = Path(result.stdout.strip())
    assert snapshot.is_relative_to(tmp_path / "node-home") and read_tree(snapshot) == site.files[MANY]
    assert not any((tmp_path / "node-home" / "hf").rglob(f"*{site.commits[BIG]}*"))  # nothing else copied


def test_hf_cache_lays_out_real_files(site: ScaleSite, tmp_path: Path) -> None:
    view = tmp_path / "view"
    result = site.cli("-c", str(site.config), "hf-cache", "--dir", str(view), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (MANY, BIG):
        folder = view / ("models--" + name.replace("/", "--"))
        blobs = list((folder / "blobs").iterdir())
        assert blobs and all(p.is_file() and not p.is_symlink() for p in blobs), name  # copies, no links out
        snapshot = folder / "snapshots" / site.commits[name]
        for entry in snapshot.rglob("*"):
            if entry.is_symlink():  # the client's own layout: snapshot entries link into ../blobs, inside DIR
                assert entry.resolve().is_relative_to(folder / "blobs"), entry
        assert read_tree(snapshot) == site.files[name], name
        assert (folder / "refs" / "main").read_text() == site.commits[name]


# ============================================================================ export / import round trip
def test_a_bundle_carries_the_site_through_a_local_store_into_a_new_site(
    site: ScaleSite, pg_cluster: Cluster, tmp_path: Path
) -> None:
    first = tmp_path / "first.tar"
    exported = site.cli("-c", str(site.config), "export", str(first), "--json")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    # S3 + PostgreSQL → a plain local store (no config)
    local = tmp_path / "local-home"
    imported = site.cli("--home", str(local), "import", str(first), "--json", cwd=tmp_path)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert (local / "index.sqlite").exists() and not (local / "index.url").exists()
    assert {p.name for p in local_blob_files(local)} == {
        sha256(data) for repo in site.files.values() for data in repo.values()
    }
    second = tmp_path / "second.tar"
    back = site.cli("--home", str(local), "export", str(second), "--json", cwd=tmp_path)
    assert back.returncode == 0, back.stdout + back.stderr
    # the local store → a fresh S3 + PostgreSQL site (new bucket, new database, new home)
    bucket = site.s3.bucket("moved")
    db = pg_cluster.database("moved").rsplit("/", 1)[1]
    new_home = tmp_path / "new-home"
    new_config = write_config(
        tmp_path / "new.yaml",
        site.upstream.url,
        new_home,
        site.repos,
        store={"url": bucket.url, "endpoint_url": bucket.endpoint_url},
        index={"url": pg_cluster.url(db, password=False)},
    )
    moved = site.cli("-c", str(new_config), "import", str(second), "--json")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert local_blob_files(new_home) == []
    assert set(bucket_blobs(site.s3, bucket.bucket)) == set(bucket_blobs(site.s3, site.bucket.bucket))
    verified = site.cli("-c", str(new_config), "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with ExitStack() as stack:
        replica_config = write_config(
            tmp_path / "new-replica.yaml",
            site.upstream.url,
            tmp_path / "new-replica-home",
            site.repos,
            store={"url": bucket.url, "endpoint_url": bucket.endpoint_url},
            index={"url": pg_cluster.url(db, password=False)},
        )
        replica = site.replica(stack, "new-replica", replica_config)
        result = hf_client(SNAPSHOTS, replica.url, tmp_path / "hf-new", timeout=180)
        assert result.ok, (result, replica.log()[-3000:])
        check_snapshots(site, result.result)


# ============================================================================ gc over the object store
def test_gc_deletes_objects_no_kept_commit_uses(
    pg_cluster: Cluster, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site of its own (gc must not touch the shared one): a file replaced upstream, synced twice; gc with
    no history kept deletes the old object from the bucket and its row, and the store still verifies."""
    for name in FOREIGN_AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    upstream = HubServer(tmp_path / "upstream").start()
    try:
        upstream.lfs_threshold = 1024
        old, new = os.urandom(50_000), os.urandom(60_000)
        upstream.commit("org/gc", {"weights.bin": old, "config.json": b"{}\n"})
        bucket = s3_server.bucket("gc")
        db = pg_cluster.database("gc").rsplit("/", 1)[1]
        config = write_config(
            tmp_path / "hubmirror.yaml",
            upstream.url,
            tmp_path / "home",
            [{"repo": "org/gc"}],
            store={"url": bucket.url, "endpoint_url": bucket.endpoint_url},
            index={"url": pg_cluster.url(db, password=False)},
            gc={"keep_previous": 0, "grace": "0s"},
        )
        env = {**AWS_SETTINGS, "PGPASSWORD": PASSWORD}
        assert run_cli("-c", str(config), "sync", env=env).returncode == 0
        upstream.commit("org/gc", {"weights.bin": new})
        assert run_cli("-c", str(config), "sync", env=env).returncode == 0
        assert {sha256(old), sha256(new)} <= set(bucket_blobs(s3_server, bucket.bucket))
        gc = run_cli("-c", str(config), "gc", "--json", env=env, timeout=CLI_TIMEOUT)
        assert gc.returncode == 0, gc.stdout + gc.stderr
        assert json.loads(gc.stdout)["blobs_deleted"] == 1, gc.stdout
        left = set(bucket_blobs(s3_server, bucket.bucket))
        assert sha256(old) not in left and sha256(new) in left
        verify = run_cli("-c", str(config), "verify", "--json", env=env, timeout=CLI_TIMEOUT)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        resolved = run_cli("-c", str(config), "resolve", "org/gc", "weights.bin", env=env, cwd=tmp_path)
        assert resolved.returncode == 0 and Path(resolved.stdout.strip()).read_bytes() == new
    finally:
        upstream.stop()


# ============================================================================ pull-through over S3 + PostgreSQL
def test_pull_through_into_the_bucket_is_served_by_another_replica(site: ScaleSite, tmp_path: Path) -> None:
    name = "org/pulled"
    data = {"weights.bin": os.urandom(PART_SIZE + 12345), "config.json": b'{"pulled": true}\n'}
    commit = site.upstream.commit(name, data)
    code = f"""
        from huggingface_hub import hf_hub_download
        result = [open(hf_hub_download({name!r}, f), "rb").read().hex() for f in ("config.json", "weights.bin")]
        """
    with ExitStack() as stack:
        configs = []
        for replica in ("pull-a", "pull-b"):
            extra = {
                "store": {"url": site.bucket.url, "endpoint_url": site.bucket.endpoint_url},
                "index": {"url": site.db_url},
                "serve": {"pull_through": {"enabled": True}},
            }
            configs.append(
                write_config(site.root / f"{replica}.yaml", site.upstream.url, site.root / replica, [], **extra)
            )
        first = site.replica(stack, "pull-a", configs[0])
        got = hf_client(code, first.url, tmp_path / "a")
        assert got.ok, got
        assert [bytes.fromhex(h) for h in got.result] == [data["config.json"], data["weights.bin"]]
        wanted = {sha256(b) for b in data.values()}
        deadline = time.monotonic() + 30  # the client may finish before the upload does: its bytes verified first
        while not wanted <= set(bucket_blobs(site.s3, site.bucket.bucket)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert wanted <= set(bucket_blobs(site.s3, site.bucket.bucket))
        assert local_blob_files(site.root / "pull-a") == []

        def recorded() -> dict[str, Any]:
            status = site.cli("-c", str(configs[1]), "status", "--json")
            assert status.returncode == 0, status.stderr
            return next(r for r in json.loads(status.stdout)["repos"] if r["name"] == name)

        while recorded()["commits"][0]["files"] < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        # another replica (its own home, the same bucket and database) has it without asking upstream for bytes
        site.upstream.reset_log()
        second = site.replica(stack, "pull-b", configs[1])
        again = hf_client(code, second.url, tmp_path / "b")
        assert again.ok and again.result == got.result, again
        assert site.upstream.count(path_contains="/resolve/") == 0
        assert site.upstream.count(path_contains="/blobs/") == 0
        pulled = recorded()
        assert pulled["pulled"] and pulled["refs"]["main"] == commit and pulled["commits"][0]["files"] == 2
