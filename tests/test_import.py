"""``hubmirror import-hf-cache``: bring a cache written by the real ``huggingface_hub`` into the store.

The cache is produced by ``snapshot_download`` (run in a subprocess against the fake upstream, plain HTTP)
for a model and a dataset at two revisions each; LFS and regular files both occur. Every imported byte is
verified against the name the cache gives it; corrupt blobs and dangling links are skipped and reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_cli, write_config
from hubserver import HubServer

from hubmirror.hashing import git_blob_sha1, lfs_pointer

pytestmark = pytest.mark.timeout(120)

MODEL, DATASET = "org/imp-model", "org/imp-data"


@dataclass(frozen=True)
class UpFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else git_blob_sha1(self.data)

    @property
    def oid(self) -> str:
        return git_blob_sha1(lfs_pointer(self.sha256, len(self.data)) if self.lfs else self.data)


@dataclass
class Cache:
    upstream: HubServer
    path: Path  # the hub cache written by huggingface_hub (never modified by tests: copy it first)
    commits: dict[tuple[str, str], dict[str, str]]  # (type, repo) → {ref: sha}
    files: dict[tuple[str, str, str], dict[str, UpFile]]  # (type, repo, sha) → {path: file}


def _files(up: HubServer, repo_type: str, repo: str, sha: str) -> dict[str, UpFile]:
    commit = up.store.require(repo_type, repo).commits[sha]
    return {p: UpFile(up.store.blobs.path(e.blob.sha256).read_bytes(), e.lfs) for p, e in commit.files.items()}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_", "HUGGING"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cache]:
    tmp = tmp_path_factory.mktemp("import")
    with HubServer(tmp / "upstream") as up:
        up.lfs_threshold = 2048
        m1 = up.commit(
            MODEL,
            {
                "config.json": b'{"hidden": 8}\n',
                "weights.bin": os.urandom(12_000),
                "sub/a.txt": b"shared text\n",
                "tokenizer.json": b'{"v": 1}\n',
            },
        )
        up.tag(MODEL, "v1", m1)
        m2 = up.commit(
            MODEL,
            {"config.json": b'{"hidden": 16}\n', "sub/b.txt": b"only in main\n", "weights2.bin": os.urandom(5000)},
        )
        d1 = up.commit(DATASET, {"data/x.csv": b"a,b\n1,2\n", "part.bin": os.urandom(7000)}, repo_type="dataset")
        up.tag(DATASET, "v1", d1, repo_type="dataset")
        d2 = up.commit(DATASET, {"data/x.csv": b"a,b\n1,2\n3,4\n"}, repo_type="dataset")
        hub_cache = tmp / "hf-cache"
        code = textwrap.dedent(f"""
            from huggingface_hub import snapshot_download
            for repo, kind in [({MODEL!r}, "model"), ({DATASET!r}, "dataset")]:
                for revision in ("main", "v1"):
                    print(snapshot_download(repo, repo_type=kind, revision=revision))
        """)
        r = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(
                HF_ENDPOINT=up.url,
                HF_HUB_CACHE=str(hub_cache),
                HF_HOME=str(tmp / "hf-home"),
                HF_HUB_DISABLE_XET="1",
                HF_HUB_DISABLE_TELEMETRY="1",
                HF_HUB_DISABLE_PROGRESS_BARS="1",
                HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
            ),
        )
        assert r.returncode == 0, r.stderr[-3000:]
        files = {("model", MODEL, m): _files(up, "model", MODEL, m) for m in (m1, m2)}
        files |= {("dataset", DATASET, d): _files(up, "dataset", DATASET, d) for d in (d1, d2)}
        assert any(f.lfs for f in files[("model", MODEL, m1)].values())
        yield Cache(
            up,
            hub_cache,
            {("model", MODEL): {"main": m2, "v1": m1}, ("dataset", DATASET): {"main": d2, "v1": d1}},
            files,
        )


def _import(home: Path, cache_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("--home", str(home), "import-hf-cache", str(cache_dir), *extra, timeout=60)


def _dump(home: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(home / "index.sqlite") as db:
        return {
            t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in ("repos", "commits", "files", "refs", "blobs", "aliases")
        }


def _copy(cache: Cache, dest: Path) -> Path:
    shutil.copytree(cache.path, dest, symlinks=True)
    return dest


def _expected_bytes(
    cache: Cache, skip: set[tuple[str, str, str]] = frozenset(), have: set[str] = frozenset()
) -> tuple[int, int, int]:
    """(new files, new bytes, bytes already present) for importing every commit not in ``skip``."""
    seen, new_files, new_bytes, saved = set(have), 0, 0, 0
    for key in sorted(cache.files):  # order does not matter for the totals
        if key in skip:
            continue
        for f in cache.files[key].values():
            if f.sha256 in seen:
                saved += len(f.data)
            else:
                seen.add(f.sha256)
                new_files, new_bytes = new_files + 1, new_bytes + len(f.data)
    return new_files, new_bytes, saved


# ============================================================================================ tests
def test_import_brings_everything_in_and_is_idempotent(cache: Cache, tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = _import(home, cache.path, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    new_files, new_bytes, saved = _expected_bytes(cache)
    assert report == {
        "commits_imported": 4,
        "commits_present": 0,
        "files_imported": new_files,
        "bytes_imported": new_bytes,
        "bytes_saved": saved,
        "refs": 4,
        "skipped": [],
    }
    # index rows: every file with the oid, sha256, size and LFS flag the Hub has
    with sqlite3.connect(home / "index.sqlite") as db:
        for (repo_type, repo, sha), files in cache.files.items():
            rows = db.execute(
                "SELECT f.path, f.size, f.sha256, f.git_oid, f.lfs FROM files f "
                "JOIN repos r ON r.id = f.repo_id WHERE r.type = ? AND r.name = ? AND f.commit_sha = ? "
                "ORDER BY f.path",
                (repo_type, repo, sha),
            ).fetchall()
            assert rows == [(p, len(f.data), f.sha256, f.oid, int(f.lfs)) for p, f in sorted(files.items())]
        refs = db.execute(
            "SELECT r.type, r.name, x.name, x.commit_sha FROM refs x JOIN repos r ON r.id = x.repo_id"
        ).fetchall()
        assert sorted(refs) == sorted((t, n, ref, sha) for (t, n), m in cache.commits.items() for ref, sha in m.items())
        blobs = db.execute("SELECT sha256, size FROM blobs").fetchall()
    for sha256, size in blobs:  # the store holds exactly the verified bytes, read-only
        blob = home / "blobs" / "sha256" / sha256[:2] / sha256
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == sha256 and blob.stat().st_size == size
        assert not blob.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    # resolve works by every ref and returns the same bytes
    for (repo_type, repo), refs in cache.commits.items():
        for ref, sha in refs.items():
            got = run_cli("--home", str(home), "resolve", repo, "-r", ref, "-t", repo_type, timeout=60)
            assert got.returncode == 0, got.stderr
            snap = Path(got.stdout.strip())
            assert snap.name == sha
            files = {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()}
            assert files == {p: f.data for p, f in cache.files[(repo_type, repo, sha)].items()}
    # importing again changes nothing
    before = _dump(home)
    again = _import(home, cache.path, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {
        "commits_imported": 0,
        "commits_present": 4,
        "files_imported": 0,
        "bytes_imported": 0,
        "bytes_saved": 0,
        "refs": 0,
        "skipped": [],
    }
    assert _dump(home) == before
    text = _import(home, cache.path)
    assert text.returncode == 0
    assert "imported 0 snapshots (0 new files, 0 B), 4 already mirrored" in text.stdout
    assert _dump(home) == before


def test_corrupt_blob_and_dangling_link_are_skipped_by_name(cache: Cache, tmp_path: Path) -> None:
    broken = _copy(cache, tmp_path / "broken-cache")
    m1 = cache.commits[("model", MODEL)]["v1"]
    d2 = cache.commits[("dataset", DATASET)]["main"]
    v1_files = cache.files[("model", MODEL, m1)]
    model_dir = broken / "models--org--imp-model"
    corrupted = []
    for name in ("config.json", "weights.bin"):  # a regular file only in v1; an LFS file in both revisions
        blob = model_dir / "blobs" / v1_files[name].etag
        blob.chmod(blob.stat().st_mode | stat.S_IWUSR)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0x01
        blob.write_bytes(bytes(data))
        corrupted.append(hashlib.sha256(data).hexdigest())
    snap = broken / "datasets--org--imp-data" / "snapshots" / d2
    os.symlink("../../blobs/" + "0" * 40, snap / "extra.txt")

    home = tmp_path / "home"
    r = _import(home, broken)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("skipped: ")]
    assert len(lines) == 4, r.stdout
    assert any(f"{MODEL}@{m1[:12]}: 'config.json' is corrupt" in line for line in lines)
    assert sum("'weights.bin' is corrupt" in line for line in lines) == 2
    assert any(f"{DATASET}@{d2[:12]}: 'extra.txt' is a dangling link" in line for line in lines)
    # nothing corrupt entered the store; every good file did
    for digest in corrupted:
        assert not (home / "blobs" / "sha256" / digest[:2] / digest).exists()
    bad = run_cli("--home", str(home), "resolve", MODEL, "config.json", "-r", "v1", timeout=60)
    assert bad.returncode == 4 and "file 'config.json' is not mirrored" in bad.stderr
    good = run_cli("--home", str(home), "resolve", MODEL, "sub/a.txt", "-r", "v1", timeout=60)
    assert good.returncode == 0 and Path(good.stdout.strip()).read_bytes() == b"shared text\n"
    ds = run_cli("--home", str(home), "resolve", DATASET, "-t", "dataset", timeout=60)
    ds_snap = Path(ds.stdout.strip())
    snap_files = {p.relative_to(ds_snap).as_posix() for p in ds_snap.rglob("*")}
    assert snap_files == set(cache.files[("dataset", DATASET, d2)]) | {"data"}
    # importing the repaired cache fills in what was skipped (the commits were mirrored only in part)
    before = _dump(home)
    fixed = _import(home, cache.path, "--json")
    assert fixed.returncode == 0, fixed.stderr
    report = json.loads(fixed.stdout)
    assert report["skipped"] == [] and report["commits_imported"] == 2 and report["commits_present"] == 2
    assert report["files_imported"] == 2  # the two blobs that were corrupt; the rest is known
    assert report["bytes_saved"] == len(cache.files[("model", MODEL, m1)]["weights.bin"].data)
    assert len(_dump(home)["files"]) == len(before["files"]) + 3
    for ref in ("main", "v1"):
        sha = cache.commits[("model", MODEL)][ref]
        got = run_cli("--home", str(home), "resolve", MODEL, "-r", ref, timeout=60)
        snap = Path(got.stdout.strip())
        assert {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()} == {
            p: f.data for p, f in cache.files[("model", MODEL, sha)].items()
        }
    again = _import(home, cache.path, "--json")
    again_report = json.loads(again.stdout)
    assert again_report["commits_present"] == 4 and again_report["files_imported"] == 0


def test_import_dedupes_against_what_sync_already_stored(cache: Cache, tmp_path: Path) -> None:
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", cache.upstream.url, home, [{"repo": MODEL}])
    synced = run_cli("-c", str(cfg), "sync", timeout=60)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    main = cache.commits[("model", MODEL)]["main"]
    have = {f.sha256 for f in cache.files[("model", MODEL, main)].values()}
    r = _import(home, cache.path, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    new_files, new_bytes, saved = _expected_bytes(cache, skip={("model", MODEL, main)}, have=have)
    assert report["commits_present"] == 1 and report["commits_imported"] == 3
    got = (report["files_imported"], report["bytes_imported"], report["bytes_saved"])
    assert got == (new_files, new_bytes, saved)
    v1 = cache.files[("model", MODEL, cache.commits[("model", MODEL)]["v1"])]
    assert saved >= len(v1["weights.bin"].data) + len(v1["sub/a.txt"].data)  # unchanged in v1 and main
    status = run_cli("--home", str(home), "status", "--json", timeout=60)
    stats = json.loads(status.stdout)["store"]
    assert stats["blobs"] == len({f.sha256 for files in cache.files.values() for f in files.values()})


def test_import_rejects_a_folder_that_is_not_a_cache(tmp_path: Path) -> None:
    r = _import(tmp_path / "home", tmp_path / "missing")
    assert r.returncode == 10 and "is not a directory" in r.stderr
