"""A throwaway S3 endpoint for the tests: moto's standalone server (``python -m moto.server``, the S3 REST API
over real HTTP) on a free loopback port, so the S3 store is tested over the wire the way it talks to AWS or
an S3-compatible store, not by patching boto3 in the test process.

* Everything is in the server's memory; each test gets a fresh, uniquely named bucket (:meth:`S3Server.bucket`).
* Credentials are the dummy ``testing`` pair in the standard AWS variables, for the server and for the code
  under test (the ``s3_bucket`` fixture sets them), and no ~/.aws file is read: a developer's own AWS config
  can neither leak into nor change a test.
* What moto does not do (so tests must not rely on it): it verifies no checksum (``x-amz-checksum-*`` nor
  Content-MD5: a wrong value is stored and echoed back) and no signature.
* A missing moto fails the tests that need it (never a skip). The server is stopped by its PID at the end of
  the session (SIGTERM, then SIGKILL), and a watchdog process stops it too if the test process dies first.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2
import pytest
from prockit import free_port

if TYPE_CHECKING:  # boto3 is imported when used: without it, missing_moto() says what to install
    from botocore.client import BaseClient

REGION = "us-east-1"
# the standard variables boto3 (and most S3 clients) read; moto accepts any key, these are the documented dummies
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
# variables that would point a client elsewhere or make it sign differently than the tests mean
FOREIGN_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_CA_BUNDLE",
)
# what a process talking to the test server gets: the credentials, and no ~/.aws config or credentials file
AWS_SETTINGS = {**CREDENTIALS, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
START_TIMEOUT = 60.0  # seconds for moto to import its services and answer (about 1 s on an idle machine)
STOP_TIMEOUT = 10.0


def missing_moto() -> str | None:
    """Why a moto server cannot be started here, or None."""
    for module in ("moto", "flask", "boto3"):
        if importlib.util.find_spec(module) is None:
            return (
                f"moto's S3 server is needed by these tests and the module {module!r} is missing from "
                f"{sys.executable}: install the test extra (pip install -e '.[test]', or scripts/setup.sh --test)"
            )
    return None


def aws_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the dummy credentials set, the variables that
    would redirect or re-sign requests removed, and no ~/.aws config or credentials file read."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in FOREIGN_AWS_VARS}
    env.update(AWS_SETTINGS)
    return env


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket on the test server; ``url`` is the store URL a config would hold (a prefix in it)."""

    endpoint_url: str
    bucket: str
    url: str


class S3Server:
    """One running moto server; :meth:`bucket` makes a fresh bucket, :meth:`client` a boto3 client for it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hubmirror-s3-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._names = count(1)
        # one random token per server: bucket names stay unique even if a test reuses a name prefix
        self._token = secrets.token_hex(3)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        """Start moto and wait until it answers; raises RuntimeError (with its log) if it does not."""
        last = ""
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            with (self.root / "server.log").open("wb") as log:
                # its own session: a Ctrl-C meant for pytest must not kill it before the teardown does
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=aws_env(),
                    cwd=self.root,
                    start_new_session=True,
                )
            self._start_watchdog()
            if self._wait_ready():
                return self
            last = self.log()
            self._end_process()
        raise RuntimeError(f"moto's server did not answer on {self.endpoint_url}:\n{last[-3000:]}")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                # GET / is S3's ListBuckets: it answers only once the S3 service is routed
                if httpx2.get(self.endpoint_url + "/", timeout=2).status_code == 200:
                    return True
            except httpx2.HTTPError:
                pass
            time.sleep(0.05)
        return False

    def _start_watchdog(self) -> None:
        """A process that stops the server (and removes its dir) once this test process is gone, however it
        ended: the normal teardown does it first, the watchdog is for a test run killed outright."""
        assert self.proc is not None
        pid = self.proc.pid
        script = (
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
            f"kill -TERM {pid} 2>/dev/null; i=0; "
            f"while kill -0 {pid} 2>/dev/null && [ $i -lt {int(STOP_TIMEOUT)} ]; do sleep 1; i=$((i+1)); done; "
            f"kill -KILL {pid} 2>/dev/null; "
            f"rm -rf {self.root}"
        )
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def _end_process(self) -> None:
        """SIGTERM the server by its PID, SIGKILL if it lingers; then end its watchdog (its work is done)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
        if self._watchdog is not None and self._watchdog.poll() is None:
            self._watchdog.kill()
            self._watchdog.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """Stop the server and remove its dir."""
        self._end_process()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- using it ---------------------------------------------------------------------------------------
    def client(self) -> BaseClient:
        """A boto3 S3 client for this server with the dummy credentials (whatever the environment holds)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def bucket(self, prefix: str = "t") -> S3Bucket:
        """A new empty bucket with a unique name; its store URL is the ``store`` prefix in it."""
        name = f"{prefix}-{self._token}-{next(self._names):04d}"
        self.client().create_bucket(Bucket=name)
        return S3Bucket(endpoint_url=self.endpoint_url, bucket=name, url=f"s3://{name}/store")


def start_server() -> S3Server:
    """A started moto server, or a test failure saying what is missing (never a skip)."""
    why = missing_moto()
    if why:
        pytest.fail(why, pytrace=False)
    server = S3Server()
    try:
        return server.start()
    except (RuntimeError, OSError) as exc:
        server.stop()
        pytest.fail(f"could not start moto's S3 server: {exc}", pytrace=False)


if __name__ == "__main__":  # a manual check: python tests/s3kit.py
    started = time.monotonic()
    running = start_server()
    print(running.bucket(), f"{time.monotonic() - started:.2f}s", file=sys.stderr)
    running.stop()
