"""What sync keeps beside the files, against the fake Hub over loopback (real HTTP, real SQLite): ref kinds
(branch, tag, PR) under the names the Hub lists, commit dates, titles, messages, authors and parents, the
repo's creation date; what each costs in requests; and an upstream sending junk for any of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from hubserver import HubServer

from hubmirror.index import Index, open_index
from hubmirror.models import CommitMeta, Repo

pytestmark = pytest.mark.timeout(90)


def sync_json(cfg: Path, *args: str) -> dict[str, Any]:
    proc = run_cli("-c", str(cfg), "sync", "--json", *args, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


@contextmanager
def opened(home: Path, name: str, repo_type: str = "model") -> Iterator[tuple[Index, Repo]]:
    with open_index(home / "index.sqlite", read_only=True) as index:
        repo = index.find_repo(repo_type, name)
        assert repo is not None, name
        yield index, repo


def kinds(home: Path, name: str) -> dict[str, tuple[str, str | None]]:
    with opened(home, name) as (index, repo):
        return {r.name: (r.commit, r.kind) for r in index.refs(repo)}


def meta(home: Path, name: str, sha: str) -> CommitMeta | None:
    with opened(home, name) as (index, repo):
        return index.commit_meta(repo, sha)


def api_paths(upstream: HubServer) -> list[str]:
    return [r.path for r in list(upstream.requests) if r.origin == "api" and "/resolve/" not in r.path]


def date_of(upstream: HubServer, repo: str, sha: str) -> str:
    return upstream.store.require("model", repo).commits[sha].date


# ========================================================================================= ref kinds
def test_refs_are_kept_by_hub_name_with_their_kind(upstream: HubServer, make_config, home: Path) -> None:
    first = upstream.commit("org/k", {"a.txt": b"one\n"}, message="first")
    upstream.tag("org/k", "v1.0", first)
    dev = upstream.commit("org/k", {"b.txt": b"dev\n"}, branch="dev", message="on dev")
    main = upstream.commit("org/k", {"a.txt": b"two\n"}, message="second")
    upstream.tag("org/k", "v2", main)
    pr = upstream.commit("org/k", {"c.txt": b"pr\n"}, branch="refs/pr/1", message="a pull request")
    cfg = make_config(
        [{"repo": "org/k", "revisions": ["main", "v1.0", "refs/heads/dev", "refs/tags/v2", "refs/pr/1", first]}]
    )
    report = sync_json(cfg)
    assert [r["status"] for r in report["results"]] == ["updated"] * 3 + ["unchanged", "updated", "unchanged"]
    assert kinds(home, "org/k") == {
        "main": (main, "branch"),
        "v1.0": (first, "tag"),
        "dev": (dev, "branch"),
        "v2": (main, "tag"),
        "refs/pr/1": (pr, "pr"),
    }
    paths = api_paths(upstream)
    # the two bare names share one listing of the refs, without pull requests; spelled-out refs need none
    assert [p for p in paths if p.endswith("/refs") or "/refs?" in p] == ["/api/models/org/k/refs"]
    # a spelled-out ref goes upstream percent-encoded, as huggingface_hub sends it
    assert "/api/models/org/k/revision/refs%2Ftags%2Fv2" in paths
    assert "/api/models/org/k/revision/refs%2Fheads%2Fdev" in paths
    assert "/api/models/org/k/revision/refs%2Fpr%2F1" in paths

    # the lock file pins the config's spelling; resolve accepts either spelling
    lock = run_cli("-c", str(cfg), "lock", timeout=120)
    assert lock.returncode == 0, lock.stdout + lock.stderr
    pins = {p["revision"]: p["commit"] for p in json.loads((cfg.parent / "hubmirror.lock").read_text())["repos"]}
    assert pins["refs/heads/dev"] == dev and pins["refs/tags/v2"] == main and pins["refs/pr/1"] == pr
    for spelling, sha in (("refs/heads/dev", dev), ("dev", dev), ("refs/tags/v1.0", first)):
        proc = run_cli("-c", str(cfg), "resolve", "org/k", "--revision", spelling)
        assert proc.returncode == 0 and proc.stdout.strip().endswith(sha), (spelling, proc.stdout, proc.stderr)


def test_unchanged_repo_with_a_tag_costs_one_request(upstream: HubServer, make_config, home: Path) -> None:
    sha = upstream.commit("org/t", {"a.txt": b"a\n"})
    upstream.tag("org/t", "v1.0", sha)
    cfg = make_config([{"repo": "org/t", "revisions": ["v1.0"]}])
    sync_json(cfg)
    assert kinds(home, "org/t") == {"v1.0": (sha, "tag")}

    upstream.reset_log()
    report = sync_json(cfg)
    assert report["results"][0]["status"] == "unchanged"
    assert [r.path for r in upstream.requests] == ["/api/models/org/t/revision/v1.0"]
    assert report["requests"] == 1


def test_ref_mirrored_before_kinds_were_kept_costs_one_extra_request_once(
    upstream: HubServer, make_config, home: Path
) -> None:
    sha = upstream.commit("org/old", {"a.txt": b"a\n"})
    upstream.tag("org/old", "v1.0", sha)
    cfg = make_config([{"repo": "org/old", "revisions": ["main", "v1.0"]}])
    sync_json(cfg)
    with closing(sqlite3.connect(home / "index.sqlite")) as conn, conn:
        conn.execute("UPDATE refs SET kind = NULL")  # as a store mirrored before kinds were kept has them

    upstream.reset_log()
    report = sync_json(cfg)
    assert [r["status"] for r in report["results"]] == ["unchanged", "unchanged"]
    assert api_paths(upstream) == [
        "/api/models/org/old/revision/main",
        "/api/models/org/old/refs",
        "/api/models/org/old/revision/v1.0",
    ]
    assert kinds(home, "org/old") == {"main": (sha, "branch"), "v1.0": (sha, "tag")}

    upstream.reset_log()
    sync_json(cfg)
    assert api_paths(upstream) == ["/api/models/org/old/revision/main", "/api/models/org/old/revision/v1.0"]


# ==================================================================================== commit metadata
def test_new_commits_get_title_message_authors_date_and_parent(upstream: HubServer, make_config, home: Path) -> None:
    first = upstream.commit("org/m", {"a.txt": b"one\n"}, message="Add a\n\nThe first file, explained.")
    cfg = make_config([{"repo": "org/m"}])
    upstream.reset_log()
    report = sync_json(cfg)
    assert report["results"][0]["status"] == "updated"
    # a sync that publishes a new commit: revision, refs (a new ref's kind), tree, the commit's entry, files
    assert api_paths(upstream) == [
        "/api/models/org/m/revision/main",
        "/api/models/org/m/tree/" + first + "?recursive=true&expand=false",
        f"/api/models/org/m/commits/{first}?limit=1",
        "/api/models/org/m/refs",
    ]
    assert meta(home, "org/m", first) == CommitMeta(
        parent=None,
        title="Add a",
        message="Add a\n\nThe first file, explained.",
        authors=("tester",),
        date=date_of(upstream, "org/m", first),
    )
    with opened(home, "org/m") as (_, repo):
        assert repo.created_at == upstream.store.require("model", "org/m").created

    second = upstream.commit("org/m", {"b.txt": b"two\n"}, message="Add b")
    upstream.reset_log()
    report = sync_json(cfg)
    assert report["requests"] == 4 + 1  # the four API calls above and one file
    got = meta(home, "org/m", second)
    assert got is not None and (got.parent, got.title, got.date) == (first, "Add b", date_of(upstream, "org/m", second))
    with opened(home, "org/m") as (index, repo):
        assert [(sha, m.title) for sha, m in index.history(repo, second, 10)] == [(second, "Add b"), (first, "Add a")]

    # unchanged: still one request, and no commit listing
    upstream.reset_log()
    sync_json(cfg)
    assert api_paths(upstream) == ["/api/models/org/m/revision/main"]


def test_a_commit_known_from_another_ref_is_not_listed_again(upstream: HubServer, make_config, home: Path) -> None:
    sha = upstream.commit("org/w", {"a.txt": b"a\n", "b.bin": b"b\n"}, message="both")
    upstream.tag("org/w", "v1", sha)
    sync_json(make_config([{"repo": "org/w", "allow_patterns": ["*.txt"]}]))
    upstream.reset_log()
    # other patterns: the same commit is published again with more files; its title is known already
    sync_json(make_config([{"repo": "org/w", "revisions": ["v1"]}]))
    assert upstream.count(path_contains="/commits/") == 0
    assert meta(home, "org/w", sha) is not None and meta(home, "org/w", sha).title == "both"  # type: ignore[union-attr]
    assert kinds(home, "org/w") == {"main": (sha, "branch"), "v1": (sha, "tag")}


# ================================================================================= hostile upstream
def test_junk_dates_and_oversized_metadata_are_dropped(upstream: HubServer, make_config, home: Path) -> None:
    sha = upstream.commit("org/j", {"a.txt": b"a\n"}, message="fine")
    sha_date = date_of(upstream, "org/j", sha)

    def junk_info(info: dict[str, Any]) -> dict[str, Any]:
        return {**info, "lastModified": "yesterday, roughly", "createdAt": "2024-01-01T00:00:00Z" * 1000}

    def junk_commits(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        many = [{"user": f"user{i}"} for i in range(300)]
        return [
            {
                **items[0],
                "title": "t" * 1001,
                "message": "m" * (64 * 1024 + 1),
                "authors": [{"user": "x" * 101}, {"user": 7}, "bob", {"user": "a\x00b"}, *many],
                "date": "2024-02-30T00:00:00Z",
            }
        ]

    upstream.tamper = {"revision": junk_info, "commits": junk_commits}
    report = sync_json(make_config([{"repo": "org/j"}]))
    assert report["results"][0]["status"] == "updated"
    got = meta(home, "org/j", sha)
    assert got is not None
    assert (got.title, got.message, got.date) == (None, None, None)
    assert got.authors == tuple(f"user{i}" for i in range(100))
    with opened(home, "org/j") as (_, repo):
        assert repo.created_at is not None and len(repo.created_at) < 40  # our own date, not upstream's junk
    assert kinds(home, "org/j") == {"main": (sha, "branch")}

    # the date junk never stored; the next (unchanged) sync takes a good one from its one request
    upstream.tamper = {}
    upstream.reset_log()
    sync_json(make_config([{"repo": "org/j"}]))
    assert upstream.count() == 1
    assert meta(home, "org/j", sha).date == sha_date  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "answer",
    [
        {"error": "not a list"},
        "a string",
        [{"id": "0" * 40, "title": "another commit"}],
        [{"id": None}],
        [[["nested"]]],
    ],
    ids=["object", "string", "other-commit", "no-id", "nested"],
)
def test_commit_listing_of_the_wrong_shape_stores_nothing_from_it(
    upstream: HubServer, make_config, home: Path, answer: Any
) -> None:
    sha = upstream.commit("org/s", {"a.txt": b"a\n"}, message="fine")
    upstream.tamper = {"commits": lambda _: answer}
    report = sync_json(make_config([{"repo": "org/s"}]))
    assert report["results"][0]["status"] == "updated"
    # only what the revision answer said (its date) is kept
    assert meta(home, "org/s", sha) == CommitMeta(date=date_of(upstream, "org/s", sha))


def test_oversized_answers_are_refused_unread(upstream: HubServer, make_config, home: Path) -> None:
    sha = upstream.commit("org/big", {"a.txt": b"a\n"}, message="fine")
    filler = [{"id": "f" * 40, "title": "x", "message": "y" * 60_000, "authors": [], "date": None}] * 30
    upstream.tamper = {
        "commits": lambda items: items + filler,  # 1.8 MB: beyond what one commit's entry needs
        "refs": lambda refs: {**refs, "tags": [{"name": "t" * 900, "ref": "x", "targetCommit": sha}] * 10_000},
    }
    report = sync_json(make_config([{"repo": "org/big"}]))
    assert report["results"][0]["status"] == "updated"
    assert meta(home, "org/big", sha) == CommitMeta(date=date_of(upstream, "org/big", sha))
    assert kinds(home, "org/big") == {"main": (sha, None)}


def test_malformed_refs_listing_leaves_kinds_unknown(upstream: HubServer, make_config, home: Path) -> None:
    sha = upstream.commit("org/r", {"a.txt": b"a\n"})
    upstream.tag("org/r", "v1", sha)
    upstream.tamper = {"refs": lambda _: {"branches": "main", "tags": [{"name": 5}, "v1", None]}}
    sync_json(make_config([{"repo": "org/r", "revisions": ["main", "v1"]}]))
    assert kinds(home, "org/r") == {"main": (sha, None), "v1": (sha, None)}
    upstream.tamper = {"refs": lambda _: [1, 2, 3]}
    upstream.reset_log()
    sync_json(make_config([{"repo": "org/r", "revisions": ["main", "v1"]}]))
    assert upstream.count(path_contains="/refs") == 1  # asked again (kinds unknown), once for the repo
    assert kinds(home, "org/r") == {"main": (sha, None), "v1": (sha, None)}


def test_server_errors_on_refs_and_commits_do_not_fail_the_sync(upstream: HubServer, make_config, home: Path) -> None:
    sha = upstream.commit("org/e", {"a.txt": b"a\n"}, message="fine")
    cfg = make_config([{"repo": "org/e"}], upstream={"max_retries": 3})
    upstream.faults.set(rate=1.0, kinds=["500"], paths="/refs")
    for _ in range(3):  # every attempt the client makes at an optional request (fewer than max_retries)
        upstream.faults.once("500", path_contains="/commits/")
    proc = run_cli("-c", str(cfg), "sync", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "could not read the refs of model org/e" in proc.stderr
    assert "could not read commit" in proc.stderr
    assert {r.status for r in upstream.requests if "/refs" in r.path or "/commits/" in r.path} == {500}
    assert upstream.count(path_contains="/refs") == upstream.count(path_contains="/commits/") == 3
    assert meta(home, "org/e", sha) == CommitMeta(date=date_of(upstream, "org/e", sha))
    assert kinds(home, "org/e") == {"main": (sha, None)}

    # upstream well again: the unknown kind is asked once more and kept
    upstream.faults.clear()
    upstream.reset_log()
    sync_json(cfg)
    assert api_paths(upstream) == ["/api/models/org/e/revision/main", "/api/models/org/e/refs"]
    assert kinds(home, "org/e") == {"main": (sha, "branch")}


def test_upstream_without_refs_and_commits_endpoints(upstream: HubServer, make_config, home: Path) -> None:
    """A hub that answers 404 for both (an older internal hub): the sync mirrors as before, quietly."""
    sha = upstream.commit("org/n", {"a.txt": b"a\n"})
    upstream.routes_off = {"refs", "commits"}
    proc = run_cli("-c", str(make_config([{"repo": "org/n"}])), "sync", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "could not read" not in proc.stderr, proc.stderr
    assert upstream.count(path_contains="/refs") == upstream.count(path_contains="/commits/") == 1  # not retried
    assert meta(home, "org/n", sha) == CommitMeta(date=date_of(upstream, "org/n", sha))
    assert kinds(home, "org/n") == {"main": (sha, None)}


# ============================================================================ bundles and HF caches
def _rewrite_records(bundle: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Edit a directory bundle's records and re-sign its manifest the way an exporter would."""
    records = bundle / "records.jsonl"
    lines = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    data = b"".join(json.dumps(change(item), sort_keys=True).encode() + b"\n" for item in lines)
    records.write_bytes(data)
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    manifest.pop("digest")
    manifest["records"].update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest["digest"] = hashlib.sha256(canonical).hexdigest()
    (bundle / "MANIFEST.json").write_text(json.dumps(manifest))


def test_bundles_carry_commit_metadata_ref_kinds_and_repo_dates(
    upstream: HubServer, make_config, home: Path, tmp_path: Path
) -> None:
    first = upstream.commit("org/b", {"a.txt": b"a\n"}, message="First\n\nbody")
    upstream.tag("org/b", "v1", first)
    sync_json(make_config([{"repo": "org/b", "revisions": ["main", "v1"]}]))
    second = upstream.commit("org/b", {"b.txt": b"b\n"}, message="Second")
    pr = upstream.commit("org/b", {"c.txt": b"c\n"}, branch="refs/pr/2", message="Proposal")
    sync_json(make_config([{"repo": "org/b", "revisions": ["v1", "main", "refs/pr/2"]}]))
    here = {sha: meta(home, "org/b", sha) for sha in (first, second, pr)}
    assert here[second] is not None and here[second].parent == first and here[pr].title == "Proposal"  # type: ignore[union-attr]

    bundle = tmp_path / "bundle"
    proc = run_cli("--home", str(home), "export", str(bundle))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    far = tmp_path / "far"
    proc = run_cli("--home", str(far), "import", str(bundle))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {sha: meta(far, "org/b", sha) for sha in here} == here
    assert (
        kinds(far, "org/b")
        == kinds(home, "org/b")
        == {
            "v1": (first, "tag"),
            "main": (second, "branch"),
            "refs/pr/2": (pr, "pr"),
        }
    )
    with opened(far, "org/b") as (_, far_repo), opened(home, "org/b") as (_, repo):
        assert far_repo.created_at == repo.created_at == upstream.store.require("model", "org/b").created

    # a bundle from before metadata was carried imports as before; a damaged field is dropped, not stored
    def old_style(item: dict[str, Any]) -> dict[str, Any]:
        item.pop("created_at", None)
        if item.get("sha") == first:
            item.pop("meta")
        if item.get("sha") == second:
            item["meta"] = {"title": "t" * 5000, "parent": "not a sha", "authors": "x", "date": "soon"}
        return item

    _rewrite_records(bundle, old_style)
    older = tmp_path / "older"
    proc = run_cli("--home", str(older), "import", str(bundle))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert meta(older, "org/b", first) == CommitMeta()
    assert meta(older, "org/b", second) == CommitMeta()
    assert meta(older, "org/b", pr) == here[pr]
    assert kinds(older, "org/b") == kinds(home, "org/b")

    # importing a full bundle afterwards fills in what the older one lacked
    again = tmp_path / "bundle-full"
    proc = run_cli("--home", str(home), "export", str(again))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_cli("--home", str(older), "import", str(again))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {sha: meta(older, "org/b", sha) for sha in here} == here


def test_hf_cache_import_keeps_pr_refs_as_pr(upstream: HubServer, make_config, home: Path, tmp_path: Path) -> None:
    sha = upstream.commit("org/h", {"a.txt": b"a\n"})
    pr = upstream.commit("org/h", {"b.txt": b"b\n"}, branch="refs/pr/1")
    cfg = make_config([{"repo": "org/h", "revisions": ["main", "refs/pr/1"]}])
    sync_json(cfg)
    view = tmp_path / "view"
    proc = run_cli("--home", str(home), "hf-cache", "--dir", str(view))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (view / "models--org--h" / "refs" / "refs" / "pr" / "1").read_text() == pr
    other = tmp_path / "other"
    proc = run_cli("--home", str(other), "import-hf-cache", str(view))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # a cache does not say whether main is a branch or a tag; a PR ref says what it is
    assert kinds(other, "org/h") == {"main": (sha, None), "refs/pr/1": (pr, "pr")}
