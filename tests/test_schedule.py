"""Scheduled sync, the request budget and 429 pacing, run history in status, and ``hubmirror run``.

Long-running commands run as real processes (ended by their PID at teardown); the scheduler loop and the
rate gate are also driven in-process where a shortened clock keeps the test fast.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import re
import shlex
import signal
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

import filelock
import httpx2
import pytest
from conftest import MINILM, run_cli, write_config
from hubserver import HubServer, RequestLog, add_minilm, make_small_files
from prockit import Procs, wait_for

from hubmirror.config import load_config
from hubmirror.hub import RateGate, UpstreamClient
from hubmirror.index import NEXT_SYNC_KEY, PushBook
from hubmirror.mirror import Mirror
from hubmirror.schedule import Schedule, run_scheduled, schedule_for
from hubmirror.sync import Syncer

pytestmark = pytest.mark.timeout(90)

REPO_ROOT = Path(__file__).parent.parent
SAFETENSORS = "model.safetensors"


# ============================================================================================ helpers


def status_json(home: Path, *, poll: bool = False) -> dict:
    """``hubmirror status --json``; with ``poll``, a store that a starting process has not created yet
    reads as empty (status never creates one)."""
    result = run_cli("--home", str(home), "status", "--json", timeout=30)
    if poll and result.returncode == 10 and "does not exist" in result.stderr:
        return {"next_sync": None, "sync_runs": []}
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def status_text(home: Path) -> str:
    result = run_cli("--home", str(home), "status", timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def sync_runs(home: Path) -> list:
    """Finished and running sync runs, oldest first (straight from the index)."""
    with Mirror(home) as mirror:
        return list(reversed(mirror.index.sync_runs(100)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_api_call(entry: RequestLog) -> bool:
    """What the budget counts: API calls (``/api/...`` on the API origin), not file downloads."""
    return entry.origin == "api" and entry.path.startswith("/api/")


def api_times(upstream: HubServer) -> list[float]:
    return sorted(e.at for e in list(upstream.requests) if is_api_call(e))


def api_calls(upstream: HubServer) -> int:
    return sum(1 for e in list(upstream.requests) if is_api_call(e))


def max_in_window(times: list[float], window: float) -> int:
    """The most requests in any half-open window of ``window`` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def check_blobs_named_by_content(home: Path) -> int:
    blobs = [p for p in (home / "blobs").rglob("*") if p.is_file()]
    for path in blobs:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, f"half-written blob {path}"
    return len(blobs)


# ======================================================================= 1. the interval, overlap, SIGTERM
def test_sync_every_fires_on_its_interval_and_sigterm_exits_0(
    upstream: HubServer, make_config, home: Path, procs: Procs
) -> None:
    upstream.commit("org/small", make_small_files(10, 1))
    cfg = make_config([{"repo": "org/small"}])
    upstream.reset_log()
    proc = procs.start("-c", str(cfg), "sync", "--every", "1s", "--json")

    def revision_calls() -> list[float]:  # each run asks for the commit once
        return sorted(e.at for e in list(upstream.requests) if "/revision/" in e.path)

    wait_for(lambda: len(revision_calls()) >= 4, 15, "four scheduled runs", proc)
    code, took = procs.terminate(proc)
    out, err = procs.output(proc)
    assert code == 0, err
    assert took < 10
    starts = revision_calls()
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # on its interval, neither faster nor stalled (a run's first request comes a moment after its start,
    # the first run's a bit later than the others')
    assert all(0.6 <= gap <= 1.6 for gap in gaps) and sum(gaps[1:]) >= 0.9 * len(gaps[1:]), gaps
    reports = [json.loads(line) for line in out.splitlines() if line.strip()]
    # one --json line per run (a run that SIGTERM stopped before its first request prints one too)
    assert len(starts) <= len(reports) <= len(starts) + 1, (len(reports), len(starts), err)
    assert all(r["ok"] for r in reports)
    assert reports[0]["files_fetched"] == 10 and all(r["files_fetched"] == 0 for r in reports[1:])
    runs = sync_runs(home)
    assert [r.id for r in runs] == [r["run_id"] for r in reports]  # and one history row per run
    # SIGTERM may land while the last run is going: that one is recorded as interrupted
    assert all(r.outcome == "ok" for r in runs[:-1]) and runs[-1].outcome in ("ok", "interrupted")
    assert status_json(home)["next_sync"] is None  # cleared on a clean stop
    assert "Traceback" not in err


def test_a_run_longer_than_the_interval_skips_slots_and_never_overlaps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 1.25 s job on a 0.5 s schedule (the 2.5 s / 1 s case, at half the time)."""
    spans: list[tuple[float, float]] = []
    running = threading.Lock()

    def job() -> None:
        assert running.acquire(blocking=False), "two runs at once"
        start = time.monotonic()
        time.sleep(1.25)
        spans.append((start, time.monotonic()))
        running.release()

    stop = threading.Event()
    timer = threading.Timer(2.0, stop.set)
    caplog.set_level(logging.INFO, logger="hubmirror.schedule._schedule")
    with Mirror(tmp_path / "home") as mirror:
        timer.start()
        try:
            runs = run_scheduled(job, Schedule(every=0.5), mirror.store, mirror.index, stop)
        finally:
            timer.cancel()
        assert mirror.index.get_meta(NEXT_SYNC_KEY) is None
    assert runs == len(spans) == 2
    (s0, e0), (s1, e1) = spans
    assert s1 >= e0, "runs overlapped"
    assert s1 - s0 >= 0.5
    # slots at 0.5 and 1.0 fell due during the first run and were skipped: the next run is at 1.5, not 1.25
    assert 1.4 <= s1 - s0 <= 1.75, s1 - s0
    assert "skipped 2 scheduled run(s) that fell due while the previous run was going" in caplog.text


def test_next_sync_is_recorded_before_each_wait(tmp_path: Path) -> None:
    seen: list[str | None] = []
    stop = threading.Event()
    with Mirror(tmp_path / "home") as mirror:

        def job() -> None:
            seen.append(mirror.index.get_meta(NEXT_SYNC_KEY))
            if len(seen) == 2:
                stop.set()

        before = time.time()
        assert run_scheduled(job, Schedule(every=0.3), mirror.store, mirror.index, stop) == 2
        assert mirror.index.get_meta(NEXT_SYNC_KEY) is None
    # ISO with seconds, UTC; the first slot is "now"
    first = datetime.fromisoformat(seen[0]).timestamp()  # type: ignore[arg-type]
    assert before - 1 <= first <= before + 1


@pytest.mark.timeout(120)
def test_sigterm_during_a_big_download_keeps_the_partial_and_the_outbox(
    upstream: HubServer, make_config, home: Path, procs: Procs
) -> None:
    add_minilm(upstream)
    big = upstream.file_entry(MINILM, SAFETENSORS)
    sha = big.blob.sha256
    # A slow CDN: 20 MB at full speed, then 2 MB per connection with a short pause before each resume.
    upstream.faults.once("drop", path_contains=sha, after_bytes=20_000_000)
    for _ in range(30):
        upstream.faults.once("drop", path_contains=sha, after_bytes=2_000_000)
    cfg = make_config([{"repo": MINILM}])
    with Mirror(home) as mirror, mirror.store.write_lock():
        PushBook(mirror.index).enqueue(
            str(home.parent / "outgoing"), "org/outgoing", "model", "main", time.time() + 3600
        )
    proc = procs.start("-c", str(cfg), "sync", "--every", "60s")
    partial = home / "tmp" / f"{sha}.partial"
    wait_for(lambda: partial.exists() and partial.stat().st_size >= 22_000_000, 60, "the big download under way", proc)
    code, took = procs.terminate(proc)
    _, err = procs.output(proc)
    assert code == 0, err
    assert took < 10, took
    assert "Traceback" not in err

    # nothing half-written in blobs/, the big file only as a partial in tmp/
    check_blobs_named_by_content(home)
    assert not (home / "blobs" / "sha256" / sha[:2] / sha).exists()
    kept = partial.stat().st_size
    assert 22_000_000 <= kept < big.size
    assert partial.read_bytes() == upstream.file_bytes(MINILM, SAFETENSORS)[:kept]
    # the outbox job is intact, the run is recorded as interrupted, no next run is announced
    with Mirror(home) as mirror:
        jobs = PushBook(mirror.index).jobs()
        assert [(j.repo, j.attempts) for j in jobs] == [("org/outgoing", 0)]
        assert mirror.index.sync_runs(1)[0].outcome == "interrupted"
        assert mirror.index.get_meta(NEXT_SYNC_KEY) is None

    # the next run resumes the big file with Range
    upstream.faults.clear()
    time.sleep(0.2)
    upstream.reset_log()
    rerun = run_cli("-c", str(cfg), "sync", "--json", timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    gets = [r for r in list(upstream.requests) if r.origin == "cdn" and sha in r.path and r.method == "GET"]
    assert [g.range for g in gets] == [f"bytes={kept}-"]
    assert gets[0].bytes_sent == big.size - kept
    check_blobs_named_by_content(home)
    assert (home / "blobs" / "sha256" / sha[:2] / sha).exists()
    assert not partial.exists()


def test_a_second_scheduled_sync_of_the_same_home_is_skipped_and_logged(
    upstream: HubServer, make_config, home: Path, procs: Procs
) -> None:
    upstream.commit("org/small", make_small_files(5, 2))
    cfg = make_config([{"repo": "org/small"}])
    Mirror(home).close()
    other = filelock.FileLock(str(home / "locks" / "scheduled-sync.lock"))
    other.acquire(timeout=5)  # another process's scheduled sync is running
    try:
        proc = procs.start("-c", str(cfg), "sync", "--every", "1s", "--json")
        wait_for(lambda: procs.output(proc)[1].count("scheduled sync skipped") >= 2, 10, "two skipped slots", proc)
        assert sync_runs(home) == []
        assert upstream.count(origin="api") == 0
    finally:
        other.release()
    # once the other sync is done, the next slot runs
    wait_for(lambda: any(r.outcome == "ok" for r in sync_runs(home)), 10, "a run after the lock is free", proc)
    code, _ = procs.terminate(proc)
    out, err = procs.output(proc)
    assert code == 0, err
    assert "another hubmirror sync of" in err and "is still running" in err
    assert json.loads(out.splitlines()[0])["ok"]


# ================================================================================= 2. cron and Schedule
def test_invalid_sync_cron_in_the_config_names_file_and_line(make_config, home: Path) -> None:
    cfg = make_config([{"repo": "org/a"}], sync={"cron": "61 * * * *"})
    line = next(i for i, text in enumerate(cfg.read_text().splitlines(), 1) if "cron:" in text)
    result = run_cli("-c", str(cfg), "sync", "--scheduled", timeout=30)
    assert result.returncode == 3, result.stderr
    assert f"{cfg}:{line}" in result.stderr
    assert "invalid cron expression '61 * * * *': Bad minute" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_valid_sync_cron_loads(make_config) -> None:
    cfg = make_config([{"repo": "org/a"}], sync={"cron": "*/15 2-4 * * mon-fri", "jitter": "30s"})
    config = load_config(cfg)
    schedule = schedule_for(config)
    assert schedule is not None and schedule.cron is not None and schedule.jitter == 30.0
    assert schedule.describe() == "cron '*/15 2-4 * * mon-fri'"
    # flags win over the config
    assert schedule_for(config, every=5.0).describe() == "every 5s"  # type: ignore[union-attr]
    assert schedule_for(load_config(make_config([{"repo": "org/a"}]))) is None


@pytest.mark.parametrize(
    "flags",
    [("--cron", "61 * * * *"), ("--cron", "* * *"), ("--every", "5x")],
    ids=["cron-range", "cron-fields", "every"],
)
def test_bad_schedule_flags_are_usage_errors(make_config, flags: tuple[str, str]) -> None:
    cfg = make_config([{"repo": "org/a"}])
    result = run_cli("-c", str(cfg), "sync", *flags, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_scheduled_without_a_schedule_in_the_config_is_an_error(make_config) -> None:
    result = run_cli("-c", str(make_config([{"repo": "org/a"}])), "sync", "--scheduled", timeout=30)
    assert result.returncode == 3  # a config problem
    assert "neither sync.every nor sync.cron" in result.stderr


def _ts(*args: int) -> float:
    return datetime(*args).timestamp()  # local time, as cron means it


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 3 * * *", (2026, 11, 29, 9, 0, 0), (2026, 11, 30, 3, 0)),
        ("0 3 * * *", (2026, 11, 29, 2, 59, 59), (2026, 11, 29, 3, 0)),
        ("0 3 * * *", (2026, 11, 29, 3, 0, 0), (2026, 11, 30, 3, 0)),  # strictly after: 03:00 → tomorrow
        ("0 3 * * *", (2026, 11, 29, 3, 0, 30), (2026, 11, 30, 3, 0)),  # a run that started at 03:00:30
        ("*/20 * * * *", (2026, 11, 29, 9, 40, 1), (2026, 11, 29, 10, 0)),
        ("@weekly", (2026, 11, 29, 0, 0, 0), (2026, 12, 6, 0, 0)),  # 2026-11-29 is a Sunday
    ],
)
def test_cron_schedule_next_times(expr: str, after: tuple[int, ...], expected: tuple[int, ...]) -> None:
    assert Schedule(cron=expr).next_after(_ts(*after)) == _ts(*expected)


def test_cron_schedule_walks_consecutive_slots() -> None:
    schedule = Schedule(cron="30 */6 * * *")
    moment, slots = _ts(2026, 11, 29, 1, 0), []
    for _ in range(5):
        moment = schedule.next_after(moment)
        slots.append(datetime.fromtimestamp(moment))
    assert [(s.day, s.hour, s.minute) for s in slots] == [
        (29, 6, 30),
        (29, 12, 30),
        (29, 18, 30),
        (30, 0, 30),
        (30, 6, 30),
    ]


def test_every_schedule_next_time() -> None:
    assert Schedule(every=21600).next_after(1000.0) == 1000.0 + 21600
    assert Schedule(every=0.5).describe() == "every 0.5s"


def test_jitter_stays_within_its_bounds() -> None:
    every = Schedule(every=60, jitter=10)
    samples = [every.next_after(1000.0) - 1060.0 for _ in range(500)]
    assert all(0.0 <= s <= 10.0 for s in samples)
    assert max(samples) - min(samples) > 5.0  # it does spread runs out
    cron = Schedule(cron="0 3 * * *", jitter=900)
    base = _ts(2026, 11, 30, 3, 0)
    samples = [cron.next_after(_ts(2026, 11, 29, 9, 0)) - base for _ in range(500)]
    assert all(0.0 <= s <= 900.0 for s in samples)
    assert max(samples) - min(samples) > 300.0
    assert Schedule(every=60).next_after(0.0) == 60.0  # no jitter: exact


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"every": 60, "cron": "0 3 * * *"}, {"every": 0}, {"every": -1}, {"cron": "61 * * * *"}],
    ids=["neither", "both", "zero", "negative", "bad-cron"],
)
def test_bad_schedules_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Schedule(**kwargs)


# ========================================================================= 3. request budget and 429s
def test_rate_gate_allows_budget_requests_per_window() -> None:
    gate = RateGate(3, window=0.5)
    started = time.monotonic()
    times = []
    for _ in range(7):
        gate.wait(counted=True)
        times.append(time.monotonic() - started)
    assert max_in_window(times, 0.5 - 0.01) <= 3
    assert times[2] < 0.1 and times[3] >= 0.45 and times[6] >= 0.95
    # uncounted (CDN) requests never wait for the budget
    t0 = time.monotonic()
    for _ in range(10):
        gate.wait(counted=False)
    assert time.monotonic() - t0 < 0.1


def test_rate_gate_pause_holds_counted_and_uncounted_requests() -> None:
    gate = RateGate(None)
    gate.pause(0.4)
    t0 = time.monotonic()
    gate.wait(counted=False)
    assert time.monotonic() - t0 >= 0.35


def test_clients_of_one_upstream_share_one_gate_while_alive(upstream: HubServer) -> None:
    """Serve's pull-through and a scheduled sync in one process: one budget, and a 429 pauses both."""
    upstream.commit("org/paced", {"a.txt": b"a\n"})
    with (
        UpstreamClient(upstream.url, budget=50, backoff=0.01) as puller,
        UpstreamClient(upstream.url, budget=50) as syncer,
    ):
        assert puller.gate is syncer.gate
        assert UpstreamClient(upstream.url, budget=7).gate is not puller.gate  # another budget, another gate
        upstream.faults.once("429", path_contains="/revision/")
        assert puller.revision_info("model", "org/paced", "main").sha == upstream.head("org/paced")
        assert upstream.faults.injected == 1
        assert syncer.gate._not_before > 0  # the 429's Retry-After holds the other client too
    del puller, syncer
    gc.collect()
    with UpstreamClient(upstream.url, budget=50) as later:
        assert later.gate._not_before == 0  # nobody alive held that gate: a new one


def test_sync_keeps_to_the_request_budget_and_completes(upstream: HubServer, make_config, home: Path) -> None:
    """Budget 5 per 2 s window (the 5-minute window, shortened) on a sync needing 12 API calls."""
    upstream.lfs_threshold = 2000  # some files go through the CDN
    repos = [f"org/budget-{i}" for i in range(3)]
    for i, repo in enumerate(repos):
        upstream.commit(repo, {"small.txt": f"small {i}\n".encode(), "big.bin": bytes([i]) * 5000})
    config = load_config(make_config([{"repo": r} for r in repos], sync={"workers": 8}))
    upstream.reset_log()
    started = time.monotonic()
    with Mirror(home) as mirror, Mirror.client_for(config) as client:
        client.gate = RateGate(5, window=2.0)
        syncer = Syncer(mirror.store, mirror.index, client, workers=8)
        try:
            report = syncer.sync(config.repos)
        finally:
            syncer.close()
    took = time.monotonic() - started
    assert report.ok, report.as_dict()
    assert [r.files_fetched for r in report.results] == [2] * 3
    times = api_times(upstream)
    # revision, tree, the new commit's entry and the refs (the new ref's kind) per repo; file downloads are
    # not API calls
    assert len(times) == 12
    assert upstream.count(origin="cdn") == 3 and upstream.count(path_contains="/resolve/") == 6
    # arrival times at the server jitter by a few ms around the client's send times
    assert max_in_window(times, 2.0 - 0.05) <= 5, [round(t - times[0], 3) for t in times]
    assert took >= 4.0 - 0.1  # 12 requests at 5 per 2 s: windows starting at 0, 2 and 4 s


def test_configured_budget_holds_requests_beyond_it(upstream: HubServer, make_config, home: Path, procs: Procs) -> None:
    """``upstream.max_requests_per_5min: 15``: a sync needing 40 API calls waits after the 15th."""
    repos = [f"org/repo-{i}" for i in range(10)]
    for i, repo in enumerate(repos):
        upstream.commit(repo, {"a.txt": f"{i}\n".encode()})
    cfg = make_config([{"repo": r} for r in repos], upstream={"max_requests_per_5min": 15})
    assert Mirror.client_for(load_config(cfg)).gate.budget == 15
    upstream.reset_log()
    proc = procs.start("-c", str(cfg), "sync")
    wait_for(lambda: api_calls(upstream) >= 15, 20, "15 API calls", proc)
    time.sleep(2.0)
    assert api_calls(upstream) == 15
    assert proc.poll() is None  # still waiting for the window, not failing
    # SIGTERM ends the wait at once (it would otherwise last the rest of the 5-minute window); a one-shot
    # sync cut short exits 130 (not every repo synced), after recording the run.
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 130
    assert time.monotonic() - started < 10
    assert api_calls(upstream) == 15
    assert status_json(home)["sync_runs"][0]["outcome"] == "interrupted"


def test_a_429_pauses_every_worker_for_retry_after(upstream: HubServer, make_config, home: Path) -> None:
    files = make_small_files(300, 5)
    target = sorted(files)[150]
    upstream.commit("org/many", files)
    cfg = make_config([{"repo": "org/many"}], sync={"workers": 8})
    upstream.reset_log()
    upstream.faults.once("429", path_contains=target.rsplit("/", 1)[-1])
    result = run_cli("-c", str(cfg), "sync", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files_fetched"] == 300
    log: list[RequestLog] = sorted(upstream.requests, key=lambda e: e.at)
    hit = [e for e in log if e.fault == "429"]
    assert len(hit) == 1 and hit[0].status == 429
    t429 = hit[0].at
    before = [e for e in log if e.at < t429]
    after = [e for e in log if e.at > t429]
    assert len(before) > 20 and len(after) > 20  # the 429 came in the middle of a busy sync
    # requests already sent when the 429 arrived may land a moment later; then nothing for Retry-After (1 s)
    in_flight = [e for e in after if e.at - t429 < 0.2]
    assert len(in_flight) <= 8, [round(e.at - t429, 3) for e in after[:20]]
    quiet = [e for e in after if 0.2 <= e.at - t429 < 1.0]
    assert quiet == [], [(round(e.at - t429, 3), e.path) for e in quiet]
    retried = [e for e in after if target.rsplit("/", 1)[-1] in e.path]
    assert retried and retried[0].status == 200 and retried[0].at - t429 >= 1.0


# ================================================================================== 4. history and status
def _closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_run_history_outcomes_and_their_rendering_in_status(upstream: HubServer, tmp_path: Path, home: Path) -> None:
    upstream.commit("org/good", make_small_files(4, 6))
    cfg = tmp_path / "hubmirror.yaml"
    ok_only = [{"repo": "org/good"}]
    with_missing = [{"repo": "org/good"}, {"repo": "org/missing"}]
    fast = {"max_retries": 0}

    def sync(endpoint: str, repos: list[dict]) -> int:
        write_config(cfg, endpoint, home, repos, upstream=fast)
        return run_cli("-c", str(cfg), "sync", "--json", timeout=60).returncode

    assert sync(upstream.url, ok_only) == 0  # run 1: ok
    assert sync(upstream.url, with_missing) == 5  # run 2: partial (404)
    assert sync(_closed_port_url(), with_missing) != 0  # run 3: failed (upstream down)

    data = status_json(home)
    runs = data["sync_runs"]
    assert [r["outcome"] for r in runs] == ["failed", "partial", "ok"]
    failed, partial, ok = runs
    assert ok["files_fetched"] == 4 and ok["bytes_fetched"] > 0 and ok["errors"] == []
    assert ok["repos_ok"] == 1 and ok["repos_failed"] == 0 and ok["finished_at"]
    assert partial["repos_ok"] == 1 and partial["repos_failed"] == 1
    assert [(e["repo"], e["revision"], e["error_type"]) for e in partial["errors"]] == [
        ("org/missing", "main", "RepoNotFoundError")
    ]
    assert "not found upstream" in partial["errors"][0]["error"]
    assert failed["repos_ok"] == 0 and failed["repos_failed"] == 2
    assert {e["repo"] for e in failed["errors"]} == {"org/good", "org/missing"}
    assert all(e["error_type"] == "UpstreamUnreachableError" for e in failed["errors"])
    assert "cannot reach upstream" in failed["errors"][0]["error"]
    assert "could not be reached earlier in this run" in failed["errors"][1]["error"]
    assert data["failing_repos"] == []  # org/missing failed twice, org/good once: not yet flagged
    assert data["next_sync"] is None

    text = status_text(home)
    run_lines = [line for line in text.splitlines() if line.startswith("sync run ")]
    assert len(run_lines) == 3
    assert re.search(r": failed, 0 files fetched .*; failed: .*org/missing@main: .*could not be reached", run_lines[0])
    assert re.search(r": partial, 0 files fetched .*; failed: org/missing@main: .*not found upstream", run_lines[1])
    assert re.search(r": ok, 4 files fetched \([\d.]+ k?B\)", run_lines[2]) and "failed:" not in run_lines[2]
    assert "FAILING" not in text

    assert sync(upstream.url, with_missing) == 5  # run 4: org/missing fails a third time
    data = status_json(home)
    assert [r["outcome"] for r in data["sync_runs"][:3]] == ["partial", "failed", "partial"]
    flagged = data["failing_repos"]
    assert [(f["type"], f["repo"], f["revision"], f["runs"]) for f in flagged] == [("model", "org/missing", "main", 3)]
    assert "not found upstream" in flagged[0]["error"]
    text = status_text(home)
    failing = [line for line in text.splitlines() if line.startswith("FAILING")]
    assert len(failing) == 1
    assert "model org/missing@main: failed in each of the last 3 runs" in failing[0]
    assert "not found upstream" in failing[0]


def test_next_sync_shows_in_status_while_a_scheduled_sync_runs(
    upstream: HubServer, make_config, home: Path, procs: Procs
) -> None:
    upstream.commit("org/small", make_small_files(3, 7))
    cfg = make_config([{"repo": "org/small"}])
    proc = procs.start("-c", str(cfg), "sync", "--every", "60s")
    data = wait_for(
        lambda: (
            (d := status_json(home, poll=True))["next_sync"]
            and d["sync_runs"]
            and d["sync_runs"][0]["outcome"] == "ok"
            and d
        ),
        20,
        "a finished run and a next slot",
        proc,
    )
    run_started = datetime.fromisoformat(data["sync_runs"][0]["started_at"]).timestamp()
    next_at = datetime.fromisoformat(data["next_sync"]).timestamp()
    assert 58 <= next_at - run_started <= 62
    assert "next scheduled sync: " + data["next_sync"] in status_text(home)
    code, _ = procs.terminate(proc)
    assert code == 0, procs.output(proc)[1]
    assert status_json(home)["next_sync"] is None


# ====================================================================================== 5. hubmirror run
@pytest.mark.timeout(120)
def test_hubmirror_run_syncs_serves_pushes_and_stops_on_sigterm(
    upstream: HubServer, make_config, home: Path, tmp_path: Path, procs: Procs
) -> None:
    upstream.commit("org/small", make_small_files(5, 8))
    folder = tmp_path / "outgoing"
    folder.mkdir()
    port = free_port()
    cfg = make_config(
        [{"repo": "org/small"}],
        upstream={"token": "hf_test_token"},
        sync={"every": "1s"},
        watch=[{"path": str(folder), "repo": "tester/pushed", "debounce": "0.3s"}],
        serve={"host": "127.0.0.1", "port": port},
    )
    proc = procs.start("-c", str(cfg), "run")

    # the sync ran (and keeps running on its schedule)
    wait_for(
        lambda: sum(1 for r in status_json(home, poll=True)["sync_runs"] if r["outcome"] == "ok") >= 2,
        20,
        "two scheduled sync runs",
        proc,
        interval=0.2,
    )

    # the server answers
    def models() -> list | None:
        try:
            response = httpx2.get(f"http://127.0.0.1:{port}/api/models", timeout=5)
        except httpx2.TransportError:
            return None
        return response.json() if response.status_code == 200 else None

    listed = wait_for(models, 20, "GET /api/models", proc, interval=0.2)
    assert "org/small" in json.dumps(listed)

    # a file written into the watched folder gets pushed upstream
    content = b"written while hubmirror run watches\n"
    (folder / "notes.txt").write_bytes(content)

    def pushed() -> bool:
        try:
            return upstream.file_bytes("tester/pushed", "notes.txt") == content
        except Exception:
            return False

    wait_for(pushed, 30, "the watched folder pushed upstream", proc, interval=0.2)

    code, took = procs.terminate(proc, timeout=15)
    _, err = procs.output(proc)
    assert code == 0, err
    assert took < 10, took
    assert "Traceback" not in err
    with socket.socket() as sock:  # the port is free again
        sock.bind(("127.0.0.1", port))


def test_hubmirror_run_with_nothing_to_run_is_a_clear_error(make_config) -> None:
    result = run_cli("-c", str(make_config([{"repo": "org/a"}])), "run", timeout=30)
    assert result.returncode != 0
    assert "nothing to run" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_part_that_dies_makes_hubmirror_run_fail(
    upstream: HubServer, make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crashed watcher must end ``run`` with an error (non-zero exit), or systemd would not restart it."""
    import hubmirror.schedule._service as service
    from hubmirror.errors import HubMirrorError

    upstream.commit("org/small", make_small_files(3, 9))
    folder = tmp_path / "outgoing"
    folder.mkdir()
    config = load_config(
        make_config(
            [{"repo": "org/small"}], sync={"every": "60s"}, watch=[{"path": str(folder), "repo": "tester/pushed"}]
        )
    )

    def broken_watch(config, stop) -> None:
        time.sleep(0.3)
        raise OSError("inotify watch limit reached")

    monkeypatch.setattr(service, "_watch", broken_watch)
    stop = threading.Event()
    started = time.monotonic()
    with pytest.raises(HubMirrorError, match="inotify watch limit reached"):
        service.run_service(config, stop)
    assert stop.is_set() and time.monotonic() - started < 10


@pytest.mark.parametrize(
    "flags", [("--every", "0s"), ("--every", "1s", "--cron", "0 3 * * *")], ids=["every-zero", "every-and-cron"]
)
def test_impossible_schedules_end_at_once(make_config, flags: tuple[str, ...]) -> None:
    """``--every 0s`` used to spin forever (ignoring SIGTERM); both are usage errors now."""
    cfg = make_config([{"repo": "org/a"}], upstream={"max_retries": 0})
    result = run_cli("-c", str(cfg), "sync", *flags, timeout=30)
    assert result.returncode == 2
    assert "greater than 0" in result.stderr or "exactly one of every or cron" in result.stderr
    assert "Traceback" not in result.stderr


def test_hubmirror_run_fails_clearly_when_the_serve_port_is_taken(make_config) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = make_config([{"repo": "org/a"}], serve={"port": port})
        result = run_cli("-c", str(cfg), "run", timeout=60)
    assert result.returncode == 1
    assert f"could not serve on http://127.0.0.1:{port} (is the port in use?)" in result.stderr
    assert "Traceback" not in result.stderr


# ================================================================================ 6. service and cron files
def _help(*args: str) -> str:
    result = run_cli(*args, "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_systemd_unit_starts_hubmirror_run() -> None:
    unit = (REPO_ROOT / "config" / "hubmirror.service").read_text()
    sections = re.findall(r"^\[(\w+)\]", unit, re.M)
    assert sections == ["Unit", "Service", "Install"]
    exec_start = re.findall(r"^ExecStart=(.+)$", unit, re.M)
    assert len(exec_start) == 1
    argv = shlex.split(exec_start[0])
    assert Path(argv[0]).name == "hubmirror" and argv[1:] == ["run"]
    assert "SIGTERM" in _help(*argv[1:])
    assert re.search(r"^KillSignal=SIGTERM$", unit, re.M)
    env = re.findall(r"^Environment=HUBMIRROR_CONFIG=(\S+)$", unit, re.M)
    assert env and env[0].endswith(".yaml")


def test_cron_line_runs_a_valid_hubmirror_sync() -> None:
    from hubmirror.cron import check_cron

    lines = [
        line
        for line in (REPO_ROOT / "config" / "hubmirror.cron").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    check_cron(" ".join(fields[:5]))
    command = fields[5]
    match = re.search(r"(?:^|[\s/])hubmirror((?:\s+[^\s><|&;]+)+)", command)
    assert match, command
    argv = shlex.split(match.group(1))
    assert argv[0] == "sync"
    help_text = _help(*argv[:1])
    for option in argv[1:]:
        assert option.startswith("--") and option in help_text, option
