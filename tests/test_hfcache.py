"""The HF-cache view (``home/hf/hub``): exact huggingface_hub layout; unmodified libraries loading from it.

One mirrored home is shared by the module: all-MiniLM-L6-v2 at ``main`` and at an older tag ``v1.0`` (whose
README and config differ), the same model under another name synced with allow/ignore patterns, and a
dataset. The fake upstream is stopped before the tests run: everything here is offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MINILM, run_cli, write_config
from hubserver import HubServer, add_minilm, make_small_files, minilm_dir

from hubmirror.hashing import git_blob_sha1

pytestmark = pytest.mark.timeout(200)

FILTERED = "filtered/minilm"
DATASET = "org/view-data"
FILTER = {
    "allow_patterns": ["*.json", "*.safetensors", "*.txt", "1_Pooling/*"],
    "ignore_patterns": ["data_config.json", "special_tokens_map.json"],
}
HEX40 = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Upfile:
    sha256: str
    sha1: str
    lfs: bool
    size: int


@dataclass
class Site:
    home: Path
    view: Path
    main: str
    v1: str
    filtered: str
    dataset: str
    # (repo type, repo, commit) → {path: Upfile}, as upstream has it (before patterns)
    files: dict[tuple[str, str, str], dict[str, Upfile]]
    dataset_bytes: dict[str, bytes]


def _upfiles(up: HubServer, repo_type: str, repo: str, sha: str) -> dict[str, Upfile]:
    commit = up.store.require(repo_type, repo).commits[sha]
    return {p: Upfile(e.blob.sha256, e.blob.sha1, e.lfs, e.blob.size) for p, e in commit.files.items()}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("hfcache")
    home = tmp / "home"
    with HubServer(tmp / "upstream") as up:
        v1 = add_minilm(up)
        up.tag(MINILM, "v1.0", v1)
        config = json.loads((minilm_dir() / "config.json").read_text())
        main = up.commit(
            MINILM,
            {
                "README.md": b"# all-MiniLM-L6-v2\n\nthe newer card\n",
                "config.json": json.dumps({**config, "hubmirror_revision": "main"}, indent=2).encode(),
            },
        )
        filtered = add_minilm(up, FILTERED)
        up.lfs_threshold = 2048
        data = {**make_small_files(10, seed=7), "blobs/part.bin": os.urandom(10_000)}
        dataset = up.commit(DATASET, data, repo_type="dataset")
        files = {
            ("model", MINILM, v1): _upfiles(up, "model", MINILM, v1),
            ("model", MINILM, main): _upfiles(up, "model", MINILM, main),
            ("model", FILTERED, filtered): _upfiles(up, "model", FILTERED, filtered),
            ("dataset", DATASET, dataset): _upfiles(up, "dataset", DATASET, dataset),
        }
        cfg = write_config(
            tmp / "hubmirror.yaml",
            up.url,
            home,
            [
                {"repo": MINILM, "revisions": ["main", "v1.0"]},
                {"repo": FILTERED, **FILTER},
                {"repo": DATASET, "type": "dataset"},
            ],
        )
        r = run_cli("-c", str(cfg), "sync", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    yield Site(home, home / "hf" / "hub", main, v1, filtered, dataset, files, data)


def _repo_dir(view: Path, repo_type: str, repo: str) -> Path:
    return view / f"{repo_type}s--{repo.replace('/', '--')}"


def _store_blob(home: Path, sha256: str) -> Path:
    return home / "blobs" / "sha256" / sha256[:2] / sha256


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (symlinks not followed): links by target, blobs by inode, files by text."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            elif "/blobs/" in f"/{rel}":
                out[rel] = ("blob", path.stat().st_ino)
            else:
                out[rel] = ("file", path.read_bytes())
    return out


# ============================================================================================ layout
@pytest.mark.parametrize("key", ["main", "v1", "filtered", "dataset"])
def test_view_layout_is_exactly_huggingface_hubs(site: Site, key: str) -> None:
    repo_type, repo, commit = {
        "main": ("model", MINILM, site.main),
        "v1": ("model", MINILM, site.v1),
        "filtered": ("model", FILTERED, site.filtered),
        "dataset": ("dataset", DATASET, site.dataset),
    }[key]
    upstream = site.files[(repo_type, repo, commit)]
    if key == "filtered":
        kept = {p for p in upstream if re.fullmatch(r"[^/]*\.(json|safetensors|txt)|1_Pooling/.*", p)}
        kept -= {"data_config.json", "special_tokens_map.json"}
        upstream = {p: f for p, f in upstream.items() if p in kept}
        assert "README.md" not in upstream and "model.safetensors" in upstream
    repo_dir = _repo_dir(site.view, repo_type, repo)
    snap = repo_dir / "snapshots" / commit
    got = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if not p.is_dir())
    assert got == sorted(upstream)  # files left out by patterns are simply absent
    assert any(f.lfs for f in upstream.values()) and any(not f.lfs for f in upstream.values())
    for path, up in upstream.items():
        link = snap / path
        assert link.is_symlink()
        target = os.readlink(link)
        depth = path.count("/")
        etag = up.sha256 if up.lfs else up.sha1
        assert target == "../" * (2 + depth) + f"blobs/{etag}", path  # relative, one more ../ per sub-dir
        blob = repo_dir / "blobs" / etag
        assert not blob.is_symlink() and blob.is_file()
        stored = _store_blob(site.home, up.sha256)
        st, st_store = blob.stat(), stored.stat()
        assert (st.st_dev, st.st_ino) == (st_store.st_dev, st_store.st_ino) and st.st_nlink >= 2
        assert st.st_size == up.size
        if not up.lfs:
            assert git_blob_sha1(link.read_bytes()) == etag
    for digest in [f.sha256 for f in upstream.values() if f.lfs]:
        h = hashlib.sha256()
        with (repo_dir / "blobs" / digest).open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        assert h.hexdigest() == digest
    if key == "dataset":
        assert {p: (snap / p).read_bytes() for p in site.dataset_bytes} == site.dataset_bytes


def test_refs_are_40_hex_without_newline(site: Site) -> None:
    expected = {
        ("model", MINILM): {"main": site.main, "v1.0": site.v1},
        ("model", FILTERED): {"main": site.filtered},
        ("dataset", DATASET): {"main": site.dataset},
    }
    for (repo_type, repo), refs in expected.items():
        refs_dir = _repo_dir(site.view, repo_type, repo) / "refs"
        assert sorted(p.name for p in refs_dir.iterdir()) == sorted(refs)
        for name, sha in refs.items():
            raw = (refs_dir / name).read_bytes()
            assert HEX40.fullmatch(raw.decode()) and raw == sha.encode()
    assert (site.view / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_deleted_view_is_rebuilt_identically(site: Site) -> None:
    before = _tree(site.view)
    assert len([k for k, v in before.items() if v[0] == "link"]) > 30
    shutil.rmtree(site.view)
    r = run_cli("--home", str(site.home), "hf-cache", timeout=60)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == site.view
    assert "3 repos, 4 snapshots; blobs: hard links to the store" in r.stderr
    assert _tree(site.view) == before
    again = run_cli("--home", str(site.home), "hf-cache", "--json", timeout=60)  # idempotent
    assert json.loads(again.stdout) == {
        "path": str(site.view),
        "repos": 3,
        "snapshots": 4,
        "link_mode": "hardlink",
        "problems": [],
    }
    assert _tree(site.view) == before


def test_view_in_another_directory_on_the_same_filesystem_hard_links(site: Site, tmp_path: Path) -> None:
    other = tmp_path / "hf-hub"
    r = run_cli("--home", str(site.home), "hf-cache", "--dir", str(other), "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["link_mode"] == "hardlink"
    tree = _tree(other)
    assert tree == _tree(site.view)


def _other_filesystem() -> Path | None:
    tmp_dev = os.stat(tempfile.gettempdir()).st_dev
    for candidate in ("/dev/shm", f"/run/user/{os.getuid()}", "/run/shm"):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK) and os.stat(candidate).st_dev != tmp_dev:
            return Path(candidate)
    return None


def test_view_on_another_filesystem_symlinks_blobs_and_says_so(site: Site) -> None:
    base = _other_filesystem()
    if base is None or os.stat(site.home).st_dev == os.stat(base).st_dev:
        pytest.skip("no second writable filesystem (tried /dev/shm) to build a cross-device view on")
    other = base / f"hubmirror-test-view-{uuid.uuid4().hex[:8]}"
    try:
        r = run_cli("--home", str(site.home), "hf-cache", "--dir", str(other), "--json", timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {
            "path": str(other),
            "repos": 3,
            "snapshots": 4,
            "link_mode": "symlink",
            "problems": [],
        }
        text = run_cli("--home", str(site.home), "hf-cache", "--dir", str(other), timeout=60)
        assert "blobs: symbolic links to the store" in text.stderr
        for (repo_type, repo, commit), files in site.files.items():
            repo_dir = _repo_dir(other, repo_type, repo)
            for path, up in files.items():
                if repo == FILTERED and not (repo_dir / "snapshots" / commit / path).exists():
                    continue
                etag = up.sha256 if up.lfs else up.sha1
                blob = repo_dir / "blobs" / etag
                assert blob.is_symlink() and Path(os.readlink(blob)) == _store_blob(site.home, up.sha256)
                link = repo_dir / "snapshots" / commit / path
                assert os.readlink(link) == "../" * (2 + path.count("/")) + f"blobs/{etag}"
                assert link.stat().st_size == up.size
        assert (_repo_dir(other, "model", MINILM) / "refs" / "main").read_text() == site.main
    finally:
        shutil.rmtree(other, ignore_errors=True)


# ============================================================================================ real libraries
LOADER = textwrap.dedent("""
    import json, sys
    import torch
    from huggingface_hub import hf_hub_download, snapshot_download
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    args = json.loads(sys.argv[1])
    SENTENCES = ["The mirror works offline.", "A second, rather longer sentence about tokenizers and caches.",
                 "short"]

    def embed(ref, **kw):
        AutoConfig.from_pretrained(ref, **kw)
        tok = AutoTokenizer.from_pretrained(ref, **kw)
        model = AutoModel.from_pretrained(ref, **kw).eval()
        batch = tok(SENTENCES, padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1)

    out = {}
    reference = embed(args["original"])
    for label, ref, kw in [("by_path", args["resolved"], {}), ("by_path_v1", args["resolved_v1"], {}),
                           ("by_name", args["repo"], {}), ("by_name_v1", args["repo"], {"revision": "v1.0"}),
                           ("by_sha", args["repo"], {"revision": args["v1_sha"]}),
                           ("filtered", args["filtered"], {})]:
        out[label] = (embed(ref, **kw) - reference).abs().max().item()
    out["norm"] = reference.norm(dim=1).tolist()
    out["config_main"] = getattr(AutoConfig.from_pretrained(args["repo"]), "hubmirror_revision", None)
    old_config = AutoConfig.from_pretrained(args["repo"], revision="v1.0")
    out["config_v1"] = getattr(old_config, "hubmirror_revision", None)
    out["snapshot"] = snapshot_download(args["repo"], local_files_only=True)
    out["snapshot_v1"] = snapshot_download(args["repo"], revision="v1.0", local_files_only=True)
    out["snapshot_ds"] = snapshot_download(args["dataset"], repo_type="dataset", local_files_only=True)
    out["config_file"] = hf_hub_download(args["repo"], "config.json", local_files_only=True)
    out["pooling_file"] = hf_hub_download(args["repo"], "1_Pooling/config.json", local_files_only=True)
    out["readme_v1"] = hf_hub_download(args["repo"], "README.md", revision="v1.0", local_files_only=True)
    out["ds_file"] = hf_hub_download(args["dataset"], "blobs/part.bin", repo_type="dataset",
                                     local_files_only=True)
    print(json.dumps(out))
""")


def test_unmodified_libraries_load_offline_from_the_view(site: Site, tmp_path: Path) -> None:
    env_out = run_cli("--home", str(site.home), "env", timeout=60)
    assert env_out.returncode == 0, env_out.stderr
    exports = dict(
        shlex.split(line)[1].split("=", 1) for line in env_out.stdout.splitlines() if line.startswith("export ")
    )
    assert exports["HF_HUB_CACHE"] == str(site.view) and exports["HF_HUB_OFFLINE"] == "1"
    resolved = run_cli("--home", str(site.home), "resolve", MINILM, timeout=60).stdout.strip()
    resolved_v1 = run_cli("--home", str(site.home), "resolve", MINILM, "-r", "v1.0", timeout=60).stdout.strip()
    args = {
        "original": str(minilm_dir()),
        "resolved": resolved,
        "resolved_v1": resolved_v1,
        "repo": MINILM,
        "v1_sha": site.v1,
        "filtered": FILTERED,
        "dataset": DATASET,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_", "HUGGING"))}
    env.update(
        exports,
        HF_HOME=str(tmp_path / "hf-home"),
        TRANSFORMERS_VERBOSITY="error",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    r = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(args)], capture_output=True, text=True, env=env, timeout=170
    )
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for label in ("by_path", "by_path_v1", "by_name", "by_name_v1", "by_sha", "filtered"):
        assert out[label] <= 1e-6, (label, out[label])
    assert all(n > 1 for n in out["norm"])  # real embeddings, not zeros
    assert out["config_main"] == "main" and out["config_v1"] is None  # v1.0 loads the old config
    main_snap = _repo_dir(site.view, "model", MINILM) / "snapshots"
    assert Path(out["snapshot"]) == main_snap / site.main
    assert Path(out["snapshot_v1"]) == main_snap / site.v1
    assert Path(out["snapshot_ds"]) == _repo_dir(site.view, "dataset", DATASET) / "snapshots" / site.dataset
    assert Path(out["config_file"]) == main_snap / site.main / "config.json"
    assert Path(out["pooling_file"]) == main_snap / site.main / "1_Pooling" / "config.json"
    assert Path(out["readme_v1"]) == main_snap / site.v1 / "README.md"
    assert Path(out["readme_v1"]).read_bytes() == (minilm_dir() / "README.md").read_bytes()
    assert Path(out["ds_file"]).read_bytes() == site.dataset_bytes["blobs/part.bin"]
    # the libraries wrote nothing into the view (no .no_exist probes, no locks) and it still rebuilds the same
    assert not list(site.view.glob("*/.no_exist")) and not (site.view / ".locks").exists()


# ============================================================================================ updates
def test_second_sync_moves_ref_and_keeps_old_snapshot(upstream: HubServer, make_config, home: Path) -> None:
    files = make_small_files(20, seed=11)
    first = upstream.commit("org/evolving", files)
    cfg = make_config([{"repo": "org/evolving"}])
    assert run_cli("-c", str(cfg), "sync", timeout=60).returncode == 0
    repo_dir = _repo_dir(home / "hf" / "hub", "model", "org/evolving")
    assert (repo_dir / "refs" / "main").read_bytes() == first.encode()
    changed = sorted(files)[0]
    second = upstream.commit("org/evolving", {changed: b"changed\n", "new/file.txt": b"new\n"})
    r = run_cli("-c", str(cfg), "sync", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (repo_dir / "refs" / "main").read_bytes() == second.encode()
    old, new = repo_dir / "snapshots" / first, repo_dir / "snapshots" / second
    for path, data in files.items():
        assert (old / path).read_bytes() == data
    assert (new / changed).read_bytes() == b"changed\n"
    assert (new / "new" / "file.txt").read_bytes() == b"new\n"
    assert (old / changed).read_bytes() == files[changed]
    assert not (old / "new").exists()
    assert sorted(p.name for p in (repo_dir / "snapshots").iterdir()) == sorted([first, second])


def test_readers_never_see_a_partial_snapshot(upstream: HubServer, make_config, home: Path) -> None:
    repo = "org/many-files"
    expected: dict[str, set[str]] = {}
    shas = []
    for seed in range(3):
        files = make_small_files(300, seed=seed)
        gone = [p for c in expected.values() for p in c if p not in files]
        sha = upstream.commit(repo, files, deletes=gone)
        upstream.tag(repo, f"t{seed}", sha)
        expected[sha] = set(_upfiles(upstream, "model", repo, sha))
        shas.append(sha)
    # ~900 requests: above the default request budget per 5 minutes, which would pause the sync
    cfg = make_config([{"repo": repo, "revisions": ["t0", "t1", "t2"]}], upstream={"max_requests_per_5min": 100_000})
    snaps = _repo_dir(home / "hf" / "hub", "model", repo) / "snapshots"
    seen: dict[str, int] = {}  # snapshot → how many listings showed it
    problems: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                names = os.listdir(snaps)
            except FileNotFoundError:
                names = []
            for name in names:
                if name.startswith("."):
                    continue  # a snapshot being built
                if name not in seen:  # check it the moment it appears: it only ever gains files later
                    got = {
                        os.path.relpath(os.path.join(d, f), snaps / name)
                        for d, _, fs in os.walk(snaps / name)
                        for f in fs
                    }
                    if got != expected.get(name):
                        problems.append(f"snapshot {name} seen with {len(got)} of {len(expected[name])} files")
                seen[name] = seen.get(name, 0) + 1
            time.sleep(0.0002)  # let the upstream's threads (in this process) have the GIL

    thread = threading.Thread(target=reader, name="snapshot-reader")
    thread.start()
    try:
        r = run_cli("-c", str(cfg), "sync", timeout=90)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert problems == []
    assert sorted(seen) == sorted(shas)
    assert not [n for n in os.listdir(snaps) if n.startswith(".")]  # no temp folders left behind
