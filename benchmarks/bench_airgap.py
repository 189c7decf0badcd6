#!/usr/bin/env python
"""Benchmark crossing the air gap against the tools a user would use by hand, on the same bytes, in one run.

A store holding all-MiniLM-L6-v2 (13 files, 90 MB) and a repo of N small files is synced once from the fake
upstream (``tests/hubserver.py``, in this process). Then, each a fresh subprocess, median of ``--repeat``:

  export    ``hubmirror export DEST.tar``        vs ``tar -cf`` of the same blob files
  import    ``hubmirror import DEST.tar``        vs ``tar -xf`` then ``sha256sum`` of every extracted file
  verify    ``hubmirror verify`` (all cores)     vs ``sha256sum`` of every blob (one core): throughput per core
  increment ``export --incremental`` after a 1-file upstream change: its size against the full bundle's
  gc        ``hubmirror gc`` on a synthetic store of 100k blobs and 1k commits (half of them dropped)

Targets (issue "Across the air gap"): export and import at least 0.9x the speed of the peer, verify at least
0.9x sha256sum's throughput per core, the incremental bundle under 1% of the full one, gc under 5 s.

Usage: python benchmarks/bench_airgap.py [--small-files 500] [--repeat 3] [--gc-blobs 100000]
                                         [--gc-commits 1000] [--json] [--tmp-dir DIR]
Exit status: 0 every target met, 1 a target missed, 2 a program under test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _common import run_child, settle  # noqa: E402
from conftest import MINILM, write_config  # noqa: E402
from hubserver import HubServer, add_minilm, make_small_files  # noqa: E402

SMALL = "bench/small-files"


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}


def hubmirror(*args: str) -> list[str]:
    return [sys.executable, "-m", "hubmirror", *args]


def measured(cmd: list[str], *, shell: bool = False) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process and what it waited for, stdout) of one fresh subprocess."""
    full = ["sh", "-c", cmd[0]] if shell else cmd
    wall, code, out, err, usage, _ = run_child(full, env())
    if code != 0:
        sys.stderr.write(f"FAILED ({code}): {' '.join(full)}\n{out[-2000:]}\n{err[-2000:]}\n")
        raise SystemExit(2)
    return wall, usage.ru_utime + usage.ru_stime, out


def timed(cmd: list[str], *, shell: bool = False) -> float:
    return measured(cmd, shell=shell)[0]


def ours(*args: str) -> tuple[float, dict[str, Any]]:
    """hubmirror with --json: (wall seconds, its report, which says how long the work itself took)."""
    wall, _, out = measured(hubmirror(*args, "--json"))
    return wall, json.loads(out)


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_store(work: Path, small_files: int) -> tuple[Path, Path, HubServer]:
    up = HubServer(work / "upstream").start()
    add_minilm(up)
    up.commit(SMALL, make_small_files(small_files, seed=5), message="small files")
    home = work / "connected"
    cfg = write_config(work / "hubmirror.yaml", up.url, home, [{"repo": MINILM}, {"repo": SMALL}])
    timed(hubmirror("-c", str(cfg), "sync"))
    return cfg, home, up


def bench_transfer(work: Path, cfg: Path, home: Path, repeat: int) -> dict[str, Any]:
    """Export and import against tar; "work" is hubmirror's own timing, without interpreter start-up."""
    blobs = home / "blobs" / "sha256"
    rows: dict[str, list[float]] = {
        k: []
        for k in (
            "export",
            "export_work",
            "tar_cf",
            "import",
            "import_work",
            "tar_xf_sha256sum",
            "tar_xf_sha256sum_sync",
        )
    }
    size = 0
    for n in range(repeat):
        run = work / f"run{n}"
        run.mkdir()
        bundle = run / "bundle.tar"
        wall, report = ours("-c", str(cfg), "export", str(bundle))
        rows["export"].append(wall)
        rows["export_work"].append(report["seconds"])
        rows["tar_cf"].append(timed([f"tar -cf {run / 'peer.tar'} -C {blobs} ."], shell=True))
        wall, report = ours("--home", str(run / "far"), "import", str(bundle))
        rows["import"].append(wall)
        rows["import_work"].append(report["seconds"])
        (run / "x").mkdir()
        rows["tar_xf_sha256sum"].append(
            timed(
                [
                    f"tar -xf {run / 'peer.tar'} -C {run / 'x'} && find {run / 'x'} -type f -print0 | xargs -0 sha256sum "
                    "> /dev/null"
                ],
                shell=True,
            )
        )
        (run / "y").mkdir()  # the same, made as durable as an import is (one sync at the end)
        rows["tar_xf_sha256sum_sync"].append(
            timed(
                [
                    f"tar -xf {run / 'peer.tar'} -C {run / 'y'} && find {run / 'y'} -type f -print0 | xargs -0 sha256sum "
                    f"> /dev/null && sync -f {run / 'y'}"
                ],
                shell=True,
            )
        )
        size = size_of(bundle)
        shutil.rmtree(run)
    med = {k: statistics.median(v) for k, v in rows.items()}
    return {
        "seconds": med,
        "bundle_bytes": size,
        "export_speed_vs_tar": med["tar_cf"] / med["export_work"],
        "export_speed_vs_tar_with_startup": med["tar_cf"] / med["export"],
        "import_speed_vs_tar_sha256sum": med["tar_xf_sha256sum"] / med["import_work"],
        "import_speed_vs_tar_sha256sum_with_startup": med["tar_xf_sha256sum"] / med["import"],
        "import_speed_vs_durable_peer": med["tar_xf_sha256sum_sync"] / med["import_work"],
    }


def bench_verify(home: Path, repeat: int) -> dict[str, Any]:
    """Throughput per core used: bytes per CPU second, hubmirror's rehash against sha256sum's."""
    blobs = home / "blobs" / "sha256"
    total = sum(p.stat().st_size for p in blobs.rglob("*") if p.is_file())
    runs = [ours("--home", str(home), "verify") for _ in range(repeat)]
    peer = [
        measured([f"find {blobs} -type f -print0 | xargs -0 sha256sum > /dev/null"], shell=True) for _ in range(repeat)
    ]
    wall = statistics.median(w for w, _ in runs)
    work = statistics.median(r["seconds"] for _, r in runs)
    cpu = statistics.median(r["cpu_seconds"] for _, r in runs)
    peer_wall, peer_cpu = statistics.median(w for w, _, _ in peer), statistics.median(c for _, c, _ in peer)
    return {
        "bytes": total,
        "seconds": {
            "verify": wall,
            "verify_work": work,
            "verify_cpu": cpu,
            "sha256sum": peer_wall,
            "sha256sum_cpu": peer_cpu,
        },
        "cores_used": cpu / work if work else 0.0,
        "per_core_vs_sha256sum": (total / cpu) / (total / peer_cpu) if cpu else 0.0,
    }


def bench_incremental(work: Path, cfg: Path, up: HubServer) -> dict[str, Any]:
    full = work / "full"
    timed(hubmirror("-c", str(cfg), "export", str(full)))
    up.commit(SMALL, {"dir1/file_00001.txt": b"one changed file\n"}, message="one change")
    timed(hubmirror("-c", str(cfg), "sync"))
    delta = work / "delta"
    timed(hubmirror("-c", str(cfg), "export", str(delta), "--incremental"))
    return {"full_bytes": size_of(full), "incremental_bytes": size_of(delta), "ratio": size_of(delta) / size_of(full)}


def bench_gc(work: Path, n_blobs: int, n_commits: int) -> dict[str, Any]:
    """A synthetic store: n_blobs real blob files, n_commits commits of one repo; the oldest half are dropped."""
    sys.path.insert(0, str(ROOT))
    from hubmirror.index import open_index
    from hubmirror.models import BlobRecord, FileRecord
    from hubmirror.store import Store

    home = work / "gc-home"
    store = Store(home)
    index = open_index(store.index_path)
    per_commit = n_blobs // n_commits
    blobs: list[BlobRecord] = []
    import hashlib

    for i in range(n_blobs):
        data = f"blob {i}\n".encode()
        sha = hashlib.sha256(data).hexdigest()
        path = store.blob_file(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (1, 1))  # old: past the grace period
        blobs.append(BlobRecord(sha, len(data), None))
    index.add_blobs(blobs)
    with index.atomic():
        for c in range(n_commits):
            sha = hashlib.sha1(f"commit {c}".encode()).hexdigest()
            files = [
                FileRecord(f"f{j}.txt", b.size, b.sha256, "0" * 40, False)
                for j, b in enumerate(blobs[c * per_commit : (c + 1) * per_commit])
            ]
            index.publish_commit("model", "bench/history", sha, files, [], source="sync")
            index.set_ref("model", "bench/history", "main", sha, at=f"2026-01-01T00:{c // 60:02d}:{c % 60:02d}+00:00")
    index.close()
    cfg = work / "gc.yaml"
    cfg.write_text(f"home: {home}\ngc: {{keep_previous: {n_commits // 2 - 1}, grace: 0s}}\n")
    wall = timed(hubmirror("-c", str(cfg), "gc", "--json"))
    left = sum(1 for _ in (home / "blobs" / "sha256").rglob("*") if _.is_file())
    return {"blobs": n_blobs, "commits": n_commits, "seconds": wall, "blobs_left": left}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-files", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gc-blobs", type=int, default=100_000)
    parser.add_argument("--gc-commits", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--tmp-dir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-airgap-", dir=args.tmp_dir))
    try:
        cfg, home, up = build_store(work, args.small_files)
        settle(args.settle)
        result = {
            "transfer": bench_transfer(work, cfg, home, args.repeat),
            "verify": bench_verify(home, args.repeat),
            "incremental": bench_incremental(work, cfg, up),
        }
        up.stop()
        result["gc"] = bench_gc(work, args.gc_blobs, args.gc_commits)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    t, v, i, g = result["transfer"], result["verify"], result["incremental"], result["gc"]
    checks = {
        "export >= 0.9x tar -cf": t["export_speed_vs_tar"] >= 0.9,
        "import >= 0.9x tar -xf + sha256sum": t["import_speed_vs_tar_sha256sum"] >= 0.9,
        "verify >= 0.9x sha256sum per core": v["per_core_vs_sha256sum"] >= 0.9,
        "incremental < 1% of full": i["ratio"] < 0.01,
        "gc < 5 s": g["seconds"] < 5.0,
    }
    if args.json:
        print(json.dumps({**result, "targets": checks}, indent=2))
    else:
        s, vs = t["seconds"], v["seconds"]
        print(
            f"bundle: {t['bundle_bytes'] / 1e6:.1f} MB, MiniLM + {args.small_files} small files; median of {args.repeat}"
        )
        print(
            f"export  {s['export']:.2f} s ({s['export_work']:.2f} s of work)   tar -cf {s['tar_cf']:.2f} s   speed "
            f"{t['export_speed_vs_tar']:.2f}x ({t['export_speed_vs_tar_with_startup']:.2f}x with start-up)"
        )
        print(
            f"import  {s['import']:.2f} s ({s['import_work']:.2f} s of work)   tar -xf + sha256sum "
            f"{s['tar_xf_sha256sum']:.2f} s   speed {t['import_speed_vs_tar_sha256sum']:.2f}x "
            f"({t['import_speed_vs_tar_sha256sum_with_startup']:.2f}x with start-up)"
        )
        print(
            f"        against the same made durable (sync -f at the end, {s['tar_xf_sha256sum_sync']:.2f} s): "
            f"{t['import_speed_vs_durable_peer']:.2f}x"
        )
        print(
            f"verify  {vs['verify']:.2f} s ({vs['verify_work']:.2f} s of rehash, {vs['verify_cpu']:.2f} CPU s on "
            f"{v['cores_used']:.1f} cores)   sha256sum {vs['sha256sum']:.2f} s ({vs['sha256sum_cpu']:.2f} CPU s)   "
            f"per core {v['per_core_vs_sha256sum']:.2f}x"
        )
        print(
            f"incremental after a 1-file change: {i['incremental_bytes']} B of a {i['full_bytes'] / 1e6:.1f} MB full "
            f"bundle ({i['ratio'] * 100:.4f}%)"
        )
        print(f"gc: {g['blobs']} blobs, {g['commits']} commits: {g['seconds']:.2f} s ({g['blobs_left']} blobs left)")
        for name, ok in checks.items():
            print(f"  {'met' if ok else 'NOT MET'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
