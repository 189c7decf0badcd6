"""How fast is offline resolution? ``hubmirror.snapshot_path`` vs ``huggingface_hub.snapshot_download``.

    python benchmarks/bench_resolve.py                          # mirrors all-MiniLM-L6-v2 from the fake hub
    python benchmarks/bench_resolve.py --home H --repo org/name # an existing mirror

Measures, on the same mirrored repo:
* in-process: ``hubmirror.snapshot_path(repo)`` (warm resolver) vs ``snapshot_download(repo,
  local_files_only=True)`` against the HF-cache view; per call, median over many calls, in µs;
* the ``hubmirror resolve REPO`` command (the installed console script): wall time, median of N runs.
Targets: ≤ 1 ms in-process, ≤ 0.2 s for the command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_API_US = 1000.0
TARGET_CLI_S = 0.2


def _mirror_minilm(tmp: Path) -> tuple[Path, str]:
    """Sync all-MiniLM-L6-v2 from the fake upstream (tests/hubserver.py) into ``tmp/home``."""
    sys.path.insert(0, str(ROOT / "tests"))
    from hubserver import MINILM_REPO_ID, HubServer, add_minilm

    from hubmirror.config import load_config
    from hubmirror.mirror import Mirror

    home = tmp / "home"
    with HubServer(tmp / "upstream") as up:
        add_minilm(up)
        cfg = tmp / "hubmirror.yaml"
        cfg.write_text(f"home: {home}\nupstream:\n  endpoint: {up.url}\nrepos:\n  - repo: {MINILM_REPO_ID}\n")
        with Mirror(home) as mirror:
            report = mirror.sync(load_config(cfg))
        if not report.ok:
            raise SystemExit(f"sync failed: {report.as_dict()}")
    return home, MINILM_REPO_ID


def _per_call_us(fn: Callable[[], object], calls: int, rounds: int = 7) -> float:
    """Median over ``rounds`` of the mean per-call time of ``calls`` calls, in µs."""
    fn()  # warm up
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def _cli_seconds(argv: list[str], runs: int, env: dict[str, str]) -> float:
    subprocess.run(argv, check=True, capture_output=True, env=env, timeout=60)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env, timeout=60)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="an existing hubmirror home (default: mirror MiniLM to a temp dir)")
    parser.add_argument("--repo", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--calls", type=int, default=2000, help="in-process calls per round")
    parser.add_argument("--runs", type=int, default=20, help="CLI runs")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-resolve-"))
    try:
        home, repo = (args.home.absolute(), args.repo) if args.home else _mirror_minilm(tmp)
        view = home / "hf" / "hub"

        from huggingface_hub import snapshot_download

        import hubmirror

        ours = hubmirror.snapshot_path(repo, home=home)
        theirs = Path(snapshot_download(repo, cache_dir=str(view), local_files_only=True))
        assert ours == theirs, (ours, theirs)

        api_us = _per_call_us(lambda: hubmirror.snapshot_path(repo, home=home), args.calls)
        hf_us = _per_call_us(
            lambda: snapshot_download(repo, cache_dir=str(view), local_files_only=True), max(50, args.calls // 10)
        )

        exe = shutil.which("hubmirror", path=str(Path(sys.executable).parent)) or "hubmirror"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}
        cli_s = _cli_seconds([exe, "--home", str(home), "resolve", repo], args.runs, env)
        py_s = _cli_seconds([sys.executable, "-c", "pass"], args.runs, env)
        hf_cli_code = (
            "import sys; from huggingface_hub import snapshot_download; "
            "print(snapshot_download(sys.argv[1], cache_dir=sys.argv[2], local_files_only=True))"
        )
        hf_cli_s = _cli_seconds([sys.executable, "-c", hf_cli_code, repo, str(view)], args.runs, env)

        print(f"repo {repo}, home {home}")
        print(f"{'measurement':<58} {'value':>12} {'target':>10} {'ok':>4}")
        print("-" * 87)
        rows = [
            ("in-process hubmirror.snapshot_path (per call)", f"{api_us:.1f} µs", "≤ 1000 µs", api_us <= TARGET_API_US),
            ("in-process snapshot_download(local_files_only) (per call)", f"{hf_us:.1f} µs", "", None),
            ("  ratio snapshot_download / snapshot_path", f"{hf_us / api_us:.1f}x", "", None),
            (
                f"CLI `hubmirror resolve` (median of {args.runs})",
                f"{cli_s * 1000:.0f} ms",
                "≤ 200 ms",
                cli_s <= TARGET_CLI_S,
            ),
            ("  python -c pass (interpreter start, for scale)", f"{py_s * 1000:.0f} ms", "", None),
            ("  python -c snapshot_download(...) (same job, hf_hub)", f"{hf_cli_s * 1000:.0f} ms", "", None),
            ("  ratio hf_hub process / hubmirror resolve", f"{hf_cli_s / cli_s:.1f}x", "", None),
        ]
        for name, value, target, ok in rows:
            mark = "" if ok is None else ("yes" if ok else "NO")
            print(f"{name:<58} {value:>12} {target:>10} {mark:>4}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
