"""End-to-end tests of ``hubmirror watch``: real watchdog on real tmp folders, the CLI as a subprocess, the
fake Hub (in this process) as upstream.

Each watcher runs with ``debounce: 1s`` and ``--retry-min 0.5 --retry-max 2``, logs to a file, and is
stopped by its PID (SIGTERM, or SIGKILL where a crash is the point). Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hubserver
import pytest
from conftest import run_cli, write_config
from hubserver import HubServer

pytestmark = pytest.mark.timeout(120)

TOKEN = "hf_write_token_for_tests"
PLACEHOLDER = [{"repo": "placeholder/not-synced"}]
CARD = "---\nlanguage: en\nlicense: mit\ntags:\n- test\n---\n# watched\n"


# =================================================================================================== helpers
def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}


class Watcher:
    """``python -m hubmirror -c CFG watch`` in a subprocess, its log (stderr) in a file."""

    def __init__(self, cfg: Path, log: Path) -> None:
        self.cfg, self.log_path = cfg, log
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self, **env: str) -> Watcher:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hubmirror",
                    "-c",
                    str(self.cfg),
                    "watch",
                    "--retry-min",
                    "0.5",
                    "--retry-max",
                    "2",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**clean_env(), **env},
            )
        wait_for(lambda: "watching " in self.log() or self.proc.poll() is not None, "the watcher to start")
        assert self.proc.poll() is None, f"watch exited {self.proc.returncode}:\n{self.log()}"
        return self

    def log(self) -> str:
        """What this run (since the last start) logged."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(self._offset)
            return handle.read().decode(errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log()))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        return self.proc.returncode

    def assert_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"watcher died:\n{self.log()}"


@pytest.fixture
def watchers(tmp_path: Path) -> Iterator[Callable[[Path], Watcher]]:
    started: list[Watcher] = []

    def make(cfg: Path) -> Watcher:
        watcher = Watcher(cfg, tmp_path / f"watch-{len(started)}.log")
        started.append(watcher)
        return watcher

    yield make
    for watcher in started:
        watcher.stop(signal.SIGKILL)


def watch_config(
    tmp_path: Path, endpoint: str, entries: list[dict[str, Any]], *, token: str | None = TOKEN, name: str = "watch.yaml"
) -> Path:
    upstream: dict[str, Any] = {"max_retries": 0, "timeout": 5}
    if token is not None:
        upstream["token"] = token
    entries = [{"debounce": "1s", **e, "path": str(e["path"])} for e in entries]
    return write_config(tmp_path / name, endpoint, tmp_path / "home", PLACEHOLDER, upstream=upstream, watch=entries)


def status(cfg: Path) -> dict[str, Any]:
    proc = run_cli("-c", str(cfg), "status", "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def remote_tree(server: HubServer, repo: str) -> dict[str, bytes]:
    repo_obj = server.store.get("model", repo)
    commit = repo_obj.resolve("main") if repo_obj else None
    return {} if commit is None else {p: server.file_bytes(repo, p) for p in commit.files}


def commits_to(server: HubServer, repo: str) -> list[dict[str, Any]]:
    return [c for c in list(server.commits_made) if c["repo"] == repo]


def started_up(watcher: Watcher, folder: Path) -> None:
    """The start-up scan of ``folder`` has run its push (pushed or up to date)."""
    wait_for(
        lambda: re.search(
            rf"(push {re.escape(str(folder.resolve()))} → \S+: up to date|pushed "
            rf"{re.escape(str(folder.resolve()))} → )",
            watcher.log(),
        ),
        f"the start-up push of {folder}",
    )


def quiet_period(seconds: float = 3.5) -> None:
    """Longer than debounce (1 s) + settle (1 s) + a poll: a push that was going to happen has happened."""
    time.sleep(seconds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hub_on_port(root: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    """A fake Hub whose API origin listens on ``port`` (chosen before the watcher was configured)."""

    class FixedPort(hubserver._Server):
        def server_bind(self) -> None:
            if self.origin == "api":
                self.server_address = ("127.0.0.1", port)
            super().server_bind()

    with monkeypatch.context() as patch:
        patch.setattr(hubserver, "_Server", FixedPort)
        server = HubServer(root).start()
    assert server.url == f"http://127.0.0.1:{port}"
    return server


# =================================================================================================== tests
def test_slow_writes_push_once_complete_and_temp_files_never(
    upstream: HubServer, tmp_path: Path, watchers: Callable[[Path], Watcher]
) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    cfg = watch_config(tmp_path, upstream.url, [{"path": folder, "repo": "me/slow"}])
    watcher = watchers(cfg).start()
    started_up(watcher, folder)
    assert len(commits_to(upstream, "me/slow")) == 1  # the start-up push of README.md

    data = os.urandom(3 * 1024 * 1024)
    piece = len(data) // 6
    (folder / ".git").mkdir()
    with (folder / "big.bin").open("wb") as handle:
        for i in range(6):
            handle.write(data[i * piece : (i + 1) * piece] if i < 5 else data[5 * piece :])
            handle.flush()
            # temp/partial/lock files come and go meanwhile
            (folder / ["x.tmp", "y.incomplete", "z.lock", ".git/HEAD", "big.bin.lock", "w.tmp"][i]).write_bytes(
                b"temporary %d" % i
            )
            time.sleep(0.3)
    commits = wait_for(
        lambda: len(commits_to(upstream, "me/slow")) >= 2 and commits_to(upstream, "me/slow"), "the push of big.bin"
    )
    quiet_period()
    commits = commits_to(upstream, "me/slow")
    assert len(commits) == 2, commits
    assert commits[1]["ops"] == [("lfsFile", "big.bin")]
    remote = remote_tree(upstream, "me/slow")
    assert set(remote) == {"README.md", "big.bin"}
    assert remote["big.bin"] == data  # complete
    assert len([u for u in upstream.uploads if u[2] == len(data)]) == 1

    # more temp-file churn alone never makes a commit
    for name in ("a.tmp", "b.incomplete", "c.lock", ".git/index"):
        (folder / name).write_bytes(b"x" * 100)
    (folder / "x.tmp").unlink()
    quiet_period()
    assert len(commits_to(upstream, "me/slow")) == 2
    watcher.assert_alive()
    assert watcher.stop() == 0


def test_burst_of_50_files_is_one_commit(
    upstream: HubServer, tmp_path: Path, watchers: Callable[[Path], Watcher]
) -> None:
    folder = tmp_path / "burst"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    cfg = watch_config(tmp_path, upstream.url, [{"path": folder, "repo": "me/burst"}])
    watcher = watchers(cfg).start()
    started_up(watcher, folder)
    before = len(commits_to(upstream, "me/burst"))
    for i in range(50):
        (folder / "shards" / f"{i // 10}").mkdir(parents=True, exist_ok=True)
        (folder / "shards" / f"{i // 10}" / f"part-{i:02d}.json").write_text(json.dumps({"i": i}) + "\n")
    wait_for(lambda: len(commits_to(upstream, "me/burst")) > before, "the push of the burst")
    quiet_period()
    commits = commits_to(upstream, "me/burst")
    assert len(commits) == before + 1, [c["ops"][:3] for c in commits]
    assert len(commits[-1]["ops"]) == 50
    assert len(remote_tree(upstream, "me/burst")) == 51
    assert watcher.stop() == 0


def test_upstream_down_job_survives_kill_then_pushed_once(
    tmp_path: Path, watchers: Callable[[Path], Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens here yet
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    cfg = watch_config(tmp_path, f"http://127.0.0.1:{port}", [{"path": folder, "repo": "me/offline"}])
    watcher = watchers(cfg).start()
    wait_for(lambda: watcher.count("push of .* failed") >= 1, "a failed push")
    (folder / "weights.json").write_text('{"w": [1, 2, 3]}\n')  # a change while upstream is down
    wait_for(lambda: watcher.count("push of .* failed") >= 3, "more failed attempts")
    pending = status(cfg)["push"]["pending"]
    assert len(pending) == 1 and pending[0]["repo"] == "me/offline", pending
    assert pending[0]["attempts"] >= 2 and "cannot reach upstream" in pending[0]["last_error"]
    assert watcher.stop(signal.SIGKILL) == -signal.SIGKILL

    after_kill = status(cfg)["push"]
    assert len(after_kill["pending"]) == 1  # survived the crash
    assert after_kill["targets"][0]["last_error"] and not after_kill["targets"][0]["last_commit"]

    server = hub_on_port(tmp_path / "late-hub", port, monkeypatch)
    try:
        watcher.start()
        wait_for(lambda: commits_to(server, "me/offline"), "the queued push", timeout=30)
        quiet_period()
        commits = commits_to(server, "me/offline")
        assert len(commits) == 1, commits  # exactly once
        assert sorted(path for _, path in commits[0]["ops"]) == ["README.md", "weights.json"]
        assert remote_tree(server, "me/offline")["weights.json"] == b'{"w": [1, 2, 3]}\n'
        after = status(cfg)["push"]
        assert after["pending"] == []
        assert after["targets"][0]["last_commit"] == commits[0]["sha"] and after["targets"][0]["last_error"] is None
        assert watcher.stop() == 0
    finally:
        server.stop()


def test_killed_after_commit_before_job_done_is_not_pushed_twice(
    upstream: HubServer, tmp_path: Path, watchers: Callable[[Path], Watcher]
) -> None:
    """SIGKILL after upstream accepted the commit but before the job left the outbox (and before the local
    mirror recorded it): the restart pushes nothing twice, empties the outbox and mirrors the commit."""
    folder = tmp_path / "crash"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    (folder / "config.json").write_text('{"layers": 6}\n')
    cfg = watch_config(tmp_path, upstream.url, [{"path": folder, "repo": "me/crash"}])
    watcher = watchers(cfg).start(HUBMIRROR_FAILPOINTS="sync.before_publish")
    wait_for(lambda: watcher.proc.poll() is not None, "the watcher to die at the failpoint")
    assert watcher.proc.returncode == -signal.SIGKILL
    assert len(commits_to(upstream, "me/crash")) == 1
    assert len(status(cfg)["push"]["pending"]) == 1
    assert run_cli("-c", str(cfg), "resolve", "me/crash", "config.json", timeout=60).returncode == 4

    watcher.start()
    wait_for(lambda: not status(cfg)["push"]["pending"], "the outbox to drain", timeout=30)
    quiet_period(2.5)
    assert len(commits_to(upstream, "me/crash")) == 1  # not pushed twice
    proc = run_cli("-c", str(cfg), "resolve", "me/crash", "config.json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).read_text() == '{"layers": 6}\n'
    assert commits_to(upstream, "me/crash")[0]["sha"] in proc.stdout
    assert watcher.stop() == 0


def test_auth_errors_logged_shown_kept_and_retried_with_capped_backoff(
    tmp_path: Path, watchers: Callable[[Path], Watcher]
) -> None:
    with HubServer(tmp_path / "hub", token=TOKEN) as server:
        a, b = tmp_path / "a", tmp_path / "b"
        for folder in (a, b):
            folder.mkdir()
            (folder / "README.md").write_text(CARD)
            (folder / "model.json").write_text('{"x": 1}\n')
        entries = [{"path": a, "repo": "me/authed"}, {"path": b, "repo": "me/absent", "create": False}]
        cfg = watch_config(tmp_path, server.url, entries, token="hf_wrong")
        watcher = watchers(cfg).start()
        wait_for(lambda: watcher.count(r"push of .*/a → me/authed failed") >= 4, "retries of the 401", timeout=40)
        log = watcher.log()
        assert "upstream rejected the token for 'me/authed' (401" in log and "upstream.token" in log
        delays = [float(d) for d in re.findall(r"me/authed failed \(attempt \d+\).*retrying in (\d+)s", log)]
        assert delays and max(delays) <= 3  # capped at --retry-max 2 (+ jitter)
        data = status(cfg)
        jobs = {j["repo"]: j for j in data["push"]["pending"]}
        assert jobs["me/authed"]["attempts"] >= 4 and "401" in jobs["me/authed"]["last_error"]
        text = run_cli("-c", str(cfg), "status", timeout=60).stdout
        assert re.search(r"→ me/authed: never pushed; 1 push pending \(attempt \d+\); last error: .*401", text), text
        assert watcher.stop() == 0
        assert server.commits_made == []

        # the right token: the kept job goes through; the missing repo (create: false) keeps failing with 404
        cfg = watch_config(tmp_path, server.url, entries, token=TOKEN)
        watcher.start()
        wait_for(lambda: commits_to(server, "me/authed"), "the push after fixing the token")
        wait_for(lambda: watcher.count(r"push of .*/b → me/absent failed") >= 2, "retries of the 404")
        log = watcher.log()
        assert "me/absent" in log and "--create" in log and "create: true" in log
        data = status(cfg)
        assert [j["repo"] for j in data["push"]["pending"]] == ["me/absent"]
        assert "does not exist upstream" in data["push"]["pending"][0]["last_error"]
        assert len(commits_to(server, "me/authed")) == 1 and server.store.get("model", "me/absent") is None
        assert watcher.stop() == 0


def test_deletions_propagate_only_with_delete_remote(
    upstream: HubServer, tmp_path: Path, watchers: Callable[[Path], Watcher]
) -> None:
    keep, drop = tmp_path / "keep", tmp_path / "drop"
    for folder in (keep, drop):
        folder.mkdir()
        (folder / "README.md").write_text(CARD)
        (folder / "a.txt").write_text("a\n")
        (folder / "b.txt").write_text("b\n")
    cfg = watch_config(
        tmp_path,
        upstream.url,
        [{"path": keep, "repo": "me/keep"}, {"path": drop, "repo": "me/drop", "delete_remote": True}],
    )
    watcher = watchers(cfg).start()
    wait_for(lambda: commits_to(upstream, "me/keep") and commits_to(upstream, "me/drop"), "the first pushes")
    (keep / "b.txt").unlink()
    (drop / "b.txt").unlink()
    wait_for(lambda: len(commits_to(upstream, "me/drop")) == 2, "the deletion in me/drop")
    wait_for(
        lambda: watcher.count(rf"push {re.escape(str(keep.resolve()))} → me/keep@main: up to date") >= 1,
        "the push of me/keep after the deletion",
    )
    quiet_period(2.5)
    assert commits_to(upstream, "me/drop")[-1]["ops"] == [("deletedFile", "b.txt")]
    assert set(remote_tree(upstream, "me/drop")) == {"README.md", "a.txt"}
    assert len(commits_to(upstream, "me/keep")) == 1
    assert set(remote_tree(upstream, "me/keep")) == {"README.md", "a.txt", "b.txt"}
    assert watcher.stop() == 0


def test_changes_made_while_not_running_are_found_at_start(
    upstream: HubServer, tmp_path: Path, watchers: Callable[[Path], Watcher]
) -> None:
    folder = tmp_path / "later"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    (folder / "a.txt").write_text("v1\n")
    cfg = watch_config(tmp_path, upstream.url, [{"path": folder, "repo": "me/later"}])
    watcher = watchers(cfg).start()
    wait_for(lambda: commits_to(upstream, "me/later"), "the first push (found at start-up)")
    assert watcher.stop() == 0

    (folder / "a.txt").write_text("v2, written while the watcher was stopped\n")
    (folder / "new.txt").write_text("new\n")
    watcher.start()
    wait_for(lambda: len(commits_to(upstream, "me/later")) == 2, "the push of offline changes")
    quiet_period(2.5)
    commits = commits_to(upstream, "me/later")
    assert len(commits) == 2
    assert sorted(commits[1]["ops"]) == [("file", "a.txt"), ("file", "new.txt")]
    assert remote_tree(upstream, "me/later")["a.txt"] == b"v2, written while the watcher was stopped\n"
    assert watcher.stop() == 0

    # and a restart with nothing changed pushes nothing
    watcher.start()
    started_up(watcher, folder)
    assert len(commits_to(upstream, "me/later")) == 2
    assert watcher.stop() == 0


def test_job_for_a_target_no_longer_watched_is_kept_and_warned_about_once(
    upstream: HubServer, tmp_path: Path, watchers: Callable[[Path], Watcher]
) -> None:
    from hubmirror.index import PushBook
    from hubmirror.mirror import Mirror

    gone, kept = tmp_path / "gone", tmp_path / "kept"
    for folder in (gone, kept):
        folder.mkdir()
        (folder / "README.md").write_text(CARD)
    cfg = watch_config(tmp_path, upstream.url, [{"path": kept, "repo": "me/kept"}])
    with Mirror(tmp_path / "home") as mirror:  # a job left by an earlier config that watched `gone`
        PushBook(mirror.index).enqueue(str(gone.resolve()), "me/gone", "model", "main", 0.0)
    watcher = watchers(cfg).start()
    wait_for(lambda: commits_to(upstream, "me/kept"), "the push of the watched folder")
    quiet_period(2.0)
    assert watcher.count("no longer in the config's watch list") == 1, watcher.log()[-2000:]
    assert [j["repo"] for j in status(cfg)["push"]["pending"]] == ["me/gone"]
    assert commits_to(upstream, "me/gone") == []
    assert watcher.stop() == 0
