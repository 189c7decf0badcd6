#!/usr/bin/env python
"""Benchmark ``hubmirror serve`` as an ``HF_ENDPOINT`` against the fake upstream Hub, and Olah if it installs.

Setup: the fake Hub (``tests/hubserver.py``, threaded ``http.server``, no added latency) gets a repo of N
small files and a repo with one big LFS file (served by its CDN origin after a 302); ``hubmirror sync``
copies both into a fresh home. Servers compared, each a separate process on 127.0.0.1 (except the fake Hub,
which runs in threads of this process):

* ``upstream``    the fake Hub itself;
* ``serve``       ``python -m hubmirror -c CFG serve`` as installed (uvicorn picks httptools/uvloop if there);
* ``serve (h11)`` the same with httptools and uvloop made unimportable (uvicorn's pure-Python h11 + asyncio);
* ``olah``        Olah (``pip install olah`` into a throwaway venv, proxying the fake Hub) with a warm cache;
                  skipped, with the reason printed, when it cannot be installed or started.

Measured per server: ``snapshot_download`` of each repo (fresh ``HF_HUB_CACHE``, timed inside the child around
the call only; Xet, telemetry and progress bars off), HEAD requests/s on a small file with concurrent
keep-alive clients (``--procs`` processes × ``--threads`` threads, ``--seconds`` long), and GET MB/s of the
big file with ``--get-clients`` concurrent streaming clients; also the CPU seconds each server process and
each client process used (``/proc``, rusage), far steadier than wall times on a shared machine. Loopback
references for that GET, same concurrency: the same clients against a bare HTTP server that only calls
``sendfile()`` ("loopback speed" for this client, the target's yardstick), and a raw ``sendfile`` →
``recv_into`` socket copy (no HTTP, no Python client).

Pull-through (``serve.pull_through``): each round starts a serve over a fresh home with no ``repos:``; then
per repo a ``snapshot_download`` straight from the fake upstream ("direct"), one through serve that pulls
every file on first request ("cold"), and one more through serve with a fresh client cache ("warm"); the
direct one goes first in even rounds and last in odd ones. The rounds run twice: with the fake upstream
answering at once, and with ``--pull-latency`` added to every upstream request (a real Hub is never 0 ms
away; the direct download pays it per request, a warm serve never). ``--only-pull-through`` measures just this.

Targets: snapshot speed ≥ 1.0× the fake upstream, ≥ 2,000 HEAD/s, big-file GET ≥ 0.5× the sendfile server;
pull-through cold ≤ 1.2× and warm ≤ 0.5× the direct download's time.

Usage: python benchmarks/bench_serve.py [--small-files 500] [--big-mib 512] [--seconds 5] [--procs 4]
         [--threads 2] [--get-clients 4] [--repeat 3] [--olah-venv DIR | --no-olah] [--tmp-dir DIR] [--json]
         [--no-pull-through | --only-pull-through]
Exit status: 0 when every target is met, 1 when one is missed, 2 when a server or client failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _common import write_random_file  # noqa: E402
from hubserver import HubServer, make_small_files  # noqa: E402
from prockit import clean_env, free_port  # noqa: E402

SMALL, BIG, BIG_NAME = "bench/small-files", "bench/big-file", "model.safetensors"
CHILD_TIMEOUT = 900.0
TOKEN = "bench-token"

SNAPSHOT_SCRIPT = r"""
import hashlib, json, os, sys, time
from huggingface_hub import snapshot_download
repo, check = sys.argv[1], sys.argv[2] == "1"
t = time.perf_counter()
path = snapshot_download(repo)
elapsed = time.perf_counter() - t
files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
out = {"seconds": elapsed, "files": len(files), "bytes": sum(os.path.getsize(f) for f in files)}
if check:
    digest = hashlib.sha256()
    for f in sorted(files):
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    out["sha256"] = digest.hexdigest()
print(json.dumps(out))
"""

LOAD_SCRIPT = r"""
import json, sys, threading, time
import httpx2
mode, url, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
seconds, start_at = float(sys.argv[4]), float(sys.argv[5])
counts, errors = [0] * threads, [0] * threads
def head(i):
    with httpx2.Client(timeout=30) as client:
        client.head(url)
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while time.time() < end:
            r = client.head(url)
            if r.status_code == 200:
                counts[i] += 1
            else:
                errors[i] += 1
def get(i):
    with httpx2.Client(timeout=60, follow_redirects=True) as client:
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while time.time() < end:
            with client.stream("GET", url) as r:
                if r.status_code != 200:
                    errors[i] += 1
                    continue
                for chunk in r.iter_raw(1 << 20):
                    counts[i] += len(chunk)
                    if time.time() >= end:
                        break
workers = [threading.Thread(target=head if mode == "head" else get, args=(i,)) for i in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print(json.dumps({"count": sum(counts), "errors": sum(errors)}))
"""

SERVE_WITHOUT_FAST_PARSERS = (
    "import sys; sys.modules['httptools'] = None; sys.modules['uvloop'] = None; "
    "sys.argv[0] = 'hubmirror'; from hubmirror.cli import main; main()"
)


# ---------------------------------------------------------------------------------------------- helpers
def _busy_cpu() -> float:
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def settle(max_wait: float = 10.0, window: float = 0.5, threshold: float = 0.3) -> float:
    """Wait (at most ``max_wait`` s) until the machine is nearly idle; other work swamps a 2-core box."""
    started = time.monotonic()
    while time.monotonic() - started < max_wait:
        busy0 = _busy_cpu()
        time.sleep(window)
        if _busy_cpu() - busy0 < threshold * window:
            break
    return time.monotonic() - started


def run(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = CHILD_TIMEOUT, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env or clean_env(), timeout=timeout, cwd=cwd)


class Server:
    """A server process started from ``cmd`` and stopped by its PID (process group)."""

    def __init__(self, name: str, cmd: list[str], port: int, log: Path, cwd: Path | None = None) -> None:
        self.name, self.cmd, self.port, self.log = name, cmd, port, log
        self.url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=clean_env(), cwd=cwd, start_new_session=True
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {self.tail()}")
            try:
                httpx2.get(self.url + "/", timeout=1.0)
                return
            except httpx2.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)


# ---------------------------------------------------------------------------------------------- benchmark
class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.upstream: HubServer | None = None
        self.servers: list[Server] = []
        self.big_sha256 = ""
        self.small_names: list[str] = []
        self.notes: list[str] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.pulls: dict[str, dict[str, float]] = {}  # "small@0ms" … → direct/cold/warm median seconds
        self.loopback_mbs = 0.0  # raw sendfile → recv_into copy (no HTTP, no Python client)
        self.sendfile_mbs = 0.0  # the same streaming httpx2 clients against a bare sendfile HTTP server

    # -- setup -----------------------------------------------------------------------------------
    def setup(self) -> None:
        up = self.upstream = HubServer(self.work / "upstream").start()
        small = make_small_files(self.args.small_files, seed=1)
        self.small_names = sorted(small)
        up.commit(SMALL, small, message="small files")
        big = self.work / "big.bin"
        self.big_sha256 = write_random_file(big, self.args.big_mib * 1024 * 1024)
        up.commit(BIG, {BIG_NAME: big}, message="big file")
        big.unlink()
        self.home = self.work / "home"
        self.config = self.work / "hubmirror.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "home": str(self.home),
                    "upstream": {"endpoint": up.url},
                    "repos": [{"repo": SMALL}, {"repo": BIG}],
                    "serve": {"token": TOKEN},
                }
            )
        )
        t = time.perf_counter()
        r = run([sys.executable, "-m", "hubmirror", "-c", str(self.config), "sync"])
        if r.returncode != 0:
            raise RuntimeError(f"hubmirror sync failed: {r.stdout}{r.stderr}")
        self.notes.append(f"hubmirror sync of both repos: {time.perf_counter() - t:.1f} s")

    def start_servers(self) -> list[tuple[str, str]]:
        """(name, endpoint) of every server to measure, in table order."""
        assert self.upstream is not None
        endpoints = [("upstream", self.upstream.url)]
        fast = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m) is not None]
        serve_args = ["-c", str(self.config), "serve", "--port"]
        port = free_port()
        label = f"serve ({'+'.join(fast)})" if fast else "serve (h11)"
        variants = [(label, [sys.executable, "-m", "hubmirror", *serve_args, str(port)], port)]
        if fast:
            port = free_port()
            cmd = [sys.executable, "-c", SERVE_WITHOUT_FAST_PARSERS, *serve_args, str(port)]
            variants.append(("serve (h11, asyncio)", cmd, port))
        else:
            self.notes.append("httptools/uvloop not installed: only the h11 variant was measured")
        for name, cmd, port in variants:
            server = Server(name, cmd, port, self.work / f"{name.split()[0]}-{port}.log")
            self.servers.append(server)
            server.wait_ready()
            endpoints.append((name, server.url))
        olah = self.start_olah()
        if olah is not None:
            endpoints.append(olah)
        return endpoints

    def start_olah(self) -> tuple[str, str] | None:
        if self.args.no_olah:
            self.notes.append("olah: skipped (--no-olah)")
            return None
        exe = self._olah_exe()
        if exe is None:
            return None
        assert self.upstream is not None
        port = free_port()
        up, cdn = self.upstream.url.split("//")[1], self.upstream.cdn_url.split("//")[1]
        repos = self.work / "olah-repos"
        cmd = [
            str(exe),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--hf-scheme",
            "http",
            "--hf-netloc",
            up,
            "--hf-lfs-netloc",
            cdn,
            "--mirror-scheme",
            "http",
            "--mirror-netloc",
            f"127.0.0.1:{port}",
            "--mirror-lfs-netloc",
            f"127.0.0.1:{port}",
            "--repos-path",
            str(repos),
        ]
        (self.work / "olah-run").mkdir(exist_ok=True)
        server = Server("olah", cmd, port, self.work / "olah.log", cwd=self.work / "olah-run")
        self.servers.append(server)
        try:
            server.wait_ready()
            t = time.perf_counter()  # cold pass fills Olah's cache; the measured passes are warm
            for repo in (SMALL, BIG):
                self.snapshot(server.url, repo, check=False)
            self.notes.append(
                f"olah: cold pass (fills its cache from the fake Hub): "
                f"{time.perf_counter() - t:.1f} s for both repos; Olah still revalidates "
                "metadata with the upstream on warm requests"
            )
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            self.notes.append(f"olah: skipped, it did not work against the fake Hub: {str(exc)[:300]}")
            server.stop()
            return None
        return "olah (warm)", server.url

    def _olah_exe(self) -> Path | None:
        venv = Path(self.args.olah_venv) if self.args.olah_venv else self.work / "olah-venv"
        exe = venv / "bin" / "olah-cli"
        if exe.exists():
            return exe
        try:
            t = time.perf_counter()
            r = run([sys.executable, "-m", "venv", str(venv)], timeout=300)
            if r.returncode != 0:
                raise RuntimeError(f"python -m venv failed: {r.stderr.strip()[-300:]}")
            r = run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "olah"], timeout=900)
            if r.returncode != 0 or not exe.exists():
                raise RuntimeError(f"pip install olah failed: {(r.stderr or r.stdout).strip()[-300:]}")
            self.notes.append(f"olah: installed into {venv} in {time.perf_counter() - t:.0f} s")
            return exe
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            self.notes.append(f"olah: skipped, cannot be set up: {exc}")
            return None

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.upstream is not None:
            self.upstream.stop()

    # -- measurements ----------------------------------------------------------------------------
    def snapshot(self, endpoint: str, repo: str, check: bool) -> dict[str, Any]:
        cache = Path(tempfile.mkdtemp(prefix="hf-cache-", dir=self.work))
        try:
            env = clean_env(
                HF_ENDPOINT=endpoint,
                HF_HUB_CACHE=str(cache),
                HF_HOME=str(cache / "home"),
                HF_HUB_DISABLE_XET="1",
                HF_HUB_DISABLE_TELEMETRY="1",
                HF_HUB_DISABLE_PROGRESS_BARS="1",
            )
            r = run([sys.executable, "-c", SNAPSHOT_SCRIPT, repo, "1" if check else "0"], env=env)
            if r.returncode != 0:
                raise RuntimeError(f"snapshot_download({repo}) from {endpoint} failed: {r.stderr[-1500:]}")
            return json.loads(r.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    def load(self, mode: str, url: str, procs: int, threads: int) -> float:
        """HEAD requests/s or GET MB/s with procs × threads concurrent keep-alive clients."""
        seconds = self.args.seconds
        start_at = time.time() + 1.5  # every client connected and imported before the clock starts
        cmd = [sys.executable, "-c", LOAD_SCRIPT, mode, url, str(threads), str(seconds), str(start_at)]
        children = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
            for _ in range(procs)
        ]
        total = errors = 0
        for child in children:
            out, err = child.communicate(timeout=seconds + 120)
            if child.returncode != 0:
                raise RuntimeError(f"load client failed: {err[-1500:]}")
            data = json.loads(out.strip().splitlines()[-1])
            total, errors = total + data["count"], errors + data["errors"]
        if errors:
            raise RuntimeError(f"{errors} failed {mode} requests to {url}")
        return total / seconds if mode == "head" else total / seconds / 1e6

    def loopback(self, clients: int) -> float:
        """MB/s of a raw sendfile → recv_into copy of the big blob over 127.0.0.1 (the ceiling for GETs)."""
        blob = self.home / "blobs" / "sha256" / self.big_sha256[:2] / self.big_sha256
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        stop = time.monotonic() + self.args.seconds

        def serve_one(conn: socket.socket) -> None:
            with conn, blob.open("rb") as fh:
                try:
                    while time.monotonic() < stop:
                        conn.sendfile(fh, 0)
                        fh.seek(0)
                except OSError:
                    pass

        def accept() -> None:
            for _ in range(clients):
                conn, _ = listener.accept()
                threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

        received = [0] * clients

        def read(i: int) -> None:
            buf = bytearray(1 << 20)
            with socket.create_connection(("127.0.0.1", port)) as s:
                while time.monotonic() < stop:
                    n = s.recv_into(buf)
                    if not n:
                        break
                    received[i] += n

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        started = time.monotonic()
        readers = [threading.Thread(target=read, args=(i,)) for i in range(clients)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        listener.close()
        return sum(received) / (time.monotonic() - started) / 1e6

    def sendfile_reference(self, clients: int) -> float:
        """GET MB/s of the big blob from a minimal keep-alive HTTP server that only calls sendfile(), read
        by the same streaming clients as the servers under test: loopback speed for this client."""
        blob = self.home / "blobs" / "sha256" / self.big_sha256[:2] / self.big_sha256
        size = blob.stat().st_size
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.5)
        done = threading.Event()

        def handle(conn: socket.socket) -> None:
            with conn, conn.makefile("rb") as reader, blob.open("rb") as fh:
                try:
                    while not done.is_set():
                        line = reader.readline()
                        if not line:
                            return
                        while reader.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                            b"Content-Length: %d\r\n\r\n" % size
                        )
                        conn.sendfile(fh, 0)
                        fh.seek(0)
                except OSError:
                    return

        def accept() -> None:
            while not done.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        try:
            port = listener.getsockname()[1]
            return self.load("get", f"http://127.0.0.1:{port}/blob", clients, 1)
        finally:
            done.set()
            listener.close()
            acceptor.join(timeout=5)

    def server_cpu(self, name: str) -> float:
        """CPU seconds used so far by the process serving ``name`` (the fake Hub runs in this process)."""
        server = next((x for x in self.servers if x.name == name), None)
        if server is None:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime
        fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def snapshots(self, endpoints: list[tuple[str, str]], key: str, repo: str) -> None:
        """``--repeat`` rounds; each round visits every server, in a rotated order, so drifting background
        load does not favour one of them. Keeps the median wall time and the server CPU per download."""
        args = self.args
        walls: dict[str, list[float]] = {name: [] for name, _ in endpoints}
        cpus: dict[str, list[float]] = {name: [] for name, _ in endpoints}
        clients: dict[str, list[float]] = {name: [] for name, _ in endpoints}
        for i in range(args.repeat):
            for name, endpoint in endpoints[i % len(endpoints) :] + endpoints[: i % len(endpoints)]:
                settle()
                cpu0, child0 = self.server_cpu(name), resource.getrusage(resource.RUSAGE_CHILDREN)
                res = self.snapshot(endpoint, repo, check=repo == BIG and i == 0)
                cpus[name].append(self.server_cpu(name) - cpu0)
                child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                clients[name].append(child1.ru_utime + child1.ru_stime - child0.ru_utime - child0.ru_stime)
                if repo == SMALL and res["files"] != args.small_files:
                    raise RuntimeError(f"{name}: {res['files']} files downloaded, expected {args.small_files}")
                if repo == BIG and (
                    ("sha256" in res and res["sha256"] != self.big_sha256) or res["bytes"] != args.big_mib * 1024 * 1024
                ):
                    raise RuntimeError(f"{name}: the big file came back wrong")
                walls[name].append(res["seconds"])
        for name, _ in endpoints:
            self.results[name][key] = statistics.median(walls[name])
            self.results[name][key + "_cpu"] = statistics.median(cpus[name])
            self.results[name][key + "_client_cpu"] = statistics.median(clients[name])

    def pull_through(self) -> None:
        """Cold and warm snapshot_download through pull-through serve against the same straight from upstream,
        without and with added upstream latency."""
        assert self.upstream is not None
        for latency in sorted({0.0, self.args.pull_latency}):
            self.upstream.latency = latency
            try:
                self._pull_rounds(f"{latency * 1000:.0f}ms")
            finally:
                self.upstream.latency = 0.0

    def _pull_rounds(self, tag: str) -> None:
        assert self.upstream is not None
        times: dict[str, dict[str, list[float]]] = {}
        for i in range(self.args.repeat):
            root = self.work / f"pull-{tag}-{i}"
            root.mkdir()
            config = root / "hubmirror.yaml"
            settings = {"enabled": True, "max_file_size": "100GB"}
            config.write_text(
                yaml.safe_dump(
                    {
                        "home": str(root / "home"),
                        "upstream": {"endpoint": self.upstream.url},
                        "serve": {"token": TOKEN, "pull_through": settings},
                    }
                )
            )
            port = free_port()
            cmd = [sys.executable, "-m", "hubmirror", "-c", str(config), "serve", "--port", str(port)]
            server = Server(f"pull-{tag}-{i}", cmd, port, root / "serve.log")
            self.servers.append(server)
            server.wait_ready()
            for repo, key in ((SMALL, "small"), (BIG, "big")):
                runs = times.setdefault(f"{key}@{tag}", {"direct": [], "cold": [], "warm": []})
                order = ["direct", "cold", "warm"] if i % 2 == 0 else ["cold", "warm", "direct"]
                for case in order:
                    settle()
                    endpoint = self.upstream.url if case == "direct" else server.url
                    res = self.snapshot(endpoint, repo, check=repo == BIG and case != "direct")
                    if repo == BIG and res.get("sha256", self.big_sha256) != self.big_sha256:
                        raise RuntimeError(f"pull-through {case}: the big file came back wrong")
                    if repo == SMALL and res["files"] != self.args.small_files:
                        raise RuntimeError(
                            f"pull-through {case}: {res['files']} files, expected {self.args.small_files}"
                        )
                    runs[case].append(res["seconds"])
            server.stop()
            self.servers.remove(server)
        self.pulls.update(
            {key: {case: statistics.median(v) for case, v in runs.items()} for key, runs in times.items()}
        )

    def pull_report(self) -> tuple[list[str], list[str]]:
        a = self.args
        lines, misses = (
            ["", "pull-through snapshot_download (s)        direct     cold     warm   cold/direct  warm/direct"],
            [],
        )
        for key, t in self.pulls.items():
            kind, tag = key.split("@")
            label = (f"{a.small_files} small files" if kind == "small" else f"one {a.big_mib} MiB file") + f", {tag}"
            cold, warm = t["cold"] / t["direct"], t["warm"] / t["direct"]
            lines.append(
                f"  {label:<38}{t['direct']:>8.2f} {t['cold']:>8.2f} {t['warm']:>8.2f} {cold:>12.2f}x {warm:>11.2f}x"
            )
            if cold > 1.2:
                misses.append(f"pull-through cold {label}: {cold:.2f}x > 1.2x direct")
            if warm > 0.5:
                misses.append(f"pull-through warm {label}: {warm:.2f}x > 0.5x direct")
        return lines, misses

    def run(self) -> int:
        self.setup()
        if self.args.only_pull_through:
            print("pull-through snapshot_download ...", file=sys.stderr, flush=True)
            self.pull_through()
            lines, misses = self.pull_report()
            lines.append(
                "targets: pull-through cold <= 1.2x, warm <= 0.5x direct: " + ("all met" if not misses else "MISSED")
            )
            lines += [f"  missed: {m}" for m in misses]
            print(
                json.dumps({"pull_through": self.pulls, "missed": misses}, indent=2)
                if self.args.json
                else "\n".join(lines)
            )
            return 1 if misses else 0
        endpoints = self.start_servers()
        self.results = {name: {"endpoint": url} for name, url in endpoints}
        settle()
        self.loopback_mbs = self.loopback(self.args.get_clients)
        settle()
        self.sendfile_mbs = self.sendfile_reference(self.args.get_clients)
        print("snapshot_download of the small-file repo ...", file=sys.stderr, flush=True)
        self.snapshots(endpoints, "small_s", SMALL)
        print("snapshot_download of the big-file repo ...", file=sys.stderr, flush=True)
        self.snapshots(endpoints, "big_s", BIG)
        a = self.args
        for name, endpoint in endpoints:
            print(f"HEAD and GET load on {name} ...", file=sys.stderr, flush=True)
            settle()
            cpu0 = self.server_cpu(name)
            url = f"{endpoint}/{SMALL}/resolve/main/{self.small_names[0]}"
            rps = self.load("head", url, a.procs, a.threads)
            self.results[name]["head_rps"] = rps
            self.results[name]["head_cpu_us"] = (self.server_cpu(name) - cpu0) / (rps * a.seconds) * 1e6
            settle()
            self.results[name]["get_mbs"] = self.load(
                "get", f"{endpoint}/{BIG}/resolve/main/{BIG_NAME}", a.get_clients, 1
            )
        if not a.no_pull_through:
            print("pull-through snapshot_download ...", file=sys.stderr, flush=True)
            self.pull_through()
        return self.report()

    # -- report ----------------------------------------------------------------------------------
    def report(self) -> int:
        a, res = self.args, self.results
        base = res["upstream"]
        names = list(res)
        serve_names = [n for n in names if n.startswith("serve")]
        rows = [
            (f"snapshot_download {a.small_files} files (s)", "small_s", "{:.2f}"),
            (f"snapshot_download {a.big_mib} MiB file (s)", "big_s", "{:.2f}"),
            (f"HEAD req/s ({a.procs}x{a.threads} clients, {a.seconds:g} s)", "head_rps", "{:,.0f}"),
            (f"GET MB/s big file ({a.get_clients} clients)", "get_mbs", "{:,.0f}"),
        ]
        cpu_rows = [
            (f"server CPU s per {a.small_files}-file snapshot", "small_s_cpu", "{:.2f}"),
            ("  client process CPU s (whole process)", "small_s_client_cpu", "{:.2f}"),
            (f"server CPU s per {a.big_mib} MiB snapshot", "big_s_cpu", "{:.2f}"),
            ("  client process CPU s (whole process)", "big_s_client_cpu", "{:.2f}"),
            ("server CPU us per HEAD", "head_cpu_us", "{:,.0f}"),
        ]
        width = max(len(r[0]) for r in rows + cpu_rows) + 2
        col = max(14, *(len(n) + 2 for n in names))
        lines = [
            "",
            f"hubmirror serve benchmark  (cores: {os.cpu_count()}; big-file loopback references: "
            f"bare sendfile HTTP server {self.sendfile_mbs:,.0f} MB/s, raw socket copy "
            f"{self.loopback_mbs:,.0f} MB/s)",
            "",
            "".ljust(width) + "".join(n.rjust(col) for n in names),
        ]
        for label, key, fmt in rows:
            lines.append(label.ljust(width) + "".join(fmt.format(res[n][key]).rjust(col) for n in names))
            if key in ("small_s", "big_s"):
                lines.append(
                    "  speed vs upstream".ljust(width)
                    + "".join(f"{base[key] / res[n][key]:.2f}x".rjust(col) for n in names)
                )
            elif key == "head_rps":
                lines.append(
                    "  vs upstream".ljust(width) + "".join(f"{res[n][key] / base[key]:.2f}x".rjust(col) for n in names)
                )
            else:
                lines.append(
                    "  vs bare sendfile server".ljust(width)
                    + "".join(f"{res[n][key] / self.sendfile_mbs:.2f}x".rjust(col) for n in names)
                )
        lines.append("")
        for label, key, fmt in cpu_rows:
            lines.append(label.ljust(width) + "".join(fmt.format(res[n][key]).rjust(col) for n in names))
        misses = []
        for n in serve_names[:1]:  # targets apply to serve as installed
            r = res[n]
            if base["small_s"] / r["small_s"] < 1.0:
                misses.append(f"{n}: small-file snapshot {base['small_s'] / r['small_s']:.2f}x < 1.0x upstream")
            if base["big_s"] / r["big_s"] < 1.0:
                misses.append(f"{n}: big-file snapshot {base['big_s'] / r['big_s']:.2f}x < 1.0x upstream")
            if r["head_rps"] < 2000:
                misses.append(f"{n}: {r['head_rps']:.0f} HEAD/s < 2,000")
            if r["get_mbs"] < 0.5 * self.sendfile_mbs:
                misses.append(
                    f"{n}: GET {r['get_mbs']:.0f} MB/s < 0.5x the bare sendfile server ({self.sendfile_mbs:.0f} MB/s)"
                )
        if self.pulls:
            pull_lines, pull_misses = self.pull_report()
            lines += pull_lines
            misses += pull_misses
        lines += [
            "",
            "targets (serve as installed): snapshot >= 1.0x upstream, >= 2,000 HEAD/s, "
            "GET >= 0.5x bare sendfile server; pull-through cold <= 1.2x, warm <= 0.5x direct: "
            + ("all met" if not misses else "MISSED"),
        ]
        lines += [f"  missed: {m}" for m in misses]
        lines += [f"note: {n}" for n in self.notes]
        if a.json:
            print(
                json.dumps(
                    {
                        "results": res,
                        "loopback_mbs": self.loopback_mbs,
                        "sendfile_server_mbs": self.sendfile_mbs,
                        "pull_through": self.pulls,
                        "notes": self.notes,
                        "missed": misses,
                    },
                    indent=2,
                )
            )
        else:
            print("\n".join(lines))
        return 1 if misses else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-files", type=int, default=500)
    parser.add_argument("--big-mib", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load test")
    parser.add_argument("--procs", type=int, default=4, help="client processes for the HEAD load")
    parser.add_argument("--threads", type=int, default=2, help="threads per client process (HEAD load)")
    parser.add_argument("--get-clients", type=int, default=4, help="concurrent streaming GET clients")
    parser.add_argument("--repeat", type=int, default=3, help="snapshot_download runs per case (median)")
    parser.add_argument("--olah-venv", help="an existing venv with olah installed (else one is made in tmp)")
    parser.add_argument("--no-olah", action="store_true")
    parser.add_argument("--tmp-dir", help="where to work (default: a new temp dir, removed at the end)")
    parser.add_argument("--json", action="store_true")
    pull = parser.add_mutually_exclusive_group()
    pull.add_argument("--no-pull-through", action="store_true", help="skip the pull-through rounds")
    pull.add_argument("--only-pull-through", action="store_true", help="measure only the pull-through rounds")
    parser.add_argument(
        "--pull-latency", type=float, default=0.02, help="seconds added to each upstream request in the second rounds"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-", dir=args.tmp_dir))
    bench = Bench(args, work)
    try:
        return bench.run()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
