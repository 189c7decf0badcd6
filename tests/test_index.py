"""The index contract, run against both backends: SQLite (a file) and PostgreSQL (a real 15 cluster from
tests/pgkit.py). Every query group (repos and aliases, publish, refs and their history, history, discussions,
pushbook, transfer, upkeep) must answer the same on both, including the corners where the two databases
differ: text order (bytes, not the locale), 64-bit sizes, sums, ids from RETURNING, insertion order, upserts,
unenforced references, and ``?``/``%`` inside values."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hubmirror.errors import StoreError
from hubmirror.index import CommitKey, ExportRecord, Index, PushBook, open_index
from hubmirror.models import Access, BlobRecord, CommitMeta, FileRecord

pytestmark = pytest.mark.timeout(120)

A, B, C = "a" * 40, "b" * 40, "c" * 40


def sha(n: int) -> str:
    return f"{n:064x}"


def sha1(n: int) -> str:
    return f"{n:040x}"


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    if request.param == "sqlite":
        return tmp_path / "index.sqlite"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def index(location: str | Path) -> Iterator[Index]:
    with open_index(location) as opened:
        yield opened


def publish(index: Index, name: str, commit: str, files: dict[str, tuple[int, int]], **kw) -> None:
    """Publish ``commit`` of model ``name`` with files path → (blob number, size)."""
    records = [FileRecord(p, size, sha(n), sha1(n), size > 100) for p, (n, size) in files.items()]
    blobs = [BlobRecord(sha(n), size, sha1(n)) for n, size in files.values()]
    index.publish_commit("model", name, commit, records, blobs, source=kw.pop("source", "sync"), **kw)


# ============================================================================ repos, aliases, publish
def test_publish_find_and_list_in_byte_order(index: Index) -> None:
    for name in ("org/b", "Org/Z", "org/_x", "org/a"):
        publish(index, name, A, {"x": (1, 1)})
    assert [r.name for r in index.list_repos()] == ["Org/Z", "org/_x", "org/a", "org/b"]  # bytes, not the locale
    assert [r.name for r in index.list_repos("dataset")] == []
    repo = index.find_repo("model", "org/a")
    assert repo is not None and repo.name == "org/a" and not repo.private and repo.gated is None
    assert index.find_repo("model", "ORG/A") is None  # exact, like SQLite's =
    assert index.find_repo("dataset", "org/a") is None
    ids = [r.id for r in index.list_repos()]
    assert len(set(ids)) == 4 and all(isinstance(i, int) for i in ids)


def test_files_widen_and_sizes_beyond_32_bits(index: Index) -> None:
    huge = 5 * 2**32 + 7
    publish(index, "org/m", A, {"b.bin": (1, huge), "a.txt": (2, 3)}, filter_key="k1")
    publish(index, "org/m", A, {"c/d.txt": (3, 4), "a.txt": (4, 5)}, filter_key="k2")  # widens, replaces a.txt
    repo = index.find_repo("model", "org/m")
    assert repo is not None
    files = index.files(repo, A)
    assert [(f.path, f.size, f.sha256) for f in files] == [
        ("a.txt", 5, sha(4)),
        ("b.bin", huge, sha(1)),
        ("c/d.txt", 4, sha(3)),
    ]
    assert index.commit_complete("model", "org/m", A)
    assert index.commit_complete("model", "org/m", A, "k1") and index.commit_complete("model", "org/m", A, "k2")
    assert not index.commit_complete("model", "org/m", A, "k3")
    assert not index.commit_complete("model", "org/m", B)
    [record] = index.commits(repo)
    assert (record.sha, record.source, record.files, record.size) == (A, "sync", 3, huge + 9)
    assert isinstance(record.size, int)
    stats = index.stats()
    assert (stats.blobs, stats.repos, stats.commits) == (4, 1, 1)
    assert stats.stored_bytes == huge + 3 + 4 + 5 and isinstance(stats.stored_bytes, int)
    assert stats.logical_bytes == huge + 9 and isinstance(stats.logical_bytes, int)


def test_values_with_question_marks_and_percent_signs(index: Index) -> None:
    odd = "dir?/100% 'quoted' ?.txt"
    publish(index, "org/odd", A, {odd: (1, 2), "ünïcødé/файл.txt": (2, 3)})
    repo = index.find_repo("model", "org/odd")
    assert repo is not None
    assert {f.path for f in index.files(repo, A)} == {odd, "ünïcødé/файл.txt"}
    index.set_meta("k?%", "v '%s' ?")
    assert index.get_meta("k?%") == "v '%s' ?"


def test_access_flags_and_create_rename_delete(index: Index) -> None:
    publish(index, "org/p", A, {"x": (1, 1)}, access=Access(True, "manual"))
    repo = index.find_repo("model", "org/p")
    assert repo is not None and repo.private and repo.gated == "manual"
    assert index.set_access("model", "org/p", Access(False, None))
    assert not index.set_access("model", "org/p", Access(False, None))
    assert not index.set_access("model", "org/none", Access(True))
    assert index.create_repo("model", "me/new", private=True)
    assert not index.create_repo("model", "me/new", private=False)
    new = index.find_repo("model", "me/new")
    assert new is not None and new.private
    assert index.rename_repo(new, "me/renamed")
    assert not index.rename_repo(new, "org/p")  # taken
    renamed = index.find_repo("model", "me/new")  # the old name is an alias now
    assert renamed is not None and renamed.name == "me/renamed" and renamed.id == new.id
    assert index.aliases(renamed) == ["me/new"]
    index.delete_repo(renamed)
    assert index.find_repo("model", "me/renamed") is None and index.find_repo("model", "me/new") is None


def test_alias_moves_commits_and_keeps_the_canonical_copy(index: Index) -> None:
    publish(index, "old/name", A, {"x": (1, 1)}, filter_key="f")
    publish(index, "old/name", B, {"y": (2, 1)})
    index.set_ref("model", "old/name", "main", B)
    publish(index, "new/name", B, {"z": (3, 1)})  # the canonical repo has commit B already, other files
    index.add_alias("model", "old/name", "new/name")
    repo = index.find_repo("model", "old/name")
    assert repo is not None and repo.name == "new/name"
    assert index.aliases(repo) == ["old/name"]
    assert sorted(index.commit_shas(repo)) == [A, B]
    assert [f.path for f in index.files(repo, A)] == ["x"]
    assert [f.path for f in index.files(repo, B)] == ["y", "z"]  # B's rows joined (a file row is one path)
    assert (index.file_count(repo, A), index.file_count(repo, B), index.file_count(repo, "0" * 40)) == (1, 2, 0)
    assert index.commit_complete("model", "new/name", A, "f")
    assert index.ref(repo, "main") == B
    assert [r.name for r in index.list_repos()] == ["new/name"]
    index.add_alias("model", "old/name", "new/name")  # again: nothing changes
    assert index.aliases(repo) == ["old/name"]


def test_commit_meta_and_history(index: Index) -> None:
    publish(index, "org/h", A, {"x": (1, 1)}, meta=CommitMeta(None, "first", "m1", ("ann",), "2024-01-01T00:00:00Z"))
    publish(index, "org/h", B, {"x": (1, 1)}, meta=CommitMeta(A, "second", None, (), None))
    publish(index, "org/h", C, {"x": (1, 1)}, meta=CommitMeta(B, "third", None, ("bob", "cy"), None))
    repo = index.find_repo("model", "org/h")
    assert repo is not None
    assert [s for s, _ in index.history(repo, C, 10)] == [C, B, A]
    assert [s for s, _ in index.history(repo, C, 2)] == [C, B]
    assert index.history(repo, "f" * 40, 10) == []
    meta = index.commit_meta(repo, A)
    assert meta is not None and (meta.title, meta.message, meta.authors, meta.date) == (
        "first",
        "m1",
        ("ann",),
        "2024-01-01T00:00:00Z",
    )
    publish(index, "org/h", A, {"x": (1, 1)}, meta=CommitMeta(None, "ignored", None, (), None))  # keeps what it knew
    assert index.commit_meta(repo, A).title == "first"  # type: ignore[union-attr]
    index.set_commit_meta(repo, A, CommitMeta(None, "replaced", None, (), None))
    assert index.commit_meta(repo, A).title == "replaced"  # type: ignore[union-attr]
    assert index.commit_meta(repo, B).date is None  # type: ignore[union-attr]  # as recorded: not known
    assert index.commit_meta(repo, B, shown=True).date  # type: ignore[union-attr]  # shown: dated when mirrored
    assert index.commit_meta(repo, "f" * 40) is None


def test_cards_uploads_and_local_repos(index: Index) -> None:
    publish(index, "org/c", A, {"x": (1, 1)}, card='{"license": "mit"}')
    repo = index.find_repo("model", "org/c")
    assert repo is not None
    assert index.card(repo, A) == '{"license": "mit"}'
    index.set_card(repo, A, "")
    assert index.card(repo, A) == ""
    assert index.card(repo, B) is None
    assert not index.is_local(repo)
    publish(index, "me/local", A, {"x": (1, 1)}, source="push")
    local = index.find_repo("model", "me/local")
    assert local is not None and index.is_local(local)
    index.record_upload(sha(9), "alice")
    index.record_upload(sha(9), "alice")  # again: replaced, not duplicated
    assert index.uploaded_by(sha(9), "alice") and not index.uploaded_by(sha(9), "bob")
    assert {r.name for r in index.repos_using_blob(sha(1))} == {"me/local", "org/c"}


# ============================================================================ blobs
def test_blob_lookups_in_chunks(index: Index) -> None:
    index.add_blobs([BlobRecord(sha(n), n, sha1(n)) for n in range(1, 1201)])
    index.add_blobs([BlobRecord(sha(5000), 1, None)])
    index.add_blobs([BlobRecord(sha(5000), 1, sha1(5000))])  # a later sighting fills the git sha1 in
    assert index.has_blob(sha(7)) and not index.has_blob(sha(99999))
    assert index.sha256_for_git_sha1(sha1(7)) == sha(7)
    assert index.sha256_for_git_sha1(sha1(5000)) == sha(5000)
    asked = [sha1(n) for n in range(1, 1301)] + [sha1(3)]  # > 2 chunks of 500, some unknown, a duplicate
    found = index.sha256s_for_git_sha1s(asked)
    assert len(found) == 1200 and found[sha1(1200)] == sha(1200)
    sizes = index.blob_sizes(sha(n) for n in range(1, 1301))
    assert len(sizes) == 1200 and sizes[sha(600)] == 600
    assert len(index.blob_rows()) == 1201
    assert index.all_blob_sha256s() == sorted(index.blob_rows())


# ============================================================================ refs
def test_refs_move_keep_kind_and_history(index: Index) -> None:
    publish(index, "org/r", A, {"x": (1, 1)})
    publish(index, "org/r", B, {"x": (1, 1)})
    repo = index.find_repo("model", "org/r")
    assert repo is not None
    same_second = "2025-01-01T00:00:00+00:00"
    assert index.set_ref("model", "org/r", "main", A, kind="branch", at=same_second)
    assert not index.set_ref("model", "org/r", "main", A)
    assert index.set_ref("model", "org/r", "main", B, at=same_second)  # same timestamp: insertion order decides
    assert index.set_ref("model", "org/r", "v1", A, kind="tag")
    assert [(r.name, r.commit, r.kind) for r in index.refs(repo)] == [("main", B, "branch"), ("v1", A, "tag")]
    assert index.ref_history(repo) == {"main": [B, A], "v1": [A]}
    assert index.set_ref("model", "org/r", "main", A, at=same_second)
    assert index.ref_history(repo)["main"] == [A, B]
    assert not index.set_ref("model", "org/r", "v1", A, kind="branch")  # same commit, kind changes
    assert index.refs(repo)[1].kind == "branch"
    with pytest.raises(KeyError):
        index.set_ref("model", "org/none", "main", A)
    assert index.delete_ref(repo, "v1") and not index.delete_ref(repo, "v1")
    assert index.ref(repo, "v1") is None and index.ref(repo, "main") == A


# ============================================================================ history and meta
def test_sync_runs_and_meta(index: Index) -> None:
    first = index.start_sync_run()
    second = index.start_sync_run()
    assert second > first
    index.finish_sync_run(
        first,
        outcome="ok",
        repos_ok=2,
        repos_failed=0,
        files_fetched=3,
        bytes_fetched=6 * 2**32,
        files_deduped=1,
        bytes_deduped=2,
        requests=9,
        duration=1.5,
        errors=[{"repo": "x", "error": "y"}],
    )
    runs = index.sync_runs(10)
    assert [r.id for r in runs] == [second, first]
    assert runs[1].outcome == "ok" and runs[1].bytes_fetched == 6 * 2**32 and runs[1].duration == 1.5
    assert runs[1].errors == [{"repo": "x", "error": "y"}] and runs[0].finished_at is None
    assert index.get_meta("k") is None
    index.set_meta("k", "1")
    index.set_meta("k", "2")
    assert index.get_meta("k") == "2"
    index.set_meta("k", None)
    assert index.get_meta("k") is None


# ============================================================================ discussions
def test_discussions_number_per_repo_and_keep_events_in_order(index: Index) -> None:
    publish(index, "me/d", A, {"x": (1, 1)}, source="push")
    publish(index, "me/e", A, {"x": (1, 1)}, source="push")
    d, e = index.find_repo("model", "me/d"), index.find_repo("model", "me/e")
    assert d is not None and e is not None
    assert index.open_discussion(d.id, "one", "ann", is_pr=False, base=None, description="hello") == 1
    assert index.open_discussion(d.id, "two", None, is_pr=True, base="main", description="pr") == 2
    assert index.open_discussion(e.id, "other", "bob", is_pr=False, base=None, description="") == 1
    event = index.add_event(d.id, 2, "status-change", "ann", {"status": "merged", "mergeCommit": B})
    index.add_event(d.id, 2, "title-change", "ann", {"from": "two", "to": "Two"})
    index.add_event(d.id, 2, "comment", "cy", {"content": "?%"})
    pr = index.discussion(d.id, 2)
    assert pr is not None and (pr.title, pr.status, pr.merge_commit, pr.is_pr, pr.base) == (
        "Two",
        "merged",
        B,
        True,
        "main",
    )
    assert [x.num for x in index.discussions(d.id)] == [2, 1]
    events = index.discussion_events(d.id, 2)
    assert [x.type for x in events] == ["comment", "status-change", "title-change", "comment"]
    assert events[1].id == event.id and events[-1].data == {"content": "?%"}
    assert index.discussion(d.id, 9) is None


def test_writers_take_turns_on_read_then_write(location: str | Path, index: Index) -> None:
    """Numbers come from MAX(num)+1 read inside the write transaction: with writers on four connections at
    once, none may act on a snapshot another moved past (no duplicate numbers, no failure)."""
    publish(index, "me/busy", A, {"x": (1, 1)}, source="push")
    repo = index.find_repo("model", "me/busy")
    assert repo is not None
    got: list[int] = []
    failures: list[BaseException] = []

    def work() -> None:
        with open_index(location) as mine:
            for _ in range(15):
                try:
                    got.append(mine.open_discussion(repo.id, "t", None, is_pr=False, base=None, description=""))
                except BaseException as exc:  # collected and asserted below
                    failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not failures, failures[:3]
    assert sorted(got) == list(range(1, 61))


# ============================================================================ transactions and changes
def test_atomic_rolls_back_and_nests(index: Index) -> None:
    with pytest.raises(RuntimeError), index.atomic():
        index.set_meta("a", "1")
        with index.atomic():
            index.set_meta("b", "2")
        raise RuntimeError("boom")
    assert index.get_meta("a") is None and index.get_meta("b") is None
    with index.atomic(), index.atomic():
        index.set_meta("a", "1")
    assert index.get_meta("a") == "1"


def test_data_version_moves_on_every_commit_from_anyone(location: str | Path, index: Index) -> None:
    before = index.data_version()
    index.find_repo("model", "x")
    assert index.data_version() == before  # reads change nothing
    index.set_meta("k", "1")
    mine = index.data_version()
    assert mine != before
    with open_index(location) as other:
        other.set_meta("k", "2")
    assert index.data_version() not in (before, mine)
    worker = index.for_thread(durable=False)
    try:
        version = index.data_version()
        worker.add_blobs([BlobRecord(sha(1), 1, None)])
        assert index.data_version() != version and index.has_blob(sha(1))
    finally:
        worker.close()


# ============================================================================ pushbook
def test_pushbook_cached_hashes_is_one_query_per_chunk(index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1,201-file folder asks the index a few times, not once per file (SQLite allows 999 variables
    a statement on old builds: the IN lists are chunked), on both backends."""
    book = PushBook(index)
    rows = [(f"/big/{i:05d}", i, i + 1, sha(i), sha1(i)) for i in range(1201)]
    book.save_hashes(rows)
    asked: list[int] = []
    real = index._rows

    def counting(sql: str, params: Any = ()) -> Any:
        asked.append(len(params))
        return real(sql, params)

    monkeypatch.setattr(index, "_rows", counting)
    found = book.cached_hashes([r[0] for r in rows] + ["/big/missing"])
    assert found == {path: (size, mtime, s256, s1) for path, size, mtime, s256, s1 in rows}
    assert len(asked) == 3 and max(asked) <= 999


def test_pushbook_hashes_outbox_and_state(index: Index) -> None:
    book = PushBook(index)
    book.save_hashes([("/f/a", 1, 10**18, sha(1), sha1(1)), ("/f/b?", 2, 3, sha(2), sha1(2))])
    book.save_hashes([("/f/a", 5, 6, sha(3), sha1(3))])
    assert book.cached_hashes(["/f/a", "/f/b?", "/f/c"]) == {
        "/f/a": (5, 6, sha(3), sha1(3)),
        "/f/b?": (2, 3, sha(2), sha1(2)),
    }
    book.enqueue("/f", "me/m", "model", "main", 100.0)
    book.enqueue("/f", "me/m", "model", "main", 50.0)  # the earlier attempt time wins
    book.enqueue("/f", "me/m", "model", "main", 70.0)
    book.enqueue("/g", "me/n", "model", "main", 60.0)
    jobs = book.jobs()
    assert [(j.folder, j.next_attempt) for j in jobs] == [("/f", 50.0), ("/g", 60.0)]
    assert [j.folder for j in book.jobs(due_before=55.0)] == ["/f"]
    book.job_failed(jobs[0], "upstream said no", 80.0)
    failed = book.jobs()[1]
    assert (failed.attempts, failed.next_attempt, failed.last_error) == (1, 80.0, "upstream said no")
    book.job_done(failed, C, 3, 5 * 2**32)
    book.job_done(jobs[1], None, 0, 0)
    assert book.jobs() == []
    states = {s["folder"]: s for s in book.states()}
    assert states["/f"]["last_commit"] == C and states["/f"]["last_error"] is None
    assert states["/f"]["files_pushed"] == 3 and states["/f"]["bytes_pushed"] == 5 * 2**32
    assert states["/g"]["last_commit"] is None


# ============================================================================ transfer
def test_store_id_commits_exports_imports(index: Index) -> None:
    first = index.store_id()
    assert len(first) == 32 and index.store_id() == first
    publish(index, "org/t", A, {"x": (1, 1), "y": (2, 2)}, filter_key="f1")
    publish(index, "org/t", B, {"x": (1, 1), "z": (3, 3)})
    repo = index.find_repo("model", "org/t")
    assert repo is not None
    assert index.complete_commits([repo]) == [CommitKey("model", "org/t", A), CommitKey("model", "org/t", B)]
    full = index.full_commit(repo, A)
    assert full.filters == ("f1",) and [f.path for f in full.files] == ["x", "y"] and full.source == "sync"
    index.add_filters(repo, A, ["f1", "f0"])
    assert index.full_commit(repo, A).filters == ("f0", "f1")
    assert index.blobs_of(repo, [A, B]) == {sha(1), sha(2), sha(3)}
    assert index.last_export() is None
    same = "2025-01-01T00:00:00+00:00"
    for n in (1, 2):
        index.record_export(
            ExportRecord(f"id{n}", same, "/dest", f"d{n}", None, (CommitKey("model", "org/t", A),), n, 10 * n)
        )
    last = index.last_export()
    assert last is not None and last.id == "id2" and last.state == (CommitKey("model", "org/t", A),)
    assert not index.imported("dig")
    index.record_import("dig", "b1", same, 1, 2, 3)
    index.record_import("dig", "b1", same, 4, 5, 6 * 2**32)  # again: replaced
    assert index.imported("dig")


# ============================================================================ upkeep
def test_upkeep_queries_and_deletions(index: Index) -> None:
    publish(index, "org/u", A, {"x": (1, 1), "y": (2, 2)})
    publish(index, "org/u", B, {"x": (1, 1), "z": (3, 3)})
    index.set_ref("model", "org/u", "main", B)
    repo = index.find_repo("model", "org/u")
    assert repo is not None
    assert {c.sha for c in index.commit_infos(repo)} == {A, B}
    assert index.referenced_blobs() == {sha(1), sha(2), sha(3)}
    uses = index.blob_uses([sha(1), sha(9)], limit=1)
    assert list(uses) == [sha(1)] and len(uses[sha(1)]) == 1 and uses[sha(1)][0].path == "x"
    index.mark_verified([sha(1), sha(2)])
    # references are not enforced (as in SQLite): a file whose blob row is gone is reported, not refused
    index.delete_blob_rows([sha(3)])
    assert [u.path for u in index.files_without_blob_rows()] == ["z"]
    assert index.dangling_refs() == []
    index.drop_commits(repo, [B], blobs=[sha(9)])
    assert index.dangling_refs() == [("model", "org/u", "main", B)]
    assert index.commit_shas(repo) == [A] and index.files(repo, B) == []
    assert "main" not in index.ref_history(repo)
    index.delete_repo(repo)
    assert index.list_repos() == [] and index.referenced_blobs() == set()


def test_reopen_keeps_everything(location: str | Path) -> None:
    with open_index(location) as first:
        publish(first, "org/k", A, {"x": (1, 1)})
        first.set_ref("model", "org/k", "main", A)
    with open_index(location) as again:
        repo = again.find_repo("model", "org/k")
        assert repo is not None and again.ref(repo, "main") == A


def test_read_only_index_refuses_writes_in_one_error(location: str | Path) -> None:
    with open_index(location) as first:
        publish(first, "org/ro", A, {"x": (1, 1)})
    with open_index(location, read_only=True) as ro:
        assert ro.find_repo("model", "org/ro") is not None
        with pytest.raises(StoreError, match="read-only"):
            ro.set_meta("k", "v")


# ============================================================================ SQLite's own migrations
def test_a_sqlite_store_migrated_part_way_is_brought_up_to_date(tmp_path: Path) -> None:
    """A store whose earlier steps were recorded (as sqlite-utils' Migrations kept them, in the same table)
    gets only the missing steps, each recorded once; a second open changes nothing."""
    import sqlite3

    from hubmirror.index._schema import MIGRATION_SET, SCHEMA_VERSION, STEPS, sqlite_statements

    path = tmp_path / "index.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute(
            "CREATE TABLE [_sqlite_migrations] ([id] INTEGER PRIMARY KEY, [migration_set] TEXT, [name] TEXT, "
            "[applied_at] TEXT)"
        )
        for step in STEPS[:-1]:
            for statement in sqlite_statements(step.sql):
                raw.execute(statement)
            raw.execute(
                "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, 'earlier')",
                (MIGRATION_SET, step.name),
            )
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    for _ in range(2):
        open_index(path).close()
    with sqlite3.connect(path) as raw:
        names = [r[0] for r in raw.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert names == [step.name for step in STEPS]


def test_statements_split_where_sqlite_says_they_end() -> None:
    from hubmirror.index._schema import sqlite_statements

    script = """
    CREATE TABLE a (x TEXT DEFAULT ';');
    CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 'y;z'; DELETE FROM a WHERE 0; END;
    CREATE INDEX i ON a (x)
    """
    parts = sqlite_statements(script)
    assert len(parts) == 3 and parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END;"), parts
    assert parts[2] == "CREATE INDEX i ON a (x)"
