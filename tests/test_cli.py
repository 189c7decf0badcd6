"""The ``hubmirror`` command line, run as a real subprocess: help, config discovery and precedence, sync /
status / lock output (text and --json), exit codes, and what goes to stdout, stderr and a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, write_config
from hubserver import HubServer

pytestmark = pytest.mark.timeout(120)

CONTROL = re.compile(r"\x1b\[|\r")  # ANSI escapes (progress bars, colours) and carriage returns


@pytest.fixture
def xdg(tmp_path: Path) -> Path:
    """A private cache dir, so no test can fall back to the user's ~/.cache/hubmirror."""
    path = tmp_path / "xdg"
    path.mkdir()
    return path


def cli(
    *args: str, xdg: Path, cwd: Path | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"XDG_CACHE_HOME": str(xdg), "COLUMNS": "200", **env}, cwd=cwd, timeout=timeout)


@pytest.fixture
def hub(upstream: HubServer) -> HubServer:
    upstream.commit("org/a", {"config.json": b'{"a": 1}\n', "weights.bin": b"\x00\x01" * 500})
    upstream.commit("org/b", {"config.json": b'{"b": 2}\n', "notes/readme.md": b"# b\n"})
    return upstream


@pytest.fixture
def cfg(hub: HubServer, tmp_path: Path, home: Path) -> Path:
    """A config in its own directory (not the cwd of the runs), listing org/a and org/b."""
    confdir = tmp_path / "conf"
    confdir.mkdir()
    return write_config(
        confdir / "hubmirror.yaml", hub.url, home, [{"repo": "org/a"}, {"repo": "org/b"}], upstream={"max_retries": 1}
    )


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An empty working directory (no hubmirror.yaml in it)."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ============================================================================================ help, usage
@pytest.mark.parametrize(
    "command, options",
    [
        (
            (),
            [
                "--config",
                "-c",
                "$HUBMIRROR_CONFIG",
                "./hubmirror.yaml",
                "--home",
                "$HUBMIRROR_HOME",
                "--verbose",
                "--quiet",
                "sync",
                "status",
                "lock",
            ],
        ),
        (("sync",), ["--dry-run", "--locked", "--json", "repos", "Exit 0 only when every repo"]),
        (("status",), ["--json", "sync runs"]),
        (("lock",), ["--json", "hubmirror.lock"]),
    ],
)
def test_help(command: tuple[str, ...], options: list[str], xdg: Path, elsewhere: Path) -> None:
    result = cli(*command, "--help", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    for option in options:
        assert option in result.stdout, f"{option!r} missing from `hubmirror {' '.join(command)} --help`"
    assert not list(elsewhere.iterdir()) and not list(xdg.iterdir()), "--help created files"


_IMPORTED = """
import runpy, sys
sys.argv = ["hubmirror", *sys.argv[1:]]
try:
    runpy.run_module("hubmirror", run_name="__main__")
except SystemExit:
    pass
print("\\n".join(sorted(name for name, module in sys.modules.items() if module is not None)), file=sys.stderr)
"""


def _run_recording_imports(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI with ``args``; its result and the modules it had imported when it ended."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTED, *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    return result, set(result.stderr.split())


@pytest.mark.parametrize("args", [["--help"], ["status", "--help"], ["resolve", "org/none"]])
def test_commands_load_only_what_they_use(args: list[str], xdg: Path, elsewhere: Path) -> None:
    """Start-up is part of every command: --help, and resolve (scripts call it in loops), never import the
    upstream client, the sync engine or the server."""
    result, loaded = _run_recording_imports(args, elsewhere)
    assert "hubmirror.cli" in loaded or "hubmirror.cli._entry" in loaded, result.stderr[-2000:]
    for heavy in ("httpx2", "hubmirror.mirror", "hubmirror.sync", "hubmirror.serve", "starlette", "boto3"):
        assert heavy not in loaded, heavy


def test_a_plain_sync_skips_the_cli_framework(xdg: Path, elsewhere: Path) -> None:
    """sync from cron or a script (no terminal) is parsed without typer's pydantic-based coercion, and
    answers exactly as the full CLI does (same output, same exit code)."""
    config = write_config(elsewhere / "hubmirror.yaml", "http://127.0.0.1:9", elsewhere / "home", [])
    result, loaded = _run_recording_imports(["-c", str(config), "sync", "--json"], elsewhere)
    assert "hubmirror.cli._cmd_mirror" in loaded and "pydantic" not in loaded and "typer._adapters" not in loaded
    # httpcore2 imports trio when installed (selenium brings it into this venv); the CLI never runs trio
    listed = write_config(elsewhere / "one.yaml", "http://127.0.0.1:9", elsewhere / "home", [{"repo": "org/a"}])
    contacted, loaded = _run_recording_imports(["-c", str(listed), "sync", "--json"], elsewhere)
    assert "httpcore2" in loaded and "trio" not in loaded, contacted.stderr[-500:]
    assert json.loads(result.stdout)["results"] == []
    full = cli("-c", str(config), "sync", "--json", "--every", "0s", xdg=xdg, cwd=elsewhere)  # the full CLI
    assert full.returncode == 2 and "every must be greater than 0" in full.stderr  # (through typer)
    unknown = cli("-c", str(config), "sync", "no/such", xdg=xdg, cwd=elsewhere)
    assert unknown.returncode == 3 and "no/such" in unknown.stderr, unknown.stderr


def test_no_arguments_prints_help(xdg: Path, elsewhere: Path) -> None:
    result = cli(xdg=xdg, cwd=elsewhere)
    assert result.returncode in (0, 2)
    assert "sync" in result.stdout + result.stderr and "Usage" in result.stdout + result.stderr


def test_unknown_command_is_a_usage_error(xdg: Path, elsewhere: Path) -> None:
    result = cli("frobnicate", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 2
    assert "frobnicate" in result.stderr and result.stdout == ""


def test_unknown_option_is_a_usage_error(xdg: Path, elsewhere: Path) -> None:
    result = cli("sync", "--no-such-flag", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 2
    assert "--no-such-flag" in result.stderr


# ============================================================================================ config discovery
def _home_used(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["home"]


def test_config_from_flag_env_and_cwd(hub: HubServer, tmp_path: Path, xdg: Path, elsewhere: Path) -> None:
    repos = [{"repo": "org/a"}]
    for name in ("home-flag", "home-env", "home-cwd"):  # read commands need a store; they never create one
        assert cli("--home", str(tmp_path / name), "import-hf-cache", str(elsewhere), xdg=xdg).returncode == 0
    flag = write_config(tmp_path / "flag.yaml", hub.url, tmp_path / "home-flag", repos)
    named = write_config(tmp_path / "named.yaml", hub.url, tmp_path / "home-env", repos)
    write_config(elsewhere / "hubmirror.yaml", hub.url, tmp_path / "home-cwd", repos)
    # ./hubmirror.yaml, then $HUBMIRROR_CONFIG over it, then -c over both
    assert _home_used(cli("status", "--json", xdg=xdg, cwd=elsewhere)) == str(tmp_path / "home-cwd")
    assert _home_used(cli("status", "--json", xdg=xdg, cwd=elsewhere, HUBMIRROR_CONFIG=str(named))) == str(
        tmp_path / "home-env"
    )
    assert _home_used(
        cli("-c", str(flag), "status", "--json", xdg=xdg, cwd=elsewhere, HUBMIRROR_CONFIG=str(named))
    ) == str(tmp_path / "home-flag")


def test_no_config_found_says_where_it_looked(xdg: Path, elsewhere: Path) -> None:
    result = cli("sync", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 3
    message = result.stderr
    assert "no config file found" in message
    for place in ("-c/--config", "$HUBMIRROR_CONFIG", str(elsewhere / "hubmirror.yaml")):
        assert place in message, f"{place!r} not named in: {message}"
    assert result.stdout == ""


@pytest.mark.parametrize("how", ["cwd", "env"])
def test_status_does_not_ignore_a_broken_config(how: str, tmp_path: Path, xdg: Path, elsewhere: Path) -> None:
    path = elsewhere / "hubmirror.yaml" if how == "cwd" else tmp_path / "named.yaml"
    path.write_text("home: ./h\nrepos:\n  - repo: org/a\n    typo: 1\n")
    result = cli("status", xdg=xdg, cwd=elsewhere, **({"HUBMIRROR_CONFIG": str(path)} if how == "env" else {}))
    assert result.returncode == 3, result.stdout
    assert f"{path}:4" in result.stderr
    assert not (xdg / "hubmirror").exists()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_named_config_missing(how: str, tmp_path: Path, xdg: Path, elsewhere: Path) -> None:
    missing = tmp_path / "nope.yaml"
    args, env = (("-c", str(missing)), {}) if how == "flag" else ((), {"HUBMIRROR_CONFIG": str(missing)})
    result = cli(*args, "sync", xdg=xdg, cwd=elsewhere, **env)
    assert result.returncode == 3
    assert str(missing) in result.stderr
    assert ("-c/--config" if how == "flag" else "HUBMIRROR_CONFIG") in result.stderr


@pytest.mark.parametrize(
    "text, line, words",
    [
        (
            "home: /tmp/x\nupstream:\n  endpoint: http://127.0.0.1:1\nrepos:\n  - repo: org/a\n    revisons: [main]\n",
            6,
            ["repos[0]", "revisons"],
        ),
        ("repos:\n  - repo: org/a\n\tbad: 1\n  - repo: org/b\n", 3, ["invalid YAML"]),
        ("repos:\n  - repo: org/a\n    type: modle\n", 3, ["repos[0].type", "modle"]),
    ],
)
def test_malformed_config_names_file_and_line(
    text: str, line: int, words: list[str], tmp_path: Path, xdg: Path, elsewhere: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = cli("-c", str(path), "sync", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 3, result.stderr
    assert f"{path}:{line}" in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr


def test_hubmirror_home_overrides_config_and_home_flag_overrides_both(
    cfg: Path, home: Path, tmp_path: Path, xdg: Path, elsewhere: Path
) -> None:
    env_home, flag_home = tmp_path / "env-home", tmp_path / "flag-home"
    result = cli("-c", str(cfg), "sync", "org/a", xdg=xdg, cwd=elsewhere, HUBMIRROR_HOME=str(env_home))
    assert result.returncode == 0, result.stderr
    assert (env_home / "index.sqlite").is_file() and not home.exists()
    result = cli(
        "-c", str(cfg), "--home", str(flag_home), "sync", "org/a", xdg=xdg, cwd=elsewhere, HUBMIRROR_HOME=str(env_home)
    )
    assert result.returncode == 0, result.stderr
    assert (flag_home / "index.sqlite").is_file() and not home.exists()
    # and status reads from the same places
    assert _home_used(
        cli("-c", str(cfg), "status", "--json", xdg=xdg, cwd=elsewhere, HUBMIRROR_HOME=str(env_home))
    ) == str(env_home)
    assert _home_used(
        cli(
            "-c",
            str(cfg),
            "--home",
            str(flag_home),
            "status",
            "--json",
            xdg=xdg,
            cwd=elsewhere,
            HUBMIRROR_HOME=str(env_home),
        )
    ) == str(flag_home)


# ============================================================================================ sync
def test_sync_one_repo(cfg: Path, hub: HubServer, xdg: Path, elsewhere: Path) -> None:
    result = cli("-c", str(cfg), "sync", "org/b", "--json", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["repo"] for r in report["results"]] == ["org/b"]
    assert hub.count(path_contains="org/a") == 0
    assert hub.count(path_contains="/org/b/resolve/") == 2


def test_sync_unknown_repo_lists_the_configured_ones(cfg: Path, hub: HubServer, xdg: Path, elsewhere: Path) -> None:
    result = cli("-c", str(cfg), "sync", "org/unknown", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 3
    assert "org/unknown" in result.stderr
    assert "org/a" in result.stderr and "org/b" in result.stderr
    assert hub.count() == 0


def test_sync_json_report(cfg: Path, hub: HubServer, home: Path, xdg: Path, elsewhere: Path) -> None:
    result = cli("-c", str(cfg), "sync", "--json", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["dry_run"] is False
    assert [(r["repo"], r["revision"], r["status"]) for r in report["results"]] == [
        ("org/a", "main", "updated"),
        ("org/b", "main", "updated"),
    ]
    assert report["results"][0]["commit"] == hub.head("org/a")
    assert report["files_fetched"] == 4 and report["bytes_fetched"] == sum(
        len(hub.file_bytes(repo, path))
        for repo, path in [
            ("org/a", "config.json"),
            ("org/a", "weights.bin"),
            ("org/b", "config.json"),
            ("org/b", "notes/readme.md"),
        ]
    )
    for key in ("files_deduped", "bytes_deduped", "requests", "duration", "run_id"):
        assert key in report
    again = json.loads(cli("-c", str(cfg), "sync", "--json", xdg=xdg, cwd=elsewhere).stdout)
    assert [r["status"] for r in again["results"]] == ["unchanged", "unchanged"]
    assert again["files_fetched"] == 0 and again["requests"] == 2


def test_sync_some_repos_fail(hub: HubServer, tmp_path: Path, home: Path, xdg: Path, elsewhere: Path) -> None:
    path = write_config(
        tmp_path / "mixed.yaml",
        hub.url,
        home,
        [{"repo": "org/a"}, {"repo": "org/missing"}],
        upstream={"max_retries": 1},
    )
    result = cli("-c", str(path), "sync", "--json", xdg=xdg, cwd=elsewhere)
    assert result.returncode not in (0, 2), result.stderr
    assert result.returncode == 5  # one kind of failure: upstream refused (not found)
    report = json.loads(result.stdout)
    assert report["ok"] is False
    by_repo = {r["repo"]: r for r in report["results"]}
    assert by_repo["org/a"]["status"] == "updated"
    failed = by_repo["org/missing"]
    assert failed["status"] == "failed" and "org/missing" in failed["error"] and failed["exit_code"] == 5
    # the text form names the failed repo on stdout and the exit code is the same
    text = cli("-c", str(path), "sync", xdg=xdg, cwd=elsewhere)
    assert text.returncode == 5
    assert "FAILED" in text.stdout and "org/missing" in text.stdout
    assert "synced 1/2" in text.stdout


@pytest.mark.parametrize("down", ["closed-port", "stopped-server", "dns-failure"])
def test_a_first_run_against_an_unreachable_upstream_fails_fast_with_a_hint(
    down: str, hub: HubServer, tmp_path: Path, home: Path, xdg: Path, elsewhere: Path
) -> None:
    """The README's first command on a machine that cannot reach upstream: default retries (8), yet one
    line per repo within seconds, exit 6, naming upstream.endpoint and the offline imports."""
    if down == "closed-port":
        endpoint = f"http://127.0.0.1:{_closed_port()}"
    elif down == "dns-failure":
        endpoint = "http://no-such-host.invalid"
    else:
        endpoint = hub.url
        hub.stop()
    path = write_config(tmp_path / "down.yaml", endpoint, home, [{"repo": "org/a"}, {"repo": "org/b"}])
    started = time.monotonic()
    result = cli("-c", str(path), "sync", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 6, (result.stdout, result.stderr)
    assert time.monotonic() - started < 5
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2 and "org/a" in failed[0] and "org/b" in failed[1]
    assert "cannot reach upstream" in failed[0] and "upstream.endpoint" in failed[0]
    assert "hubmirror import" in failed[0]
    if down == "dns-failure":
        assert "DNS lookup failed" in failed[0]
    # the second repo speaks of itself, not of the first one's request
    assert "org/a" not in failed[1] and "could not be reached earlier in this run" in failed[1]
    # each failure is said once: no log line repeating the FAILED line
    assert "org/a" not in result.stderr, result.stderr
    as_json = cli("-c", str(path), "sync", "--json", xdg=xdg, cwd=elsewhere)
    assert as_json.returncode == 6
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert {r["error_type"] for r in report["results"]} == {"UpstreamUnreachableError"}


# ============================================================================================ output streams
def test_piped_output_has_no_control_characters_and_logs_go_to_stderr(
    cfg: Path, hub: HubServer, xdg: Path, elsewhere: Path
) -> None:
    hub.latency = 0.05  # long enough for a progress bar to refresh if one were drawn
    result = cli("-c", str(cfg), "sync", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert not CONTROL.search(result.stdout), repr(result.stdout)
    assert not CONTROL.search(result.stderr), repr(result.stderr)
    # results on stdout, one line per repo revision plus the summary; logs (INFO when not a tty) on stderr
    assert re.search(r"^updated +model org/a@main [0-9a-f]{12}: 2 files", result.stdout, re.M)
    assert re.search(r"^synced 2/2 repo revisions", result.stdout, re.M)
    assert " INFO " not in result.stdout and "hubmirror.sync" not in result.stdout
    assert re.search(r"INFO hubmirror\.sync[\w.]*: model org/a@main", result.stderr)
    quiet = cli("-c", str(cfg), "-q", "sync", xdg=xdg, cwd=elsewhere)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "unchanged" in quiet.stdout


def test_progress_bar_only_on_a_terminal(cfg: Path, hub: HubServer, xdg: Path, elsewhere: Path) -> None:
    """The counterpart of the test above: with stderr on a terminal the bar is drawn there (and stdout,
    piped, still carries only the results)."""
    hub.latency = 0.05
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}
    env.update(XDG_CACHE_HOME=str(xdg), COLUMNS="120", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubmirror", "-c", str(cfg), "sync"],
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(slave)
    terminal = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                terminal += chunk
            elif proc.poll() is not None:
                break
        stdout = proc.stdout.read().decode() if proc.stdout else ""
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        os.close(master)
    assert b"\x1b[" in terminal, terminal[:500]
    assert not CONTROL.search(stdout), repr(stdout)
    assert "synced 2/2" in stdout


# ============================================================================================ status
@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["env"],
        ["hf-cache"],
        ["hf-cache", "--dir", "VIEW"],
        ["resolve", "org/a"],
        ["serve", "--port", "0"],
    ],
)
def test_read_commands_never_create_a_store(command: list[str], tmp_path: Path, xdg: Path, elsewhere: Path) -> None:
    missing = tmp_path / "no-store-here"
    argv = [str(tmp_path / "view") if a == "VIEW" else a for a in command]
    result = cli(*argv, xdg=xdg, cwd=elsewhere, HUBMIRROR_HOME=str(missing))
    assert result.returncode == 10, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and str(missing) in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing.exists() and not (tmp_path / "view").exists()
    # an existing directory that is not a store is not turned into one either
    missing.mkdir()
    again = cli(*argv, xdg=xdg, cwd=elsewhere, HUBMIRROR_HOME=str(missing))
    assert again.returncode == 10 and "holds no hubmirror store" in again.stderr
    assert list(missing.iterdir()) == []


def test_status_with_nothing_mirrored(tmp_path: Path, xdg: Path, elsewhere: Path) -> None:
    empty = tmp_path / "empty-home"
    made = cli("--home", str(empty), "import-hf-cache", str(elsewhere), xdg=xdg)  # a write command creates it
    assert made.returncode == 0, made.stderr
    result = cli("status", xdg=xdg, cwd=elsewhere, HUBMIRROR_HOME=str(empty))
    assert result.returncode == 0, result.stderr
    assert "no repos mirrored yet" in result.stdout
    assert str(empty) in result.stdout
    data = json.loads(cli("status", "--json", xdg=xdg, cwd=elsewhere, HUBMIRROR_HOME=str(empty)).stdout)
    assert data["repos"] == [] and data["sync_runs"] == [] and data["store"]["blobs"] == 0


def test_status_after_sync(cfg: Path, hub: HubServer, home: Path, xdg: Path, elsewhere: Path) -> None:
    assert cli("-c", str(cfg), "sync", xdg=xdg, cwd=elsewhere).returncode == 0
    result = cli("-c", str(cfg), "status", "--json", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["home"] == str(home)
    repos = {r["name"]: r for r in data["repos"]}
    assert set(repos) == {"org/a", "org/b"}
    a = repos["org/a"]
    assert a["type"] == "model" and a["refs"] == {"main": hub.head("org/a")}
    assert [(c["sha"], c["files"]) for c in a["commits"]] == [(hub.head("org/a"), 2)]
    store = data["store"]
    assert store["blobs"] == 4 and store["repos"] == 2 and store["commits"] == 2
    assert store["stored_bytes"] == store["logical_bytes"] > 0 and store["saved_bytes"] == 0
    run = data["sync_runs"][0]
    assert run["outcome"] == "ok" and run["files_fetched"] == 4 and run["repos_ok"] == 2
    # the text form, from HUBMIRROR_HOME alone: no config file anywhere
    text = cli("status", xdg=xdg, cwd=elsewhere, HUBMIRROR_HOME=str(home))
    assert text.returncode == 0, text.stderr
    assert f"main → {hub.head('org/a')[:12]}  2 files" in text.stdout
    assert "model org/b" in text.stdout and "4 blobs" in text.stdout
    assert re.search(r"sync run 1 at .*: ok, 4 files fetched", text.stdout)


# ============================================================================================ lock
def test_lock_writes_beside_the_config(cfg: Path, hub: HubServer, xdg: Path, elsewhere: Path) -> None:
    result = cli("-c", str(cfg), "lock", xdg=xdg, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    path = cfg.parent / "hubmirror.lock"
    assert path.is_file() and not (elsewhere / "hubmirror.lock").exists()
    assert f"wrote {path}" in result.stdout
    lock = json.loads(path.read_text())
    pinned = {(r["repo"], r["revision"]): r for r in lock["repos"]}
    assert pinned[("org/a", "main")]["commit"] == hub.head("org/a")
    assert {f["path"] for f in pinned[("org/b", "main")]["files"]} == {"config.json", "notes/readme.md"}
    path.unlink()
    as_json = cli("-c", str(cfg), "lock", "--json", xdg=xdg, cwd=elsewhere)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["lock_file"] == str(path) and data["ok"] is True
    assert path.is_file()


STOP_LOOP = """
from hubmirror.cli._common import stop_on_signals
with stop_on_signals() as stop:
    print("ready", flush=True)
    while not stop.wait(0):  # the main thread takes and drops the Event's internal lock all the time
        pass
print("stopped", flush=True)
"""


def test_sigterm_stops_a_main_thread_that_is_inside_the_stop_event() -> None:
    """A signal landing while the main thread holds the stop Event's lock must still stop it (setting the
    Event from the handler deadlocked there: 7 runs in 10 hung when this test was written)."""
    for _ in range(5):
        with subprocess.Popen([sys.executable, "-c", STOP_LOOP], stdout=subprocess.PIPE, text=True) as child:
            try:
                assert child.stdout is not None and child.stdout.readline().strip() == "ready"
                time.sleep(0.05)
                child.send_signal(signal.SIGTERM)
                assert child.wait(timeout=10) == 0
                assert child.stdout.read().strip() == "stopped"
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait(timeout=10)
