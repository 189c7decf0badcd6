"""Crash safety, proven by killing real ``hubmirror sync`` processes (SIGKILL) and checking the store.

After every kill the store must satisfy the invariants of DESIGN.md "The store": every blob the index names
is on disk with the right bytes and read-only, a complete commit has all its blobs, a ref names only a
complete commit. Then a normal run finishes the job without starting finished work over.
"""

from __future__ import annotations

import functools
import json
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import MINILM, run_cli, write_config
from hubserver import HubServer, add_minilm, make_small_files
from prockit import Procs, wait_for
from prockit import clean_env as _env
from storekit import check_invariants, open_ro, sha256_file

SMALL = "org/small-files"
SAFETENSORS = "model.safetensors"

pytestmark = pytest.mark.timeout(120)


# ============================================================================================ helpers

_wait_for = functools.partial(wait_for, interval=0.002)  # kill tests need fine-grained timing


def files_not_in_blobs_table(home: Path) -> list[tuple[str, str]]:
    """(repo, path) of file rows whose sha256 has no row in ``blobs`` (the schema's REFERENCES)."""
    with open_ro(home) as db:
        return db.execute(
            "SELECT r.name, f.path FROM files f JOIN repos r ON r.id = f.repo_id "
            "WHERE f.sha256 NOT IN (SELECT sha256 FROM blobs)"
        ).fetchall()


def assert_mirrored(upstream: HubServer, home: Path, repo: str, revision: str = "main") -> None:
    """The ref names upstream's commit and every file of it is in the store with upstream's bytes."""
    commit = upstream.store.require("model", repo).resolve(revision)
    with open_ro(home) as db:
        ref = db.execute(
            "SELECT x.commit_sha FROM refs x JOIN repos r ON r.id = x.repo_id WHERE r.name = ? AND x.name = ?",
            (repo, revision),
        ).fetchone()
        assert ref == (commit.sha,), f"{repo}@{revision}: ref {ref} != upstream {commit.sha}"
        rows = dict(
            db.execute(
                "SELECT f.path, f.sha256 FROM files f JOIN repos r ON r.id = f.repo_id "
                "WHERE r.name = ? AND f.commit_sha = ?",
                (repo, commit.sha),
            ).fetchall()
        )
    assert set(rows) == set(commit.files), f"{repo}: mirrored paths differ from upstream"
    for path, entry in commit.files.items():
        assert rows[path] == entry.blob.sha256, f"{repo}:{path} has the wrong sha256"
        blob = home / "blobs" / "sha256" / rows[path][:2] / rows[path]
        assert blob.is_file() and sha256_file(blob) == entry.blob.sha256


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _partials(home: Path) -> list[Path]:
    tmp = home / "tmp"
    return [p for p in tmp.iterdir() if p.name.endswith(".partial")] if tmp.exists() else []


def _repo_rows(home: Path, repo: str) -> tuple[int, int]:
    """(complete commits, refs) of one repo in the index."""
    with open_ro(home) as db:
        commits = db.execute(
            "SELECT COUNT(*) FROM commits c JOIN repos r ON r.id = c.repo_id WHERE r.name = ? AND c.complete = 1",
            (repo,),
        ).fetchone()[0]
        refs = db.execute(
            "SELECT COUNT(*) FROM refs x JOIN repos r ON r.id = x.repo_id WHERE r.name = ?", (repo,)
        ).fetchone()[0]
    return commits, refs


@pytest.fixture
def populated(upstream: HubServer, tmp_path: Path, home: Path) -> tuple[HubServer, Path]:
    """Upstream with MiniLM (one 90 MB LFS file + small ones) and a 300-small-file repo; a config for both."""
    add_minilm(upstream)
    upstream.commit(SMALL, make_small_files(300, seed=3))
    cfg = write_config(
        tmp_path / "hubmirror.yaml", upstream.url, home, [{"repo": MINILM}, {"repo": SMALL}], sync={"workers": 8}
    )
    return upstream, cfg


def _fresh_log(upstream: HubServer) -> None:
    """Clear the request log once requests of killed processes have drained (the fake Hub logs a request
    after its artificial latency, so a dead client's last requests can land late)."""
    upstream.latency = 0.0
    time.sleep(0.3)
    upstream.reset_log()


def _safetensors(upstream: HubServer):
    return upstream.file_entry(MINILM, SAFETENSORS)


def _blob_gets(upstream: HubServer, sha256: str):
    return [r for r in list(upstream.requests) if r.origin == "cdn" and sha256 in r.path and r.method == "GET"]


# ============================================================================================ tests
def test_kill_during_download_then_resume_with_range(populated, home: Path, procs: Procs) -> None:
    upstream, cfg = populated
    big = _safetensors(upstream)
    cut = 40_000_000
    # The CDN breaks the big transfer at 40 MB; the client sleeps before resuming, and we kill it then,
    # with a 40 MB partial file in home/tmp. Latency keeps the small files in flight too.
    upstream.latency = 0.05
    upstream.faults.once("drop", path_contains=big.blob.sha256, after_bytes=cut)
    proc = procs.start("-c", str(cfg), "sync")
    partial = home / "tmp" / f"{big.blob.sha256}.partial"
    _wait_for(lambda: _size(partial) >= cut, 60, "a partial download of the 90 MB file", proc)
    assert procs.kill(proc) == -signal.SIGKILL
    check_invariants(home)
    assert _repo_rows(home, MINILM) == (0, 0)
    kept = partial.stat().st_size
    assert kept >= cut

    upstream.faults.clear()
    _fresh_log(upstream)
    rerun = run_cli("-c", str(cfg), "sync", "--json", env=_env(), timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["ok"] and [r["status"] for r in report["results"]] == ["updated", "updated"]
    check_invariants(home)
    assert files_not_in_blobs_table(home) == []
    assert_mirrored(upstream, home, MINILM)
    assert_mirrored(upstream, home, SMALL)
    assert not _partials(home), "partial files left behind after a successful run"
    gets = _blob_gets(upstream, big.blob.sha256)
    assert len(gets) == 1, [(g.range, g.bytes_sent) for g in gets]
    assert gets[0].range == f"bytes={kept}-", "the 90 MB file was not resumed with Range"
    assert gets[0].bytes_sent == big.size - kept


def test_kill_before_publish_then_rerun_fetches_nothing(populated, home: Path, procs: Procs) -> None:
    upstream, cfg = populated
    proc = procs.start("-c", str(cfg), "sync", env=_env(HUBMIRROR_FAILPOINTS="sync.before_publish"))
    assert proc.wait(timeout=60) == -signal.SIGKILL, procs.output(proc)
    # Killed at the first repo's publish: all its blobs are durable, the index has no commit and no ref.
    counts = check_invariants(home)
    assert counts["complete"] == 0 and counts["refs"] == 0
    assert _repo_rows(home, MINILM) == (0, 0)
    entries = upstream.store.require("model", MINILM).resolve("main").files
    for entry in entries.values():
        assert (home / "blobs" / "sha256" / entry.blob.sha256[:2] / entry.blob.sha256).is_file(), entry.path
    assert not _partials(home)

    upstream.reset_log()
    rerun = run_cli("-c", str(cfg), "sync", "--json", env=_env(), timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    minilm = next(r for r in report["results"] if r["repo"] == MINILM)
    # The downloads were recorded in the blobs table before the crash point, so nothing is fetched again:
    # the LFS file is known by its sha256, the regular files by their git sha1.
    assert minilm["status"] == "updated"
    assert (minilm["files_fetched"], minilm["bytes_fetched"]) == (0, 0), minilm
    assert minilm["files_deduped"] == len(entries)
    assert upstream.count(path_contains=f"/{MINILM}/resolve/") == 0
    assert upstream.count(origin="cdn") == 0
    check_invariants(home)
    assert files_not_in_blobs_table(home) == []
    assert_mirrored(upstream, home, MINILM)
    assert_mirrored(upstream, home, SMALL)


def _stored(home: Path, sha256: str) -> bool:
    return (home / "blobs" / "sha256" / sha256[:2] / sha256).is_file()


def test_kill_mid_download_rerun_skips_blobs_already_stored(populated, home: Path, procs: Procs) -> None:
    upstream, cfg = populated
    small_cfg = write_config(cfg, upstream.url, home, [{"repo": SMALL}], sync={"workers": 4})
    upstream.latency = 0.02
    proc = procs.start("-c", str(small_cfg), "sync")
    blobs = home / "blobs" / "sha256"
    _wait_for(lambda: blobs.exists() and len(list(blobs.glob("*/*"))) >= 100, 60, "100 blobs written", proc)
    procs.kill(proc)
    assert 100 <= check_invariants(home)["blobs"] < 300
    entries = upstream.store.require("model", SMALL).resolve("main").files
    done = {path for path, e in entries.items() if _stored(home, e.blob.sha256)}
    _fresh_log(upstream)
    rerun = run_cli("-c", str(small_cfg), "sync", "--json", env=_env(), timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    check_invariants(home)
    assert_mirrored(upstream, home, SMALL)
    assert len(list(blobs.glob("*/*"))) == len({e.blob.sha256 for e in entries.values()})
    asked = {
        r.path.split("/resolve/", 1)[1].split("/", 1)[1]
        for r in list(upstream.requests)
        if f"/{SMALL}/resolve/" in r.path
    }
    refetched = sorted(done & asked)
    # A worker records its blob right after renaming it into place; a kill between the two can leave
    # at most one blob per worker (4) known only on disk, which costs a re-download of that one file.
    assert len(refetched) <= 4, f"{len(refetched)} of {len(done)} files already in the store were downloaded again"


def test_lfs_blob_stored_by_a_killed_run_is_recorded(populated, home: Path, procs: Procs) -> None:
    upstream, cfg = populated
    big = _safetensors(upstream)
    for _ in range(3):  # hold one small file in retries (Retry-After: 1) so MiniLM cannot publish yet
        upstream.faults.once("503", path_contains="/vocab.txt")
    proc = procs.start("-c", str(cfg), "sync")
    _wait_for(lambda: _stored(home, big.blob.sha256), 60, "the 90 MB blob to be stored", proc)
    procs.kill(proc)
    check_invariants(home)
    assert _repo_rows(home, MINILM) == (0, 0)
    upstream.faults.clear()
    _fresh_log(upstream)
    rerun = run_cli("-c", str(cfg), "sync", "--json", env=_env(), timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert upstream.count(origin="cdn") == 0  # the stored LFS blob is reused, not downloaded again
    check_invariants(home)
    assert_mirrored(upstream, home, MINILM)
    assert files_not_in_blobs_table(home) == []


def test_repeated_random_kills_keep_the_store_consistent(populated, home: Path, procs: Procs) -> None:
    upstream, cfg = populated
    upstream.latency = 0.01
    rng = random.Random(20261129)
    outcomes = []
    for _ in range(5):
        proc = procs.start("-c", str(cfg), "sync")
        time.sleep(rng.uniform(0.3, 2.0))
        outcomes.append(procs.kill(proc))
        check_invariants(home)
    assert -signal.SIGKILL in outcomes, "no kill landed while a sync was running"
    upstream.latency = 0.0
    final = run_cli("-c", str(cfg), "sync", env=_env(), timeout=120)
    assert final.returncode == 0, final.stderr
    check_invariants(home)
    assert files_not_in_blobs_table(home) == []
    assert_mirrored(upstream, home, MINILM)
    assert_mirrored(upstream, home, SMALL)


def test_two_syncs_at_once(populated, home: Path, procs: Procs) -> None:
    upstream, cfg = populated
    upstream.latency = 0.02
    a = procs.start("-c", str(cfg), "sync", "--json")
    b = procs.start("-c", str(cfg), "sync", "--json")
    assert a.wait(timeout=90) == 0, procs.output(a)
    assert b.wait(timeout=90) == 0, procs.output(b)
    for proc in (a, b):
        assert json.loads(procs.output(proc)[0])["ok"]
    counts = check_invariants(home)
    assert files_not_in_blobs_table(home) == []
    assert_mirrored(upstream, home, MINILM)
    assert_mirrored(upstream, home, SMALL)
    distinct = {
        e.blob.sha256
        for repo in (MINILM, SMALL)
        for e in upstream.store.require("model", repo).resolve("main").files.values()
    }
    assert counts["blobs"] == counts["blob_rows"] == len(distinct)  # each content stored once
    assert not list((home / "tmp").iterdir())
    with open_ro(home) as db:
        assert db.execute("SELECT COUNT(*) FROM commits WHERE complete = 1").fetchone()[0] == 2
    big = _safetensors(upstream)
    # The per-blob download lock makes the loser of the race find the big blob present instead of
    # downloading 90 MB again.
    assert sum(g.bytes_sent for g in _blob_gets(upstream, big.blob.sha256)) == big.size


def test_two_syncs_download_each_file_once(upstream: HubServer, tmp_path: Path, home: Path, procs: Procs) -> None:
    upstream.commit(SMALL, make_small_files(300, seed=3))
    cfg = write_config(tmp_path / "hubmirror.yaml", upstream.url, home, [{"repo": SMALL}], sync={"workers": 8})
    upstream.latency = 0.05  # about 2 s of downloads, so the two runs overlap
    both = [procs.start("-c", str(cfg), "sync") for _ in range(2)]
    for proc in both:
        assert proc.wait(timeout=90) == 0, procs.output(proc)
    check_invariants(home)
    assert_mirrored(upstream, home, SMALL)
    gets = [r.path for r in list(upstream.requests) if f"/{SMALL}/resolve/" in r.path]
    assert len(gets) == len(set(gets)) == 300, f"{len(gets)} downloads of {len(set(gets))} files"


class Reader(threading.Thread):
    """Polls the index read-only the way resolve does (refs → commit → files → blob on disk)."""

    def __init__(self, home: Path) -> None:
        super().__init__(name="index-reader", daemon=True)
        self.home = home
        self.stop = threading.Event()
        self.violations: list[str] = []
        self.refs_checked = 0
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if (self.home / "index.sqlite").exists():
                    self._poll()
                time.sleep(0.005)
        except BaseException as exc:
            self.errors.append(exc)

    def _poll(self) -> None:
        try:
            db = open_ro(self.home)
        except sqlite3.OperationalError:
            return
        try:
            db.execute("BEGIN")
            try:
                refs = db.execute("SELECT repo_id, name, commit_sha FROM refs").fetchall()
            except sqlite3.OperationalError:  # schema not created yet
                return
            for repo_id, name, sha in refs:
                done = db.execute(
                    "SELECT complete FROM commits WHERE repo_id = ? AND sha = ?", (repo_id, sha)
                ).fetchone()
                if done != (1,):
                    self.violations.append(f"ref {name} → {sha[:12]} but commit row is {done}")
                    continue
                files = db.execute(
                    "SELECT path, sha256, size FROM files WHERE repo_id = ? AND commit_sha = ?", (repo_id, sha)
                ).fetchall()
                if not files:
                    self.violations.append(f"ref {name} → {sha[:12]} with no files")
                for path, blob, size in files:
                    p = self.home / "blobs" / "sha256" / blob[:2] / blob
                    if not p.is_file() or p.stat().st_size != size:
                        self.violations.append(f"ref {name} → {sha[:12]}: {path} blob missing")
                self.refs_checked += 1
            db.execute("COMMIT")
        finally:
            db.close()


def test_reader_never_sees_a_ref_to_missing_data(populated, home: Path, procs: Procs) -> None:
    upstream, cfg = populated
    reader = Reader(home)
    reader.start()
    try:
        rng = random.Random(7)
        upstream.latency = 0.01
        for i in range(3):
            # a new upstream commit each round, so refs move while the reader reads
            upstream.commit(
                SMALL, {f"round/{i}.txt": f"round {i}\n".encode() * (i + 1), **make_small_files(40, seed=100 + i)}
            )
            proc = procs.start("-c", str(cfg), "sync")
            time.sleep(rng.uniform(0.4, 1.5))
            procs.kill(proc)
            done = run_cli("-c", str(cfg), "sync", env=_env(), timeout=120)
            assert done.returncode == 0, done.stderr
        _wait_for(lambda: reader.refs_checked > 0, 10, "the reader to check some refs")
    finally:
        reader.stop.set()
        reader.join(timeout=30)
    assert not reader.is_alive()
    assert not reader.errors, reader.errors
    assert reader.violations == []
    assert reader.refs_checked > 0
    check_invariants(home)
    assert_mirrored(upstream, home, SMALL)
    assert_mirrored(upstream, home, MINILM)


def test_many_processes_open_a_fresh_store_at_once(tmp_path: Path, procs: Procs) -> None:
    """Regression: processes that open a new store together raced on the schema migration
    ('table repos already exists', 'database is locked') and one of them died with a traceback."""
    home = tmp_path / "fresh"
    empty_cache = tmp_path / "empty-hf-cache"
    empty_cache.mkdir()
    # a write command creates the store (read commands never do)
    started = [procs.start("--home", str(home), "import-hf-cache", str(empty_cache), "--json") for _ in range(8)]
    for proc in started:
        assert proc.wait(timeout=60) == 0, procs.output(proc)[1][-2000:]
        assert json.loads(procs.output(proc)[0])["commits_imported"] == 0
    check_invariants(home)
