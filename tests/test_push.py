"""End-to-end tests of ``hubmirror push`` against the fake Hub's write side (real HTTP, real folders).

The CLI runs as a subprocess (``run_cli``); a few tests run the pusher in-process to count hashing calls or
to make upstream move at an exact moment. What happened is checked from the outside: the fake Hub's
repos (bytes read back with ``file_bytes``), its ``uploads`` / ``commits_made`` counters and request log.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, write_config, write_tree
from hubserver import HubServer, _error, minilm_dir
from servekit import ServeProcess

import hubmirror.push._pusher as pusher_mod
from hubmirror.errors import HubMirrorError
from hubmirror.hub import HubWriter, UpstreamClient
from hubmirror.mirror import Mirror

pytestmark = pytest.mark.timeout(120)

TOKEN = "hf_write_token_for_tests"
WEIGHTS = "model.safetensors"
PLACEHOLDER = [{"repo": "placeholder/not-synced"}]  # a config needs a repos: list; push does not use it
GOOD_CARD = "---\nlanguage: en\nlicense: apache-2.0\ntags:\n- test\n---\n# A model\n"


# =================================================================================================== helpers
@pytest.fixture
def cfg(make_config) -> Path:
    return make_config(PLACEHOLDER, upstream={"token": TOKEN, "max_retries": 1})


@pytest.fixture
def minilm(tmp_path: Path) -> Path:
    """A private copy of the real all-MiniLM-L6-v2 folder (tests change files in it)."""
    folder = tmp_path / "minilm"
    shutil.copytree(minilm_dir(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def local_tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def remote_tree(server: HubServer, repo: str, revision: str = "main") -> dict[str, bytes]:
    commit = server.store.require("model", repo).resolve(revision)
    assert commit is not None
    return {path: server.file_bytes(repo, path, revision) for path in commit.files}


def push(cfg: Path, folder: Path, repo: str, *args: str) -> Any:
    return run_cli("-c", str(cfg), "push", str(folder), "--repo", repo, *args, timeout=120)


def push_json(cfg: Path, folder: Path, repo: str, *args: str) -> dict[str, Any]:
    proc = push(cfg, folder, repo, "--json", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def touch(path: Path, seconds_later: float = 5.0) -> None:
    """New mtime, same content."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + int(seconds_later * 1e9)))


def commit_paths(record: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((key, path) for key, path in record["ops"])


# =================================================================================================== the real model
def test_minilm_first_push_change_one_file_unchanged_and_resolve(
    upstream: HubServer, cfg: Path, minilm: Path, home: Path
) -> None:
    local = local_tree(minilm)
    assert len(local[WEIGHTS]) > 90_000_000

    first = push_json(cfg, minilm, "me/minilm", "--create", "-m", "first upload")
    assert first["status"] == "pushed" and first["commit"]
    assert first["files_uploaded"] == len(local) and first["files_hashed"] == len(local)
    assert first["lfs_uploaded"] == 1
    # every file upstream, byte-identical (read back from the fake Hub's store), nothing else
    assert remote_tree(upstream, "me/minilm") == local
    assert upstream.file_entry("me/minilm", WEIGHTS).lfs
    # the 90 MB file went by LFS, once; the rest inline in ONE commit
    assert upstream.uploads == [("cdn", f"/upload/{sha256(local[WEIGHTS])}", len(local[WEIGHTS]))]
    assert len(upstream.commits_made) == 1
    made = upstream.commits_made[0]
    assert made["sha"] == first["commit"] == upstream.head("me/minilm") and made["summary"] == "first upload"
    assert ("lfsFile", WEIGHTS) in made["ops"] and ("file", "config.json") in made["ops"]

    # unchanged → "up to date", no commit, nothing re-read
    proc = push(cfg, minilm, "me/minilm")
    assert proc.returncode == 0, proc.stderr
    assert "up to date (0 files hashed)" in proc.stdout
    again = push_json(cfg, minilm, "me/minilm")
    assert again["status"] == "up to date" and again["commit"] is None and again["files_hashed"] == 0
    assert len(upstream.commits_made) == 1

    # a new mtime on one file: that one file is hashed again, nothing is pushed
    touch(minilm / "config.json")
    touched = push_json(cfg, minilm, "me/minilm")
    assert (touched["status"], touched["files_hashed"], touched["files_uploaded"]) == ("up to date", 1, 0)
    assert len(upstream.commits_made) == 1

    # one small file changed → exactly that file, one commit, no LFS traffic
    new_config = json.loads(local["config.json"]) | {"hubmirror_test": True}
    (minilm / "config.json").write_text(json.dumps(new_config, indent=2))
    changed = push_json(cfg, minilm, "me/minilm", "-m", "tweak config")
    assert changed["status"] == "pushed" and changed["files_uploaded"] == 1 and changed["files_hashed"] == 1
    assert changed["lfs_uploaded"] == 0 and changed["bytes_uploaded"] == (minilm / "config.json").stat().st_size
    assert len(upstream.commits_made) == 2 and len(upstream.uploads) == 1
    assert upstream.commits_made[-1]["ops"] == [("file", "config.json")]
    assert upstream.commits_made[-1]["parent"] == first["commit"]
    assert remote_tree(upstream, "me/minilm") == local_tree(minilm)

    # the pushed commit resolves offline at once, to the new content
    resolved = run_cli("-c", str(cfg), "resolve", "me/minilm", "config.json", timeout=60)
    assert resolved.returncode == 0, resolved.stderr
    path = Path(resolved.stdout.strip())
    assert changed["commit"] in path.parts
    assert json.loads(path.read_text()) == new_config
    weights = run_cli("--home", str(home), "resolve", "me/minilm", WEIGHTS, "-r", changed["commit"], timeout=60)
    assert weights.returncode == 0 and Path(weights.stdout.strip()).stat().st_size == len(local[WEIGHTS])


def test_hash_cache_counts_reads_per_file(
    upstream: HubServer, minilm: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process with hash_file wrapped: the 90 MB file is read once, on the first push only."""
    calls: Counter[str] = Counter()
    real = pusher_mod.hash_file

    def counting(path: Path, **kw: Any) -> Any:
        calls[Path(path).relative_to(minilm.resolve()).as_posix()] += 1
        return real(path, **kw)

    monkeypatch.setattr(pusher_mod, "hash_file", counting)

    def run() -> pusher_mod.PushResult:  # a fresh Mirror each time: the cache lives in the index, not in memory
        with Mirror(home) as mirror, UpstreamClient(upstream.url, TOKEN, max_retries=1) as client:
            return mirror.pusher(client).push(minilm, "me/counted", create=True)

    first = run()
    assert first.status == "pushed"
    assert calls == Counter({rel: 1 for rel in local_tree(minilm)})
    assert calls[WEIGHTS] == 1

    calls.clear()
    second = run()
    assert (second.status, second.files_hashed) == ("up to date", 0)
    assert calls == Counter()

    touch(minilm / "config.json")
    third = run()
    assert (third.status, third.files_hashed) == ("up to date", 1)
    assert calls == Counter({"config.json": 1})

    calls.clear()
    (minilm / "tokenizer_config.json").write_text('{"model_max_length": 256}\n')
    fourth = run()
    assert (fourth.status, fourth.files_hashed, fourth.files_uploaded) == ("pushed", 1, 1)
    assert calls == Counter({"tokenizer_config.json": 1})
    assert len(upstream.commits_made) == 2


# =================================================================================================== deletions
def test_delete_remote_only_with_the_flag_and_never_gitattributes(
    upstream: HubServer, cfg: Path, tmp_path: Path
) -> None:
    folder = write_tree(
        tmp_path / "model",
        {
            ".gitattributes": "*.bin filter=lfs diff=lfs merge=lfs -text\n",
            "README.md": GOOD_CARD,
            "a.txt": "a\n",
            "b.txt": "b\n",
            "sub/c.txt": "c\n",
            "sub/keep.txt": "keep\n",
        },
    )
    assert push_json(cfg, folder, "me/del", "--create")["status"] == "pushed"
    assert set(remote_tree(upstream, "me/del")) == {
        ".gitattributes",
        "README.md",
        "a.txt",
        "b.txt",
        "sub/c.txt",
        "sub/keep.txt",
    }
    for rel in ("b.txt", "sub/c.txt", ".gitattributes"):
        (folder / rel).unlink()

    without = push_json(cfg, folder, "me/del")
    assert without["status"] == "up to date" and without["deleted"] == []
    assert len(upstream.commits_made) == 1
    assert "b.txt" in remote_tree(upstream, "me/del")

    with_flag = push_json(cfg, folder, "me/del", "--delete-remote")
    assert with_flag["status"] == "pushed" and with_flag["deleted"] == ["b.txt", "sub/c.txt"]
    assert with_flag["files_uploaded"] == 0
    assert commit_paths(upstream.commits_made[-1]) == [("deletedFile", "b.txt"), ("deletedFile", "sub/c.txt")]
    remote = remote_tree(upstream, "me/del")
    assert set(remote) == {".gitattributes", "README.md", "a.txt", "sub/keep.txt"}
    assert remote[".gitattributes"] == b"*.bin filter=lfs diff=lfs merge=lfs -text\n"

    assert push_json(cfg, folder, "me/del", "--delete-remote")["status"] == "up to date"
    assert len(upstream.commits_made) == 2


# =================================================================================================== upstream moved
def test_upstream_moved_between_diff_and_commit_412_then_rediff(
    upstream: HubServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_tree(
        tmp_path / "model", {"README.md": GOOD_CARD, "a.txt": "ours v1\n", "weights.bin": os.urandom(4096)}
    )
    with Mirror(home) as mirror, UpstreamClient(upstream.url, TOKEN, max_retries=1) as client:
        assert mirror.pusher(client).push(folder, "me/moved", create=True).status == "pushed"
    (folder / "a.txt").write_text("ours v2\n")

    real_commit = HubWriter.commit
    seen: list[str | None] = []
    theirs: list[str] = []

    def racing_commit(self: HubWriter, *args: Any, **kw: Any) -> Any:
        seen.append(kw["parent"])
        if not theirs:  # someone else commits after our diff, before our commit
            theirs.append(upstream.commit("me/moved", {"theirs.txt": b"their content\n"}, message="theirs"))
        return real_commit(self, *args, **kw)

    monkeypatch.setattr(HubWriter, "commit", racing_commit)
    with Mirror(home) as mirror, UpstreamClient(upstream.url, TOKEN, max_retries=1) as client:
        result = mirror.pusher(client).push(folder, "me/moved")

    assert result.status == "pushed"
    assert len(seen) == 2 and seen[1] == theirs[0] != seen[0]  # diffed again against their commit
    assert [e.status for e in upstream.requests if "/commit/" in e.path] == [200, 412, 200]
    remote = remote_tree(upstream, "me/moved")
    assert remote["theirs.txt"] == b"their content\n"  # not clobbered
    assert remote["a.txt"] == b"ours v2\n"
    assert upstream.commits_made[-1]["parent"] == theirs[0]
    assert upstream.commits_made[-1]["ops"] == [("file", "a.txt")]
    # their file reaches the local mirror too
    with Mirror(home) as mirror:
        repo = mirror.index.find_repo("model", "me/moved")
        assert repo is not None
        assert {f.path for f in mirror.index.files(repo, result.commit)} >= {"theirs.txt", "a.txt"}


def test_file_changed_between_hash_and_commit_is_not_committed(
    upstream: HubServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What was diffed is what is committed: a file rewritten mid-push fails the push, nothing is lost."""
    folder = write_tree(tmp_path / "model", {"README.md": GOOD_CARD, "a.txt": "v1\n"})
    real_modes = HubWriter.upload_modes

    def rewrite_then_modes(self: HubWriter, *args: Any, **kw: Any) -> Any:
        (folder / "a.txt").write_text("v2, written while pushing\n")
        return real_modes(self, *args, **kw)

    monkeypatch.setattr(HubWriter, "upload_modes", rewrite_then_modes)
    with Mirror(home) as mirror, UpstreamClient(upstream.url, TOKEN, max_retries=1) as client:
        with pytest.raises(HubMirrorError, match="'a.txt' changed while it was being pushed"):
            mirror.pusher(client).push(folder, "me/racy", create=True)
    assert upstream.commits_made == []
    monkeypatch.setattr(HubWriter, "upload_modes", real_modes)
    with Mirror(home) as mirror, UpstreamClient(upstream.url, TOKEN, max_retries=1) as client:
        assert mirror.pusher(client).push(folder, "me/racy").status == "pushed"
    assert remote_tree(upstream, "me/racy")["a.txt"] == b"v2, written while pushing\n"


def test_stale_folder_does_not_clobber_files_committed_upstream(upstream: HubServer, cfg: Path, tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "model", {"README.md": GOOD_CARD, "a.txt": "v1\n"})
    push_json(cfg, folder, "me/stale", "--create")
    upstream.commit("me/stale", {"theirs.txt": b"theirs\n"}, message="someone else")
    (folder / "a.txt").write_text("v2\n")
    result = push_json(cfg, folder, "me/stale")
    assert result["status"] == "pushed" and result["deleted"] == []
    remote = remote_tree(upstream, "me/stale")
    assert remote["theirs.txt"] == b"theirs\n" and remote["a.txt"] == b"v2\n"


# =================================================================================================== errors
def test_missing_repo_without_create_says_pass_create(upstream: HubServer, cfg: Path, tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "model", {"README.md": GOOD_CARD, "a.txt": "a\n"})
    before = local_tree(folder)
    proc = push(cfg, folder, "me/nope")
    assert proc.returncode == 5, proc.stderr
    assert "me/nope" in proc.stderr and "--create" in proc.stderr
    assert upstream.store.get("model", "me/nope") is None and upstream.commits_made == []
    assert local_tree(folder) == before
    assert push_json(cfg, folder, "me/nope", "--create")["status"] == "pushed"


def test_wrong_token_401_and_no_token(tmp_path: Path, home: Path) -> None:
    with HubServer(tmp_path / "hub", token=TOKEN) as server:
        server.create_repo("me/locked")
        head = server.head("me/locked")
        folder = write_tree(tmp_path / "model", {"README.md": GOOD_CARD, "a.txt": "a\n"})
        before = local_tree(folder)

        wrong = write_config(
            tmp_path / "wrong.yaml", server.url, home, PLACEHOLDER, upstream={"token": "hf_wrong", "max_retries": 0}
        )
        proc = push(wrong, folder, "me/locked")
        assert proc.returncode == 5, proc.stderr
        assert "me/locked" in proc.stderr and "upstream.token" in proc.stderr and "401" in proc.stderr

        none = write_config(tmp_path / "none.yaml", server.url, home, PLACEHOLDER, upstream={"max_retries": 0})
        proc = push(none, folder, "me/locked")
        assert proc.returncode == 5, proc.stderr
        assert "me/locked" in proc.stderr and "token" in proc.stderr

        assert server.head("me/locked") == head and server.commits_made == []
        assert local_tree(folder) == before
        right = write_config(tmp_path / "right.yaml", server.url, home, PLACEHOLDER, upstream={"token": TOKEN})
        assert push_json(right, folder, "me/locked")["status"] == "pushed"
        assert remote_tree(server, "me/locked") == before


def test_no_token_on_a_public_repo_asks_for_a_write_token(upstream: HubServer, tmp_path: Path, home: Path) -> None:
    """Reading works without a token; the write side answers 401: the message must not say 'not found'."""
    upstream.create_repo("me/public")
    folder = write_tree(tmp_path / "model", {"README.md": GOOD_CARD, "a.txt": "a\n"})
    cfg = write_config(tmp_path / "none.yaml", upstream.url, home, PLACEHOLDER, upstream={"max_retries": 0})
    proc = push(cfg, folder, "me/public")
    assert proc.returncode == 5, proc.stderr
    assert "me/public" in proc.stderr and "token" in proc.stderr
    assert "not found" not in proc.stderr
    assert upstream.commits_made == []


@pytest.mark.parametrize("where", ["preupload", "commit"])
def test_403_from_the_write_side(
    upstream: HubServer, cfg: Path, tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.create_repo("me/readonly")
    head = upstream.head("me/readonly")
    folder = write_tree(tmp_path / "model", {"README.md": GOOD_CARD, "a.txt": "a\n"})
    before = local_tree(folder)
    real_route = upstream._route

    def route(origin: str, method: str, target: str, *args: Any) -> Any:
        if method == "POST" and f"/{where}/" in target:
            raise _error(403, "You don't have the rights to push to this repo")
        return real_route(origin, method, target, *args)

    monkeypatch.setattr(upstream, "_route", route)
    proc = push(cfg, folder, "me/readonly")
    assert proc.returncode == 5, proc.stderr
    assert "me/readonly" in proc.stderr and "403" in proc.stderr and "write" in proc.stderr
    assert upstream.head("me/readonly") == head and local_tree(folder) == before
    monkeypatch.setattr(upstream, "_route", real_route)
    assert push_json(cfg, folder, "me/readonly")["status"] == "pushed"


def test_404_revision_and_repo_gone_before_commit(
    upstream: HubServer, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.create_repo("me/gone")
    folder = write_tree(tmp_path / "model", {"README.md": GOOD_CARD, "a.txt": "a\n"})
    proc = push(cfg, folder, "me/gone", "--revision", "no-such-branch")
    assert proc.returncode == 5, proc.stderr
    assert "no-such-branch" in proc.stderr and "me/gone" in proc.stderr

    real_route = upstream._route

    def route(origin: str, method: str, target: str, *args: Any) -> Any:
        if method == "POST" and "/commit/" in target:
            raise _error(404, "Repository not found", "RepoNotFound")
        return real_route(origin, method, target, *args)

    monkeypatch.setattr(upstream, "_route", route)
    proc = push(cfg, folder, "me/gone")
    assert proc.returncode == 5, proc.stderr
    assert "me/gone" in proc.stderr and "not found" in proc.stderr
    assert upstream.commits_made == [] and (folder / "a.txt").read_text() == "a\n"


# =================================================================================================== what is skipped
def test_links_leaving_the_folder_and_temp_files_are_not_uploaded(
    upstream: HubServer, cfg: Path, tmp_path: Path
) -> None:
    secret_dir = write_tree(
        tmp_path / "secret",
        {"secret.txt": "TOP-SECRET-0f3a9 do not upload\n", "deep/also.txt": "TOP-SECRET-0f3a9 also\n"},
    )
    folder = write_tree(
        tmp_path / "model",
        {
            "README.md": GOOD_CARD,
            "config.json": '{"a": 1}\n',
            "x.tmp": "tmp",
            "y.incomplete": "partial",
            "z.lock": "",
            "sub/w.tmp": "tmp",
            "sub/real.txt": "real\n",
            ".git/HEAD": "ref: refs/heads/main\n",
            ".git/objects/ab/cdef": "obj",
            "model.bin.lock": "l",
            "vendored/.git": "gitdir: ../.git/modules/vendored\n",
            "vendored/code.py": "x = 1\n",
        },
    )
    (folder / "leak.txt").symlink_to(secret_dir / "secret.txt")
    (folder / "leakdir").symlink_to(secret_dir, target_is_directory=True)
    (folder / "alias.json").symlink_to("config.json")  # a link inside the folder is content

    proc = push(cfg, folder, "me/links", "--create")
    assert proc.returncode == 0, proc.stderr
    assert "leak.txt" in proc.stderr and "leakdir" in proc.stderr
    remote = remote_tree(upstream, "me/links")
    assert set(remote) == {"README.md", "config.json", "sub/real.txt", "alias.json", "vendored/code.py"}
    assert remote["alias.json"] == b'{"a": 1}\n'
    # the target's bytes never reached upstream: not in any blob the fake Hub stored
    for blob in upstream.root.rglob("*"):
        if blob.is_file():
            assert b"TOP-SECRET-0f3a9" not in blob.read_bytes(), blob
    assert all("secret" not in path for _, path, _ in upstream.uploads)


# =================================================================================================== model card
@pytest.mark.parametrize(
    "readme, expected",
    [
        (None, ["language", "license", "tags"]),
        ("# Just a title\n", ["no YAML metadata header"]),
        ("---\nlicense: [unclosed\n---\n# x\n", ["invalid"]),
        ("---\nlanguage: en\ntags: [a]\n---\n# x\n", ["lacks license"]),
        (GOOD_CARD, []),
    ],
)
def test_model_card_warnings(
    upstream: HubServer, cfg: Path, tmp_path: Path, readme: str | None, expected: list[str]
) -> None:
    files: dict[str, bytes | str] = {"config.json": "{}\n"}
    if readme is not None:
        files["README.md"] = readme
    folder = write_tree(tmp_path / "model", files)
    proc = push(cfg, folder, "me/card", "--create")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    if expected:
        assert len(warnings) == 1, proc.stderr
        for word in expected:
            assert word in warnings[0]
    else:
        assert warnings == []
    assert set(remote_tree(upstream, "me/card")) == set(files)


def test_add_model_card_when_neither_side_has_one(upstream: HubServer, cfg: Path, tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "model", {"config.json": "{}\n"})
    proc = push(cfg, folder, "me/carded", "--create", "--add-model-card")
    assert proc.returncode == 0, proc.stderr
    assert "warning:" not in proc.stderr
    card = remote_tree(upstream, "me/carded")["README.md"].decode()
    assert card.startswith("---\n") and "license:" in card and "me/carded" in card
    assert not (folder / "README.md").exists()  # the folder is not written to

    # upstream has a card now: not added again (no commit), not deleted, no "no README" warning
    proc = push(cfg, folder, "me/carded", "--add-model-card", "--delete-remote")
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout and "warning:" not in proc.stderr
    assert len(upstream.commits_made) == 1 and "README.md" in remote_tree(upstream, "me/carded")

    # a local card always wins: pushed as is
    (folder / "README.md").write_text(GOOD_CARD)
    assert push_json(cfg, folder, "me/carded", "--add-model-card")["files_uploaded"] == 1
    assert remote_tree(upstream, "me/carded")["README.md"] == GOOD_CARD.encode()


# =================================================================================================== our own server
def test_push_to_hubmirror_serve_as_upstream(tmp_path: Path, minilm: Path) -> None:
    home_a, home_b = tmp_path / "homeA", tmp_path / "homeB"
    cfg_a = write_config(tmp_path / "a.yaml", "http://127.0.0.1:9", home_a, PLACEHOLDER, serve={"token": TOKEN})
    with ServeProcess(cfg_a, tmp_path / "serve.log") as serve:
        cfg_b = write_config(
            tmp_path / "b.yaml", serve.url, home_b, PLACEHOLDER, upstream={"token": TOKEN, "max_retries": 1}
        )
        first = push_json(cfg_b, minilm, "me/minilm", "--create")
        assert first["status"] == "pushed" and first["lfs_uploaded"] == 1
        assert push_json(cfg_b, minilm, "me/minilm")["status"] == "up to date"
        (minilm / "config.json").write_text('{"changed": true}\n')
        second = push_json(cfg_b, minilm, "me/minilm")
        assert second["files_uploaded"] == 1 and second["files_hashed"] == 1
        assert serve.proc is not None and serve.proc.poll() is None, serve.log()
    # the server's home holds the pushed commit: every file byte-identical
    for rel, data in local_tree(minilm).items():
        proc = run_cli("--home", str(home_a), "resolve", "me/minilm", rel, timeout=60)
        assert proc.returncode == 0, proc.stderr
        got = Path(proc.stdout.strip())
        assert got.stat().st_size == len(data)
        assert (
            (got.read_bytes() == data)
            if len(data) < 1_000_000
            else (hashlib.sha256(got.read_bytes()).hexdigest() == sha256(data))
        )
    proc = run_cli("--home", str(home_b), "resolve", "me/minilm", "config.json", timeout=60)
    assert proc.returncode == 0 and Path(proc.stdout.strip()).read_text() == '{"changed": true}\n'


# =================================================================================================== the command line
def full_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The typer CLI itself, past the entry point's fast paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}
    code = "import sys; from hubmirror.cli._app import app; sys.argv[0] = 'hubmirror'; app()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_fast_path_and_full_cli_push_alike(upstream: HubServer, cfg: Path, tmp_path: Path) -> None:
    """A plain push is parsed by the entry point (no typer); the full CLI gives the same result."""
    folder = write_tree(tmp_path / "model", {"README.md": GOOD_CARD, "a.txt": "a\n", "b.txt": "b\n"})
    args = ["-c", str(cfg), "push", str(folder), "--repo", "me/both", "--json"]
    full = full_cli(*args, "--create", "-m", "by typer")
    assert full.returncode == 0, full.stderr
    (folder / "a.txt").write_text("a2\n")
    (folder / "b.txt").unlink()
    fast = run_cli(*args, "--delete-remote", "-m", "by argparse", "--revision", "main", timeout=120)
    assert fast.returncode == 0, fast.stderr
    first, second = json.loads(full.stdout), json.loads(fast.stdout)
    assert first.keys() == second.keys()
    assert (second["status"], second["files_uploaded"], second["deleted"]) == ("pushed", 1, ["b.txt"])
    assert [c["summary"] for c in upstream.commits_made] == ["by typer", "by argparse"]

    # what the fast path does not parse falls through to the full CLI, which says what is wrong
    bad = run_cli("-c", str(cfg), "push", str(folder), "--repo", "not a repo", timeout=120)
    assert bad.returncode != 0 and "--repo 'not a repo'" in bad.stderr
    unknown = run_cli("-c", str(cfg), "push", str(folder), "--repo", "me/both", "--frobnicate", timeout=120)
    assert unknown.returncode != 0 and "--frobnicate" in unknown.stderr
    abbreviated = run_cli("-c", str(cfg), "push", str(folder), "--rep", "me/both", timeout=120)
    assert abbreviated.returncode != 0 and "No such option: --rep" in abbreviated.stderr
    missing = run_cli("-c", str(cfg), "push", str(tmp_path / "nowhere"), "--repo", "me/both", timeout=120)
    assert missing.returncode != 0 and "is not a folder" in missing.stderr
