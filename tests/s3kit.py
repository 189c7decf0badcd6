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
import sys
import time
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING

import httpx2
import pytest
from prockit import KitServer

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


class S3Server(KitServer):
    """One running moto server; :meth:`bucket` makes a fresh bucket, :meth:`client` a boto3 client for it."""

    start_timeout = 60.0  # for moto to import its services and answer (about 1 s on an idle machine)

    def __init__(self) -> None:
        super().__init__("hubmirror-s3-")
        self._names = count(1)
        # one random token per server: bucket names stay unique even if a test reuses a name prefix
        self._token = secrets.token_hex(3)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        """Start moto and wait until it answers; raises RuntimeError (with its log) if it does not."""
        self._launch(
            lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            "moto's S3 server",
            env=aws_env(),
        )
        return self

    def _answers(self) -> bool:
        try:  # GET / is S3's ListBuckets: it answers only once the S3 service is routed
            return httpx2.get(self.endpoint_url + "/", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

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
