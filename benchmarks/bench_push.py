#!/usr/bin/env python
"""Benchmark ``hubmirror push`` against ``huggingface_hub.upload_folder`` on the same work.

The work: a folder of N small text files (``make_small_files``) plus the real all-MiniLM-L6-v2
``model.safetensors`` (90.9 MB, goes by LFS). Cases, in this order, per program:

  (a) first push to a fresh repo;  (b) one small file changed;  (c) nothing changed.

Each program gets its own copy of the folder and its own fake Hub (``tests/hubserver.py``, in this process,
threads on 127.0.0.1, ``--latency`` s per request): both start from an empty upstream, so neither finds the
other's LFS object already there. Every measured program runs as a fresh subprocess:

* hubmirror: ``python -m hubmirror -c CFG push FOLDER --repo R [--create] --json`` (one home for all cases);
* the peer: ``HfApi().upload_folder(...)`` (after ``create_repo`` in (a)) with ``HF_ENDPOINT`` at its fake Hub,
  ``HF_HUB_DISABLE_XET=1`` (the fake Hub speaks LFS, not Xet), telemetry and progress bars off. Its hashing is
  counted by wrapping ``huggingface_hub.lfs.sha_fileobj`` (sha256) and ``huggingface_hub.utils.sha.git_hash``
  (git blob sha1), which is how it decides what changed.

Both programs run as installed: hubmirror's modules are byte-compiled first (``compileall``, as pip does at
install time). Without that, an environment with ``PYTHONDONTWRITEBYTECODE=1`` and a source checkout bills
hubmirror ~0.15 s of compiling per run and the peer (compiled in site-packages) nothing;
``--no-compile`` measures that way anyway.

Columns: wall (subprocess wall time, median over ``--repeat``), reqs (requests the fake Hub logged), uploaded
(LFS bodies the fake Hub accepted, ``server.uploads``, plus the Content-Length of the commit POSTs), files
uploaded (LFS objects + files in the commit payload), hashed (hubmirror: ``files_hashed``; peer: sha256 +
git-sha1 computations), RSS (peak of the child, ``os.wait4``), cpu (its user+sys).

Targets: (b) hubmirror hashes 1 file and uploads 1 file; hubmirror wall ≤ 1.0× the peer's in (a), (b), (c).

Usage: python benchmarks/bench_push.py [--small-files 500] [--latency 0.0] [--repeat 1] [--json] [--tmp-dir D]
                                      [--no-compile]
Exit status: 0 every target met, 1 a target missed, 2 a program under test failed.
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
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _common import compile_hubmirror, run_child  # noqa: E402
from hubserver import HubServer, make_small_files, minilm_dir  # noqa: E402

TOKEN = "hf_bench_write_token"
CHILD_TIMEOUT = 1200.0
CASES = ("a", "b", "c")
CASE_NAMES = {"a": "first push", "b": "1 file changed", "c": "unchanged"}
CHANGED_FILE = "file_00000"  # the small file (b) edits (by name prefix; its directory is random)

PEER_SCRIPT = r"""
import json, sys
import huggingface_hub.lfs as lfs
import huggingface_hub.utils.sha as sha
from huggingface_hub import HfApi

counts = {"sha256": 0, "git_sha1": 0}
_sha_fileobj, _git_hash = lfs.sha_fileobj, sha.git_hash

def sha_fileobj(*a, **k):
    counts["sha256"] += 1
    return _sha_fileobj(*a, **k)

def git_hash(*a, **k):
    counts["git_sha1"] += 1
    return _git_hash(*a, **k)

lfs.sha_fileobj, sha.git_hash = sha_fileobj, git_hash
folder, repo, create = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
api = HfApi()
if create:
    api.create_repo(repo, exist_ok=True)
info = api.upload_folder(folder_path=folder, repo_id=repo, commit_message="bench")
print(json.dumps({"commit": info.oid, **counts}))
"""


@dataclass
class Run:
    program: str
    case: str
    wall: float
    requests: int
    uploaded_bytes: int
    files_uploaded: int
    hashed: int
    rss_mb: float
    cpu: float
    commits: int


class ChildFailed(RuntimeError):
    pass


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}
    env.update(extra)
    return env


def build_folder(folder: Path, small: dict[str, bytes]) -> None:
    for rel, data in small.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    shutil.copyfile(minilm_dir() / "model.safetensors", folder / "model.safetensors")


def change_one_file(folder: Path) -> str:
    path = next(p for p in sorted(folder.rglob(f"{CHANGED_FILE}.txt")))
    path.write_bytes(path.read_bytes() + b"changed by the benchmark\n")
    return path.relative_to(folder).as_posix()


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.small = make_small_files(args.small_files)

    def measure(self, program: str, server: HubServer, case: str, cmd: list[str], env: dict[str, str]) -> Run:
        n_req, n_up, n_commits = len(server.requests), len(server.uploads), len(server.commits_made)
        wall, code, out, err, usage, _ = run_child(cmd, env)
        if code != 0:
            raise ChildFailed(f"{program} ({case}) exited {code}:\n{err[-3000:]}")
        entries = server.requests[n_req:]
        uploads = server.uploads[n_up:]
        commits = server.commits_made[n_commits:]
        commit_bytes = sum(
            int(e.headers.get("content-length", 0))
            for e in entries
            if e.method == "POST" and "/commit/" in e.path and e.status == 200
        )
        in_commit = sum(1 for c in commits for key, _ in c["ops"] if key == "file")
        data = json.loads(out.strip().splitlines()[-1] if program == "peer" else out)
        hashed = data["files_hashed"] if program == "hubmirror" else data["sha256"] + data["git_sha1"]
        return Run(
            program,
            case,
            wall,
            len(entries),
            sum(u[2] for u in uploads) + commit_bytes,
            len(uploads) + in_commit,
            hashed,
            usage.ru_maxrss / 1024,
            usage.ru_utime + usage.ru_stime,
            len(commits),
        )

    def hubmirror(self, rep: int) -> list[Run]:
        root = self.work / f"hubmirror-{rep}"
        folder = root / "folder"
        build_folder(folder, self.small)
        runs = []
        with HubServer(root / "upstream") as server:
            server.latency = self.args.latency
            cfg = root / "hubmirror.yaml"
            cfg.write_text(
                yaml.safe_dump(
                    {
                        "home": str(root / "home"),
                        "upstream": {"endpoint": server.url, "token": TOKEN},
                        "repos": [{"repo": "bench/not-synced"}],
                    }
                )
            )
            for case in CASES:
                if case == "b":
                    change_one_file(folder)
                cmd = [
                    sys.executable,
                    "-m",
                    "hubmirror",
                    "-c",
                    str(cfg),
                    "push",
                    str(folder),
                    "--repo",
                    "bench/hm",
                    "--json",
                    *(["--create"] if case == "a" else []),
                ]
                runs.append(self.measure("hubmirror", server, case, cmd, clean_env()))
        return runs

    def peer(self, rep: int) -> list[Run]:
        root = self.work / f"peer-{rep}"
        folder = root / "folder"
        build_folder(folder, self.small)
        runs = []
        with HubServer(root / "upstream") as server:
            server.latency = self.args.latency
            env = clean_env(
                HF_ENDPOINT=server.url,
                HF_TOKEN=TOKEN,
                HF_HOME=str(root / "hf-home"),
                HF_HUB_DISABLE_XET="1",
                HF_HUB_DISABLE_TELEMETRY="1",
                HF_HUB_DISABLE_PROGRESS_BARS="1",
            )
            for case in CASES:
                if case == "b":
                    change_one_file(folder)
                cmd = [sys.executable, "-c", PEER_SCRIPT, str(folder), "bench/peer", "1" if case == "a" else "0"]
                runs.append(self.measure("peer", server, case, cmd, env))
        return runs


def median_runs(runs: list[Run]) -> Run:
    first = runs[0]
    return Run(
        first.program,
        first.case,
        statistics.median(r.wall for r in runs),
        first.requests,
        first.uploaded_bytes,
        first.files_uploaded,
        first.hashed,
        statistics.median(r.rss_mb for r in runs),
        statistics.median(r.cpu for r in runs),
        first.commits,
    )


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-files", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every fake-Hub request")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tmp-dir", type=Path, default=None)
    parser.add_argument("--no-compile", action="store_true", help="do not byte-compile hubmirror first")
    args = parser.parse_args()
    if not args.no_compile:
        compile_hubmirror()

    work = Path(tempfile.mkdtemp(prefix="bench-push-", dir=args.tmp_dir))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args, work)
    try:
        collected: dict[tuple[str, str], list[Run]] = {}
        for rep in range(args.repeat):
            for run in [*bench.peer(rep), *bench.hubmirror(rep)]:
                collected.setdefault((run.program, run.case), []).append(run)
            shutil.rmtree(work / f"peer-{rep}", ignore_errors=True)
            shutil.rmtree(work / f"hubmirror-{rep}", ignore_errors=True)
    except ChildFailed as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {key: median_runs(runs) for key, runs in collected.items()}
    checks = []
    b = results[("hubmirror", "b")]
    checks.append(("(b) hubmirror hashes 1 file", b.hashed == 1))
    checks.append(("(b) hubmirror uploads 1 file", b.files_uploaded == 1))
    for case in CASES:
        hm, peer = results[("hubmirror", case)], results[("peer", case)]
        checks.append((f"({case}) hubmirror wall ≤ 1.0× peer ({hm.wall / peer.wall:.2f}×)", hm.wall <= peer.wall))

    if args.json:
        print(
            json.dumps(
                {
                    "results": [asdict(r) for r in results.values()],
                    "checks": [{"target": t, "met": ok} for t, ok in checks],
                    "small_files": args.small_files,
                    "latency": args.latency,
                    "repeat": args.repeat,
                    "compiled": not args.no_compile,
                },
                indent=2,
            )
        )
    else:
        print(
            f"{args.small_files} small files + model.safetensors (90.9 MB); latency {args.latency * 1000:.0f} ms; "
            f"median of {args.repeat}{'; hubmirror not byte-compiled' if args.no_compile else ''}"
        )
        print(
            f"{'case':<18} {'program':<10} {'wall':>7} {'reqs':>5} {'uploaded':>10} {'files up':>8} "
            f"{'hashed':>6} {'commits':>7} {'RSS':>8} {'cpu':>6}"
        )
        for case in CASES:
            for program in ("hubmirror", "peer"):
                r = results[(program, case)]
                print(
                    f"({case}) {CASE_NAMES[case]:<14} {program:<10} {r.wall:6.2f}s {r.requests:>5} "
                    f"{human(r.uploaded_bytes):>10} {r.files_uploaded:>8} {r.hashed:>6} {r.commits:>7} "
                    f"{r.rss_mb:6.0f}MB {r.cpu:5.2f}s"
                )
        for target, ok in checks:
            print(f"{'met   ' if ok else 'MISSED'} {target}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
