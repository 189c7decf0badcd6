"""The real ``datasets`` library, offline, on a mirrored dataset (issue 12).

``datasets.load_dataset("org/name")`` cannot load from an HF cache with the network off (offline it only
looks in its own Arrow cache, and it lists the repo's data files through the Hub API), so hubmirror's answer
is ``load_dataset(<snapshot path>)``: ``hubmirror resolve --type dataset`` prints that call on stderr. These
tests sync a CSV dataset (train and test splits) and a parquet one (an LFS file) from the fake upstream, stop
the upstream, and run the printed call verbatim in a fresh Python that has only the ``hubmirror env`` exports.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_cli, write_config
from hubserver import HubServer

pytestmark = pytest.mark.timeout(240)

CSV_REPO = "org/csv-rows"
PARQUET_REPO = "org/parquet-rows"
CARD = b"---\nlicense: mit\nlanguage: en\ntask_categories:\n- text-classification\n---\n# rows\n"
TRAIN_CSV = b"text,label\nhello,1\nworld,0\nmirror,1\n"
TEST_CSV = b"text,label\noffline,0\n"
PARQUET_ROWS = {"idx": list(range(500)), "word": [f"w{i:03d}" for i in range(500)]}


@dataclass
class Site:
    home: Path
    csv_sha: str
    csv_v1: str
    parquet_sha: str


def _parquet_bytes() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table(PARQUET_ROWS), sink)
    return sink.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("datasets")
    home = tmp / "home"
    with HubServer(tmp / "upstream") as up:
        up.lfs_threshold = 1024
        v1 = up.commit(
            CSV_REPO, {"README.md": CARD, "data/train.csv": b"text,label\nold,0\n"}, repo_type="dataset", message="v1"
        )
        up.tag(CSV_REPO, "v1", v1, repo_type="dataset")
        csv_sha = up.commit(
            CSV_REPO, {"data/train.csv": TRAIN_CSV, "data/test.csv": TEST_CSV}, repo_type="dataset", message="v2"
        )
        parquet = _parquet_bytes()
        assert len(parquet) > 1024  # stored as an LFS file upstream
        parquet_sha = up.commit(
            PARQUET_REPO, {"README.md": CARD, "data/train-00000-of-00001.parquet": parquet}, repo_type="dataset"
        )
        cfg = write_config(
            tmp / "hubmirror.yaml",
            up.url,
            home,
            [
                {"repo": CSV_REPO, "type": "dataset", "revisions": ["main", "v1"]},
                {"repo": PARQUET_REPO, "type": "dataset"},
            ],
        )
        r = run_cli("-c", str(cfg), "sync", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    # the upstream is stopped here: nothing below can reach it
    yield Site(home, csv_sha, v1, parquet_sha)


LOADER = textwrap.dedent("""
    import json, sys
    calls = json.loads(sys.argv[1])
    out = {}
    for label, code in calls.items():
        scope = {}
        try:
            exec(code, scope)
            out[label] = {name: split.to_dict() for name, split in scope["ds"].items()}
        except Exception as exc:
            out[label] = {"error": type(exc).__name__, "message": str(exc)[:500]}
    print(json.dumps(out))
""")


def _offline_env(site: Site, tmp_path: Path) -> dict[str, str]:
    """Only what ``hubmirror env`` exports, plus a private HF_HOME (so the datasets cache starts empty)."""
    out = run_cli("--home", str(site.home), "env", timeout=60)
    assert out.returncode == 0, out.stderr
    exports = dict(shlex.split(line)[1].split("=", 1) for line in out.stdout.splitlines() if line.startswith("export "))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_", "HUGGING", "TRANSFORMERS_"))}
    env.update(exports, HF_HOME=str(tmp_path / "hf-home"), HF_DATASETS_DISABLE_PROGRESS_BARS="1")
    return env


def _hint(site: Site, repo: str, *extra: str) -> tuple[Path, str]:
    r = run_cli("--home", str(site.home), "resolve", "--type", "dataset", repo, *extra, timeout=60)
    assert r.returncode == 0, r.stderr
    prefix = "load it offline with: "
    lines = [line for line in r.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, r.stderr
    code = lines[0][len(prefix) :].split("  (", 1)[0]
    assert f"load_dataset({repo!r}) needs the network" in lines[0]
    return Path(r.stdout.strip()), code


def test_resolve_prints_a_load_dataset_call_that_works_offline(site: Site, tmp_path: Path) -> None:
    csv_path, csv_code = _hint(site, CSV_REPO)
    v1_path, v1_code = _hint(site, CSV_REPO, "--revision", "v1")
    pq_path, pq_code = _hint(site, PARQUET_REPO)
    view = site.home / "hf" / "hub"
    assert csv_path == view / "datasets--org--csv-rows" / "snapshots" / site.csv_sha
    assert v1_path.name == site.csv_v1 and pq_path.name == site.parquet_sha
    assert csv_code == f"from datasets import load_dataset; ds = load_dataset({str(csv_path)!r})"
    calls = {
        "csv": csv_code,
        "v1": v1_code,
        "parquet": pq_code,
        # what users try first: by name it needs the network (datasets' limitation, kept visible here)
        "by_name": f"from datasets import load_dataset; ds = load_dataset({CSV_REPO!r})",
    }
    before = sorted(p.relative_to(view).as_posix() for p in view.rglob("*"))
    r = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(calls)],
        capture_output=True,
        text=True,
        env=_offline_env(site, tmp_path),
        timeout=200,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["csv"] == {
        "train": {"text": ["hello", "world", "mirror"], "label": [1, 0, 1]},
        "test": {"text": ["offline"], "label": [0]},
    }, out["csv"]
    assert out["v1"] == {"train": {"text": ["old"], "label": [0]}}, out["v1"]
    assert out["parquet"] == {"train": PARQUET_ROWS}, str(out["parquet"])[:500]
    assert out["by_name"]["error"] == "ConnectionError", out["by_name"]
    # loading wrote nothing into the view
    assert sorted(p.relative_to(view).as_posix() for p in view.rglob("*")) == before


def test_resolve_quiet_and_files_print_no_hint(site: Site) -> None:
    quiet = run_cli("--home", str(site.home), "-q", "resolve", "-t", "dataset", CSV_REPO, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.strip().endswith(site.csv_sha)
    one_file = run_cli("--home", str(site.home), "resolve", "-t", "dataset", CSV_REPO, "data/test.csv", timeout=60)
    assert one_file.returncode == 0 and one_file.stderr == ""
    assert Path(one_file.stdout.strip()).read_bytes() == TEST_CSV
    model = run_cli("--home", str(site.home), "resolve", CSV_REPO, timeout=60)  # not a model: no hint either
    assert model.returncode == 4 and "load_dataset" not in model.stderr
    # the full CLI (what the fast path falls back to) prints the same line
    full = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hubmirror.cli._app import app; app()",
            "--home",
            str(site.home),
            "resolve",
            "--type",
            "dataset",
            CSV_REPO,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))},
    )
    assert full.returncode == 0, full.stderr
    assert full.stdout.strip().endswith(site.csv_sha)
    assert full.stderr.startswith("load it offline with: from datasets import load_dataset; ds = load_dataset(")
