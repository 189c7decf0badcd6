#!/usr/bin/env python
"""Benchmark the scale-out setup (blobs in S3-compatible storage, index in PostgreSQL, serve replicas behind a
load balancer) against its targets, with real parts only, all on loopback: moto's S3 server (tests/s3kit.py),
a throwaway PostgreSQL 15 (tests/pgkit.py), HAProxy (tests/lbkit.py), the fake upstream Hub
(tests/hubserver.py, in this process) and the real ``huggingface_hub`` client.

Parts (``--parts sync,serve,index``; each hubmirror program runs as a fresh subprocess):

  sync   ``hubmirror -c CFG sync --json`` into S3 + PostgreSQL (fresh bucket, database and home per run) of
         (a) a repo of N small files and (b) one big LFS file, against plain boto3 uploading the same blobs
         from local files to the same moto server (a fresh bucket): put_object from 8 threads for (a),
         ``upload_file`` with boto3's default TransferConfig for (b). Target: boto3 s / sync s >= 0.8.
  serve  a repo of a few LFS files synced into S3 + PostgreSQL; two ``hubmirror serve`` replicas (homes of
         their own, the same config) behind HAProxy; C concurrent ``hf_hub_download`` clients (threads spread
         over P processes, each download with its own cache dir) each fetch one file and check its sha256;
         once with ``serve.redirect: stream`` and once with ``presigned``. The replicas' CPU (user+sys from
         /proc/PID/stat, both, around the download window) per GiB delivered. Targets: 0 errors;
         presigned CPU/GiB at least 10x lower than stream.
  index  a synthetic index of B blobs (COPY; a file row for each, in filler repos of 10k files) plus a
         10k-file repo as a sync leaves it (its commit published through the Index API and on main; its blobs
         in the bucket only with --put-blobs: nothing measured reads them). Then
         (a) sync planning of that repo: ``hubmirror sync --dry-run`` when upstream moved main to a commit
         that changes one file (every other blob is stored: the planner dedupes 10k entries), plus the
         unchanged case (the index has upstream's commit); target: planning < 1 s;
         (b) serve HEAD of ``/{repo}/resolve/main/{path}`` on a replica over that index, keep-alive httpx2
         client, median and p95 of R requests; and ``hubmirror.resolve``'s file lookup in this process (warm);
         target < 5 ms per request.

Usage: python benchmarks/bench_scale.py [--quick] [--parts sync,serve,index] [--json] [--profile DIR]
Exit status: 0 when every target is met, 1 when one is missed, 2 when a program under test failed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import git_state, run_child, write_random_file  # noqa: E402

MIB, GIB = 1 << 20, 1 << 30
REGION = "us-east-1"
HEALTH_PATH = "/api/health"  # serve answers 200 while it can read its index
SMALL, BIG, SERVE, TENK, FEW = "bench/small-files", "bench/big-file", "bench/shards", "bench/ten-k", "bench/few"
BIG_NAME = "model.safetensors"

# the targets
SYNC_VS_BOTO3 = 0.8  # boto3 seconds / sync seconds, at least
CPU_PER_GIB_FACTOR = 10.0  # stream CPU/GiB over presigned CPU/GiB, at least
PLAN_SECONDS = 1.0
REQUEST_MS = 5.0

BOTO3_SCRIPT = r"""
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
import boto3
mode, endpoint, bucket, prefix, src = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")  # boto3's defaults otherwise
def key(sha256):
    return f"{prefix}/blobs/sha256/{sha256[:2]}/{sha256}"
started = time.perf_counter()
if mode == "small":
    names = sorted(os.listdir(src))
    def put(name):
        with open(os.path.join(src, name), "rb") as handle:
            s3.put_object(Bucket=bucket, Key=key(name), Body=handle.read())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, names))
else:
    s3.upload_file(src, bucket, key(os.path.basename(src)))  # the default TransferConfig
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

CLIENT_SCRIPT = r"""
import hashlib, json, os, shutil, sys, time
from concurrent.futures import ThreadPoolExecutor
from huggingface_hub import hf_hub_download
spec = json.loads(sys.argv[1])
def one(job):
    name, digest, size = spec["files"][job % len(spec["files"])]
    cache = os.path.join(spec["root"], f"c{job}")
    started, error = time.perf_counter(), None
    try:
        path = hf_hub_download(spec["repo"], name, cache_dir=cache)
        with open(path, "rb") as handle:
            if hashlib.file_digest(handle, "sha256").hexdigest() != digest:
                error = "sha256 mismatch"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:400]
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # 100 copies of the files must not fill the disk
    return {"job": job, "error": error, "seconds": time.perf_counter() - started, "bytes": 0 if error else size}
print("READY", flush=True)
sys.stdin.readline()
with ThreadPoolExecutor(len(spec["jobs"])) as pool:
    results = list(pool.map(one, spec["jobs"]))
print(json.dumps(results), flush=True)
"""


# ``--profile``: a hubmirror command run under a wall-clock sampler of *all* its threads (cProfile sees only the
# main thread, and sync's work is in its download threads). Writes OUT.stacks (collapsed stacks, one line per
# distinct stack: flamegraph.pl / speedscope read them) and OUT.txt (per thread group: the functions most often
# on the stack, and the innermost frames). Samples threads waiting on I/O too: it shows where the time goes.
SAMPLER_SCRIPT = r"""
import collections, os, runpy, sys, threading
out = sys.argv[1]
sys.argv = ["hubmirror", *sys.argv[2:]]
stacks, names, done = collections.Counter(), {}, threading.Event()
def frame_name(code):
    return f"{code.co_name} ({os.path.basename(code.co_filename)}:{code.co_firstlineno})"
def sample():
    me = threading.get_ident()
    while not done.wait(0.005):
        names.update((t.ident, t.name) for t in threading.enumerate())
        for tid, frame in sys._current_frames().items():
            if tid == me:
                continue
            stack = []
            while frame is not None:
                stack.append(frame_name(frame.f_code))
                frame = frame.f_back
            group = names.get(tid, "thread").rstrip("0123456789_-") or "thread"
            stacks[(group, tuple(reversed(stack)))] += 1
def report():
    with open(out + ".stacks", "w") as f:
        for (group, stack), n in stacks.most_common():
            f.write(";".join((group, *stack)) + f" {n}\n")
    groups = collections.Counter()
    inclusive, leaves = collections.Counter(), collections.Counter()
    for (group, stack), n in stacks.items():
        groups[group] += n
        for name in set(stack):
            inclusive[(group, name)] += n
        leaves[(group, stack[-1])] += n
    with open(out + ".txt", "w") as f:
        f.write("samples every 5 ms of every thread (wall clock: waiting counts)\n")
        for group, total in groups.most_common():
            f.write(f"\n== {group}: {total} samples\n-- most often on the stack:\n")
            top = [(k[1], n) for k, n in inclusive.most_common() if k[0] == group][:25]
            f.writelines(f"{100 * n / total:5.1f}%  {name}\n" for name, n in top)
            f.write("-- innermost frame:\n")
            top = [(k[1], n) for k, n in leaves.most_common() if k[0] == group][:12]
            f.writelines(f"{100 * n / total:5.1f}%  {name}\n" for name, n in top)
sampler = threading.Thread(target=sample, name="sampler", daemon=True)
sampler.start()
try:
    runpy.run_module("hubmirror", run_name="__main__", alter_sys=True)
finally:
    done.set()
    sampler.join()
    report()
"""


class Failed(RuntimeError):
    """A program under test failed: the benchmark stops with exit status 2."""


@dataclass
class Row:
    part: str
    target: str
    measured: str
    ratio: str
    ok: bool
    values: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ helpers
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def proc_cpu(pid: int, *, reaped_children: bool = False) -> float:
    """user+sys CPU seconds of a running process (its threads; /proc/PID/stat fields 14 and 15), plus those of
    its children it has waited for (fields 16 and 17) with ``reaped_children``."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version(name)
    except PackageNotFoundError:
        return "(not installed)"


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


# ------------------------------------------------------------------------------------------------ bench
class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.s3: Any = None
        self.pg: Any = None
        self.up: Any = None
        self.rows: list[Row] = []
        self.details: dict[str, Any] = {}
        self._stoppers: list[Any] = []  # started processes to stop at the end (by their PIDs), newest last
        self.last_noise = 0.0  # CPU seconds the rest of the machine used during the last measured child

    # -- infrastructure ---------------------------------------------------------------------------------
    def start(self) -> None:
        from hubserver import HubServer
        from pgkit import Cluster, missing_binaries
        from s3kit import FOREIGN_AWS_VARS, S3Server, aws_env, missing_moto

        for why in (missing_moto(), missing_binaries()):
            if why:
                raise Failed(why)
        for name in FOREIGN_AWS_VARS:  # nothing of the developer's own AWS setup reaches any process
            os.environ.pop(name, None)
        os.environ.update(aws_env())
        started = time.perf_counter()
        self.s3 = S3Server()
        self._stoppers.append(self.s3)
        self.s3.start()
        self.pg = Cluster()
        self._stoppers.append(self.pg)
        self.pg.start()
        self.up = HubServer(self.work / "upstream").start()
        self.up.latency = self.args.latency
        log(
            f"setup: moto {self.s3.endpoint_url}, PostgreSQL :{self.pg.port}, upstream {self.up.url} "
            f"({time.perf_counter() - started:.1f}s)"
        )

    def stop(self) -> None:
        if self.up is not None:
            self.up.stop()
            self.up = None
        while self._stoppers:
            thing = self._stoppers.pop()
            try:
                thing.stop()
            except Exception as exc:  # keep stopping the others
                log(f"warning: could not stop {type(thing).__name__}: {exc}")

    def env(self, **extra: str) -> dict[str, str]:
        """A hubmirror process's environment: the S3 credentials and the database password, no HF_/HUBMIRROR_."""
        from pgkit import PASSWORD
        from s3kit import aws_env

        env = {k: v for k, v in aws_env().items() if not k.startswith(("HUBMIRROR_", "HF_", "TRANSFORMERS_"))}
        env["PGPASSWORD"] = PASSWORD
        env.update(extra)
        return env

    def site(self, name: str) -> tuple[Any, str]:
        """A fresh bucket and a fresh database: (bucket, index URL without password)."""
        bucket = self.s3.bucket(name.replace("_", "-"))
        db = self.pg.database(name.replace("-", "_")).rsplit("/", 1)[1]
        return bucket, self.pg.url(db, password=False)

    def config(
        self, path: Path, home: Path, repos: list[dict[str, Any]], bucket: Any, index_url: str, **serve: Any
    ) -> Path:
        data: dict[str, Any] = {
            "home": str(home),
            "upstream": {"endpoint": self.up.url},
            "repos": repos,
            "store": {"url": bucket.url, "endpoint_url": bucket.endpoint_url},
            "index": {"url": index_url},
        }
        if serve:
            data["serve"] = serve
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def hubmirror_sync(self, name: str, cfg: Path, *extra: str) -> tuple[float, dict[str, Any], Any]:
        """``hubmirror -c CFG sync --json [extra]`` in a fresh process: (wall s, its report, rusage)."""
        cmd = [sys.executable, "-m", "hubmirror", "-c", str(cfg), "sync", "--json", *extra]
        if self.args.profile:
            out = Path(self.args.profile).absolute()
            out.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-c", SAMPLER_SCRIPT, str(out / name), *cmd[3:]]
        wall, code, stdout, stderr, usage, self.last_noise = run_child(cmd, self.env(), cwd=cfg.parent)
        try:
            report, _ = json.JSONDecoder().raw_decode(stdout[stdout.index("{") :])
        except ValueError:
            report = {}
        if code != 0 or not report.get("ok"):
            raise Failed(f"hubmirror sync ({name}) failed (exit {code}):\n{stdout[-2000:]}\n{stderr[-3000:]}")
        return wall, report, usage

    def replica(self, name: str, cfg: Path) -> Any:
        from servekit import ServeProcess

        proc = ServeProcess(cfg, self.work / f"{name}.log", extra_env=self.env())
        self._stoppers.append(proc)
        try:
            return proc.start(timeout=60)
        except AssertionError as exc:
            raise Failed(f"hubmirror serve ({name}) did not start: {str(exc)[-3000:]}") from None

    def stop_thing(self, thing: Any) -> None:
        thing.stop()
        if thing in self._stoppers:
            self._stoppers.remove(thing)

    def empty_bucket(self, bucket: str) -> None:
        """Delete every object (moto keeps them in memory / spooled files until then)."""
        client = self.s3.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})

    def servers_mark(self) -> tuple[int, float, float]:
        """Where moto's request log ends, moto's and PostgreSQL's CPU seconds so far (to account one run)."""
        path = self.s3.root / self.s3.log_name
        return (path.stat().st_size if path.exists() else 0), proc_cpu(self.s3.proc.pid), self.pg_cpu()

    def servers_since(self, mark: tuple[int, float, float], noise: float) -> dict[str, Any]:
        """What the servers did since ``mark``: moto's CPU and requests by method (its log has a line per
        request), PostgreSQL's CPU, and the CPU of the rest of the machine (``noise``, from run_child, less
        those two)."""
        offset, moto0, pg0 = mark
        with (self.s3.root / self.s3.log_name).open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
        methods: dict[str, int] = {}
        for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines():  # werkzeug colours some lines
            parts = line.split('"')
            if len(parts) >= 3 and " HTTP/" in parts[1]:
                method = parts[1].split(" ", 1)[0]
                methods[method] = methods.get(method, 0) + 1
        moto, pg = proc_cpu(self.s3.proc.pid) - moto0, self.pg_cpu() - pg0
        return {"moto_cpu": moto, "pg_cpu": pg, "rest_cpu": max(0.0, noise - moto - pg), "requests": methods}

    def pg_cpu(self) -> float:
        """CPU seconds of the PostgreSQL cluster: the postmaster, its reaped children (ended sessions) and the
        live ones."""
        postmaster = int((self.pg.data / "postmaster.pid").read_text().split()[0])
        total = proc_cpu(postmaster, reaped_children=True)
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == postmaster:
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def object_sizes(self, bucket: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for page in self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                found[item["Key"].rsplit("/", 1)[1]] = int(item["Size"])
        return found

    # ============================================================================== 1. sync into S3 + PG
    def part_sync(self) -> None:
        from hubserver import make_small_files

        args = self.args
        small = make_small_files(args.small_files, seed=1)
        self.up.commit(SMALL, small, message="small files")
        small_src = self.work / "small-src"
        small_src.mkdir()
        for data in small.values():
            (small_src / sha256_hex(data)).write_bytes(data)
        big_tmp = self.work / "big.bin"
        big_sha = write_random_file(big_tmp, args.big_mib * MIB)
        big_src = self.work / big_sha
        big_tmp.rename(big_src)
        self.up.commit(BIG, {BIG_NAME: big_src}, message="big file")
        entry = self.up.file_entry(BIG, BIG_NAME)
        if not entry.lfs or entry.blob.sha256 != big_sha:
            raise Failed("the big file was not committed as the expected LFS blob")
        cases = [
            (
                "a",
                f"(a) {args.small_files} small files",
                SMALL,
                str(small_src),
                "small",
                len(set(map(sha256_hex, small.values()))),
            ),
            ("b", f"(b) 1 LFS file, {args.big_mib} MiB", BIG, str(big_src), "big", 1),
        ]
        results: dict[str, dict[str, list[float]]] = {}
        for case, label, repo, src, mode, blobs in cases:
            got = results.setdefault(
                case,
                {
                    "sync": [],
                    "boto3": [],
                    "sync_inner": [],
                    "boto3_inner": [],
                    "sync_cpu": [],
                    "boto3_cpu": [],
                },
            )
            servers: dict[str, dict[str, Any]] = {}
            for rep in range(args.repeat):
                order = ("sync", "boto3") if (rep + (case == "b")) % 2 == 0 else ("boto3", "sync")
                for tool in order:
                    bucket, index_url = self.site(f"sync_{case}_{tool}_{rep}")
                    mark = self.servers_mark()
                    if tool == "sync":
                        run_dir = self.work / f"sync-{case}-{rep}"
                        run_dir.mkdir()
                        cfg = self.config(
                            run_dir / "hubmirror.yaml", run_dir / "home", [{"repo": repo}], bucket, index_url
                        )
                        wall, report, usage = self.hubmirror_sync(f"sync-{case}-r{rep}", cfg)
                        got["sync"].append(wall)
                        got["sync_inner"].append(float(report.get("duration", 0.0)))
                        got["sync_cpu"].append(usage.ru_utime + usage.ru_stime)
                        noise = self.last_noise
                        shutil.rmtree(run_dir, ignore_errors=True)
                    else:
                        prefix = bucket.url.split("/", 3)[3]
                        cmd = [
                            sys.executable,
                            "-c",
                            BOTO3_SCRIPT,
                            mode,
                            bucket.endpoint_url,
                            bucket.bucket,
                            prefix,
                            src,
                        ]
                        wall, code, stdout, stderr, usage, noise = run_child(cmd, self.env())
                        got["boto3_cpu"].append(usage.ru_utime + usage.ru_stime)
                        if code != 0:
                            raise Failed(f"boto3 upload ({case}) failed (exit {code}):\n{stderr[-3000:]}")
                        got["boto3"].append(wall)
                        got["boto3_inner"].append(json.loads(stdout.strip().splitlines()[-1])["seconds"])
                    servers[tool] = self.servers_since(mark, noise)
                    stored = self.object_sizes(bucket.bucket)
                    if len(stored) != blobs or (mode == "big" and stored.get(big_sha) != args.big_mib * MIB):
                        raise Failed(f"{tool} ({case}) left {len(stored)} objects in its bucket, expected {blobs}")
                    self.empty_bucket(bucket.bucket)
                    log(f"  sync ({case}) rep {rep} {tool:<5} {got[tool][-1]:7.2f}s")
            sync_s, boto_s = statistics.median(got["sync"]), statistics.median(got["boto3"])
            ratio = boto_s / sync_s
            inner = statistics.median(got["boto3_inner"]) / statistics.median(got["sync_inner"])
            self.rows.append(
                Row(
                    "sync",
                    f"sync {label} into S3+PG: speed >= {SYNC_VS_BOTO3}x boto3",
                    f"sync {sync_s:.2f}s, boto3 {boto_s:.2f}s",
                    f"{ratio:.2f}x",
                    ratio >= SYNC_VS_BOTO3,
                    {
                        "sync_s": got["sync"],
                        "boto3_s": got["boto3"],
                        "sync_inner_s": got["sync_inner"],
                        "boto3_inner_s": got["boto3_inner"],
                        "sync_cpu_s": got["sync_cpu"],
                        "ratio": ratio,
                        "ratio_inner": inner,
                    },
                )
            )
            self.details[f"sync_{case}"] = (
                f"sync ({case}): hubmirror {sync_s:.2f}s wall, {statistics.median(got['sync_inner']):.2f}s by its "
                f"own report, {statistics.median(got['sync_cpu']):.2f}s CPU; boto3 {boto_s:.2f}s wall, "
                f"{statistics.median(got['boto3_inner']):.2f}s the operation alone, "
                f"{statistics.median(got['boto3_cpu']):.2f}s CPU; ratio without process start-up {inner:.2f}x"
            )
            for tool, w in servers.items():
                self.details[f"sync_{case}_{tool}"] = (
                    f"  during {tool} ({case}): moto {w['moto_cpu']:.2f}s CPU for "
                    + ", ".join(f"{n} {m}" for m, n in sorted(w["requests"].items()))
                    + f"; PostgreSQL {w['pg_cpu']:.2f}s CPU; rest of the machine {w['rest_cpu']:.2f}s CPU"
                )
        big_src.unlink()
        shutil.rmtree(small_src, ignore_errors=True)

    # ============================================================================== 2. serve replicas
    def part_serve(self) -> None:
        from lbkit import LB, missing_binary

        why = missing_binary()
        if why:
            raise Failed(why)
        args = self.args
        files: list[list[Any]] = []
        commit_files: dict[str, Path] = {}
        src_dir = self.work / "shards"
        src_dir.mkdir()
        for n in range(args.serve_files):
            path = src_dir / f"shard-{n:02d}.bin"
            digest = write_random_file(path, args.serve_mib * MIB)
            files.append([path.name, digest, args.serve_mib * MIB])
            commit_files[path.name] = path
        threshold, self.up.lfs_threshold = self.up.lfs_threshold, 1024  # LFS whatever --serve-mib (presigned: LFS only)
        self.up.commit(SERVE, commit_files, message="shards")
        self.up.lfs_threshold = threshold
        shutil.rmtree(src_dir)
        bucket, index_url = self.site("serve")
        origin = self.work / "serve-origin"
        origin.mkdir()
        cfg = self.config(origin / "hubmirror.yaml", origin / "home", [{"repo": SERVE}], bucket, index_url)
        wall, _report, _ = self.hubmirror_sync("serve-sync", cfg)
        log(f"  serve: synced {args.serve_files} x {args.serve_mib} MiB into S3+PG in {wall:.1f}s")
        measured: dict[str, dict[str, Any]] = {}
        for mode in ("stream", "presigned"):
            replicas = []
            for n in range(2):
                home = self.work / f"{mode}-replica-{n}"
                rcfg = self.config(
                    self.work / f"{mode}-replica-{n}.yaml", home, [{"repo": SERVE}], bucket, index_url, redirect=mode
                )
                replicas.append(self.replica(f"{mode}-replica-{n}", rcfg))
            lb = LB([f"127.0.0.1:{r.port}" for r in replicas], HEALTH_PATH)
            self._stoppers.append(lb)
            lb.start()
            try:
                measured[mode] = self._download_storm(mode, lb, replicas, files)
            finally:
                self.stop_thing(lb)
                for replica in replicas:
                    alive = replica.proc is not None and replica.proc.poll() is None
                    self.stop_thing(replica)
                    if not alive:
                        raise Failed(f"a {mode} replica died during the downloads:\n{replica.log()[-3000:]}")
        self.empty_bucket(bucket.bucket)
        for mode, m in measured.items():
            errors = m["errors"]
            self.rows.append(
                Row(
                    "serve",
                    f"{args.clients} hf_hub_download via 2 replicas ({mode}): 0 errors",
                    f"{errors} errors; {human(m['bytes'])} in {m['wall']:.1f}s ({m['bytes'] / MIB / m['wall']:.0f} MiB/s)",
                    "-",
                    errors == 0,
                    m,
                )
            )
        stream, pre = measured["stream"]["cpu_per_gib"], measured["presigned"]["cpu_per_gib"]
        factor = stream / pre if pre > 0 else float("inf")
        self.rows.append(
            Row(
                "serve",
                f"replica CPU/GiB: presigned >= {CPU_PER_GIB_FACTOR:.0f}x lower than stream",
                f"stream {stream:.3f} s/GiB, presigned {pre:.4f} s/GiB",
                f"{factor:.0f}x",
                factor >= CPU_PER_GIB_FACTOR,
                {"stream_cpu_per_gib": stream, "presigned_cpu_per_gib": pre, "factor": factor},
            )
        )

    def _download_storm(self, mode: str, lb: Any, replicas: list[Any], files: list[list[Any]]) -> dict[str, Any]:
        """The clients, all started at once; the CPU of every server process around the download window."""
        args = self.args
        base = self.work / f"clients-{mode}"
        base.mkdir()
        procs: list[subprocess.Popen[str]] = []
        logs = []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUBMIRROR_", "TRANSFORMERS_"))}
        env.update(
            HF_ENDPOINT=lb.url,
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
        )
        try:
            for p in range(args.client_procs):
                jobs = list(range(p, args.clients, args.client_procs))
                root = base / f"p{p}"
                root.mkdir()
                spec = {"repo": SERVE, "files": files, "jobs": jobs, "root": str(root)}
                err = (base / f"p{p}.err").open("w")
                logs.append(err)
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", CLIENT_SCRIPT, json.dumps(spec)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=err,
                        text=True,
                        env={**env, "HF_HOME": str(root / "hf-home")},
                        cwd=root,
                        start_new_session=True,
                    )
                )
            for proc in procs:
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "READY":
                    raise Failed(
                        f"a client process did not start:\n{(base / f'p{procs.index(proc)}.err').read_text()[-3000:]}"
                    )
            watched = {"replicas": [r.proc.pid for r in replicas], "haproxy": [lb.proc.pid], "moto": [self.s3.proc.pid]}
            # the replicas' CPU while idle (HAProxy's health checks, every 200 ms each), to tell it apart
            idle0, idle_started = sum(proc_cpu(pid) for pid in watched["replicas"]), time.perf_counter()
            time.sleep(args.idle_window)
            idle_rate = (sum(proc_cpu(pid) for pid in watched["replicas"]) - idle0) / (
                time.perf_counter() - idle_started
            )
            cpu0 = {k: sum(proc_cpu(pid) for pid in pids) for k, pids in watched.items()}
            cpu0["postgresql"] = self.pg_cpu()
            started = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.close()
            outputs: list[str] = [""] * len(procs)

            def read(i: int) -> None:
                assert procs[i].stdout is not None
                outputs[i] = procs[i].stdout.read()

            readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(procs))]
            for reader in readers:
                reader.start()
            client_cpu = 0.0
            deadline = time.monotonic() + args.client_timeout
            for proc in procs:
                while True:
                    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        proc.returncode = os.waitstatus_to_exitcode(status)
                        client_cpu += usage.ru_utime + usage.ru_stime
                        break
                    if time.monotonic() > deadline:
                        raise Failed(f"the {mode} clients did not finish within {args.client_timeout:.0f}s")
                    time.sleep(0.01)
            wall = time.perf_counter() - started
            cpu1 = {k: sum(proc_cpu(pid) for pid in pids) for k, pids in watched.items()}
            cpu1["postgresql"] = self.pg_cpu()
            for reader in readers:
                reader.join(timeout=30)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
            for handle in logs:
                handle.close()
        results = []
        for i, out in enumerate(outputs):
            lines = out.strip().splitlines()
            if procs[i].returncode != 0 or not lines:
                raise Failed(
                    f"client process {i} failed (exit {procs[i].returncode}):\n{(base / f'p{i}.err').read_text()[-3000:]}"
                )
            results += json.loads(lines[-1])
        shutil.rmtree(base, ignore_errors=True)
        errors = [r["error"] for r in results if r["error"]]
        delivered = sum(r["bytes"] for r in results)
        cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
        seconds = [r["seconds"] for r in results]
        out = {
            "wall": wall,
            "downloads": len(results),
            "errors": len(errors),
            "error_samples": list(dict.fromkeys(errors))[:5],
            "bytes": delivered,
            "cpu": {**cpu, "clients": client_cpu},
            "cpu_per_gib": cpu["replicas"] / (delivered / GIB) if delivered else float("inf"),
            "replicas_idle_cpu": idle_rate * wall,
            "download_s_median": statistics.median(seconds),
            "download_s_p95": percentile(seconds, 0.95),
        }
        per = lambda k: cpu[k] / (delivered / GIB) if delivered else float("nan")  # noqa: E731
        self.details[f"serve_{mode}"] = (
            f"serve {mode}: {len(results)} downloads, {len(errors)} errors, {human(delivered)} in {wall:.1f}s; "
            f"download median {out['download_s_median']:.1f}s p95 {out['download_s_p95']:.1f}s; CPU s "
            f"(per GiB): replicas {cpu['replicas']:.2f} ({per('replicas'):.3f}; "
            f"{cpu['replicas'] / max(1, len(results)) * 1000:.1f} ms per download; of which idle work such as "
            f"health checks ~{idle_rate * wall:.2f}), moto {cpu['moto']:.1f} "
            f"({per('moto'):.2f}), haproxy {cpu['haproxy']:.1f} ({per('haproxy'):.2f}), PostgreSQL "
            f"{cpu['postgresql']:.2f}, clients {client_cpu:.1f}"
        )
        if errors:
            self.details[f"serve_{mode}_errors"] = "; ".join(out["error_samples"])
        log(f"  {self.details[f'serve_{mode}']}")
        return out

    # ============================================================================== 3. index at scale
    def part_index(self) -> None:
        import psycopg
        from hubserver import make_small_files
        from pgkit import PASSWORD

        from hubmirror.home import open_store_index
        from hubmirror.models import Access, Backends, BlobRecord, FileRecord
        from hubmirror.patterns import PathFilter
        from hubmirror.resolve import Resolver

        args = self.args
        os.environ["PGPASSWORD"] = PASSWORD  # for the index opened in this process
        bucket, index_url = self.site("scale")
        home = self.work / "scale-home"
        t0 = time.perf_counter()
        store, index = open_store_index(home, write=True, backends=Backends(index_url, bucket.url, bucket.endpoint_url))
        timings: dict[str, float] = {}
        try:
            # -- the 10k-file repo, upstream and in the index (as a sync would have left it)
            files = make_small_files(args.repo_files, seed=5)
            c1 = self.up.commit(TENK, files, message="10k files")
            few = {f"part-{n}.txt": f"few {n}\n".encode() * 20 for n in range(8)}
            few_commit = self.up.commit(FEW, few, message="few files")
            timings["upstream commits"] = time.perf_counter() - t0
            # -- filler: B blobs in all, each named by one file of a filler repo (10k files per commit)
            t = time.perf_counter()
            n_fill = max(0, args.blobs - len(files) - len(few))
            self._copy_filler(psycopg, self.pg.url(index_url.rsplit("/", 1)[1]), n_fill)
            timings[f"COPY {n_fill} blobs + files"] = time.perf_counter() - t
            # -- the blobs in the bucket (as a sync puts them; the big repo's only with --put-blobs: nothing
            # measured reads them, and moto takes ~40 s for 10k PUTs) and the commits through the Index API
            t = time.perf_counter()
            self._put_blobs(bucket, [*files.values(), *few.values()] if args.put_blobs else list(few.values()))
            timings[f"PUT {len(files) + len(few) if args.put_blobs else len(few)} blobs to moto"] = (
                time.perf_counter() - t
            )
            t = time.perf_counter()
            key = PathFilter().key
            for name, sha, content in ((TENK, c1, files), (FEW, few_commit, few)):
                records = [FileRecord(p, len(d), sha256_hex(d), git_sha1(d), False) for p, d in content.items()]
                blobs = {r.sha256: BlobRecord(r.sha256, r.size, r.git_oid) for r in records}
                with store.write_lock():
                    index.publish_commit(
                        "model", name, sha, records, blobs.values(), source="sync", filter_key=key, access=Access()
                    )
                    index.set_ref("model", name, "main", sha, kind="branch")
            timings[f"publish_commit of {len(files)} files"] = time.perf_counter() - t
            with psycopg.connect(self.pg.url(index_url.rsplit("/", 1)[1]), autocommit=True) as conn:
                conn.execute("ANALYZE")
                counts = {
                    table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                    for table in ("blobs", "files", "repos", "commits")
                }
                size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
            self.details["index_setup"] = (
                f"index: {counts['blobs']} blobs, {counts['files']} file rows, {counts['repos']} repos, "
                f"{counts['commits']} commits, database {human(size)}; setup "
                + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
            )
            log(f"  {self.details['index_setup']}")

            # -- (a) planning: unchanged (index has upstream's commit), then main moved by one changed file
            run_dir = self.work / "plan"
            run_dir.mkdir()
            cfg = self.config(run_dir / "hubmirror.yaml", home, [{"repo": TENK}], bucket, index_url)
            wall0, report0, _ = self.hubmirror_sync("plan-unchanged", cfg, "--dry-run")
            if report0["results"][0]["status"] != "unchanged":
                raise Failed(f"the unchanged dry run planned something: {report0['results'][0]}")
            changed_path = sorted(files)[len(files) // 2]
            c2 = self.up.commit(TENK, {changed_path: files[changed_path] + b"changed\n"}, message="one change")
            wall1, report1, usage1 = self.hubmirror_sync("plan-changed", cfg, "--dry-run")
            result = report1["results"][0]
            if result["status"] != "planned" or result["commit"] != c2 or result["files_deduped"] != len(files) - 1:
                raise Failed(f"the dry run did not plan 1 download of {len(files)} files: {result}")
            self.rows.append(
                Row(
                    "index",
                    f"sync planning of a {len(files)}-file repo (1 file changed), {counts['blobs']} blobs: < {PLAN_SECONDS:.0f} s",
                    f"dry run {wall1:.2f}s (report {report1['duration']:.2f}s)",
                    f"{wall1 / PLAN_SECONDS:.1f}x target",
                    wall1 < PLAN_SECONDS,
                    {"wall": wall1, "duration": report1["duration"], "cpu": usage1.ru_utime + usage1.ru_stime},
                )
            )
            self.rows.append(
                Row(
                    "index",
                    f"sync of that repo unchanged (index has upstream's commit): < {PLAN_SECONDS:.0f} s",
                    f"dry run {wall0:.2f}s (report {report0['duration']:.2f}s)",
                    f"{wall0 / PLAN_SECONDS:.1f}x target",
                    wall0 < PLAN_SECONDS,
                    {"wall": wall0, "duration": report0["duration"]},
                )
            )
            # where the time goes: the listing and the planner itself (Syncer._plan), run here on the same work
            from hubmirror.hub import UpstreamClient
            from hubmirror.sync._syncer import Syncer

            with UpstreamClient(self.up.url) as client:
                t = time.perf_counter()
                entries = client.list_tree("model", TENK, c2)
                listing = time.perf_counter() - t
                syncer = Syncer(store, index, client, workers=1)
                try:
                    t = time.perf_counter()
                    present, tasks = syncer._plan(entries, {})
                    plan = time.perf_counter() - t
                finally:
                    syncer.close()
            if len(present) != len(files) - 1 or len(tasks) != 1:
                raise Failed(f"Syncer._plan found {len(present)} stored and {len(tasks)} to fetch")
            # the planner's two questions to the index, timed apart
            t = time.perf_counter()
            known = index.sha256s_for_git_sha1s([e.oid for e in entries])
            by_sha1 = time.perf_counter() - t
            t = time.perf_counter()
            index.blob_sizes(set(known.values()))
            sizes = time.perf_counter() - t
            self.details["plan_breakdown"] = (
                f"planning in this process: upstream tree listing of {len(entries)} entries {listing * 1000:.0f} ms; "
                f"Syncer._plan {plan * 1000:.0f} ms, of which index.sha256s_for_git_sha1s {by_sha1 * 1000:.0f} ms "
                f"and index.blob_sizes {sizes * 1000:.0f} ms ({len(entries)} keys, IN lists of 500); "
                f"`python -m hubmirror --help` alone takes {self._startup():.2f}s (start-up and imports: part of "
                "every dry-run wall time above)"
            )
            self.rows.append(
                Row(
                    "index",
                    f"  the planning step alone (Syncer._plan, {len(entries)} entries): < {PLAN_SECONDS:.0f} s",
                    f"{plan * 1000:.0f} ms",
                    f"{plan / PLAN_SECONDS:.2f}x target",
                    plan < PLAN_SECONDS,
                    {"plan_s": plan, "listing_s": listing},
                )
            )
            log(f"  {self.details['plan_breakdown']}")

            # -- (b) serve HEAD of resolve on a replica over this index; resolve's file lookup in this process
            rcfg = self.config(
                self.work / "scale-replica.yaml", self.work / "scale-replica-home", [{"repo": TENK}], bucket, index_url
            )
            replica = self.replica("scale-replica", rcfg)
            try:
                head = self._heads(replica.url, sorted(files), args.requests)
            finally:
                self.stop_thing(replica)
            resolver = Resolver(home, index, store)
            t = time.perf_counter()
            resolver.file_path(FEW, "part-0.txt")  # the first call lays out the snapshot from the bucket
            layout = time.perf_counter() - t
            names = sorted(few)
            samples = []
            for n in range(args.requests):
                t = time.perf_counter()
                resolver.file_path(FEW, names[n % len(names)])
                samples.append((time.perf_counter() - t) * 1000)
            self.details["resolve"] = (
                f"resolve (hubmirror.resolve, warm, in process) of {FEW}: median {statistics.median(samples):.2f} ms, "
                f"p95 {percentile(samples, 0.95):.2f} ms; its first call laid out {len(few)} files from the bucket "
                f"in {layout:.2f}s ({layout / len(few) * 1000:.0f} ms/file: a {len(files)}-file repo's first "
                f"resolve would take ~{layout / len(few) * len(files):.0f}s)"
            )
            log(f"  {self.details['resolve']}")
            self.details["head"] = (
                f"serve HEAD /{TENK}/resolve/main/<path>: first request (loads the {len(files)}-file list) "
                f"{head['first_ms']:.1f} ms; then median {head['median']:.2f} ms, p95 {head['p95']:.2f} ms, "
                f"max {head['max']:.1f} ms over {args.requests}"
            )
            log(f"  {self.details['head']}")
            for name, value in (("median", head["median"]), ("p95", head["p95"])):
                self.rows.append(
                    Row(
                        "index",
                        f"serve HEAD resolve/main/<file> of that repo, {name}: < {REQUEST_MS:.0f} ms",
                        f"{value:.2f} ms",
                        f"{value / REQUEST_MS:.2f}x target",
                        value < REQUEST_MS,
                        head,
                    )
                )
            resolve_med, resolve_p95 = statistics.median(samples), percentile(samples, 0.95)
            self.rows.append(
                Row(
                    "index",
                    f"resolve of one file (hubmirror.resolve, warm), p95: < {REQUEST_MS:.0f} ms",
                    f"median {resolve_med:.2f} ms, p95 {resolve_p95:.2f} ms",
                    f"{resolve_p95 / REQUEST_MS:.2f}x target",
                    resolve_p95 < REQUEST_MS,
                    {"median": resolve_med, "p95": resolve_p95, "first_call_s": layout},
                )
            )
        finally:
            index.close()

    def _startup(self) -> float:
        """Wall time of ``python -m hubmirror --help`` (the fixed cost in every CLI timing)."""
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hubmirror", "--help"], capture_output=True, env=self.env(), timeout=60)
        return time.perf_counter() - started

    @staticmethod
    def _copy_filler(psycopg: Any, url: str, n: int) -> None:
        """``n`` blob rows and a file row naming each, in filler repos of 10k files (one commit each), by COPY."""
        per_repo = 10_000
        stamp = "2024-01-01T00:00:00+00:00"
        with psycopg.connect(url, autocommit=True) as conn:
            repo_ids = []
            for r in range((n + per_repo - 1) // per_repo):
                row = conn.execute(
                    "INSERT INTO repos (type, name, private, created_at) VALUES ('model', %s, 0, %s) RETURNING id",
                    (f"filler/repo-{r:04d}", stamp),
                ).fetchone()
                assert row is not None
                repo_ids.append(row[0])
                sha = hashlib.sha1(b"filler commit %d" % r).hexdigest()
                conn.execute(
                    "INSERT INTO commits (repo_id, sha, complete, source, recorded_at) VALUES (%s, %s, 1, 'sync', %s)",
                    (row[0], sha, stamp),
                )
                conn.execute(
                    "INSERT INTO refs (repo_id, name, commit_sha, updated_at, kind) VALUES (%s, 'main', %s, %s, 'branch')",
                    (row[0], sha, stamp),
                )
            chunk = 100_000
            with conn.cursor() as cur:
                with cur.copy("COPY blobs (sha256, size, git_sha1, verified_at) FROM STDIN") as copy:
                    for start in range(0, n, chunk):
                        buf = io.StringIO()
                        for i in range(start, min(n, start + chunk)):
                            seed = b"filler %d" % i
                            buf.write(
                                f"{hashlib.sha256(seed).hexdigest()}\t{1000 + i % 50_000}\t"
                                f"{hashlib.sha1(seed).hexdigest()}\t{stamp}\n"
                            )
                        copy.write(buf.getvalue())
                with cur.copy("COPY files (repo_id, commit_sha, path, size, sha256, git_oid, lfs) FROM STDIN") as copy:
                    for start in range(0, n, chunk):
                        buf = io.StringIO()
                        for i in range(start, min(n, start + chunk)):
                            seed = b"filler %d" % i
                            r = i // per_repo
                            buf.write(
                                f"{repo_ids[r]}\t{hashlib.sha1(b'filler commit %d' % r).hexdigest()}\t"
                                f"d{i % 97}/f{i:07d}.bin\t{1000 + i % 50_000}\t{hashlib.sha256(seed).hexdigest()}\t"
                                f"{hashlib.sha1(seed).hexdigest()}\t0\n"
                            )
                        copy.write(buf.getvalue())

    def _put_blobs(self, bucket: Any, contents: list[bytes]) -> None:
        import base64

        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=bucket.endpoint_url,
            region_name=REGION,
            config=Config(max_pool_connections=32, request_checksum_calculation="when_required"),
        )
        prefix = bucket.url.split("/", 3)[3]

        def put(data: bytes) -> None:
            digest = hashlib.sha256(data)
            client.put_object(
                Bucket=bucket.bucket,
                Key=f"{prefix}/blobs/sha256/{digest.hexdigest()[:2]}/{digest.hexdigest()}",
                Body=data,
                ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
            )

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, {sha256_hex(d): d for d in contents}.values()))

    @staticmethod
    def _heads(url: str, paths: list[str], n: int) -> dict[str, float]:
        import httpx2

        rng = random.Random(7)
        with httpx2.Client(timeout=30) as client:
            t = time.perf_counter()
            first = client.head(f"{url}/{TENK}/resolve/main/{paths[0]}")
            first_ms = (time.perf_counter() - t) * 1000
            if first.status_code != 200:
                raise Failed(f"HEAD of resolve answered {first.status_code}: {first.text[:300]}")
            samples = []
            for _ in range(n):
                path = rng.choice(paths)
                t = time.perf_counter()
                answer = client.head(f"{url}/{TENK}/resolve/main/{path}")
                samples.append((time.perf_counter() - t) * 1000)
                if answer.status_code != 200:
                    raise Failed(f"HEAD of resolve/main/{path} answered {answer.status_code}")
        return {
            "first_ms": first_ms,
            "median": statistics.median(samples),
            "p95": percentile(samples, 0.95),
            "max": max(samples),
        }


# ------------------------------------------------------------------------------------------------ report
def environment(args: argparse.Namespace) -> dict[str, str]:
    from lbkit import HAPROXY
    from pgkit import PG_BIN

    return {
        "cpus": str(os.cpu_count()),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": sys.version.split()[0],
        "hubmirror": f"{version('hubmirror')} ({git_state() or '?'})",
        "boto3": version("boto3"),
        "moto": version("moto"),
        "psycopg": version("psycopg"),
        "huggingface_hub": version("huggingface_hub"),
        "httpx2": version("httpx2"),
        "uvicorn": version("uvicorn"),
        "postgresql": tool_version([str(PG_BIN / "postgres"), "--version"]),
        "haproxy": tool_version([str(HAPROXY), "-v"]),
    }


def print_report(bench: Bench, env: dict[str, str], args: argparse.Namespace, elapsed: float) -> None:
    print(f"hubmirror scale-out benchmark ({args.sizes} sizes), {elapsed:.0f}s")
    print(
        f"{env['cpus']} CPUs (load average at the end {env['load']}); Python {env['python']}; hubmirror "
        f"{env['hubmirror']}; boto3 {env['boto3']}; moto {env['moto']}; psycopg {env['psycopg']}; "
        f"huggingface_hub {env['huggingface_hub']}; httpx2 {env['httpx2']}; uvicorn {env['uvicorn']}; "
        f"{env['postgresql']}; {env['haproxy']}"
    )
    print(
        f"sizes: sync {args.small_files} small files / {args.big_mib} MiB; serve {args.clients} clients in "
        f"{args.client_procs} processes, {args.serve_files} x {args.serve_mib} MiB; index {args.blobs} blobs, "
        f"{args.repo_files}-file repo, {args.requests} requests; upstream latency {args.latency * 1000:.0f} ms; "
        f"sync medians of {args.repeat}"
    )
    print()
    for line in bench.details.values():
        print(f"  {line}")
    print()
    widths = [max(len(r.target) for r in bench.rows), max(len(r.measured) for r in bench.rows), 12]
    head = f"{'target':<{widths[0]}} | {'measured':<{widths[1]}} | {'ratio':<{widths[2]}} | result"
    print(head)
    print("-" * len(head))
    for r in bench.rows:
        print(
            f"{r.target:<{widths[0]}} | {r.measured:<{widths[1]}} | {r.ratio:<{widths[2]}} | {'PASS' if r.ok else 'MISS'}"
        )
    print(
        "ratio: sync = boto3 s / sync s (higher is better); CPU = stream CPU/GiB / presigned CPU/GiB; "
        "times = measured / target (below 1 meets it). moto, PostgreSQL, HAProxy, the fake upstream and the "
        f"clients all share the {env['cpus']} CPUs."
    )


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a quick check (~2 min)")
    parser.add_argument("--parts", default="sync,serve,index", help="comma-separated: sync, serve, index")
    parser.add_argument("--small-files", type=int, metavar="N", help="sync (a): files (default 500)")
    parser.add_argument("--big-mib", type=int, metavar="M", help="sync (b): MiB (default 512; quick 128)")
    parser.add_argument(
        "--repeat", type=int, metavar="K", help="sync runs per case and tool, medians (default 3; quick 1)"
    )
    parser.add_argument("--latency", type=float, default=0.0, metavar="S", help="seconds the upstream adds per request")
    parser.add_argument("--clients", type=int, default=100, metavar="C", help="serve: concurrent downloads")
    parser.add_argument("--client-procs", type=int, default=4, metavar="P", help="serve: client processes")
    parser.add_argument("--serve-files", type=int, default=4, metavar="F", help="serve: LFS files in the repo")
    parser.add_argument("--serve-mib", type=int, metavar="M", help="serve: MiB per file (default 64; quick 8)")
    parser.add_argument("--idle-window", type=float, default=2.0, metavar="S", help=argparse.SUPPRESS)
    parser.add_argument("--client-timeout", type=float, default=300.0, metavar="S", help=argparse.SUPPRESS)
    parser.add_argument("--blobs", type=int, metavar="B", help="index: blob rows (default 1000000; quick 100000)")
    parser.add_argument("--repo-files", type=int, metavar="N", help="index: files of the big repo (default 10000)")
    parser.add_argument(
        "--put-blobs", action="store_true", help="index: also put the big repo's blobs in the bucket (~40 s for 10k)"
    )
    parser.add_argument("--requests", type=int, default=200, metavar="R", help="index: HEAD / resolve requests timed")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="run every hubmirror sync under a sampler of all its threads: DIR/<run>.txt and .stacks (slows it)",
    )
    parser.add_argument("--tmp-dir", metavar="DIR", help="where to put the temp dir (default: system temp)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "small_files": 500,
        "big_mib": 128 if quick else 512,
        "serve_mib": 8 if quick else 64,
        "blobs": 100_000 if quick else 1_000_000,
        "repo_files": 10_000,
        "repeat": 1 if quick else 3,
    }
    args.sizes = "quick" if quick else "default"
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
        elif getattr(args, name) != value:
            args.sizes = "custom"
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - {"sync", "serve", "index"}:
        parser.error("--parts takes sync, serve and index")
    if min(args.small_files, args.big_mib, args.clients, args.client_procs, args.serve_files, args.serve_mib) < 1:
        parser.error("sizes and counts must be positive")
    if args.repo_files < 10 or args.requests < 1 or args.repeat < 1:
        parser.error("--repo-files must be at least 10, --requests and --repeat positive")

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="hubmirror-bench-scale-", dir=args.tmp_dir))
    bench = Bench(args, work)
    started = time.perf_counter()
    try:
        bench.start()
        for part in ("sync", "serve", "index"):
            if part in parts:
                t = time.perf_counter()
                log(f"part {part} ...")
                getattr(bench, f"part_{part}")()
                log(f"part {part} done in {time.perf_counter() - t:.0f}s")
    except Failed as exc:
        print(f"bench_scale: {exc}", file=sys.stderr)
        return 2
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    env = environment(args)
    if args.json:
        json.dump(
            {
                "environment": env,
                "params": {k: v for k, v in vars(args).items()},
                "details": bench.details,
                "rows": [r.__dict__ for r in bench.rows],
                "seconds": elapsed,
            },
            sys.stdout,
            indent=2,
            default=str,
        )
        print()
    else:
        print_report(bench, env, args, elapsed)
    return 0 if all(r.ok for r in bench.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
