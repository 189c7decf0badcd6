"""``hubmirror serve`` over blobs in object storage (moto's S3 server on loopback), at the HTTP level: stream
mode answers Range requests from the object store (206, suffixes, 416), HEAD needs no object-store call and
keeps the Hub's headers; presigned mode answers 302 to a presigned URL for LFS files only, with the headers
``huggingface_hub`` takes the metadata from; a blob gone from the bucket is a clear 500, never a hang."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import yaml
from conftest import run_cli, write_config
from hubserver import HubServer
from s3kit import AWS_SETTINGS
from servekit import ServeProcess

pytestmark = pytest.mark.timeout(180)

REPO = "org/weights"


@dataclass
class ObjectSite:
    root: Path
    config: Path
    bucket: str
    endpoint_url: str
    files: dict[str, bytes]
    commit: str


@pytest.fixture(scope="module")
def site(s3_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectSite]:
    root = tmp_path_factory.mktemp("objects")
    upstream = HubServer(root / "upstream").start()
    try:
        files = {"config.json": b'{"model_type": "bert"}\n', "weights.bin": os.urandom(3 * 1024 * 1024 + 17)}
        upstream.lfs_threshold = 1024
        commit = upstream.commit(REPO, files)
        bucket = s3_server.bucket()
        config = write_config(
            root / "hubmirror.yaml",
            upstream.url,
            root / "home",
            [{"repo": REPO}],
            store={"url": bucket.url, "endpoint_url": bucket.endpoint_url},
        )
        result = run_cli("-c", str(config), "sync", env=AWS_SETTINGS)
        assert result.returncode == 0, result.stderr
        yield ObjectSite(root, config, bucket.bucket, bucket.endpoint_url, files, commit)
    finally:
        upstream.stop()


def _serve(site: ObjectSite, name: str, **serve: object) -> ServeProcess:
    config = site.root / f"{name}.yaml"
    data = yaml.safe_load(site.config.read_text())
    data["serve"] = dict(serve)
    config.write_text(yaml.safe_dump(data))
    return ServeProcess(config, site.root / f"{name}.log", extra_env=AWS_SETTINGS)


def _url(server: ServeProcess, path: str) -> str:
    return f"{server.url}/{REPO}/resolve/main/{path}"


def test_stream_mode_serves_ranges_from_the_object_store(site: ObjectSite) -> None:
    data = site.files["weights.bin"]
    with _serve(site, "stream") as server, httpx2.Client(timeout=30) as http:
        health = http.get(server.url + "/api/health")  # what the load balancer checks
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        assert isinstance(health.json()["index_version"], int)
        head = http.head(_url(server, "weights.bin"))
        assert head.status_code == 200
        assert head.headers["X-Repo-Commit"] == site.commit
        assert head.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert head.headers["X-Linked-Size"] == head.headers["Content-Length"] == str(len(data))
        whole = http.get(_url(server, "weights.bin"))
        assert whole.status_code == 200 and whole.content == data
        part = http.get(_url(server, "weights.bin"), headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == data[1000:2000]
        assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
        tail = http.get(_url(server, "weights.bin"), headers={"Range": "bytes=-7"})
        assert tail.status_code == 206 and tail.content == data[-7:]
        rest = http.get(_url(server, "weights.bin"), headers={"Range": f"bytes={len(data) - 3}-"})
        assert rest.content == data[-3:]
        beyond = http.get(_url(server, "weights.bin"), headers={"Range": f"bytes={len(data)}-"})
        assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(data)}"
        small = http.get(_url(server, "config.json"))
        assert small.status_code == 200 and small.content == site.files["config.json"]


def test_presigned_mode_redirects_lfs_files_with_the_hub_headers(site: ObjectSite) -> None:
    data = site.files["weights.bin"]
    with _serve(site, "presigned", redirect="presigned", presigned_expiry="2m") as server:
        with httpx2.Client(timeout=30, follow_redirects=False) as http:
            for method in ("HEAD", "GET"):
                answer = http.request(method, _url(server, "weights.bin"))
                assert answer.status_code == 302, (method, answer.text)
                assert answer.headers["X-Repo-Commit"] == site.commit
                assert answer.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
                assert answer.headers["X-Linked-Size"] == str(len(data))
                location = answer.headers["Location"]
                assert location.startswith(f"{site.endpoint_url}/{site.bucket}/store/blobs/sha256/")
                assert "X-Amz-Expires=120" in location
            fetched = http.get(location)  # straight from the object store, no token
            assert fetched.status_code == 200 and fetched.content == data
            small = http.get(_url(server, "config.json"))  # not LFS: served here, as the Hub does
            assert small.status_code == 200 and small.content == site.files["config.json"]


def test_a_blob_gone_from_the_bucket_is_a_clear_error(site: ObjectSite, s3_server) -> None:
    client = s3_server.client()
    sha = hashlib.sha256(site.files["weights.bin"]).hexdigest()
    key = f"store/blobs/sha256/{sha[:2]}/{sha}"
    saved = client.get_object(Bucket=site.bucket, Key=key)["Body"].read()
    client.delete_object(Bucket=site.bucket, Key=key)
    try:
        with _serve(site, "gone") as server, httpx2.Client(timeout=30) as http:
            answer = http.get(_url(server, "weights.bin"))
            assert answer.status_code == 500
            assert "missing from the object store" in answer.headers.get("X-Error-Message", answer.text)
            assert "Traceback" not in server.log()
    finally:
        client.put_object(Bucket=site.bucket, Key=key, Body=saved)


def test_hostile_range_headers_get_the_whole_file_or_416(site: ObjectSite) -> None:
    from hubmirror.serve.http import HubHTTPError
    from hubmirror.serve.objects import parse_range

    size = 1000
    assert parse_range(None, size) is None
    for ignored in ("bytes=abc", "items=0-5", "bytes=-", "bytes=0-1,5-6", "bytes=" + "9" * 10_000, "x" * 10_000):
        assert parse_range(ignored, size) is None, ignored  # not one range we understand: the whole file
    assert parse_range("bytes=0-" + "9" * 40, size) == (0, size - 1)  # an end past the file: up to its end
    assert parse_range("bytes=-" + "9" * 40, size) == (0, size - 1)  # a suffix longer than the file
    for unsatisfiable in ("bytes=5-2", f"bytes={size}-", "bytes=" + "9" * 40 + "-"):
        with pytest.raises(HubHTTPError) as caught:
            parse_range(unsatisfiable, size)
        assert caught.value.status == 416, unsatisfiable
    data = site.files["weights.bin"]
    with _serve(site, "hostile-range") as server, httpx2.Client(timeout=30) as http:
        for header in ("bytes=0-1,5-6", "bytes=abc", "bytes=" + "1" * 4000 + "-"):
            answer = http.get(_url(server, "weights.bin"), headers={"Range": header})
            assert answer.status_code in (200, 416), (header, answer.status_code)
            if answer.status_code == 200:
                assert answer.content == data
        assert "Traceback" not in server.log()
