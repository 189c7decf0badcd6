"""What only the PostgreSQL backend has: its migration runner (processes starting at once migrate once; a
newer schema is refused), its column types, the writer lease across stores and processes, and one clear
error for a database that is down, unknown or refuses the password (never showing the password)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from pgkit import PASSWORD, Cluster

from hubmirror.errors import LockTimeoutError, StoreError
from hubmirror.index import open_index
from hubmirror.index._schema import SCHEMA_VERSION, STEPS
from hubmirror.store import Store

pytestmark = pytest.mark.timeout(120)


def _admin_rows(cluster: Cluster, url: str, sql: str) -> list[tuple[object, ...]]:
    with cluster.admin(url.rsplit("/", 1)[1]) as conn:
        return conn.execute(sql).fetchall()


def test_processes_starting_together_migrate_once(pg_cluster: Cluster, pg_url: str) -> None:
    code = "import sys; from hubmirror.index import open_index; open_index(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_url], stderr=subprocess.PIPE) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    names = [r[0] for r in _admin_rows(pg_cluster, pg_url, "SELECT name FROM hubmirror_migrations ORDER BY name")]
    assert names == [step.name for step in STEPS] and len(names) == SCHEMA_VERSION


def test_schema_types_hold_64_bits_and_sort_by_bytes(pg_cluster: Cluster, pg_url: str) -> None:
    open_index(pg_url).close()
    columns = dict(
        _admin_rows(
            pg_cluster,
            pg_url,
            "SELECT table_name || '.' || column_name, data_type || coalesce(' ' || collation_name, '') "
            "FROM information_schema.columns WHERE table_schema = 'public'",
        )
    )
    assert columns["files.size"] == "bigint" and columns["blobs.size"] == "bigint"
    assert columns["local_hashes.mtime_ns"] == "bigint" and columns["outbox.next_attempt"] == "double precision"
    assert columns["files.path"] == "text C" and columns["repos.name"] == "text C"
    assert columns["ref_history.rowid"] == "bigint" and columns["exports.rowid"] == "bigint"


def test_a_newer_schema_is_refused_and_an_empty_database_left_alone(pg_cluster: Cluster, pg_url: str) -> None:
    with open_index(pg_url, create=False) as index:
        assert index.empty
    assert _admin_rows(pg_cluster, pg_url, "SELECT to_regclass('hubmirror_migrations')") == [(None,)]
    open_index(pg_url).close()
    with pg_cluster.admin(pg_url.rsplit("/", 1)[1]) as conn:
        conn.execute("INSERT INTO hubmirror_migrations VALUES ('m999_future', 'x')")
    with pytest.raises(StoreError, match="newer hubmirror") as caught:
        open_index(pg_url)
    assert PASSWORD not in str(caught.value) and "hubmirror@127.0.0.1" in str(caught.value)


def test_errors_name_the_database_never_the_password(pg_cluster: Cluster, pg_url: str) -> None:
    base = pg_url.rsplit("/", 1)[0]
    cases = {
        "wrong password": (pg_url.replace(PASSWORD, "not-the-password"), "cannot log in"),
        "unknown database": (base + "/no_such_db", "does not exist"),
        "unknown role": (pg_url.replace("hubmirror:", "nobody:"), "cannot log in"),
        "down": (pg_cluster.url("x").replace(str(pg_cluster.port), "1"), "cannot reach"),
    }
    for case, (url, fragment) in cases.items():
        with pytest.raises(StoreError) as caught:
            open_index(url)
        message = str(caught.value)
        assert fragment in message, (case, message)
        assert "\n" not in message and "not-the-password" not in message and PASSWORD not in message, message
        assert "postgresql://" in message and "@127.0.0.1:" in message, message


def test_a_role_that_may_not_create_tables_is_told_what_to_grant(pg_cluster: Cluster) -> None:
    with pg_cluster.admin() as conn:
        conn.execute("CREATE DATABASE not_ours")  # owned by postgres: PostgreSQL 15 lets others create nothing
    with pytest.raises(StoreError) as caught:
        open_index(pg_cluster.url("not_ours"))
    message = str(caught.value)
    assert "refused this role" in message and "own the database" in message and PASSWORD not in message, message
    assert _admin_rows(pg_cluster, "x/not_ours", "SELECT to_regclass('hubmirror_migrations')") == [(None,)]


@contextmanager
def _holder(url: str, seconds: float) -> Iterator[subprocess.Popen[bytes]]:
    """A process that takes the writer lease of ``url`` and holds it (ended by its PID at the end)."""
    code = textwrap.dedent(
        """
        import sys, time
        from hubmirror.index import open_index
        index = open_index(sys.argv[1])
        with index.writer_lease()(10):
            print("held", flush=True)
            time.sleep(float(sys.argv[2]))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code, url, str(seconds)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_the_writer_lease_excludes_writers_of_other_stores_until_released(pg_url: str, tmp_path: Path) -> None:
    """Two stores (two machines' homes) over one database: the store write lock takes the index's lease."""
    with open_index(pg_url) as index, _holder(pg_url, 3) as holder:
        held_at = time.monotonic()
        store = Store(tmp_path / "other-machine")
        store.use_lease(index.writer_lease())
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught:
            with store.write_lock(timeout=1):
                pass
        assert 0.9 < time.monotonic() - started < 5
        message = str(caught.value)
        assert f"pid {holder.pid}" in message and "127.0.0.1" in message and PASSWORD not in message, message
        with store.write_lock(timeout=30):  # waits for the holder to finish
            assert time.monotonic() - held_at >= 2.9


def test_the_gc_guard_spans_machines(pg_url: str, tmp_path: Path) -> None:
    """A sync on one machine (shared guard) keeps gc on another (exclusive) from deleting blobs it uploaded
    but has not named yet; syncs on several machines share the guard; gc excludes them all."""
    with open_index(pg_url) as index:
        machines = [Store(tmp_path / f"machine-{n}") for n in range(3)]
        for store in machines:
            store.use_lease(index.writer_lease(), index.gc_lease)
        with machines[0].gc_guard(), machines[1].gc_guard():  # two syncs at once
            with pytest.raises(LockTimeoutError, match="a sync, push, import or repair .* has run for over"):
                with machines[2].gc_guard(exclusive=True, timeout=1):
                    pass
        with machines[2].gc_guard(exclusive=True, timeout=5):  # both done: gc may run
            with pytest.raises(LockTimeoutError, match="gc .* has run for over"):
                with machines[0].gc_guard(timeout=1):
                    pass


def test_a_writer_that_dies_releases_the_lease(pg_url: str) -> None:
    with _holder(pg_url, 60) as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    with open_index(pg_url) as index:
        lease = index.writer_lease()
        assert lease is not None
        with lease(10):  # the session ended with the process, and the lease with it
            pass


def test_a_write_waits_for_the_write_transaction_of_another(pg_url: str) -> None:
    with open_index(pg_url) as first, open_index(pg_url) as second:
        with first.atomic():
            first.set_meta("k", "first")
            started = time.monotonic()
            blocked = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import sys; from hubmirror.index import open_index; "
                    "i = open_index(sys.argv[1]); i.set_meta('k', 'second'); print(i.get_meta('k'))",
                    pg_url,
                ],
                stdout=subprocess.PIPE,
            )
            time.sleep(1.0)
            assert blocked.poll() is None  # waiting for our transaction
        out, _ = blocked.communicate(timeout=30)
        assert out.strip() == b"second" and time.monotonic() - started >= 1.0
        assert second.get_meta("k") == "second"


def test_the_connection_is_gone_mid_command(pg_cluster: Cluster, pg_url: str) -> None:
    with open_index(pg_url) as index:
        index.set_meta("k", "v")
        pid = index.conn.raw.info.backend_pid  # type: ignore[attr-defined]
        with pg_cluster.admin() as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError, match="lost the connection|failed") as caught:
            index.get_meta("k")
        assert PASSWORD not in str(caught.value)


def test_psycopg_is_the_backends_own(pg_url: str) -> None:
    """psycopg errors never leave the index: a bad statement is a StoreError naming the database."""
    with open_index(pg_url) as index:
        with pytest.raises(StoreError, match="the index postgresql://hubmirror@") as caught:
            index.conn.rows("SELECT * FROM no_such_table")
        assert isinstance(caught.value.__cause__, psycopg.Error)
