"""End-to-end tests of ``hubmirror sync`` against the fake Hub over loopback (real HTTP, SQLite and dirs).

The CLI runs as a subprocess (``run_cli``); what it did is checked from the outside: the fake Hub's request
log, the files under ``home/`` and the index opened read-only with sqlite3.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import closing
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from conftest import MINILM, run_cli, write_config
from hubserver import HubServer, RequestLog, add_minilm, make_small_files, minilm_dir

from hubmirror.units import human_size

SAFETENSORS = "model.safetensors"

pytestmark = pytest.mark.timeout(90)


# =================================================================================================== helpers
def sync(cfg: Path, *args: str, env: dict[str, str] | None = None, pre: tuple[str, ...] = ()):
    return run_cli("-c", str(cfg), *pre, "sync", *args, env=env, timeout=120)


def sync_json(cfg: Path, *args: str, **kw: Any) -> tuple[Any, dict[str, Any]]:
    proc = sync(cfg, "--json", *args, **kw)
    try:
        return proc, json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"sync --json printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def query(home: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the index the way an outside tool would: read-only, through sqlite3."""
    uri = f"file:{home / 'index.sqlite'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def index_files(home: Path, repo: str, commit: str, repo_type: str = "model") -> dict[str, tuple[int, str]]:
    rows = query(
        home,
        "SELECT f.path, f.size, f.sha256 FROM files f JOIN repos r ON r.id = f.repo_id "
        "WHERE r.type = ? AND r.name = ? AND f.commit_sha = ?",
        (repo_type, repo, commit),
    )
    return {path: (size, sha) for path, size, sha in rows}


def index_refs(home: Path, repo: str, repo_type: str = "model") -> dict[str, str]:
    return dict(
        query(
            home,
            "SELECT f.name, f.commit_sha FROM refs f JOIN repos r ON r.id = f.repo_id WHERE r.type = ? AND r.name = ?",
            (repo_type, repo),
        )
    )


def complete_commits(home: Path, repo: str, repo_type: str = "model") -> set[str]:
    return {
        row[0]
        for row in query(
            home,
            "SELECT c.sha FROM commits c JOIN repos r ON r.id = c.repo_id "
            "WHERE r.type = ? AND r.name = ? AND c.complete = 1",
            (repo_type, repo),
        )
    }


def blob_files(home: Path) -> dict[str, Path]:
    """Every blob file under ``home/blobs/sha256`` by its file name."""
    root = home / "blobs" / "sha256"
    return {p.name: p for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def check_blob_addresses(home: Path) -> dict[str, Path]:
    """Each blob is named by the sha256 of its bytes, sits in its two-hex folder and is read-only."""
    blobs = blob_files(home)
    for name, path in blobs.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name, f"blob {path} is not named by its hash"
        assert path.parent.name == name[:2], path
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), f"{path} is writable"
    return blobs


def tmp_leftovers(home: Path) -> list[Path]:
    return [p for p in (home / "tmp").iterdir()] if (home / "tmp").exists() else []


def upstream_files(
    upstream: HubServer, repo: str, revision: str = "main", repo_type: str = "model"
) -> dict[str, tuple[int, str]]:
    commit = upstream.store.require(repo_type, repo).resolve(revision)
    assert commit is not None, (repo, revision)
    return {path: (entry.size, entry.blob.sha256) for path, entry in commit.files.items()}


def upstream_commit(upstream: HubServer, repo: str, revision: str = "main", repo_type: str = "model") -> str:
    commit = upstream.store.require(repo_type, repo).resolve(revision)
    assert commit is not None, (repo, revision)
    return commit.sha


def assert_mirrored(
    upstream: HubServer,
    home: Path,
    repo: str,
    revision: str = "main",
    repo_type: str = "model",
    *,
    name: str | None = None,
    only: set[str] | None = None,
) -> dict[str, tuple[int, str]]:
    """The index holds upstream's commit of ``revision`` complete with exactly its files (or ``only`` those),
    and every file's bytes in the store equal upstream's bytes."""
    name = name or repo
    commit = upstream_commit(upstream, repo, revision, repo_type)
    want = {p: v for p, v in upstream_files(upstream, repo, revision, repo_type).items() if only is None or p in only}
    assert commit in complete_commits(home, name, repo_type), f"{repo_type} {name}@{commit[:12]} not complete"
    assert index_files(home, name, commit, repo_type) == want
    blobs = blob_files(home)
    for path, (_, sha256) in want.items():
        assert sha256 in blobs, f"{name}: blob of {path} missing"
        assert blobs[sha256].read_bytes() == upstream.file_bytes(repo, path, commit, repo_type), path
    return want


def resolve_gets(upstream: HubServer, repo: str | None = None) -> list[tuple[str, str]]:
    """(commit, file path) of each GET .../resolve/... on the API origin, optionally for one repo."""
    out = []
    for r in list(upstream.requests):
        if r.origin != "api" or r.method != "GET" or "/resolve/" not in r.path:
            continue
        left, _, right = r.path.split("?")[0].partition("/resolve/")
        if repo is not None and not left.endswith("/" + repo):
            continue
        commit, _, path = right.partition("/")
        out.append((commit, unquote(path)))
    return out


def cdn_gets(upstream: HubServer, sha256: str | None = None) -> list[RequestLog]:
    return [
        r
        for r in list(upstream.requests)
        if r.origin == "cdn" and r.method == "GET" and (sha256 is None or sha256 in r.path)
    ]


def snapshot_tree(root: Path) -> dict[str, tuple[int, int]]:
    """path → (inode, mtime_ns) of every file below ``root``."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def lines_naming(text: str, *needles: str) -> list[str]:
    return [line for line in text.splitlines() if all(n in line for n in needles)]


def minilm_package_files() -> dict[str, bytes]:
    base = minilm_dir()
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def small_model(seed: int, n: int = 6) -> dict[str, bytes]:
    """A small repo with regular text files and one LFS file (``*.safetensors`` goes by LFS upstream)."""
    files = make_small_files(n, seed)
    files["config.json"] = json.dumps({"seed": seed, "hidden": 8}).encode()
    files[SAFETENSORS] = secrets.token_bytes(200_000)
    files["empty/__init__.py"] = b""
    files["odd names/naïve #1?.txt"] = f"seed {seed}: a name that needs quoting\n".encode()
    files["odd names/100%20.txt"] = f"seed {seed}: a literal percent\n".encode()
    return files


# ============================================================================================== 1. full sync
@pytest.mark.timeout(60)
def test_full_sync_of_minilm_is_byte_identical_and_indexed(upstream: HubServer, make_config, home: Path) -> None:
    head = add_minilm(upstream)
    cfg = make_config([{"repo": MINILM}])
    proc = sync(cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    package = minilm_package_files()
    assert len(package) >= 10 and SAFETENSORS in package
    blobs = check_blob_addresses(home)
    # files table: the package's paths, sizes and sha256, each naming a blob with the package's bytes
    rows = index_files(home, MINILM, head)
    assert rows == {p: (len(b), hashlib.sha256(b).hexdigest()) for p, b in package.items()}
    for path, data in package.items():
        assert blobs[rows[path][1]].read_bytes() == data, path
    assert set(blobs) == {sha for _, sha in rows.values()}
    assert index_refs(home, MINILM) == {"main": head}
    assert query(
        home, "SELECT c.sha, c.complete FROM commits c JOIN repos r ON r.id = c.repo_id WHERE r.name = ?", (MINILM,)
    ) == [(head, 1)]
    # the git sha1 the listing gave for regular files is kept, for dedupe by git oid
    oids = dict(query(home, "SELECT path, git_oid FROM files WHERE commit_sha = ?", (head,)))
    assert oids["config.json"] == upstream.file_entry(MINILM, "config.json").oid
    assert not tmp_leftovers(home)


# ======================================================================================= 2. unchanged resync
@pytest.mark.timeout(60)
def test_unchanged_resync_costs_one_request_per_revision_and_rewrites_nothing(
    upstream: HubServer, make_config, home: Path
) -> None:
    first = upstream.commit("org/a", small_model(1), message="first")
    upstream.tag("org/a", "v1.0", first)
    upstream.commit("org/a", {"config.json": b'{"second": true}'}, message="second")
    upstream.commit("org/b", small_model(2))
    upstream.commit("org/b", {"extra.txt": b"on a branch"}, branch="release/v2")
    upstream.commit("org/d", {"train.csv": b"x,y\n1,2\n"}, repo_type="dataset")
    cfg = make_config(
        [
            {"repo": "org/a", "revisions": ["main", "v1.0", first]},
            {"repo": "org/b", "revisions": ["main", "release/v2"]},
            {"repo": "org/d", "type": "dataset"},
        ]
    )
    proc = sync(cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert index_refs(home, "org/a") == {"main": upstream.head("org/a"), "v1.0": first}
    assert index_refs(home, "org/b") == {
        "main": upstream.head("org/b"),
        "release/v2": upstream.head("org/b", "release/v2"),
    }
    assert_mirrored(upstream, home, "org/b", "release/v2")
    assert_mirrored(upstream, home, "org/a", "v1.0")
    before = snapshot_tree(home / "blobs")
    assert len(before) > 10
    index_before = query(home, "SELECT repo_id, commit_sha, path, sha256 FROM files ORDER BY 1, 2, 3")

    upstream.reset_log()
    proc, report = sync_json(cfg)
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in report["results"]] == ["unchanged"] * 6
    named_revisions = ["main", "v1.0", "main", "release/v2", "main"]  # every revision except the full sha
    api = [r for r in upstream.requests if r.origin == "api"]
    assert len(api) <= len(named_revisions), [r.path for r in api]
    assert all("/revision/" in r.path for r in api), [r.path for r in api]
    assert not cdn_gets(upstream) and not resolve_gets(upstream)
    assert not [r for r in api if first in r.path], "a full commit sha already mirrored went upstream"
    assert report["requests"] == len(api)
    assert snapshot_tree(home / "blobs") == before, "an unchanged sync rewrote blobs"
    assert query(home, "SELECT repo_id, commit_sha, path, sha256 FROM files ORDER BY 1, 2, 3") == index_before

    # a repo listed only by a full commit sha, once mirrored, costs one request per run: the repo's
    # private/gated flags are refreshed on every sync; nothing is listed or downloaded
    upstream.reset_log()
    cfg_sha = write_config(cfg.parent / "by-sha.yaml", upstream.url, home, [{"repo": "org/a", "revisions": [first]}])
    proc, report = sync_json(cfg_sha)
    assert proc.returncode == 0, proc.stderr
    assert report["results"][0]["status"] == "unchanged" and report["results"][0]["commit"] == first
    assert [r.path for r in upstream.requests] == [f"/api/models/org/a/revision/{first}"]
    assert report["requests"] == 1


# ======================================================================================= 3. one file changed
@pytest.mark.timeout(60)
def test_new_commit_fetches_only_the_changed_file_and_keeps_the_old_commit(
    upstream: HubServer, make_config, home: Path
) -> None:
    old = upstream.commit("org/m", small_model(3, n=20))
    cfg = make_config([{"repo": "org/m"}])
    assert sync(cfg).returncode == 0
    old_files = assert_mirrored(upstream, home, "org/m")

    new = upstream.commit("org/m", {"config.json": b'{"seed": 3, "hidden": 16}'})
    upstream.reset_log()
    proc, report = sync_json(cfg)
    assert proc.returncode == 0, proc.stderr
    assert resolve_gets(upstream) == [(new, "config.json")]
    assert not cdn_gets(upstream)
    r = report["results"][0]
    assert (r["status"], r["commit"], r["files_fetched"], r["files_deduped"]) == ("updated", new, 1, len(old_files) - 1)
    assert_mirrored(upstream, home, "org/m")
    assert index_refs(home, "org/m") == {"main": new}
    # the old commit is still there, complete, with its files and their bytes
    assert complete_commits(home, "org/m") == {old, new}
    assert_mirrored(upstream, home, "org/m", old)

    # changing the LFS file: one resolve (answered by a redirect) and one CDN transfer of its size
    weights = secrets.token_bytes(300_000)
    newer = upstream.commit("org/m", {SAFETENSORS: weights})
    upstream.reset_log()
    assert sync(cfg).returncode == 0
    assert resolve_gets(upstream) == [(newer, SAFETENSORS)]
    gets = cdn_gets(upstream)
    assert len(gets) == 1 and gets[0].bytes_sent == len(weights)
    assert complete_commits(home, "org/m") == {old, new, newer}
    assert_mirrored(upstream, home, "org/m")
    assert_mirrored(upstream, home, "org/m", old)


# ================================================================================================= 4. dedupe
@pytest.mark.timeout(60)
def test_shared_files_are_stored_and_fetched_once(upstream: HubServer, make_config, home: Path) -> None:
    add_minilm(upstream)
    add_minilm(upstream, "org/minilm-copy")
    big = upstream.file_entry(MINILM, SAFETENSORS)
    cfg = make_config([{"repo": MINILM}, {"repo": "org/minilm-copy"}])
    proc, report = sync_json(cfg)
    assert proc.returncode == 0, proc.stderr
    assert_mirrored(upstream, home, MINILM)
    copy = assert_mirrored(upstream, home, "org/minilm-copy")

    gets = cdn_gets(upstream, big.blob.sha256)
    assert len(gets) == 1 and sum(g.bytes_sent for g in gets) == big.size  # 90 MB crossed the wire once
    assert sum(r.bytes_sent for r in cdn_gets(upstream)) == big.size
    assert resolve_gets(upstream, "org/minilm-copy") == []
    second = report["results"][1]
    assert (second["files_fetched"], second["files_deduped"]) == (0, len(copy))
    assert second["bytes_deduped"] == sum(size for size, _ in copy.values())
    blobs = check_blob_addresses(home)
    assert set(blobs) == {sha for _, sha in copy.values()}  # one blob per distinct content

    # regular files dedupe by git sha1 across repos, whatever their path
    vocab = upstream.file_bytes(MINILM, "vocab.txt")
    config = upstream.file_bytes(MINILM, "config.json")
    upstream.commit(
        "org/other",
        {
            "sub/renamed_config.json": config,
            "tok/vocab.txt": vocab,
            "new.txt": b"only here\n",
            "dup/one.txt": b"twice\n",
            "dup/two.txt": b"twice\n",
        },
    )
    cfg = make_config([{"repo": MINILM}, {"repo": "org/minilm-copy"}, {"repo": "org/other"}])
    upstream.reset_log()
    proc = sync(cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fetched = sorted(p for _, p in resolve_gets(upstream))
    assert len(fetched) == 2 and fetched[1] == "new.txt" and fetched[0] in ("dup/one.txt", "dup/two.txt")
    assert not cdn_gets(upstream)
    assert_mirrored(upstream, home, "org/other")

    status = run_cli("-c", str(cfg), "status", "--json")
    assert status.returncode == 0, status.stderr
    store = json.loads(status.stdout)["store"]
    logical = sum(
        size for repo in (MINILM, "org/minilm-copy", "org/other") for size, _ in upstream_files(upstream, repo).values()
    )
    stored = sum(p.stat().st_size for p in blob_files(home).values())
    assert store["stored_bytes"] == stored and store["logical_bytes"] == logical
    assert store["saved_bytes"] == logical - stored >= big.size


# ================================================================================================= 5. resume
@pytest.mark.timeout(60)
def test_interrupted_download_resumes_with_range_in_a_new_process(upstream: HubServer, make_config, home: Path) -> None:
    add_minilm(upstream)
    big = upstream.file_entry(MINILM, SAFETENSORS)
    cut = 30_000_000
    # With no retries, the transfer breaks at 30 MB, the in-process resume is refused (reset), and the
    # first process gives up with the partial file kept.
    cfg = make_config([{"repo": MINILM}], upstream={"max_retries": 0})
    upstream.faults.once("drop", path_contains="/blobs/", after_bytes=cut)
    upstream.faults.once("reset", path_contains="/blobs/")
    first = sync(cfg)
    assert first.returncode == 6, first.stdout + first.stderr
    assert lines_naming(first.stdout, "FAILED", MINILM)
    assert [g.fault for g in cdn_gets(upstream)] == ["drop", "reset"]
    partial = home / "tmp" / f"{big.blob.sha256}.partial"
    assert partial.exists(), tmp_leftovers(home)
    kept = partial.stat().st_size
    assert cut - 1_000_000 <= kept <= cut
    assert partial.read_bytes() == upstream.file_bytes(MINILM, SAFETENSORS)[:kept]
    assert big.blob.sha256 not in blob_files(home)
    assert index_refs(home, MINILM) == {}

    upstream.faults.clear()
    upstream.reset_log()
    cfg = make_config([{"repo": MINILM}])
    second = sync(cfg)
    assert second.returncode == 0, second.stdout + second.stderr
    # the small files arrived in the first run; only the big file's remaining bytes cross the wire now
    assert resolve_gets(upstream) == [(upstream.head(MINILM), SAFETENSORS)]
    gets = cdn_gets(upstream)
    assert [g.range for g in gets] == [f"bytes={kept}-"]
    assert sum(g.bytes_sent for g in gets) == big.size - kept < big.size
    assert_mirrored(upstream, home, MINILM)
    check_blob_addresses(home)
    assert not tmp_leftovers(home)


# ============================================================================================= 6. corruption
@pytest.mark.timeout(60)
def test_corrupted_bytes_fail_the_repo_and_store_nothing(upstream: HubServer, make_config, home: Path) -> None:
    upstream.commit("org/bad", small_model(4))
    upstream.commit("org/good", small_model(5))
    bad_lfs = upstream.file_entry("org/bad", SAFETENSORS).blob.sha256
    cfg = make_config([{"repo": "org/bad"}, {"repo": "org/good"}])
    upstream.faults.set(rate=1.0, kinds=["corrupt"], paths="/org/bad/resolve/")  # regular files
    upstream.faults.once("corrupt", path_contains=bad_lfs)  # and the LFS body from the CDN
    proc = sync(cfg)
    assert proc.returncode == 7, proc.stdout + proc.stderr
    failed = lines_naming(proc.stdout, "FAILED", "org/bad")
    assert len(failed) == 1 and "mismatch" in failed[0], proc.stdout
    assert not lines_naming(proc.stdout, "FAILED", "org/good")
    assert "Traceback" not in proc.stderr
    assert upstream.faults.injected >= 2

    good = assert_mirrored(upstream, home, "org/good")
    assert set(check_blob_addresses(home)) == {sha for _, sha in good.values()}  # nothing of org/bad
    assert not tmp_leftovers(home)
    assert complete_commits(home, "org/bad") == set() and index_refs(home, "org/bad") == {}

    # once the corruption stops, the same config syncs the repo
    upstream.faults.clear()
    assert sync(cfg).returncode == 0
    assert_mirrored(upstream, home, "org/bad")


# ================================================================================================= 7. faults
@pytest.mark.timeout(90)
def test_sync_through_twenty_percent_faults_completes_verified(upstream: HubServer, make_config, home: Path) -> None:
    add_minilm(upstream)
    upstream.commit("org/many", make_small_files(200, seed=7))
    # The default max_retries (8): at 20 % per request, 9 faults in a row on one request (5e-7) never
    # happens; 5 would leave a ~1 % chance that one of ~300 requests exhausts its retries.
    cfg = make_config([{"repo": MINILM}, {"repo": "org/many"}])
    upstream.page_size = 64  # the 200-file listing comes in pages, each of which may fail too
    kinds = ["500", "503", "429", "drop", "reset"]
    upstream.faults.set(rate=0.2, kinds=kinds, seed=11)
    started = time.monotonic()
    proc = sync(cfg)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert elapsed < 60, f"sync under faults took {elapsed:.0f}s"
    injected = {r.fault for r in upstream.requests if r.fault}
    assert injected == set(kinds), injected
    assert upstream.faults.injected >= 20
    assert upstream.count(path_contains="cursor=") >= 3
    upstream.faults.clear()
    assert_mirrored(upstream, home, MINILM)
    assert_mirrored(upstream, home, "org/many")
    check_blob_addresses(home)
    assert not tmp_leftovers(home)


# ================================================================================================= 8. errors
TOKEN = "hf_" + "TestSecret" + "0123456789abcdefXYZ"


@pytest.fixture
def private_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    with HubServer(tmp_path_factory.mktemp("private-upstream"), token=TOKEN) as server:
        server.commit("org/ok", small_model(6))
        server.create_repo("org/private", private=True)
        server.commit("org/private", small_model(7))
        server.create_repo("org/gated", gated=True)
        server.commit("org/gated", small_model(8))
        yield server


@pytest.mark.timeout(60)
def test_upstream_errors_give_one_clear_line_and_other_repos_still_sync(
    private_hub: HubServer, tmp_path: Path, home: Path
) -> None:
    cfg = write_config(
        tmp_path / "hubmirror.yaml",
        private_hub.url,
        home,
        [
            {"repo": "org/private"},
            {"repo": "org/gated"},
            {"repo": "org/nope"},
            {"repo": "org/ok", "revisions": ["main", "no-such-branch"]},
        ],
    )
    proc = sync(cfg)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    out = proc.stdout
    expectations = {  # repo named in the line → what the line must tell the user
        "org/private": ["not found", "token"],
        "org/gated": ["gated", "accept", "token"],
        "org/nope": ["not found", "check the name"],
        "no-such-branch": ["org/ok", "branch, tag or commit"],
    }
    for needle, hints in expectations.items():
        failed = lines_naming(out, "FAILED", needle)
        assert len(failed) == 1, f"expected one FAILED line for {needle}:\n{out}"
        for hint in hints:
            assert hint in failed[0], f"{needle}: {hint!r} missing from {failed[0]!r}"
        # said once: the FAILED line is the record, no log line repeats it
        assert not lines_naming(proc.stderr, "ERROR", needle), proc.stderr
    assert len(lines_naming(out, "FAILED")) == 4
    assert "Traceback" not in proc.stderr
    assert lines_naming(out, "updated", "org/ok@main")
    assert_mirrored(private_hub, home, "org/ok")
    for repo in ("org/private", "org/gated", "org/nope"):
        assert complete_commits(home, repo) == set()
    # 401/403/404 are answers, not outages: never retried
    for r in private_hub.requests:
        assert r.status not in (401, 403, 404) or private_hub.count(path_contains=r.path) == 1, r.path

    # --json says the same per repo-revision, for scripts
    proc, report = sync_json(cfg)
    assert proc.returncode == 5 and report["ok"] is False
    by_label = {(r["repo"], r["revision"]): r for r in report["results"]}
    assert {k: (r["status"], r["error_type"], r["exit_code"]) for k, r in by_label.items()} == {
        ("org/private", "main"): ("failed", "RepoNotFoundError", 5),
        ("org/gated", "main"): ("failed", "GatedRepoError", 5),
        ("org/nope", "main"): ("failed", "RepoNotFoundError", 5),
        ("org/ok", "main"): ("unchanged", None, 0),
        ("org/ok", "no-such-branch"): ("failed", "RevisionNotFoundError", 5),
    }
    assert "org/gated" in by_label[("org/gated", "main")]["error"]

    # a wrong token is rejected with its own message, and is not printed either
    wrong = "hf_wrongTokenValue987654321"
    cfg_wrong = write_config(
        tmp_path / "wrong.yaml", private_hub.url, home, [{"repo": "org/ok"}], upstream={"token": wrong}
    )
    proc = sync(cfg_wrong)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    failed = lines_naming(proc.stdout, "FAILED", "org/ok")
    assert len(failed) == 1 and "token" in failed[0], proc.stdout
    assert wrong not in proc.stdout + proc.stderr


@pytest.mark.timeout(60)
def test_gated_repo_stops_downloading_after_the_first_refusal(
    private_hub: HubServer, tmp_path: Path, home: Path
) -> None:
    private_hub.commit("org/gated", make_small_files(60, seed=3))
    cfg = write_config(tmp_path / "hubmirror.yaml", private_hub.url, home, [{"repo": "org/gated"}], sync={"workers": 2})
    private_hub.latency = 0.05
    private_hub.reset_log()
    proc = sync(cfg)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert len(lines_naming(proc.stdout, "FAILED", "org/gated")) == 1
    refused = resolve_gets(private_hub, "org/gated")
    assert 1 <= len(refused) <= 8, f"{len(refused)} downloads tried after the repo refused access"


@pytest.mark.timeout(60)
def test_private_and_gated_repos_sync_with_a_token_that_is_never_shown(
    private_hub: HubServer, tmp_path: Path, home: Path
) -> None:
    cfg = write_config(
        tmp_path / "hubmirror.yaml",
        private_hub.url,
        home,
        [{"repo": "org/private"}, {"repo": "org/gated"}],
        upstream={"token": "${HF_TOKEN}", "max_retries": 8},
    )
    # faults put the retry and resume paths (and their debug logging) in play too
    private_hub.faults.set(rate=0.3, kinds=["500", "reset", "drop"], seed=5, max_faults=6)
    proc = sync(cfg, env={"HF_TOKEN": TOKEN}, pre=("-vv",))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert private_hub.faults.injected >= 3
    private_hub.faults.clear()
    assert_mirrored(private_hub, home, "org/private")
    assert_mirrored(private_hub, home, "org/gated")
    api = [r for r in private_hub.requests if r.origin == "api"]
    assert api and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in api)
    cdn = cdn_gets(private_hub)
    assert cdn and all("authorization" not in r.headers for r in cdn), "token sent to another origin"
    assert TOKEN not in proc.stdout and TOKEN not in proc.stderr
    assert TOKEN[3:] not in proc.stdout + proc.stderr
    for path in home.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"token written to {path}"
    status = run_cli("-c", str(cfg), "status", "--json", env={"HF_TOKEN": TOKEN})
    assert status.returncode == 0 and TOKEN not in status.stdout + status.stderr


# ========================================================================================= 9. path traversal
HOSTILE = ["../x", "/etc/passwd", "a\\b", "a\x00b", "ok.txt/inner", ".git/config", "é" * 200]


@pytest.mark.timeout(60)
def test_hostile_tree_paths_are_refused_and_nothing_escapes_home(
    upstream: HubServer, make_config, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = {f"org/evil{i}": path for i, path in enumerate(HOSTILE)}
    for repo in evil:
        upstream.commit(repo, {"config.json": f'{{"repo": "{repo}"}}'.encode(), "ok.txt": b"harmless\n"})
    upstream.commit("org/good", small_model(9))
    real_tree = upstream._tree

    def hostile_tree(repo, segs, path, query, params):
        resp = real_tree(repo, segs, path, query, params)
        if repo.repo_id in evil:
            items = json.loads(resp.body)
            legit = next(i for i in items if i["path"] == "ok.txt")
            items.append({**legit, "path": evil[repo.repo_id]})  # same oid/size: a plausible entry
            resp.body = json.dumps(items).encode()
        return resp

    monkeypatch.setattr(upstream, "_tree", hostile_tree)
    cfg = make_config([{"repo": r} for r in evil] + [{"repo": "org/good"}])
    before = {p for p in tmp_path.rglob("*")}
    passwd = Path("/etc/passwd").stat() if Path("/etc/passwd").exists() else None
    proc = sync(cfg, env={"HOME": str(tmp_path)})
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for repo, hostile in evil.items():
        failed = lines_naming(proc.stdout, "FAILED", repo)
        assert len(failed) == 1 and "refused" in failed[0], proc.stdout
        if hostile == "ok.txt/inner":  # a file beside a folder of the same name: the view could not hold both
            assert "'ok.txt': it is both a file and a folder" in failed[0], failed[0]
        elif hostile.startswith("é"):
            assert "over 255 bytes" in failed[0], failed[0]
        else:
            assert repr(hostile)[1:-1] in failed[0] or hostile in failed[0], failed[0]
        assert resolve_gets(upstream, repo) == [], f"{repo}: downloads started despite a hostile listing"
        assert complete_commits(home, repo) == set()
    assert_mirrored(upstream, home, "org/good")

    written = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in written if home not in p.parents and p != home]
    assert outside == [], f"written outside home: {outside}"
    names = {p.name for p in tmp_path.rglob("*")}
    assert not names & {"x", "passwd", "a\\b", "a\x00b", "b"}, names & {"x", "passwd", "a\\b", "a\x00b", "b"}
    assert not any("\\" in n or "\x00" in n for n in names)
    if passwd is not None:
        assert Path("/etc/passwd").stat().st_mtime_ns == passwd.st_mtime_ns
    assert not (tmp_path.parent / "x").exists()


@pytest.mark.timeout(60)
def test_hostile_oids_in_the_tree_never_become_file_names(
    upstream: HubServer, make_config, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Object ids name temp and lock files; a listing must not be able to steer those out of home."""
    upstream.commit("org/evil-oid", {"ok.txt": b"harmless\n"})
    upstream.commit("org/evil-lfs", {SAFETENSORS: secrets.token_bytes(50_000)})
    upstream.commit("org/good", small_model(13))
    escape = "../../../../escaped"
    real_tree = upstream._tree

    def hostile_tree(repo, segs, path, query, params):
        resp = real_tree(repo, segs, path, query, params)
        items = json.loads(resp.body)
        for item in items:
            if repo.repo_id == "org/evil-oid" and item["path"] == "ok.txt":
                item["oid"] = escape + "-oid"
            if repo.repo_id == "org/evil-lfs" and item.get("lfs"):
                item["lfs"]["oid"] = escape + "-lfs"
        resp.body = json.dumps(items).encode()
        return resp

    monkeypatch.setattr(upstream, "_tree", hostile_tree)
    cfg = make_config([{"repo": "org/evil-oid"}, {"repo": "org/evil-lfs"}, {"repo": "org/good"}])
    before = {p for p in tmp_path.rglob("*")}
    proc = sync(cfg)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    written = {p for p in tmp_path.rglob("*")} - before
    assert [p for p in written if home not in p.parents and p != home] == []
    assert not [p for p in tmp_path.parent.rglob("*escaped*")], "a file named by a hostile oid was created"
    for repo in ("org/evil-oid", "org/evil-lfs"):
        failed = lines_naming(proc.stdout, "FAILED", repo)
        assert len(failed) == 1 and "malformed" in failed[0], proc.stdout
        assert resolve_gets(upstream, repo) == [], "downloads started despite a hostile listing"
    assert_mirrored(upstream, home, "org/good")


def test_store_refuses_lock_and_resume_names_that_are_paths(tmp_path: Path) -> None:
    from hubmirror.store import Expected, Store

    store = Store(tmp_path / "home")
    for name in ("../x", "a/b", "..", ""):
        with pytest.raises(ValueError):
            with store.lock(name):
                pass
        with pytest.raises(ValueError):
            store.writer(Expected(size=1), resume_key=name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    assert list((tmp_path / "home" / "locks").iterdir()) == []


# ================================================================================================ 10. rename
@pytest.mark.timeout(60)
def test_renamed_repo_is_stored_under_its_new_name_with_the_old_as_alias(
    upstream: HubServer, make_config, home: Path
) -> None:
    first = upstream.commit("org/old", small_model(10))
    cfg = make_config([{"repo": "org/old"}])
    assert sync(cfg).returncode == 0
    assert index_refs(home, "org/old") == {"main": first}

    upstream.rename_repo("org/old", "org/new")
    second = upstream.commit("org/new", {"config.json": b'{"renamed": true}'})
    upstream.reset_log()
    proc, report = sync_json(cfg)
    assert proc.returncode == 0, proc.stderr
    r = report["results"][0]
    assert (r["canonical"], r["commit"], r["status"]) == ("org/new", second, "updated")
    assert [p for _, p in resolve_gets(upstream)] == ["config.json"]
    assert all("/org/new/" in path for _, path in [(0, r.path) for r in upstream.requests if "/resolve/" in r.path])
    assert query(home, "SELECT type, name FROM repos") == [("model", "org/new")]
    assert query(home, "SELECT a.type, a.alias, r.name FROM aliases a JOIN repos r ON r.id = a.repo_id") == [
        ("model", "org/old", "org/new")
    ]
    assert index_refs(home, "org/new") == {"main": second}
    assert complete_commits(home, "org/new") == {first, second}  # history from before the rename kept
    assert_mirrored(upstream, home, "org/new")
    assert_mirrored(upstream, home, "org/new", first)

    status = run_cli("-c", str(cfg), "status", "--json")
    assert status.returncode == 0, status.stderr
    [repo] = json.loads(status.stdout)["repos"]
    assert (repo["name"], repo["aliases"], repo["refs"]) == ("org/new", ["org/old"], {"main": second})
    text = run_cli("-c", str(cfg), "status")
    assert lines_naming(text.stdout, "org/new", "org/old"), text.stdout

    # unchanged since: the old name still costs one (redirected) revision request, no downloads
    upstream.reset_log()
    proc, report = sync_json(cfg)
    assert proc.returncode == 0 and report["results"][0]["status"] == "unchanged"
    assert not resolve_gets(upstream) and upstream.count(path_contains="/tree/") == 0


# ============================================================================================== 11. --locked
@pytest.mark.timeout(90)
def test_lock_then_locked_sync_fetches_exactly_the_pinned_commit(
    upstream: HubServer, make_config, home: Path, tmp_path: Path
) -> None:
    pinned = add_minilm(upstream)
    cfg = make_config([{"repo": MINILM}])
    proc = run_cli("-c", str(cfg), "lock", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lock_path = cfg.parent / "hubmirror.lock"
    lock = json.loads(lock_path.read_text())
    [entry] = lock["repos"]
    assert (entry["repo"], entry["type"], entry["revision"], entry["commit"]) == (MINILM, "model", "main", pinned)
    package = minilm_package_files()
    assert {f["path"]: (f["size"], f["sha256"]) for f in entry["files"]} == {
        p: (len(b), hashlib.sha256(b).hexdigest()) for p, b in package.items()
    }

    upstream.commit(MINILM, {"config.json": b'{"moved": "on"}', "extra.txt": b"new upstream\n"})
    fresh = tmp_path / "fresh-home"
    upstream.reset_log()
    proc = sync(cfg, "--locked", pre=("--home", str(fresh)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    gets = resolve_gets(upstream)
    assert {c for c, _ in gets} == {pinned}, "fetched from a commit other than the locked one"
    assert sorted(p for _, p in gets) == sorted(package)
    assert index_files(fresh, MINILM, pinned) == {f["path"]: (f["size"], f["sha256"]) for f in entry["files"]}
    assert index_refs(fresh, MINILM) == {"main": pinned}
    for f in entry["files"]:
        assert blob_files(fresh)[f["sha256"]].read_bytes() == package[f["path"]]

    # a lock whose sha256 for a file differs from what upstream serves at that commit: --locked refuses,
    # both for a regular file (checked after download or against the stored blob) and an LFS file
    original = lock_path.read_text()
    for tampered in ("config.json", SAFETENSORS):
        edited = json.loads(original)
        for f in edited["repos"][0]["files"]:
            if f["path"] == tampered:
                f["sha256"] = secrets.token_hex(32)
        lock_path.write_text(json.dumps(edited, indent=2))
        for where in (tmp_path / f"tampered-{tampered}", home):
            before = set(blob_files(where))
            proc = sync(cfg, "--locked", pre=("--home", str(where)))
            assert proc.returncode == 7, (tampered, where, proc.stdout + proc.stderr)
            failed = lines_naming(proc.stdout, "FAILED", MINILM)
            assert len(failed) == 1 and tampered in failed[0], proc.stdout
            assert index_refs(where, MINILM) == ({} if where != home else {"main": pinned})
            genuine = {sha for _, sha in index_files(fresh, MINILM, pinned).values()}
            assert set(blob_files(where)) - before <= genuine
    lock_path.write_text(original)

    # a repo the config lists but the lock does not pin fails by itself, with what to do
    upstream.commit("org/unpinned", {"a.txt": b"a\n"})
    cfg_more = write_config(cfg, upstream.url, home, [{"repo": MINILM}, {"repo": "org/unpinned"}])
    proc = sync(cfg_more, "--locked", pre=("--home", str(fresh)))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    [failed] = lines_naming(proc.stdout, "FAILED")
    assert "org/unpinned" in failed and "hubmirror lock" in failed
    assert lines_naming(proc.stdout, "unchanged", MINILM)
    cfg = write_config(cfg, upstream.url, home, [{"repo": MINILM}])

    # a lock naming a commit upstream does not have: a clear error naming it, non-zero exit
    bogus = secrets.token_hex(20)
    lock["repos"][0]["commit"] = bogus
    lock_path.write_text(json.dumps(lock, indent=2))
    other = tmp_path / "other-home"
    proc = sync(cfg, "--locked", pre=("--home", str(other)))
    assert proc.returncode != 0
    failed = lines_naming(proc.stdout + proc.stderr, bogus)
    assert failed and MINILM in failed[0], proc.stdout + proc.stderr
    assert not blob_files(other)


# ===================================================================================== 12. --dry-run, --json
@pytest.mark.timeout(60)
def test_dry_run_reports_the_plan_and_writes_nothing(upstream: HubServer, make_config, home: Path) -> None:
    upstream.commit("org/a", small_model(12))
    a = upstream_files(upstream, "org/a")
    cfg = make_config([{"repo": "org/a"}])
    proc = sync(cfg, "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = sum(size for size, _ in a.values())
    [line] = lines_naming(proc.stdout, "org/a")
    assert f"{len(a)} files" in line and f"fetch {human_size(total)}" in line
    assert f"{human_size(0)} already present" in line
    assert not resolve_gets(upstream) and not cdn_gets(upstream)
    assert blob_files(home) == {} and not tmp_leftovers(home)
    if (home / "index.sqlite").exists():
        for table in ("repos", "commits", "files", "refs", "blobs", "sync_runs"):
            assert query(home, f"SELECT COUNT(*) FROM {table}") == [(0,)], table

    proc, report = sync_json(cfg)
    assert proc.returncode == 0 and report["ok"] and report["dry_run"] is False
    [r] = report["results"]
    assert (r["repo"], r["type"], r["revision"], r["status"]) == ("org/a", "model", "main", "updated")
    assert (r["files_fetched"], r["bytes_fetched"]) == (len(a), total)

    # a second repo sharing some files, and a change in the first: the plan counts what is present
    shared = {p: upstream.file_bytes("org/a", p) for p in list(a)[:3]}
    upstream.commit("org/b", {**shared, "own.txt": b"own file\n"})
    upstream.commit("org/a", {"config.json": b'{"changed": 1}'})
    cfg = make_config([{"repo": "org/a"}, {"repo": "org/b"}])
    rows_before = query(home, "SELECT * FROM files ORDER BY 1, 2, 3")
    blobs_before = snapshot_tree(home / "blobs")
    upstream.reset_log()
    proc, report = sync_json(cfg, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert report["dry_run"] is True
    by_repo = {r["repo"]: r for r in report["results"]}
    assert by_repo["org/a"]["status"] == "planned"
    assert by_repo["org/a"]["bytes_to_fetch"] == len(b'{"changed": 1}')
    assert by_repo["org/a"]["bytes_deduped"] == total - a["config.json"][0]
    assert by_repo["org/b"]["bytes_to_fetch"] == len(b"own file\n")
    assert by_repo["org/b"]["bytes_deduped"] == sum(len(v) for v in shared.values())
    assert report["bytes_to_fetch"] == len(b'{"changed": 1}') + len(b"own file\n")
    assert not resolve_gets(upstream) and not cdn_gets(upstream)
    assert query(home, "SELECT * FROM files ORDER BY 1, 2, 3") == rows_before
    assert snapshot_tree(home / "blobs") == blobs_before
    assert index_refs(home, "org/b") == {} and query(home, "SELECT COUNT(*) FROM sync_runs") == [(1,)]


# ============================================================================================== 13. datasets
@pytest.mark.timeout(60)
def test_dataset_repo_syncs_and_reads_back_byte_identical(upstream: HubServer, make_config, home: Path) -> None:
    rows = "\n".join(f"{i},{i * i},row {i}" for i in range(20_000)).encode()
    upstream.commit(
        "org/data",
        {"train.csv": rows, "data/train-00000.parquet": secrets.token_bytes(150_000), "README.md": b"# a dataset\n"},
        repo_type="dataset",
    )
    upstream.commit("org/data", {"config.json": b'{"a model": "with the same name"}'})  # a model, same name
    cfg = make_config([{"repo": "org/data", "type": "dataset"}, {"repo": "org/data"}])
    proc = sync(cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = assert_mirrored(upstream, home, "org/data", repo_type="dataset")
    assert set(files) == {"train.csv", "data/train-00000.parquet", "README.md"}
    assert_mirrored(upstream, home, "org/data", repo_type="model")
    assert {r.path.split("/resolve/")[0] for r in upstream.requests if "/resolve/" in r.path} == {
        "/datasets/org/data",
        "/org/data",
    }
    assert set(query(home, "SELECT type, name FROM repos")) == {("dataset", "org/data"), ("model", "org/data")}
    blobs = blob_files(home)
    assert blobs[files["train.csv"][1]].read_bytes() == rows


# ============================================================================================== 14. patterns
@pytest.mark.timeout(60)
def test_patterns_select_files_and_widening_fetches_only_the_new_ones(
    upstream: HubServer, make_config, home: Path
) -> None:
    head = add_minilm(upstream)
    every = set(minilm_package_files())

    def selected(allow: list[str], ignore: list[str]) -> set[str]:
        """huggingface_hub's meaning: fnmatch on the whole path; a trailing '/' means the folder's files."""
        allow = [a + "*" if a.endswith("/") else a for a in allow]
        return {
            p for p in every if any(fnmatchcase(p, a) for a in allow) and not any(fnmatchcase(p, i) for i in ignore)
        }

    narrow = (["1_Pooling/", "config*.json", "modules.json"], ["tokenizer*", "config_*"])
    cfg = make_config([{"repo": MINILM, "allow_patterns": narrow[0], "ignore_patterns": narrow[1]}])
    proc = sync(cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = selected(*narrow)
    assert first == {"1_Pooling/config.json", "config.json", "modules.json"}
    assert not first & {"tokenizer.json", "config_sentence_transformers.json", SAFETENSORS}
    assert sorted(p for _, p in resolve_gets(upstream)) == sorted(first)
    assert not cdn_gets(upstream)
    assert_mirrored(upstream, home, MINILM, only=first)

    wide = (["*.json", "*.txt", "*.safetensors"], ["data_config.json"])
    cfg = make_config([{"repo": MINILM, "allow_patterns": wide[0], "ignore_patterns": wide[1]}])
    upstream.reset_log()
    proc = sync(cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    second = selected(*wide)
    new = second - first
    assert {"tokenizer.json", "vocab.txt", SAFETENSORS} <= new
    assert sorted(p for _, p in resolve_gets(upstream)) == sorted(new)
    assert len(cdn_gets(upstream)) == 1
    assert_mirrored(upstream, home, MINILM, only=second)
    assert index_refs(home, MINILM) == {"main": head}
    wanted = {upstream.file_entry(MINILM, p).blob.sha256 for p in second}
    assert set(blob_files(home)) == wanted, "files left out by the patterns were stored"

    # the same patterns again: unchanged, one request
    upstream.reset_log()
    proc, report = sync_json(cfg)
    assert report["results"][0]["status"] == "unchanged" and upstream.count() == 1
