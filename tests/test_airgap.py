"""Crossing the air gap through the CLI: export, import, inventory, against real stores on both sides.

The connected side syncs from the fake upstream; the far side never sees it (its upstream is stopped or was
never configured). Bundles go across as directories and as ``.tar`` files; damaged ones are made by flipping
real bytes and cutting real files; imports are killed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import MINILM, run_cli, write_config
from hubserver import HubServer, add_minilm, make_small_files, minilm_dir
from prockit import Procs, clean_env
from storekit import check_invariants

pytestmark = pytest.mark.timeout(300)

MANY = "org/many"


def cli_json(*args: str, code: int = 0, env: dict[str, str] | None = None) -> dict[str, Any]:
    r = run_cli(*args, "--json", env=env)
    assert r.returncode == code, (r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)


def refs_and_commits(home: Path) -> dict[str, Any]:
    data = cli_json("--home", str(home), "status")
    return {r["name"]: (r["refs"], sorted(c["sha"] for c in r["commits"])) for r in data["repos"]}


def bundle_size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Connected:
    """The side with a network: a fake upstream and a home synced from it."""

    def __init__(self, root: Path, upstream: HubServer, repos: list[dict[str, Any]]) -> None:
        self.root, self.upstream = root, upstream
        self.home = root / "connected"
        self.config = write_config(root / "hubmirror.yaml", upstream.url, self.home, repos)

    def sync(self) -> None:
        r = run_cli("-c", str(self.config), "sync")
        assert r.returncode == 0, r.stdout + r.stderr

    def export(self, dest: Path, *args: str) -> dict[str, Any]:
        return cli_json("-c", str(self.config), "export", str(dest), *args)


@pytest.fixture
def connected(tmp_path: Path, upstream: HubServer) -> Connected:
    add_minilm(upstream)
    upstream.commit(MANY, make_small_files(200, seed=3), message="many")
    side = Connected(tmp_path, upstream, [{"repo": MINILM}, {"repo": MANY}])
    side.sync()
    return side


# ==================================================================================== the whole way across
@pytest.mark.slow
def test_export_then_import_on_a_fresh_machine_then_from_pretrained_offline(
    connected: Connected, tmp_path: Path
) -> None:
    full = connected.export(tmp_path / "full.tar")
    assert full["blobs"] == 213 and full["base"] is None
    connected.upstream.stop()  # the far side has no network at all
    # anyone can check the bundle with tar and sha256sum alone
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with tarfile.open(tmp_path / "full.tar") as tar:
        tar.extractall(unpacked, filter="data")
    check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=unpacked, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    far = tmp_path / "far"
    report = cli_json("--home", str(far), "import", str(tmp_path / "full.tar"))
    assert report["commits_imported"] == 2 and report["blobs_copied"] == 213 and report["damaged"] == []
    assert refs_and_commits(far) == refs_and_commits(connected.home)
    check_invariants(far)
    env = dict(
        line.removeprefix("export ").split("=", 1) for line in run_cli("--home", str(far), "env").stdout.splitlines()
    )
    code = """
import json, sys, torch
from transformers import AutoModel, AutoTokenizer
def embed(ref):
    tok = AutoTokenizer.from_pretrained(ref)
    model = AutoModel.from_pretrained(ref).eval()
    batch = tok(["carried across the gap", "on a bundle"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)
print(json.dumps((embed(sys.argv[1]) - embed(sys.argv[2])).abs().max().item()))
"""
    run = subprocess.run(
        [sys.executable, "-c", code, MINILM, str(minilm_dir())],
        capture_output=True,
        text=True,
        timeout=200,
        env=clean_env(
            HF_HUB_OFFLINE="1",
            HF_HUB_CACHE=env["HF_HUB_CACHE"],
            HF_HOME=str(tmp_path / "hf-home"),
            TOKENIZERS_PARALLELISM="false",
            TRANSFORMERS_VERBOSITY="error",
        ),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert float(run.stdout.strip().splitlines()[-1]) <= 1e-6
    # and it resolves and is served at once
    name, data = next(iter(make_small_files(200, seed=3).items()))
    r = run_cli("--home", str(far), "resolve", MANY, name)
    assert r.returncode == 0 and Path(r.stdout.strip()).read_bytes() == data


def test_an_incremental_chain_of_three_bundles_and_a_missing_link(connected: Connected, tmp_path: Path) -> None:
    up = connected.upstream
    b1 = connected.export(tmp_path / "b1")
    up.commit(MANY, {"dir2/file_00000.txt": b"changed once\n"}, message="change 1")
    connected.sync()
    b2 = connected.export(tmp_path / "b2.tar", "--incremental")
    up.commit(MANY, {"added.txt": b"added later\n"}, message="change 2")
    up.commit(MINILM, {"README.md": b"# a new card\n"}, message="card")
    connected.sync()
    b3 = connected.export(tmp_path / "b3", "--incremental")
    assert b2["base"].startswith(f"bundle {b1['id'][:12]}") and b3["base"].startswith(f"bundle {b2['id'][:12]}")
    assert (b2["commits"], b2["blobs"]) == (1, 1) and (b3["commits"], b3["blobs"]) == (2, 2)
    # a one-file change costs well under 1% of the full bundle
    assert bundle_size(tmp_path / "b2.tar") < 0.01 * bundle_size(tmp_path / "b1")
    far = tmp_path / "far"
    cli_json("--home", str(far), "import", str(tmp_path / "b1"))
    # b3 before b2: refused, naming what is missing, and nothing is imported
    refused = run_cli("--home", str(far), "import", str(tmp_path / "b3"))
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "builds on bundle" in refused.stderr and b2["id"][:12] in refused.stderr
    assert "hubmirror inventory" in refused.stderr and "Nothing was imported" in refused.stderr
    assert refs_and_commits(far)[MANY][0]["main"] != up.head(MANY)
    for bundle in ("b2.tar", "b3"):
        assert cli_json("--home", str(far), "import", str(tmp_path / bundle))["damaged"] == []
    assert refs_and_commits(far) == refs_and_commits(connected.home)
    check_invariants(far)
    # the far side's inventory makes the next export exactly the difference
    inventory = tmp_path / "far.inventory"
    assert run_cli("--home", str(far), "inventory", "-o", str(inventory)).returncode == 0
    assert inventory.stat().st_size < 40 * 220  # compact: gzip'd hashes
    up.commit(MANY, {"late.txt": b"late\n"}, message="late")
    connected.sync()
    b4 = connected.export(tmp_path / "b4", "--since", str(inventory))
    assert (b4["commits"], b4["blobs"]) == (1, 1)
    assert cli_json("--home", str(far), "import", str(tmp_path / "b4"))["commits_imported"] == 1


def test_an_older_bundle_after_a_newer_one_never_moves_a_ref_back(connected: Connected, tmp_path: Path) -> None:
    older = connected.export(tmp_path / "older")
    time.sleep(1.1)  # refs carry when they moved, to the second
    connected.upstream.commit(MANY, {"newer.txt": b"newer\n"}, message="newer")
    connected.sync()
    connected.export(tmp_path / "newer")
    far = tmp_path / "far"
    cli_json("--home", str(far), "import", str(tmp_path / "newer"))
    report = cli_json("--home", str(far), "import", str(tmp_path / "older"))
    assert report["refs_moved"] == 0 and any(
        MANY in line and "newer than this bundle" in line for line in report["refs_kept"]
    )
    assert refs_and_commits(far)[MANY][0]["main"] == connected.upstream.head(MANY)
    assert older["id"] == report["id"]
    # importing twice changes nothing
    again = cli_json("--home", str(far), "import", str(tmp_path / "newer"))
    assert again["already_imported"] and again["blobs_copied"] == 0 and again["commits_imported"] == 0


def test_a_flipped_byte_holds_back_the_commits_that_use_it(connected: Connected, tmp_path: Path) -> None:
    connected.export(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "MANIFEST.json").read_text())
    readme = hashlib.sha256((minilm_dir() / "README.md").read_bytes()).hexdigest()
    victim = tmp_path / "b" / "blobs" / readme[:2] / readme
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    assert (
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=tmp_path / "b", capture_output=True).returncode
        != 0
    )
    far = tmp_path / "far"
    r = run_cli("--home", str(far), "import", str(tmp_path / "b"))
    assert r.returncode == 7, r.stdout + r.stderr
    damaged = [line for line in r.stdout.splitlines() if line.startswith("DAMAGED")]
    assert len(damaged) == 1 and readme in damaged[0] and "README.md" in damaged[0] and MINILM in damaged[0]
    state = refs_and_commits(far)
    assert MINILM not in state and MANY in state  # the other repo's commit is complete and published
    assert not (far / "blobs" / "sha256" / readme[:2] / readme).exists()
    check_invariants(far)
    assert len(manifest["blobs"]) == 213


def test_a_truncated_tar_publishes_only_what_arrived_whole(connected: Connected, tmp_path: Path) -> None:
    connected.export(tmp_path / "b.tar")
    whole = (tmp_path / "b.tar").read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    far = tmp_path / "far"
    r = run_cli("--home", str(far), "import", str(cut))
    assert r.returncode == 7, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert any(
        "missing from the bundle" in line or "does not match" in line
        for line in r.stdout.splitlines()
        if line.startswith("DAMAGED")
    )
    check_invariants(far)
    held = refs_and_commits(far)
    assert len(held) < 2
    # the whole tar afterwards completes, without copying again what had arrived
    report = cli_json("--home", str(far), "import", str(tmp_path / "b.tar"))
    assert report["blobs_present"] > 0 and report["blobs_copied"] + report["blobs_present"] == 213
    assert refs_and_commits(far) == refs_and_commits(connected.home)
    check_invariants(far)


def test_import_killed_at_any_point_resumes_and_never_copies_a_finished_blob_again(
    connected: Connected, tmp_path: Path, procs: Procs
) -> None:
    connected.export(tmp_path / "b.tar")
    far = tmp_path / "far"
    env = clean_env(HUBMIRROR_FAILPOINTS="import.after_blobs")
    proc = procs.start("--home", str(far), "import", str(tmp_path / "b.tar"), env=env)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    check_invariants(far)
    copied_before = sum(1 for p in (far / "blobs" / "sha256").glob("*/*") if p.is_file())
    assert copied_before > 0
    env = clean_env(HUBMIRROR_FAILPOINTS="import.after_commit")
    proc = procs.start("--home", str(far), "import", str(tmp_path / "b.tar"), env=env)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    check_invariants(far)
    rng = random.Random(7)
    for _ in range(4):  # kills at random moments
        proc = procs.start("--home", str(far), "import", str(tmp_path / "b.tar"))
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        check_invariants(far)
    report = cli_json("--home", str(far), "import", str(tmp_path / "b.tar"))
    assert report["blobs_present"] >= copied_before
    assert refs_and_commits(far) == refs_and_commits(connected.home)
    check_invariants(far)


def test_a_bundle_streams_through_a_pipe(connected: Connected, tmp_path: Path) -> None:
    """export - | import -: a data diode or a tape sees one tar stream; the far side reads it as it comes."""
    far = tmp_path / "far"
    script = (
        f"{sys.executable} -m hubmirror -c {connected.config} export - | "
        f"{sys.executable} -m hubmirror --home {far} import - --json"
    )
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["blobs_copied"] == 213 and report["damaged"] == []
    assert "exported 2 commits" in proc.stderr  # the exporter's words go to stderr: stdout is the bundle
    assert refs_and_commits(far) == refs_and_commits(connected.home)
    check_invariants(far)
