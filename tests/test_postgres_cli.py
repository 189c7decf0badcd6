"""End to end with the index in PostgreSQL (``index: url:`` in the config; blobs stay in the home): ``hubmirror
sync`` into it, ``status`` and ``resolve`` from it (``resolve`` given only the home finds the database the
store recorded), ``hubmirror serve`` over it answering the real ``snapshot_download``, writers in several
processes at once, and one clear line for a database that is down, unknown, refuses the password or is not
the store's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_cli, write_config
from hubserver import HubServer, make_small_files
from pgkit import PASSWORD, Cluster
from servekit import ServeProcess, hf_client, read_tree

from hubmirror.index import open_index

pytestmark = pytest.mark.timeout(240)

MANY, DATA = "org/many", "org/data"


@dataclass
class PgSite:
    root: Path
    home: Path
    config: Path
    url: str  # without password: PGPASSWORD carries it, as ~/.pgpass would
    login: str  # the same with the password, for this process's own look
    upstream: HubServer
    files: dict[str, dict[str, bytes]]
    commits: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return {"PGPASSWORD": PASSWORD}

    def cli(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **kw.pop("env", {})}
        return run_cli(*args, env=env, **kw)


@pytest.fixture(scope="module")
def site(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgSite]:
    root = tmp_path_factory.mktemp("pgsite")
    upstream = HubServer(root / "upstream").start()
    try:
        files = {MANY: make_small_files(60, seed=3)}
        commits = {MANY: upstream.commit(MANY, files[MANY])}
        threshold, upstream.lfs_threshold = upstream.lfs_threshold, 4096
        files[DATA] = {"README.md": b"# data\n", "part/train.bin": os.urandom(40_000)}
        commits[DATA] = upstream.commit(DATA, files[DATA], repo_type="dataset")
        upstream.lfs_threshold = threshold
        login = pg_cluster.database("site")
        url = pg_cluster.url(login.rsplit("/", 1)[1], password=False)
        home = root / "home"
        config = write_config(
            root / "hubmirror.yaml",
            upstream.url,
            home,
            [{"repo": MANY}, {"repo": DATA, "type": "dataset"}],
            index={"url": url},
        )
        site = PgSite(root, home, config, url, login, upstream, files, commits)
        result = site.cli("-c", str(config), "sync", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        yield site
    finally:
        upstream.stop()


def check_store(home: Path, url: str) -> int:
    """The store invariants over a PostgreSQL index: refs name complete commits, every file's blob is on disk
    with its size, every blob row too. Returns the number of complete commits."""
    complete = 0
    with open_index(url, read_only=True) as index:
        blobs = index.blob_rows()
        for sha, size in blobs.items():
            path = home / "blobs" / "sha256" / sha[:2] / sha
            assert path.stat().st_size == size, sha
        for repo in index.list_repos():
            shas = set(index.commit_shas(repo))
            complete += len(shas)
            for ref in index.refs(repo):
                assert ref.commit in shas, (repo.name, ref)
            for sha in shas:
                for f in index.files(repo, sha):
                    assert blobs.get(f.sha256) == f.size, (repo.name, f.path)
    return complete


# ============================================================================ sync, status, resolve, serve
def test_sync_keeps_the_index_in_postgres_and_the_blobs_in_the_home(site: PgSite) -> None:
    assert not (site.home / "index.sqlite").exists()
    assert (site.home / "index.url").read_text().strip() == site.url  # recorded, without password
    assert check_store(site.home, site.login) == 2
    again = site.cli("-c", str(site.config), "sync", "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["files_fetched"] == 0, report  # unchanged repos cost one request each
    status = site.cli("-c", str(site.config), "status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert {r["name"] for r in data["repos"]} == {MANY, DATA}, data["repos"]
    assert data["index"] == site.url
    assert PASSWORD not in status.stdout + status.stderr


def test_resolve_finds_the_database_from_the_home_alone(site: PgSite, tmp_path: Path) -> None:
    result = site.cli("--home", str(site.home), "resolve", MANY, cwd=tmp_path)  # no config anywhere
    assert result.returncode == 0, result.stderr
    snapshot = Path(result.stdout.strip())
    assert snapshot.name == site.commits[MANY]
    assert read_tree(snapshot) == site.files[MANY]
    one = site.cli("--home", str(site.home), "resolve", DATA, "part/train.bin", "--type", "dataset", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert Path(one.stdout.strip()).read_bytes() == site.files[DATA]["part/train.bin"]


def test_serve_over_postgres_answers_snapshot_download(site: PgSite, tmp_path: Path) -> None:
    with ServeProcess(site.config, tmp_path / "serve.log", extra_env=site.env) as server:
        result = hf_client(
            f"""
            from huggingface_hub import snapshot_download
            result = [snapshot_download({MANY!r}), snapshot_download({DATA!r}, repo_type="dataset")]
            """,
            server.url,
            tmp_path / "hf-cache",
        )
        assert result.ok, result
        many, data = (Path(p) for p in result.result)
        assert many.name == site.commits[MANY] and read_tree(many) == site.files[MANY]
        assert data.name == site.commits[DATA] and read_tree(data) == site.files[DATA]
        # a new upstream commit synced by another process shows at once (the change counter moved)
        newer = {**site.files[MANY], "added.txt": b"new\n"}
        site.commits[MANY] = site.upstream.commit(MANY, {"added.txt": b"new\n"})
        site.files[MANY] = newer
        synced = site.cli("-c", str(site.config), "sync", MANY)
        assert synced.returncode == 0, synced.stderr
        again = hf_client(
            f"from huggingface_hub import snapshot_download\nresult = snapshot_download({MANY!r})",
            server.url,
            tmp_path / "hf-cache",
        )
        assert again.ok, again
        assert Path(again.result).name == site.commits[MANY] and read_tree(Path(again.result)) == newer
        assert server.proc is not None and server.proc.poll() is None, server.log()
        assert PASSWORD not in server.log()


# ============================================================================ several writers
def test_two_syncs_at_once_both_finish_and_the_store_stays_whole(site: PgSite) -> None:
    added = {"concurrent.txt": os.urandom(3000)}
    site.commits[MANY] = site.upstream.commit(MANY, added)
    site.files[MANY] = {**site.files[MANY], **added}
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [
        threading.Thread(target=lambda: results.append(site.cli("-c", str(site.config), "sync"))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=200)
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert check_store(site.home, site.login) >= 3
    with open_index(site.login, read_only=True) as index:
        repo = index.find_repo("model", MANY)
        assert repo is not None and index.ref(repo, "main") == site.commits[MANY]


def test_a_writer_on_another_machine_makes_sync_wait(site: PgSite) -> None:
    """Another machine's writer holds the lease (it shares the database, not this home's lock files)."""
    code = (
        "import sys, time\nfrom hubmirror.index import open_index\n"
        "with open_index(sys.argv[1]).writer_lease()(10):\n    print('held', flush=True)\n    time.sleep(3)\n"
    )
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    with subprocess.Popen([sys.executable, "-c", code, site.url], stdout=subprocess.PIPE, env=env) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        started = time.monotonic()
        site.commits[DATA] = site.upstream.commit(DATA, {"more.txt": b"more\n"}, repo_type="dataset")
        site.files[DATA] = {**site.files[DATA], "more.txt": b"more\n"}
        result = site.cli("-c", str(site.config), "sync")
        waited = time.monotonic() - started
        assert holder.wait(timeout=30) == 0
    assert result.returncode == 0, result.stderr
    assert waited >= 2.5, waited  # it waited for the lease instead of writing beside the other writer
    assert check_store(site.home, site.login) >= 4


# ============================================================================ one line for every failure
def one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 10, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert PASSWORD not in result.stdout + result.stderr and "wrong-pw-51d" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("down", "cannot reach the index postgresql://hubmirror@127.0.0.1:1/"),
        ("wrong password", "cannot log in to the index postgresql://hubmirror@127.0.0.1:"),
        ("unknown database", "does not exist"),
    ],
)
def test_an_unusable_database_is_one_line_exit_10(
    pg_cluster: Cluster, site: PgSite, tmp_path: Path, case: str, fragment: str
) -> None:
    url = {
        "down": pg_cluster.url("x").replace(f":{pg_cluster.port}/", ":1/"),
        "wrong password": pg_cluster.url("x").replace(PASSWORD, "wrong-pw-51d"),
        "unknown database": pg_cluster.url("no_such_database"),
    }[case]
    config = write_config(
        tmp_path / "c.yaml", site.upstream.url, tmp_path / "home", [{"repo": MANY}], index={"url": url}
    )
    for argv in (["sync"], ["status"], ["gc", "--dry-run"], ["verify"]):
        one_line(site.cli("-c", str(config), *argv, env={"PGPASSWORD": ""}), fragment)


def test_read_commands_on_an_empty_database_say_to_sync_first(
    pg_cluster: Cluster, site: PgSite, tmp_path: Path
) -> None:
    url = pg_cluster.url(pg_cluster.database("empty").rsplit("/", 1)[1], password=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "VERSION").write_text("1\n")
    config = write_config(tmp_path / "c.yaml", site.upstream.url, home, [{"repo": MANY}], index={"url": url})
    one_line(site.cli("-c", str(config), "status"), f"the index {url} is empty", "hubmirror sync")
    with open_index(pg_cluster.url(url.rsplit("/", 1)[1]), create=False) as index:
        assert index.empty  # a read command created nothing


def test_a_config_naming_another_database_is_refused(pg_cluster: Cluster, site: PgSite, tmp_path: Path) -> None:
    other = pg_cluster.url(pg_cluster.database("other").rsplit("/", 1)[1], password=False)
    config = write_config(tmp_path / "c.yaml", site.upstream.url, site.home, [{"repo": MANY}], index={"url": other})
    line = one_line(site.cli("-c", str(config), "sync"), f"belongs to the index {site.url}", other)
    assert "fix index.url" in line
    # and a SQLite store does not silently switch to a database
    sqlite_home = tmp_path / "sqlite-home"
    plain = write_config(tmp_path / "p.yaml", site.upstream.url, sqlite_home, [{"repo": MANY}])
    assert site.cli("-c", str(plain), "sync").returncode == 0
    moved = write_config(tmp_path / "m.yaml", site.upstream.url, sqlite_home, [{"repo": MANY}], index={"url": other})
    one_line(site.cli("-c", str(moved), "sync"), "keeps its index in", "hubmirror export")


def test_an_empty_database_beside_stored_blobs_is_refused(pg_cluster: Cluster, site: PgSite, tmp_path: Path) -> None:
    """A home whose record was lost, pointed at an empty database: nothing is created in it."""
    fresh = pg_cluster.url(pg_cluster.database("fresh").rsplit("/", 1)[1], password=False)
    home = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(site.home), str(home)], check=True)
    (home / "index.url").unlink()
    config = write_config(tmp_path / "c.yaml", site.upstream.url, home, [{"repo": MANY}], index={"url": fresh})
    one_line(site.cli("-c", str(config), "sync"), "is empty although", "blobs")
    with open_index(pg_cluster.url(fresh.rsplit("/", 1)[1]), create=False) as index:
        assert index.empty
    assert not (home / "index.url").exists()


# ============================================================================ upkeep and moving a store
def test_verify_gc_and_remove_work_over_postgres(site: PgSite) -> None:
    verified = site.cli("-c", str(site.config), "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    collected = site.cli("-c", str(site.config), "gc", "--json")
    assert collected.returncode == 0, collected.stderr
    assert check_store(site.home, site.login) >= 2
    with open_index(site.login, read_only=True) as index:
        repo = index.find_repo("model", MANY)
        assert repo is not None and index.ref(repo, "main") == site.commits[MANY]


def test_a_bundle_carries_a_sqlite_store_into_postgres_and_back(
    pg_cluster: Cluster, site: PgSite, tmp_path: Path
) -> None:
    bundle = tmp_path / "all.tar"
    exported = site.cli("-c", str(site.config), "export", str(bundle), "--json")
    assert exported.returncode == 0, exported.stderr
    # PostgreSQL store → a SQLite store on another machine
    far_sqlite = tmp_path / "far-sqlite"
    imported = site.cli("--home", str(far_sqlite), "import", str(bundle), "--json")
    assert imported.returncode == 0, imported.stderr
    assert (far_sqlite / "index.sqlite").exists() and not (far_sqlite / "index.url").exists()
    # that SQLite store → a new PostgreSQL store
    second = tmp_path / "second.tar"
    assert site.cli("--home", str(far_sqlite), "export", str(second)).returncode == 0
    db = pg_cluster.database("moved").rsplit("/", 1)[1]
    config = write_config(
        tmp_path / "far.yaml",
        site.upstream.url,
        tmp_path / "far-pg",
        [],
        index={"url": pg_cluster.url(db, password=False)},
    )
    moved = site.cli("-c", str(config), "import", str(second), "--json")
    assert moved.returncode == 0, moved.stderr
    for name, repo_type in ((MANY, "model"), (DATA, "dataset")):
        path = site.cli("--home", str(tmp_path / "far-pg"), "resolve", name, "--type", repo_type, cwd=tmp_path)
        assert path.returncode == 0, path.stderr
        assert read_tree(Path(path.stdout.strip())) == site.files[name]
    assert check_store(tmp_path / "far-pg", pg_cluster.url(db)) == check_store(site.home, site.login)
