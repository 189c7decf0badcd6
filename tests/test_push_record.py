"""How a push mirrors the commit it made: published from what the push knows (its base's tree plus what it
committed), never by listing the new commit again, and equal to what upstream has (the fake Hub is the oracle:
its ``list_tree`` of the branch must equal the index's record, path by path, size, oid and LFS sha256).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import write_tree
from hubserver import HubServer

import hubmirror.push._ingest as ingest_mod
import hubmirror.sync._syncer as syncer_mod
from hubmirror.errors import StoreError, UpstreamUnavailableError
from hubmirror.hub import HubWriter, UpstreamClient
from hubmirror.index._sqlite import SQLiteIndex
from hubmirror.mirror import Mirror
from hubmirror.models import Backends, TreeEntry
from hubmirror.push import PushResult

pytestmark = pytest.mark.timeout(120)

TOKEN = "hf_write_token_for_tests"
CARD = "---\nlanguage: en\nlicense: apache-2.0\ntags:\n- test\n---\n# A model\n"


def push(upstream: HubServer, home: Path, folder: Path, repo: str, **kw: Any) -> PushResult:
    with Mirror(home) as mirror, UpstreamClient(upstream.url, TOKEN, max_retries=1) as client:
        return mirror.pusher(client).push(folder, repo, **kw)


def upstream_tree(upstream: HubServer, repo: str) -> dict[str, TreeEntry]:
    with UpstreamClient(upstream.url, TOKEN, max_retries=1) as client:
        head = client.revision_info("model", repo, "main").sha
        return {e.path: e for e in client.list_tree("model", repo, head)}


def mirrored_tree(home: Path, repo: str, commit: str) -> dict[str, TreeEntry]:
    """The commit as the index records it, in the listing's terms."""
    with Mirror(home) as mirror:
        found = mirror.index.find_repo("model", repo)
        assert found is not None and mirror.index.ref(found, "main") == commit
        return {
            f.path: TreeEntry(f.path, f.size, f.git_oid, f.sha256 if f.lfs else None)
            for f in mirror.index.files(found, commit)
        }


def assert_mirrors_upstream(upstream: HubServer, home: Path, repo: str, commit: str) -> None:
    """The local record equals upstream's listing, and every file's bytes are in the store and the view."""
    assert upstream.head(repo) == commit
    expected = upstream_tree(upstream, repo)
    assert mirrored_tree(home, repo, commit) == expected
    snapshot = home / "hf" / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / commit
    for path in expected:
        data = (snapshot / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == hashlib.sha256(upstream.file_bytes(repo, path)).hexdigest()


def requests_after(upstream: HubServer, start: int) -> list[str]:
    return [f"{e.method} {e.path.split('?')[0]}" for e in upstream.requests[start:]]


def test_changes_and_deletes_are_recorded_as_upstream_lists_them(
    upstream: HubServer, home: Path, tmp_path: Path
) -> None:
    upstream.lfs_threshold = 1024  # weights go by LFS, the rest inline
    folder = write_tree(
        tmp_path / "model",
        {
            "README.md": CARD,
            "config.json": "{}\n",
            "weights.bin": os.urandom(8192),
            "sub/a.txt": "a\n",
            "sub/b.txt": "b\n",
            "old.bin": os.urandom(4096),
        },
    )
    first = push(upstream, home, folder, "me/oracle", create=True)
    assert first.status == "pushed" and first.commit and not first.warnings
    assert_mirrors_upstream(upstream, home, "me/oracle", first.commit)

    # a change of each kind: an LFS file replaced, a regular file changed, one added (LFS), two deleted
    (folder / "weights.bin").write_bytes(os.urandom(9000))
    (folder / "config.json").write_text('{"changed": true}\n')
    (folder / "new.bin").write_bytes(os.urandom(5000))
    (folder / "sub" / "b.txt").unlink()
    (folder / "old.bin").unlink()
    start = len(upstream.requests)
    second = push(upstream, home, folder, "me/oracle", delete_remote=True, message="second")
    assert second.status == "pushed" and second.commit and not second.warnings
    assert second.deleted == ["old.bin", "sub/b.txt"]
    # recorded from what the push knew: the new commit is not listed, nor its ref kinds asked
    made = requests_after(upstream, start)
    assert sum("/tree/" in r for r in made) == 1 and not any(r.endswith("/refs") for r in made), made
    assert_mirrors_upstream(upstream, home, "me/oracle", second.commit)
    with Mirror(home) as mirror:
        repo = mirror.index.find_repo("model", "me/oracle")
        assert repo is not None
        meta = mirror.index.commit_meta(repo, second.commit)
        assert meta is not None and (meta.parent, meta.title) == (first.commit, "second")
        assert meta.date is not None  # upstream's account of the commit, asked while it was published
        assert {r.name: r.kind for r in mirror.index.refs(repo)} == {"main": "branch"}


def test_a_base_this_store_never_mirrored_takes_bytes_from_the_folder_and_the_rest_from_upstream(
    upstream: HubServer, tmp_path: Path
) -> None:
    """Another machine pushed first and someone committed a file this folder lacks: the folder's files are
    copied from the folder, only the file it lacks is downloaded, and the record equals upstream's."""
    upstream.lfs_threshold = 1024
    folder = write_tree(tmp_path / "model", {"README.md": CARD, "a.txt": "a\n", "weights.bin": os.urandom(8192)})
    push(upstream, tmp_path / "elsewhere", folder, "me/shared", create=True)
    upstream.commit("me/shared", {"theirs.txt": b"their file\n", "their.bin": os.urandom(4096)}, message="theirs")
    (folder / "a.txt").write_text("a, changed\n")

    home = tmp_path / "here"
    start = len(upstream.requests)
    result = push(upstream, home, folder, "me/shared")
    assert result.status == "pushed" and result.commit and not result.warnings
    assert_mirrors_upstream(upstream, home, "me/shared", result.commit)
    downloads = [r for r in requests_after(upstream, start) if "/resolve/" in r or r.startswith("GET /cdn")]
    fetched = {r.rsplit("/", 1)[-1] for r in downloads if "/resolve/" in r}
    assert {"theirs.txt", "their.bin"} <= fetched <= {"theirs.txt", "their.bin", ".gitattributes"}
    assert not any(r.endswith(("/README.md", "/a.txt", "/weights.bin")) for r in downloads), downloads

    # up to date, and that commit already mirrored: nothing more to record, no request beyond the diff
    start = len(upstream.requests)
    again = push(upstream, home, folder, "me/shared")
    assert again.status == "up to date" and not again.warnings
    assert [r.split(" ")[0] for r in requests_after(upstream, start)] == ["GET", "GET"]


def test_a_file_rewritten_before_it_was_copied_is_taken_from_upstream(
    upstream: HubServer, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store gets what was committed, not what the folder holds by the time it is copied."""
    upstream.lfs_threshold = 1024
    pushed = os.urandom(8192)
    folder = write_tree(tmp_path / "model", {"README.md": CARD, "weights.bin": pushed})
    committed = threading.Event()
    real_commit, real_copy = HubWriter.commit, ingest_mod.Ingester._copy

    def commit_then_signal(self: HubWriter, *args: Any, **kw: Any) -> Any:
        done = real_commit(self, *args, **kw)
        committed.set()
        return done

    def copy_after_a_rewrite(self: Any, f: Any) -> bool:
        if f.path == "weights.bin":
            assert committed.wait(30)
            f.source.write_bytes(os.urandom(8192))  # the training job writes the next checkpoint
        return real_copy(self, f)

    monkeypatch.setattr(HubWriter, "commit", commit_then_signal)
    monkeypatch.setattr(ingest_mod.Ingester, "_copy", copy_after_a_rewrite)
    start = len(upstream.requests)
    result = push(upstream, home, folder, "me/rewritten", create=True)
    assert result.status == "pushed" and result.commit and not result.warnings
    assert any(r.endswith("/resolve/" + result.commit + "/weights.bin") for r in requests_after(upstream, start))
    assert_mirrors_upstream(upstream, home, "me/rewritten", result.commit)
    with Mirror(home) as mirror:
        assert mirror.store.read_blob(hashlib.sha256(pushed).hexdigest()) == pushed


def test_commit_details_unreadable_upstream_records_what_was_sent(
    upstream: HubServer, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any, **kw: Any) -> Any:
        raise UpstreamUnavailableError("upstream answered 503 for the commit listing")

    monkeypatch.setattr(UpstreamClient, "commit_meta", unavailable)
    folder = write_tree(tmp_path / "model", {"README.md": CARD, "a.txt": "a\n"})
    result = push(upstream, home, folder, "me/nodetails", create=True, message="first upload")
    assert result.status == "pushed" and result.commit and not result.warnings
    assert_mirrors_upstream(upstream, home, "me/nodetails", result.commit)
    with Mirror(home) as mirror:
        repo = mirror.index.find_repo("model", "me/nodetails")
        assert repo is not None
        meta = mirror.index.commit_meta(repo, result.commit)
        assert meta is not None and meta.title == "first upload" and meta.authors == ()


def test_details_that_cannot_be_stored_leave_the_commit_mirrored_and_say_only_that(
    upstream: HubServer, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the last write (upstream's authors and date) fails: the push is recorded, and the warning says
    what is missing instead of "not recorded"."""

    def index_full(*args: Any, **kw: Any) -> Any:
        raise StoreError("no space left on device: the index")

    monkeypatch.setattr(SQLiteIndex, "set_commit_meta", index_full)
    folder = write_tree(tmp_path / "model", {"README.md": CARD, "a.txt": "a\n"})
    with caplog.at_level(logging.WARNING):
        result = push(upstream, home, folder, "me/detailless", create=True, message="first upload")
    assert result.status == "pushed" and result.commit and not result.warnings
    assert_mirrors_upstream(upstream, home, "me/detailless", result.commit)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and "pushed and mirrored" in said[0] and "no space left" in said[0], said
    with Mirror(home) as mirror:
        repo = mirror.index.find_repo("model", "me/detailless")
        assert repo is not None
        meta = mirror.index.commit_meta(repo, result.commit)
        assert meta is not None and meta.title == "first upload"  # what the push sent is kept


def test_recording_failure_is_a_warning_and_the_next_push_records_it(
    upstream: HubServer, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_tree(tmp_path / "model", {"README.md": CARD, "a.txt": "a\n"})
    real = syncer_mod.Syncer.publish_tree

    def disk_full(*args: Any, **kw: Any) -> Any:
        raise StoreError("no space left on device: the index")

    monkeypatch.setattr(syncer_mod.Syncer, "publish_tree", disk_full)
    result = push(upstream, home, folder, "me/unrecorded", create=True)
    assert result.status == "pushed" and result.commit
    assert result.warnings == ["pushed, but not recorded in the local mirror: no space left on device: the index"]

    monkeypatch.setattr(syncer_mod.Syncer, "publish_tree", real)
    again = push(upstream, home, folder, "me/unrecorded")
    assert again.status == "up to date" and not again.warnings
    assert_mirrors_upstream(upstream, home, "me/unrecorded", result.commit)


def test_the_view_lends_unchanged_links_from_the_parent_snapshot(
    upstream: HubServer, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new snapshot hard-links the parent's symlinks where they say the same (creating symlinks
    dominated a small change of a big repo); changed files get their own; a filesystem that refuses to
    link a symlink gets symlinks throughout."""
    folder = write_tree(tmp_path / "model", {"README.md": CARD, "a.txt": "a\n", "sub/b.txt": "b\n", "c.txt": "c\n"})
    first = push(upstream, home, folder, "me/view", create=True)
    (folder / "a.txt").write_text("a2\n")
    second = push(upstream, home, folder, "me/view")
    assert first.commit and second.commit
    snapshots = home / "hf" / "hub" / "models--me--view" / "snapshots"
    old, new = snapshots / first.commit, snapshots / second.commit
    for rel in ("README.md", "sub/b.txt", "c.txt"):
        assert os.lstat(new / rel).st_ino == os.lstat(old / rel).st_ino  # one symlink, two names
        assert os.readlink(new / rel) == os.readlink(old / rel)
    assert os.lstat(new / "a.txt").st_ino != os.lstat(old / "a.txt").st_ino
    assert (new / "a.txt").read_text() == "a2\n" and (old / "a.txt").read_text() == "a\n"
    assert_mirrors_upstream(upstream, home, "me/view", second.commit)

    def refuse(*args: Any, **kw: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)  # (the view's blobs fall back to symlinks too)
    (folder / "c.txt").write_text("c2\n")
    third = push(upstream, home, folder, "me/view")
    assert third.commit and not third.warnings
    latest = snapshots / third.commit
    assert os.lstat(latest / "sub/b.txt").st_ino != os.lstat(new / "sub/b.txt").st_ino
    assert {p: (latest / p).read_text() for p in ("a.txt", "sub/b.txt", "c.txt")} == {
        "a.txt": "a2\n",
        "sub/b.txt": "b\n",
        "c.txt": "c2\n",
    }


def test_a_push_into_a_store_in_object_storage(upstream: HubServer, s3_bucket: Any, tmp_path: Path) -> None:
    """Small copies go up as one batch, a large one streams up on its own (no multipart upload is left
    behind), and the mirrored commit equals upstream's."""
    upstream.lfs_threshold = 1024
    big = os.urandom(9 * 1024 * 1024)  # over the push's batch limit and the bucket's part size
    folder = write_tree(tmp_path / "model", {"README.md": CARD, "a.txt": "a\n", "sub/b.txt": "b\n", "big.bin": big})
    home = tmp_path / "home"
    backends = Backends(store_url=s3_bucket.url, endpoint_url=s3_bucket.endpoint_url)
    with Mirror(home, backends=backends) as mirror, UpstreamClient(upstream.url, TOKEN, max_retries=1) as client:
        result = mirror.pusher(client).push(folder, "me/in-s3", create=True)
        assert result.status == "pushed" and result.commit and not result.warnings
        assert mirror.store.read_blob(hashlib.sha256(big).hexdigest()) == big
        assert mirror.store.read_blob(hashlib.sha256(b"b\n").hexdigest()) == b"b\n"
        bucket = mirror.store.blobs.client  # type: ignore[attr-defined]
        assert bucket.list_multipart_uploads(Bucket=s3_bucket.bucket).get("Uploads", []) == []
    with Mirror(home, backends=backends) as mirror:
        found = mirror.index.find_repo("model", "me/in-s3")
        assert found is not None
        recorded = {
            f.path: TreeEntry(f.path, f.size, f.git_oid, f.sha256 if f.lfs else None)
            for f in mirror.index.files(found, result.commit)
        }
    assert recorded == upstream_tree(upstream, "me/in-s3")
