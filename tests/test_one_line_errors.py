"""Failures a user meets end as one line on stderr with the README's exit code, and lose nothing.

Each case was a traceback once: a damaged index or VERSION, a full disk (the kernel's own ENOSPC, from
``/dev/full`` and from a tiny tmpfs), absurd durations, a port out of range, ``hf-cache --dir`` on a file, a
FIFO/socket/device in a pushed folder, config problems of ``run`` and ``watch``. Also here: dry runs write
nothing, scheduled syncs keep their flags, a 416 on resume restarts the download, and SIGTERM is prompt
during retry waits.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, write_config
from hubserver import HubServer, make_small_files
from prockit import Procs, clean_env, wait_for

pytestmark = pytest.mark.timeout(120)


def one_line(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The command failed with ``code`` and said so in exactly one line naming every fragment."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def synced(upstream: HubServer, tmp_path: Path) -> tuple[Path, Path]:
    """A home with two small repos synced; returns (config, home)."""
    upstream.commit("org/a", make_small_files(8, seed=1))
    upstream.commit("org/b", make_small_files(4, seed=2))
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", upstream.url, home, [{"repo": "org/a"}, {"repo": "org/b"}])
    r = run_cli("-c", str(cfg), "sync")
    assert r.returncode == 0, r.stdout + r.stderr
    return cfg, home


# ============================================================================ damaged index and VERSION
@pytest.mark.parametrize("damage", ["random-bytes", "truncated", "zero-length", "deleted"])
def test_a_damaged_index_is_one_line_exit_10_for_every_command(synced: tuple[Path, Path], damage: str) -> None:
    cfg, home = synced
    index = home / "index.sqlite"
    for extra in ("index.sqlite-wal", "index.sqlite-shm"):
        (home / extra).unlink(missing_ok=True)
    data = index.read_bytes()
    if damage == "random-bytes":
        index.write_bytes(os.urandom(len(data)))
    elif damage == "truncated":
        index.write_bytes(data[: 4096 + 100])  # the header survives, the tables do not
    elif damage == "zero-length":
        index.write_bytes(b"")
    else:
        index.unlink()
    blobs_before = sorted(p.name for p in (home / "blobs").rglob("*") if p.is_file())
    for argv in (["status"], ["sync"], ["resolve", "org/a"], ["hf-cache"]):
        result = run_cli("-c", str(cfg), *argv)
        line = one_line(result, 10, str(index))
        assert ("damaged" in line and "hubmirror verify" in line) or "blobs" in line, line
    # nothing was lost or overwritten: the blobs are all still there, and no empty index replaced the file
    assert sorted(p.name for p in (home / "blobs").rglob("*") if p.is_file()) == blobs_before
    assert index.exists() == (damage != "deleted")
    if damage == "zero-length":
        assert index.stat().st_size == 0


@pytest.mark.parametrize("content", [b"banana\n", b"\xff\xfe\x00garbage", b"", b"99999999999\n"])
def test_a_garbage_version_file_is_one_line_exit_10(synced: tuple[Path, Path], content: bytes) -> None:
    cfg, home = synced
    (home / "VERSION").write_bytes(content)
    for argv in (["status"], ["sync"], ["resolve", "org/a"]):
        one_line(run_cli("-c", str(cfg), *argv), 10, str(home / "VERSION"))
    assert (home / "VERSION").read_bytes() == content  # left for the user to restore, not rewritten


def test_a_newer_layout_is_refused_with_an_upgrade_hint(synced: tuple[Path, Path]) -> None:
    cfg, home = synced
    (home / "VERSION").write_text("7\n")
    one_line(run_cli("-c", str(cfg), "status"), 10, "newer than this hubmirror understands", "upgrade")


# ============================================================================ disk full
def test_enospc_while_flushing_a_blob_is_one_line_and_the_other_repos_go_on(
    upstream: HubServer, tmp_path: Path
) -> None:
    """The kernel says ENOSPC when the buffered bytes are flushed (and again when the file is closed):
    /dev/full stands in for a full disk at exactly that point, for one blob of one repo."""
    small = b"six kilobytes of text\n" * 280  # fits Python's write buffer: the first write() succeeds
    upstream.commit("org/full", {"notes.txt": small})
    upstream.commit("org/fine", make_small_files(3, seed=4))
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", upstream.url, home, [{"repo": "org/full"}, {"repo": "org/fine"}])
    assert run_cli("-c", str(cfg), "sync", "org/fine").returncode == 0  # the store exists
    oid = hashlib.sha1(b"blob %d\0" % len(small) + small).hexdigest()
    partial = home / "tmp" / f"{oid}.partial"
    partial.symlink_to("/dev/full")
    result = run_cli("-c", str(cfg), "sync")
    assert result.returncode == 10, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "org/full" in failed[0] and "disk full" in failed[0], result.stdout
    assert any(line.startswith("unchanged") and "org/fine" in line for line in result.stdout.splitlines())
    partial.unlink()  # space freed
    again = run_cli("-c", str(cfg), "sync")
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_a_really_full_filesystem_fails_each_repo_in_one_line_and_the_next_run_completes(
    upstream: HubServer, tmp_path: Path
) -> None:
    """A home on a 2 MB tmpfs (in a private mount namespace, so nothing leaks if the test dies)."""
    upstream.commit("org/big", {"weights.bin": os.urandom(3_000_000)})
    upstream.commit("org/small", make_small_files(3, seed=5))
    mount = tmp_path / "tiny"
    mount.mkdir()
    home = mount / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", upstream.url, home, [{"repo": "org/big"}, {"repo": "org/small"}])
    sync = f"{sys.executable} -m hubmirror -c {cfg} sync"
    script = (
        f"mount -t tmpfs -o size=2m tmpfs {mount} && {sync}; echo EXIT=$?; "
        f"mount -o remount,size=16m {mount} && {sync}; echo EXIT=$?"
    )  # space freed: the next run
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=clean_env(), timeout=120
    )
    if "EXIT=" not in proc.stdout:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {proc.stderr[-300:]}")
    first_out, rest, last = proc.stdout.split("EXIT=")
    first_code, _, second_out = rest.partition("\n")
    assert (first_code, last.strip()) == ("10", "0"), (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    failed = [line for line in first_out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2 and all("disk full" in line for line in failed), proc.stdout
    assert "org/big" in failed[0] and "org/small" in failed[1]  # the run went on after the first failure
    assert "synced 2/2" in second_out, proc.stdout


# ============================================================================ bad values and flags
@pytest.mark.parametrize("flag", [["--every", "99999999d"], ["--every", "1e300"], ["--cron", "61 * * * *"]])
def test_absurd_schedule_flags_are_usage_errors(synced: tuple[Path, Path], flag: list[str]) -> None:
    cfg, _ = synced
    result = run_cli("-c", str(cfg), "sync", *flag)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(("key", "value"), [("timeout", "1e300"), ("timeout", "400d")])
def test_absurd_config_durations_are_config_errors(upstream: HubServer, tmp_path: Path, key: str, value: str) -> None:
    cfg = write_config(tmp_path / "c.yaml", upstream.url, tmp_path / "home", [{"repo": "org/a"}], upstream={key: value})
    one_line(run_cli("-c", str(cfg), "sync"), 3, str(cfg), f"upstream.{key}")


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_serve_port_out_of_range_is_a_usage_error(synced: tuple[Path, Path], port: str) -> None:
    cfg, _ = synced
    result = run_cli("-c", str(cfg), "serve", "--port", port, timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--port" in result.stderr
    assert "65535" in result.stderr or "greater than or equal to 0" in result.stderr, result.stderr


def test_hf_cache_into_a_file_is_a_usage_error(synced: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, _ = synced
    target = tmp_path / "a-file"
    target.write_text("not a directory")
    result = run_cli("-c", str(cfg), "hf-cache", "--dir", str(target))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "is not a directory" in result.stderr and target.read_text() == "not a directory"


@pytest.mark.parametrize(
    ("section", "command", "fragment"),
    [
        ({}, ["watch"], "no watch: entries"),
        ({}, ["run"], "nothing to run"),
        ({}, ["sync", "--scheduled"], "neither sync.every nor sync.cron"),
    ],
)
def test_config_problems_of_long_running_commands_exit_3(
    upstream: HubServer, tmp_path: Path, section: dict, command: list[str], fragment: str
) -> None:
    cfg = write_config(tmp_path / "c.yaml", upstream.url, tmp_path / "home", [{"repo": "org/a"}], **section)
    one_line(run_cli("-c", str(cfg), *command, timeout=30), 3, str(cfg), fragment)


# ============================================================================ special files in a pushed folder
def test_fifo_socket_and_device_in_a_pushed_folder_are_skipped_with_a_warning(
    upstream: HubServer, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}\n')
    (folder / "README.md").write_text("---\nlicense: mit\nlanguage: en\ntags: [x]\n---\n# m\n")
    os.mkfifo(folder / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "control.sock"))
    (folder / "null").symlink_to("/dev/null")  # a device, reached by a link
    try:
        cfg = write_config(tmp_path / "c.yaml", upstream.url, tmp_path / "home", [], upstream={"token": "t"})
        result = run_cli("-c", str(cfg), "push", str(folder), "--repo", "me/special", "--create", "--json", timeout=60)
    finally:
        sock.close()
    assert result.returncode == 0, result.stderr
    assert "pipe" in result.stderr and "named pipe" in result.stderr
    assert "control.sock" in result.stderr and "socket" in result.stderr
    assert "'null'" in result.stderr
    assert sorted(upstream.file_entry("me/special", p).path for p in ("config.json", "README.md")) == [
        "README.md",
        "config.json",
    ]
    pushed = json.loads(result.stdout)
    assert pushed["files_uploaded"] == 2


# ============================================================================ dry runs write nothing
def test_a_dry_run_without_a_store_creates_none(upstream: HubServer, tmp_path: Path) -> None:
    upstream.commit("org/a", make_small_files(5, seed=9))
    xdg = tmp_path / "xdg"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"home: ''\nupstream: {{endpoint: '{upstream.url}'}}\nrepos: [{{repo: org/a}}]\n")
    result = run_cli("-c", str(cfg), "sync", "--dry-run", "--json", env={"XDG_CACHE_HOME": str(xdg)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] and report["results"][0]["status"] == "planned"
    assert report["results"][0]["bytes_to_fetch"] > 0
    assert not xdg.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_dry_run_on_a_store_writes_nothing_to_it(synced: tuple[Path, Path], upstream: HubServer) -> None:
    cfg, home = synced
    upstream.commit("org/a", {"new.txt": b"new content\n"})
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in home.rglob("*") if p.is_file()}
    result = run_cli("-c", str(cfg), "sync", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would get  model org/a@main" in result.stdout
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in home.rglob("*") if p.is_file()}
    assert after == before


# ============================================================================ scheduled syncs keep their flags
def test_a_scheduled_sync_keeps_repo_and_locked(upstream: HubServer, tmp_path: Path, procs: Procs) -> None:
    upstream.commit("org/x", make_small_files(3, seed=11))
    upstream.commit("org/y", make_small_files(3, seed=12))
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", upstream.url, home, [{"repo": "org/x"}, {"repo": "org/y"}])
    assert run_cli("-c", str(cfg), "lock").returncode == 0
    pinned = upstream.head("org/x")
    upstream.commit("org/x", {"later.txt": b"after the lock\n"})  # upstream moves on; the lock does not
    shutil.rmtree(home)
    upstream.reset_log()
    proc = procs.start("-c", str(cfg), "sync", "org/x", "--locked", "--every", "1h", "--json")
    line = wait_for(lambda: procs.output(proc)[0].strip().splitlines()[:1], 60, "a first scheduled run", proc)
    report = json.loads(line[0])
    assert [(r["repo"], r["commit"]) for r in report["results"]] == [("org/x", pinned)]
    assert upstream.count(path_contains="org/y") == 0
    code, _ = procs.terminate(proc)
    assert code == 0


# ============================================================================ resume and signals
def test_a_416_on_resume_restarts_the_download_from_byte_zero(upstream: HubServer, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    upstream.commit("org/r", {"weights.bin": data})
    sha = hashlib.sha256(data).hexdigest()
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", upstream.url, home, [{"repo": "org/r"}])
    (home / "tmp").mkdir(parents=True)
    (home / "tmp" / f"{sha}.partial").write_bytes(data[:100_000])  # an earlier run's partial download
    upstream.faults.once("416", path_contains=sha)
    upstream.reset_log()
    result = run_cli("-v", "-c", str(cfg), "sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "range not satisfiable" in result.stderr
    ranges = [r.range for r in upstream.requests if r.origin == "cdn"]
    assert ranges[0] == "bytes=100000-" and ranges[-1] is None  # resumed, refused, then from byte 0
    blob = home / "blobs" / "sha256" / sha[:2] / sha
    assert blob.read_bytes() == data


def test_sigterm_is_prompt_while_waiting_to_retry(upstream: HubServer, tmp_path: Path, procs: Procs) -> None:
    upstream.commit("org/slow", {"weights.bin": os.urandom(200_000)})
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", upstream.url, home, [{"repo": "org/slow"}])
    upstream.faults.set(rate=1.0, kinds=["drop"], paths="/blobs/")  # every download breaks: backoff grows
    proc = procs.start("-c", str(cfg), "sync")
    wait_for(lambda: upstream.faults.injected >= 6, 60, "several broken transfers", proc)
    time.sleep(1.0)  # well into a backoff wait (they grow to 30 s)
    asked = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=20)
    assert time.monotonic() - asked < 3, "the retry wait ignored SIGTERM"
    assert code in (0, 130), procs.output(proc)
    assert "Traceback" not in procs.output(proc)[1]
