"""Shared fixtures: a running fake upstream Hub, a tmp home, config files, and the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from hubserver import HubServer
from prockit import Procs

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    with HubServer(tmp_path_factory.mktemp("upstream")) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def write_config(path: Path, endpoint: str, home: Path, repos: list[dict[str, Any]], **extra: Any) -> Path:
    data: dict[str, Any] = {"home": str(home), "upstream": {"endpoint": endpoint}, "repos": repos}
    for key, value in extra.items():
        data.setdefault(key, {}).update(value) if isinstance(value, dict) else data.__setitem__(key, value)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_tree(folder: Path, files: dict[str, bytes | str]) -> Path:
    """Write ``files`` (relative path → content) below ``folder``; returns ``folder``."""
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return folder


@pytest.fixture
def make_config(tmp_path: Path, upstream: HubServer, home: Path):
    """``make_config(repos, **sections)`` writes hubmirror.yaml pointing at the test upstream."""

    def make(repos: list[dict[str, Any]], **extra: Any) -> Path:
        return write_config(tmp_path / "hubmirror.yaml", upstream.url, home, repos, **extra)

    return make


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hubmirror ARGS`` in a fresh process (bounded in time)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "hubmirror", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL 15 cluster for the whole run (tests/pgkit.py); stopped at the end, whatever happened."""
    from pgkit import start_cluster

    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """The URL of a new, empty database (owned by the test role, password in the URL)."""
    return pg_cluster.database()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server for the whole run (tests/s3kit.py): ``.endpoint_url``; stopped at the end by its PID."""
    from s3kit import start_server

    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch: pytest.MonkeyPatch):
    """A new, empty bucket (``.endpoint_url``, ``.bucket``, ``.url`` = ``s3://BUCKET/store``), with the dummy
    AWS credentials in the environment for this test so boto3 clients made by the code under test find them."""
    from s3kit import AWS_SETTINGS, FOREIGN_AWS_VARS

    for name in FOREIGN_AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_SETTINGS.items():
        monkeypatch.setenv(name, value)
    yield s3_server.bucket()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Start ``python -m hubmirror`` processes; any still running at teardown is killed by its PID."""
    logdir = tmp_path / "proc-logs"
    logdir.mkdir()
    started = Procs(logdir)
    try:
        yield started
    finally:
        started.close()
