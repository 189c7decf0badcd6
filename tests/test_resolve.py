"""Offline resolution: ``hubmirror resolve`` (CLI) and ``hubmirror.snapshot_path``/``file_path`` (Python).

One mirrored home is shared by the module: all-MiniLM-L6-v2 with ``main`` and an older tag ``v1.0``, a
dataset, and a repo renamed upstream. The fake upstream is stopped before any test runs, so every lookup
here is answered with no upstream at all; the socket-guard test proves that no connection is even attempted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import MINILM, run_cli, write_config
from hubserver import HubServer, add_minilm, make_small_files

import hubmirror
from hubmirror.errors import NotMirroredError
from hubmirror.index import open_index
from hubmirror.resolve import AmbiguousRevisionError, Resolver
from hubmirror.store import Store

pytestmark = pytest.mark.timeout(180)

DATASET = "org/tiny-data"
OLD, NEW = "old-org/thing", "new-org/thing"


@dataclass
class Site:
    home: Path
    view: Path
    minilm_main: str
    minilm_v1: str
    dataset_sha: str
    dataset_files: dict[str, bytes]
    renamed_sha: str
    renamed_files: dict[str, bytes]
    extra: dict[str, str] = field(default_factory=dict)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("resolve")
    home = tmp / "home"
    with HubServer(tmp / "upstream") as up:
        v1 = add_minilm(up)
        up.tag(MINILM, "v1.0", v1)
        main = up.commit(MINILM, {"README.md": b"# all-MiniLM-L6-v2\n\nsecond revision\n"}, message="readme")
        up.lfs_threshold = 4096  # the dataset gets an LFS file besides regular ones
        data = {**make_small_files(12, seed=3), "shards/train-00000.bin": os.urandom(20_000)}
        data_sha = up.commit(DATASET, data, repo_type="dataset")
        renamed = {"weights.bin": os.urandom(9000), "config.json": b'{"a": 1}\n'}
        up.commit(OLD, renamed)
        up.rename_repo(OLD, NEW)
        renamed_sha = up.head(NEW)
        cfg = write_config(
            tmp / "hubmirror.yaml",
            up.url,
            home,
            [
                {"repo": MINILM, "revisions": ["main", "v1.0"]},
                {"repo": DATASET, "type": "dataset"},
                {"repo": OLD},
            ],
        )
        r = run_cli("-c", str(cfg), "sync", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    # upstream is stopped from here on
    yield Site(home, home / "hf" / "hub", main, v1, data_sha, data, renamed_sha, renamed)


def _resolve(site: Site, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return run_cli("--home", str(site.home), "resolve", *args, timeout=60, **kw)


def _snap(site: Site, repo: str, commit: str, repo_type: str = "model") -> Path:
    return site.view / f"{repo_type}s--{repo.replace('/', '--')}" / "snapshots" / commit


# ============================================================================================ CLI
@pytest.mark.parametrize("revision_kind", ["default", "branch", "tag", "full", "short7", "short12"])
def test_cli_resolves_every_kind_of_revision(site: Site, revision_kind: str) -> None:
    commit = site.minilm_v1 if revision_kind in ("tag", "short7") else site.minilm_main
    args = {
        "default": [],
        "branch": ["-r", "main"],
        "tag": ["--revision", "v1.0"],
        "full": ["-r", site.minilm_main],
        "short7": ["-r", site.minilm_v1[:7]],
        "short12": ["-r", site.minilm_main[:12]],
    }[revision_kind]
    r = _resolve(site, MINILM, *args)
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip())
    assert path == _snap(site, MINILM, commit)
    assert (path / "config.json").is_file() and (path / "1_Pooling" / "config.json").is_file()


def test_cli_resolves_a_file_and_it_is_the_right_revision(site: Site) -> None:
    new = _resolve(site, MINILM, "README.md")
    old = _resolve(site, MINILM, "README.md", "-r", "v1.0")
    assert new.returncode == old.returncode == 0, new.stderr + old.stderr
    assert Path(new.stdout.strip()) == _snap(site, MINILM, site.minilm_main) / "README.md"
    assert Path(new.stdout.strip()).read_bytes() == b"# all-MiniLM-L6-v2\n\nsecond revision\n"
    assert b"second revision" not in Path(old.stdout.strip()).read_bytes()
    nested = _resolve(site, MINILM, "1_Pooling/config.json")
    assert nested.returncode == 0
    assert json.loads(Path(nested.stdout.strip()).read_text())["word_embedding_dimension"] == 384


def test_dataset_resolves_and_reads_back_byte_identical(site: Site) -> None:
    r = _resolve(site, DATASET, "--type", "dataset")
    assert r.returncode == 0, r.stderr
    snap = Path(r.stdout.strip())
    assert snap == _snap(site, DATASET, site.dataset_sha, "dataset")
    got = {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()}
    got.pop(".gitattributes", None)
    assert got == site.dataset_files
    one = _resolve(site, DATASET, "shards/train-00000.bin", "-t", "dataset")
    assert Path(one.stdout.strip()).read_bytes() == site.dataset_files["shards/train-00000.bin"]
    # a dataset is not a model
    as_model = _resolve(site, DATASET)
    assert as_model.returncode == 4 and f"repo '{DATASET}' is not mirrored" in as_model.stderr


def test_unknown_repo_revision_and_file_exit_4_with_clear_messages(site: Site) -> None:
    r = _resolve(site, "x/y")
    assert r.returncode == 4 and r.stdout == ""
    assert "repo 'x/y' is not mirrored (mirrored: " in r.stderr
    assert MINILM in r.stderr and NEW in r.stderr
    assert "add it to repos: and run hubmirror sync)" in r.stderr

    r = _resolve(site, MINILM, "-r", "v2")
    assert r.returncode == 4
    assert f"revision 'v2' of '{MINILM}' is not mirrored (have: main, v1.0" in r.stderr

    r = _resolve(site, MINILM, "-r", "0000000")  # a hex prefix matching nothing
    assert r.returncode == 4 and "revision '0000000'" in r.stderr

    r = _resolve(site, MINILM, "tokenizer.model")
    assert r.returncode == 4
    assert f"file 'tokenizer.model' is not mirrored in '{MINILM}'" in r.stderr

    r = _resolve(site, MINILM, "../../../etc/passwd")
    assert r.returncode == 4 and "not a valid file name" in r.stderr


def test_ambiguous_sha_prefix_names_both_and_exits_4(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Store(home)
    a = "abcdef12" + "1" * 32
    b = "abcdef12" + "2" * 32
    c = "0123456" + "f" * 33
    with open_index(home / "index.sqlite") as index:
        for sha in (a, b, c):
            index.publish_commit("model", "org/amb", sha, [], [], source="test")
        index.set_ref("model", "org/amb", "main", c)
    for prefix in ("abcdef1", "abcdef12"):
        r = run_cli("--home", str(home), "resolve", "org/amb", "-r", prefix, timeout=60)
        assert r.returncode == 4, r.stderr
        assert f"revision '{prefix}' of 'org/amb' is ambiguous" in r.stderr
        assert a[:12] in r.stderr and b[:12] in r.stderr and c[:12] not in r.stderr
    ok = run_cli("--home", str(home), "resolve", "org/amb", "-r", "abcdef122", timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert Path(ok.stdout.strip()).name == b
    # the same logic in-process
    resolver = Resolver(home)
    repo = resolver.repo("org/amb")
    with pytest.raises(AmbiguousRevisionError) as info:
        resolver.commit(repo, "abcdef12")
    assert info.value.exit_code == 4
    assert resolver.commit(repo, "0123456") == c
    assert resolver.commit(repo, a) == a
    with pytest.raises(NotMirroredError):
        resolver.commit(repo, "abcdef")  # < 7 hex is never a prefix
    resolver.index.close()


def test_renamed_repo_resolves_by_old_name_and_view_links_it(site: Site) -> None:
    old = _resolve(site, OLD)
    new = _resolve(site, NEW)
    assert old.returncode == new.returncode == 0, old.stderr + new.stderr
    assert Path(old.stdout.strip()) == Path(new.stdout.strip()) == _snap(site, NEW, site.renamed_sha)
    got = _resolve(site, OLD, "weights.bin")
    assert Path(got.stdout.strip()).read_bytes() == site.renamed_files["weights.bin"]
    alias = site.view / "models--old-org--thing"
    assert alias.is_symlink() and os.readlink(alias) == "models--new-org--thing"
    assert (alias / "refs" / "main").read_text() == site.renamed_sha


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    r = run_cli("--home", str(tmp_path / "nothing"), "resolve", MINILM, timeout=60)
    assert r.returncode == 10 and f"{tmp_path / 'nothing'} does not exist" in r.stderr
    assert r.stderr.count("\n") == 1 and not (tmp_path / "nothing").exists()


# ============================================================================================ Python API
def test_python_api_with_home_argument(site: Site) -> None:
    snap = hubmirror.snapshot_path(MINILM, revision="main", repo_type="model", home=site.home)
    assert snap == _snap(site, MINILM, site.minilm_main) and snap.is_dir()
    assert hubmirror.snapshot_path(MINILM, "v1.0", home=str(site.home)) == _snap(site, MINILM, site.minilm_v1)
    cfg = hubmirror.file_path(MINILM, "config.json", home=site.home)
    assert cfg == snap / "config.json" and json.loads(cfg.read_text())["hidden_size"] == 384
    ds = hubmirror.file_path(DATASET, "shards/train-00000.bin", repo_type="dataset", home=site.home)
    assert ds.read_bytes() == site.dataset_files["shards/train-00000.bin"]
    with pytest.raises(hubmirror.NotMirroredError, match="revision 'nope'"):
        hubmirror.snapshot_path(MINILM, "nope", home=site.home)
    with pytest.raises(hubmirror.NotMirroredError, match="file 'nope.txt' is not mirrored"):
        hubmirror.file_path(MINILM, "nope.txt", home=site.home)
    with pytest.raises(hubmirror.NotMirroredError, match="repo 'x/y' is not mirrored"):
        hubmirror.snapshot_path("x/y", home=site.home)


def test_python_api_from_hubmirror_home_without_config(site: Site, tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import json, os, hubmirror
        os.chdir({str(tmp_path)!r})  # no hubmirror.yaml here, no HUBMIRROR_CONFIG
        print(json.dumps([str(hubmirror.snapshot_path({MINILM!r})),
                          str(hubmirror.file_path({MINILM!r}, "vocab.txt", revision="v1.0"))]))
    """)
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(HUBMIRROR_HOME=str(site.home)),
    )
    assert r.returncode == 0, r.stderr
    snap, vocab = json.loads(r.stdout)
    assert Path(snap) == _snap(site, MINILM, site.minilm_main)
    assert Path(vocab) == _snap(site, MINILM, site.minilm_v1) / "vocab.txt"


def test_resolve_rebuilds_a_deleted_snapshot_from_the_store(site: Site, tmp_path: Path) -> None:
    """The view is derived: resolve lays out a snapshot that is missing (e.g. view deleted)."""
    import shutil

    home = tmp_path / "copy"
    shutil.copytree(site.home, home, symlinks=True, ignore=shutil.ignore_patterns("hf"))
    snap = hubmirror.snapshot_path(DATASET, repo_type="dataset", home=home)
    assert snap.is_dir() and snap.is_relative_to(home / "hf" / "hub")
    got = {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()}
    got.pop(".gitattributes", None)
    assert got == site.dataset_files


# ============================================================================================ no network
GUARD = textwrap.dedent("""
    import socket, sys, json
    ATTEMPTS = []
    class NoNetwork(OSError):
        pass
    def _deny(kind):
        def deny(*args, **kwargs):
            ATTEMPTS.append(f"{kind}{args[1:] if kind.endswith('connect') else args[:1]}")
            raise NoNetwork(f"network use during an offline resolve: {kind}")
        return deny
    socket.socket.connect = _deny("socket.connect")
    socket.socket.connect_ex = _deny("socket.connect_ex")
    socket.create_connection = _deny("create_connection")
    socket.getaddrinfo = _deny("getaddrinfo")
""")


def test_resolving_and_offline_loading_never_open_a_socket(site: Site) -> None:
    code = GUARD + textwrap.dedent(f"""
        import io, contextlib, os
        out = {{}}
        # 1. the CLI entry point (fast path), in this guarded process
        from hubmirror.cli import main
        buf = io.StringIO()
        sys.argv = ["hubmirror", "--home", {str(site.home)!r}, "resolve", {MINILM!r}, "-r", "v1.0"]
        with contextlib.redirect_stdout(buf):
            try:
                main()
            except SystemExit as exc:
                out["cli_exit"] = exc.code
        out["cli"] = buf.getvalue().strip()
        # 2. the Python API
        import hubmirror
        snap = hubmirror.snapshot_path({MINILM!r}, home={str(site.home)!r})
        out["api"] = str(snap)
        out["file"] = str(hubmirror.file_path({DATASET!r}, "shards/train-00000.bin", repo_type="dataset",
                                              home={str(site.home)!r}))
        # 3. transformers, offline, from the resolved path and by name through the view
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        sentences = ["offline loading works", "no sockets were opened"]
        def embed(ref, **kw):
            AutoConfig.from_pretrained(ref, **kw)
            tok = AutoTokenizer.from_pretrained(ref, **kw)
            model = AutoModel.from_pretrained(ref, **kw).eval()
            batch = tok(sentences, padding=True, return_tensors="pt")
            with torch.no_grad():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            return (hidden * mask).sum(1) / mask.sum(1)
        a = embed(str(snap))
        b = embed({MINILM!r})
        c = embed({MINILM!r}, revision="v1.0")
        out["diff"] = max((a - b).abs().max().item(), (a - c).abs().max().item())
        out["attempts"] = ATTEMPTS
        print(json.dumps(out))
    """)
    env = _env(
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(site.view),
        HF_HOME=str(site.home.parent / "hfhome"),
        HF_HUB_DISABLE_TELEMETRY="1",
        TRANSFORMERS_VERBOSITY="error",
        TOKENIZERS_PARALLELISM="false",
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=150, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["attempts"] == []
    assert out["cli_exit"] in (0, None)
    assert Path(out["cli"]) == _snap(site, MINILM, site.minilm_v1)
    assert Path(out["api"]) == _snap(site, MINILM, site.minilm_main)
    assert Path(out["file"]).read_bytes() == site.dataset_files["shards/train-00000.bin"]
    assert out["diff"] <= 1e-6


def test_cli_resolve_with_no_upstream_and_a_config_pointing_nowhere(site: Site, tmp_path: Path) -> None:
    """A config whose upstream is unreachable does not matter: resolve only reads the index."""
    cfg = write_config(tmp_path / "hubmirror.yaml", "http://127.0.0.1:9", site.home, [{"repo": MINILM}])
    r = run_cli("-c", str(cfg), "resolve", MINILM, "config.json", timeout=60)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == _snap(site, MINILM, site.minilm_main) / "config.json"
    # found through ./hubmirror.yaml in the working directory as well
    r = run_cli("resolve", MINILM, cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and Path(r.stdout.strip()) == _snap(site, MINILM, site.minilm_main)


def test_repo_mirrored_before_its_rename_becomes_an_alias_in_the_view(
    upstream: HubServer, make_config, home: Path
) -> None:
    """Synced under the old name, renamed upstream, synced again: the old name now follows the new one."""
    first = upstream.commit(OLD, {"a.txt": b"one\n"})
    cfg = make_config([{"repo": OLD}])
    assert run_cli("-c", str(cfg), "sync", timeout=60).returncode == 0
    upstream.rename_repo(OLD, NEW)
    second = upstream.commit(NEW, {"a.txt": b"two\n"})
    r = run_cli("-c", str(cfg), "sync", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    view = home / "hf" / "hub"
    for name in (OLD, NEW):
        got = run_cli("--home", str(home), "resolve", name, "a.txt", timeout=60)
        assert got.returncode == 0, got.stderr
        assert Path(got.stdout.strip()) == _snap_in(view, NEW, second) / "a.txt"
    old_by_sha = run_cli("--home", str(home), "resolve", OLD, "-r", first[:8], timeout=60)
    assert Path(old_by_sha.stdout.strip()) == _snap_in(view, NEW, first)
    # what from_pretrained("old-org/thing") reads through the view must be the current main
    assert (view / "models--old-org--thing" / "refs" / "main").read_text() == second
    assert (view / "models--old-org--thing" / "snapshots" / second / "a.txt").read_bytes() == b"two\n"


def _snap_in(view: Path, repo: str, commit: str) -> Path:
    return view / f"models--{repo.replace('/', '--')}" / "snapshots" / commit
