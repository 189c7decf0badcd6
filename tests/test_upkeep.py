"""Keeping a store sound over the years, through the CLI: verify and repair, gc and remove, and every read
command on a store that sits on a read-only filesystem (a real ``mount -o remount,ro,bind`` in a private mount
namespace: tests run as root, so permission bits alone would prove nothing)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import run_cli, write_config
from hubserver import HubServer, make_small_files
from prockit import Procs, clean_env, free_port
from servekit import ServeProcess
from storekit import check_invariants

pytestmark = pytest.mark.timeout(240)

REPO = "org/evolving"


def cli_json(*args: str, code: int = 0) -> dict[str, Any]:
    r = run_cli(*args, "--json")
    assert r.returncode == code, (r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


def blob_path(home: Path, data: bytes) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    return home / "blobs" / "sha256" / sha[:2] / sha


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    path.chmod(0o444)


@pytest.fixture
def store(tmp_path: Path, upstream: HubServer) -> tuple[Path, Path, dict[str, bytes]]:
    """(config, home, files) with a repo synced after each of five upstream commits."""
    files = make_small_files(30, seed=21)
    files["weights.safetensors"] = os.urandom(300_000)
    upstream.commit(REPO, files, message="first")
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", upstream.url, home, [{"repo": REPO}], gc={"grace": "0s"})
    assert run_cli("-c", str(cfg), "sync").returncode == 0
    return cfg, home, files


# ============================================================================================ verify
def test_verify_finds_a_flipped_byte_and_repair_fetches_it_from_upstream(
    store: tuple[Path, Path, dict[str, bytes]],
) -> None:
    cfg, home, files = store
    assert cli_json("-c", str(cfg), "verify")["ok"] is True
    victim = blob_path(home, files["weights.safetensors"])
    flip(victim)
    r = run_cli("-c", str(cfg), "verify")
    assert r.returncode == 7, r.stdout + r.stderr
    line = next(line for line in r.stdout.splitlines() if line.startswith("DAMAGED"))
    assert victim.name in line and f"{REPO}@main" in line and "weights.safetensors" in line
    report = cli_json("-c", str(cfg), "verify", "--repair")
    assert report["exit_code"] == 0 and any("fetched again from upstream" in x for x in report["repaired"])
    assert victim.read_bytes() == files["weights.safetensors"]
    quarantined = list((home / "quarantine").iterdir())
    assert len(quarantined) == 1 and quarantined[0].name.startswith(victim.name)
    assert cli_json("-c", str(cfg), "verify")["ok"] is True
    check_invariants(home)


def test_repair_from_a_bundle_when_upstream_is_gone(
    store: tuple[Path, Path, dict[str, bytes]], tmp_path: Path, upstream: HubServer
) -> None:
    cfg, home, files = store
    assert run_cli("-c", str(cfg), "export", str(tmp_path / "backup.tar")).returncode == 0
    upstream.stop()
    name = next(p for p in files if p.endswith(".txt"))
    victim = blob_path(home, files[name])
    flip(victim)
    without = run_cli("-c", str(cfg), "verify", "--repair")
    assert without.returncode == 7 and "UNREPAIRED" in without.stdout
    report = cli_json("-c", str(cfg), "verify", "--repair", "--from", str(tmp_path / "backup.tar"))
    assert report["exit_code"] == 0 and any("restored from" in x for x in report["repaired"])
    assert victim.read_bytes() == files[name]
    check_invariants(home)


def test_verify_checks_what_the_lock_file_pins(store: tuple[Path, Path, dict[str, bytes]], upstream: HubServer) -> None:
    cfg, home, _ = store
    assert run_cli("-c", str(cfg), "lock").returncode == 0
    assert cli_json("-c", str(cfg), "verify")["ok"] is True
    pinned = upstream.head(REPO)
    assert run_cli("-c", str(cfg), "remove", REPO, "--revision", pinned).returncode == 0
    report = cli_json("-c", str(cfg), "verify", code=7)
    assert any("hubmirror.lock pins" in p and "sync --locked" in p for p in report["problems"]), report
    assert run_cli("-c", str(cfg), "sync", "--locked").returncode == 0
    assert cli_json("-c", str(cfg), "verify")["ok"] is True


def test_verify_checks_the_view_and_the_index_and_repair_heals_them(store: tuple[Path, Path, dict[str, bytes]]) -> None:
    cfg, home, files = store
    snapshot = next((home / "hf" / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots").iterdir())
    link = next(p for p in snapshot.rglob("*") if p.is_symlink())
    link.unlink()
    (home / "hf" / "hub" / f"models--{REPO.replace('/', '--')}" / "refs" / "main").write_text("0" * 40)
    report = cli_json("-c", str(cfg), "verify", code=7)
    assert any("HF-cache view" in p and "refs/main" in p for p in report["problems"])
    assert any("does not link" in p for p in report["problems"])
    healed = cli_json("-c", str(cfg), "verify", "--repair")
    assert healed["exit_code"] == 0
    assert link.is_symlink() and link.resolve().is_file()
    assert cli_json("-c", str(cfg), "verify")["ok"] is True


# ============================================================================================ gc
def _history(upstream: HubServer, cfg: Path, n: int) -> list[tuple[str, bytes]]:
    """n more commits of REPO, each changing a file of its own and synced; returns (commit, that content)."""
    out = []
    for i in range(n):
        content = f"generation {i}\n".encode() * 1000
        sha = upstream.commit(REPO, {"generation.txt": content}, message=f"gen {i}")
        assert run_cli("-c", str(cfg), "sync").returncode == 0
        out.append((sha, content))
    return out


def test_gc_keeps_what_is_named_and_frees_the_rest_while_serve_reads(
    store: tuple[Path, Path, dict[str, bytes]], upstream: HubServer, tmp_path: Path
) -> None:
    cfg, home, files = store
    first = upstream.head(REPO)
    generations = _history(upstream, cfg, 5)
    upstream.tag(REPO, "v-old", generations[0][0])
    assert run_cli("-c", str(cfg), "sync").returncode == 0  # nothing new: the tag is not in revisions
    pinned = generations[1][0]
    write_config(cfg, upstream.url, home, [{"repo": REPO, "revisions": ["main", pinned]}], gc={"grace": "0s"})
    status = cli_json("-c", str(cfg), "status")
    reclaim = status["reclaimable"]
    plan = cli_json("-c", str(cfg), "gc", "--dry-run")
    dropped = {line.rsplit("@", 1)[1] for line in plan["dropped"]}
    # main = gen 4; kept: gen 3 and gen 2 (keep_previous 2), gen 1 (pinned in the config); dropped: first, gen 0
    assert dropped == {first, generations[0][0]}
    assert plan["bytes_freed"] == reclaim["bytes"] > 0 and plan["commits_dropped"] == reclaim["commits"] == 2
    # a reader keeps downloading the kept revision while gc runs
    stop, errors, reads = threading.Event(), [], [0]
    with ServeProcess(cfg, tmp_path / "serve.log") as server:
        url = f"{server.url}/{REPO}/resolve/main/generation.txt"

        def read() -> None:
            with httpx2.Client(timeout=10) as client:
                while not stop.is_set():
                    r = client.get(url)
                    if r.status_code != 200 or r.content != generations[-1][1]:
                        errors.append((r.status_code, r.content[:80]))
                    reads[0] += 1

        reader = threading.Thread(target=read)
        reader.start()
        try:
            report = cli_json("-c", str(cfg), "gc")
        finally:
            stop.set()
            reader.join(timeout=30)
    assert not errors and reads[0] > 0
    assert report["commits_dropped"] == 2 and report["bytes_freed"] == plan["bytes_freed"]
    assert not blob_path(home, generations[0][1]).exists()  # only gen 0 used it
    for sha, content in generations[1:]:
        assert blob_path(home, content).exists()
    for data in files.values():  # shared by every kept commit
        assert blob_path(home, data).exists()
    view = home / "hf" / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots"
    assert sorted(p.name for p in view.iterdir() if not p.name.startswith(".")) == sorted(
        sha for sha, _ in generations[1:]
    )
    r = run_cli("-c", str(cfg), "resolve", REPO, "generation.txt", "-r", pinned)
    assert r.returncode == 0 and Path(r.stdout.strip()).read_bytes() == generations[1][1]
    assert cli_json("-c", str(cfg), "verify")["ok"] is True
    check_invariants(home)
    again = cli_json("-c", str(cfg), "gc")
    assert again["commits_dropped"] == 0 and again["blobs_deleted"] == 0


def test_gc_killed_at_any_point_leaves_a_valid_store(
    store: tuple[Path, Path, dict[str, bytes]], upstream: HubServer, procs: Procs
) -> None:
    cfg, home, _ = store
    _history(upstream, cfg, 5)
    for point in ("gc.after_index", "gc.mid_delete"):
        proc = procs.start("-c", str(cfg), "gc", env=clean_env(HUBMIRROR_FAILPOINTS=point))
        assert proc.wait(timeout=60) == -signal.SIGKILL
        check_invariants(home)
    rng = random.Random(11)
    for _ in range(3):  # and at random moments
        proc = procs.start("-c", str(cfg), "gc")
        time.sleep(rng.uniform(0.2, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        check_invariants(home)
    report = cli_json("-c", str(cfg), "gc")
    assert report["commits_dropped"] == 0  # the index part was done by the first killed run
    check_invariants(home)
    assert cli_json("-c", str(cfg), "verify")["ok"] is True
    assert cli_json("-c", str(cfg), "gc", "--dry-run")["blobs_deleted"] == 0


def test_remove_a_revision_then_a_repo(store: tuple[Path, Path, dict[str, bytes]], upstream: HubServer) -> None:
    cfg, home, files = store
    ((sha, _),) = _history(upstream, cfg, 1)
    removed = cli_json("-c", str(cfg), "remove", REPO, "--revision", sha[:10])
    assert removed["commits_removed"] == [sha] and removed["refs_removed"] == ["main"]
    assert run_cli("-c", str(cfg), "resolve", REPO).returncode == 4
    r = run_cli("-c", str(cfg), "remove", REPO)
    assert r.returncode == 0 and "still lists org/evolving" in r.stderr
    assert REPO not in [x["name"] for x in cli_json("-c", str(cfg), "status")["repos"]]
    assert not (home / "hf" / "hub" / f"models--{REPO.replace('/', '--')}").exists()
    freed = cli_json("-c", str(cfg), "gc")
    assert freed["blobs_deleted"] == len(set(files.values())) + 1
    assert list((home / "blobs" / "sha256").glob("*/*")) == []
    check_invariants(home)
    assert run_cli("-c", str(cfg), "remove", "org/never").returncode == 4


# ============================================================================================ read-only media
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_every_read_command_works_on_a_read_only_store_and_writes_exit_10(
    store: tuple[Path, Path, dict[str, bytes]], tmp_path: Path
) -> None:
    cfg, home, files = store
    ro, out = tmp_path / "ro", tmp_path / "out"
    ro.mkdir()
    out.mkdir()
    port = free_port()
    name, data = next((p, d) for p, d in files.items() if p.endswith(".txt"))
    reads = [
        ["status", "--json"],
        ["resolve", REPO, name],
        ["env"],
        ["hf-cache", "--dir", str(out / "view")],
        ["verify"],
        ["inventory", "-o", str(out / "inv")],
        ["export", str(out / "b.tar")],
    ]
    writes = [
        ["import", str(out / "b.tar")],
        ["gc"],
        ["verify", "--repair"],
        ["remove", REPO],
        ["import-hf-cache", str(out / "view")],
    ]
    py = sys.executable
    lines = [f"mount --bind {home} {ro} && mount -o remount,ro,bind {ro} || exit 99"]
    for number, argv in enumerate(reads + writes):
        quoted = " ".join(f"'{a}'" for a in argv)
        lines.append(
            f"{py} -m hubmirror --home {ro} {quoted} > {out}/{number}.out 2> {out}/{number}.err; "
            f"echo $? > {out}/{number}.code"
        )
    lines += [
        f"{py} -m hubmirror --home {ro} serve --port {port} > {out}/serve.log 2>&1 & SERVE=$!",
        f'{py} -c "import httpx2,time,sys\nfor _ in range(100):\n    try:\n'
        f"        r = httpx2.get('http://127.0.0.1:{port}/{REPO}/resolve/main/{name}'); break\n"
        f'    except httpx2.HTTPError: time.sleep(0.1)\nsys.stdout.buffer.write(r.content)" > {out}/served',
        "kill $SERVE; wait $SERVE",
    ]
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "\n".join(lines)], capture_output=True, text=True, timeout=200, env=clean_env()
    )
    if proc.returncode == 99:
        pytest.skip(f"cannot bind-mount read-only here: {proc.stderr[-300:]}")
    for number, argv in enumerate(reads + writes):
        code = int((out / f"{number}.code").read_text())
        err = (out / f"{number}.err").read_text()
        assert "Traceback" not in err, (argv, err)
        if argv in writes:
            assert code == 10 and "cannot be written" in err and err.count("\n") == 1, (argv, code, err)
        else:
            assert code == 0, (argv, code, err)
    assert json.loads((out / "0.out").read_text())["repos"][0]["name"] == REPO
    resolved = Path((out / "1.out").read_text().strip())  # a path under the mount, which is gone now
    assert resolved.is_relative_to(ro) and (home / resolved.relative_to(ro)).read_bytes() == data
    assert (out / "served").read_bytes() == data
    assert (out / "b.tar").stat().st_size > 300_000
    check_invariants(home)


def test_gc_waits_for_a_running_sync_and_never_takes_its_blobs(
    store: tuple[Path, Path, dict[str, bytes]], upstream: HubServer, procs: Procs
) -> None:
    """A sync downloads blobs before any commit names them; gc must not collect them meanwhile."""
    cfg, home, _ = store
    fresh = make_small_files(120, seed=99)
    head = upstream.commit(REPO, fresh, message="big change")
    upstream.latency = 0.25  # the sync takes a few seconds
    sync = procs.start("-c", str(cfg), "sync")
    # wait until it is downloading (a blob of the new commit is on disk, unnamed by the index)
    fresh_blobs = {blob_path(home, data) for data in fresh.values()}
    deadline = time.monotonic() + 30
    while not any(p.exists() for p in fresh_blobs):
        assert time.monotonic() < deadline and sync.poll() is None, "the sync never started downloading"
        time.sleep(0.02)
    gc = procs.start("-c", str(cfg), "gc", "--json")
    assert sync.wait(timeout=120) == 0, procs.output(sync)
    assert gc.wait(timeout=120) == 0, procs.output(gc)
    upstream.latency = 0
    assert all(p.exists() for p in fresh_blobs)
    r = run_cli("-c", str(cfg), "resolve", REPO, next(iter(fresh)), "-r", head)
    assert r.returncode == 0
    check_invariants(home)


def test_view_building_reports_a_broken_repo_and_lays_out_the_others(
    store: tuple[Path, Path, dict[str, bytes]], upstream: HubServer
) -> None:
    cfg, home, files = store
    upstream.commit("org/other", {"a.txt": b"other repo\n"})
    write_config(cfg, upstream.url, home, [{"repo": REPO}, {"repo": "org/other"}], gc={"grace": "0s"})
    assert run_cli("-c", str(cfg), "sync").returncode == 0
    shutil.rmtree(home / "hf")
    blob_path(home, files["weights.safetensors"]).unlink()  # damage: one repo cannot be laid out
    report = cli_json("-c", str(cfg), "hf-cache")
    assert report["repos"] == 1 and len(report["problems"]) == 1 and REPO in report["problems"][0]
    assert (home / "hf" / "hub" / "models--org--other" / "refs" / "main").exists()
    r = run_cli("-c", str(cfg), "resolve", "org/other", "a.txt")
    assert r.returncode == 0 and Path(r.stdout.strip()).read_bytes() == b"other repo\n"
    r = run_cli("-c", str(cfg), "resolve", REPO)
    assert r.returncode in (4, 10) and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
