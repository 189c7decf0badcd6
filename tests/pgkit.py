"""A throwaway PostgreSQL 15 cluster for the tests: ``initdb`` and ``pg_ctl`` (as the ``postgres`` user when
the tests run as root) in a temp dir, listening on a free loopback port and a unix socket in that dir.

* The cluster's default collation is ICU ``en-US`` (not byte order), so a query that sorts text without the
  schema's ``COLLATE "C"`` would show it.
* Tests log in over TCP as the role ``hubmirror`` with a password (scram-sha-256), the way a site would;
  the kit itself administers over the socket as ``postgres`` (trust).
* Missing PostgreSQL binaries fail the tests that need them (CI must never skip them silently).
* The cluster is stopped at the end of the session (``pg_ctl stop -m fast``, then ``immediate``), and a
  watchdog process stops it too if the test process dies without cleaning up.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

import psycopg
import pytest
from prockit import free_port

PG_BIN = Path(os.environ.get("HUBMIRROR_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
ROLE = "hubmirror"
PASSWORD = "pg-pw-7c1e9f0b2d"  # tests assert it never shows in output
STEP_TIMEOUT = 60  # seconds for any one initdb / pg_ctl / psql step


def missing_binaries() -> str | None:
    """Why a cluster cannot be made here, or None."""
    for name in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / name).is_file():
            return (
                f"PostgreSQL 15 is needed by these tests and {PG_BIN / name} is missing: install it "
                "(apt-get install postgresql-15; scripts/setup.sh --test does it as root) or set "
                "HUBMIRROR_TEST_PG_BIN to its bin directory"
            )
    return None


class Cluster:
    """One running cluster; :meth:`database` makes a fresh database and returns its URL."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hubmirror-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.port = 0
        self._names = count(1)
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.as_root = os.geteuid() == 0
        if self.as_root:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        os.chmod(self.root, 0o700)

    # -- running the server's tools ---------------------------------------------------------------
    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # initdb and postgres refuse to run as root: run them as the postgres user
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        result = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, timeout=STEP_TIMEOUT, cwd=self.root, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def start(self) -> Cluster:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--locale-provider=icu",
            "--icu-locale=en-US",
            "-N",  # no fsync of the new cluster: it is thrown away
        )
        last = ""
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off "
                "-c full_page_writes=off -c max_connections=200"
            )
            result = self._run(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                str(STEP_TIMEOUT),
                "-o",
                options,
                "start",
                check=False,
            )
            if result.returncode == 0:
                break
            last = result.stderr + self.log()
        else:
            raise RuntimeError(f"PostgreSQL did not start:\n{last}")
        self._start_watchdog()
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        return self

    def _start_watchdog(self) -> None:
        """A process that stops the cluster (and removes its dir) once this test process is gone, however it
        ended: the normal teardown does it first, the watchdog is for a test run killed outright."""
        prefix = "runuser -u postgres -- " if self.as_root else ""
        script = (
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
            f"{prefix}{PG_BIN / 'pg_ctl'} -D {self.data} -m immediate -w -t 30 stop >/dev/null 2>&1; "
            f"rm -rf {self.root}"
        )
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the cluster (fast, then immediate) and remove its dir; the watchdog then exits by itself."""
        if self.data.exists():
            pg_ctl = str(PG_BIN / "pg_ctl")
            stopped = self._run(pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop", check=False)
            if (
                stopped.returncode != 0
                and self._run(pg_ctl, "-D", str(self.data), "status", check=False).returncode == 0
            ):
                self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        if self._watchdog is not None and self._watchdog.poll() is None:
            self._watchdog.kill()  # its work is done
            self._watchdog.wait(timeout=10)

    # -- databases ----------------------------------------------------------------------------------
    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection over the unix socket (autocommit)."""
        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def database(self, prefix: str = "t") -> str:
        """A new empty database owned by the test role; its URL (password included)."""
        name = f"{prefix}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE template0")
        return self.url(name)

    def url(self, dbname: str, *, password: bool = True, user: str = ROLE) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{dbname}"

    def env(self) -> dict[str, str]:
        """Environment for a child process that logs in with PGPASSWORD instead of a password in the URL."""
        return {"PGPASSWORD": PASSWORD}


def start_cluster() -> Cluster:
    """A started cluster, or a test failure saying what is missing (never a skip)."""
    why = missing_binaries()
    if why:
        pytest.fail(why, pytrace=False)
    cluster = Cluster()
    try:
        return cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, psycopg.Error) as exc:
        cluster.stop()
        pytest.fail(f"could not start a PostgreSQL test cluster: {exc}", pytrace=False)


if __name__ == "__main__":  # a manual check: python tests/pgkit.py
    started = time.monotonic()
    cluster = start_cluster()
    print(cluster.database(), f"{time.monotonic() - started:.2f}s", file=sys.stderr)
    cluster.stop()
