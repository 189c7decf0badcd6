"""The blob store's contract, run against both backends: files under ``home/blobs`` and objects in an
S3-compatible bucket (moto's standalone server over HTTP on loopback). Then what only the object store has:
the bucket recorded in the home, multipart uploads with per-part checksums, a writer killed mid-upload, and
one clear line for a bucket that is missing or unreachable."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hubmirror.errors import IntegrityError, StoreError
from hubmirror.hashing import git_blob_sha1
from hubmirror.store import Expected, Store

pytestmark = pytest.mark.timeout(180)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["disk", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "disk":
        return Store(tmp_path / "home")
    bucket = request.getfixturevalue("s3_bucket")
    return Store(tmp_path / "home", store_url=bucket.url, endpoint_url=bucket.endpoint_url)


def _put(store: Store, data: bytes) -> str:
    with store.writer(Expected(len(data), _sha(data), git_blob_sha1(data))) as writer:
        writer.write(data)
        info = writer.commit()
    assert info.sha256 == _sha(data)
    return info.sha256


# ============================================================================ the contract, both backends
def test_a_written_blob_reads_back_whole_and_is_listed(store: Store) -> None:
    assert not store.has_any_blob()
    data = os.urandom(300_000)
    sha = _put(store, data)
    assert store.has_blob(sha) and store.blob_size(sha) == len(data)
    assert store.read_blob(sha) == data
    with store.open_blob(sha) as handle:  # seekable: safetensors headers and cards read a little of a big blob
        handle.seek(100_000)
        assert handle.read(10) == data[100_000:100_010]
        handle.seek(-5, os.SEEK_END)
        assert handle.read() == data[-5:]
    assert [(b.sha256, b.size) for b in store.iter_blobs()] == [(sha, len(data))]
    assert store.has_any_blob()
    assert not any(store.tmp_dir.iterdir())  # the temp file went when the blob was published


def test_a_mismatch_stores_nothing(store: Store) -> None:
    data = b"promised bytes"
    with pytest.raises(IntegrityError), store.writer(Expected(len(data), _sha(b"other"))) as writer:
        writer.write(data)
        writer.commit()
    assert not store.has_blob(_sha(data)) and not store.has_blob(_sha(b"other"))
    assert list(store.iter_blobs()) == [] and not any(store.tmp_dir.iterdir())


def test_an_existing_blob_is_stored_once(store: Store) -> None:
    data = os.urandom(5000)
    _put(store, data)
    with store.writer(Expected(len(data), _sha(data))) as writer:
        writer.write(data)
        # on disk the writer sees the file and drops its copy; in object storage it does not ask (a request
        # per blob: callers write only what the index does not name) and puts the same bytes again
        assert writer.commit().fetched is (not store.blobs.local)
    assert [b.sha256 for b in store.iter_blobs()] == [_sha(data)] and store.read_blob(_sha(data)) == data


def test_a_batch_publishes_all_or_leaves_nothing(store: Store) -> None:
    blobs = [os.urandom(1000 + n) for n in range(24)]
    with store.batch() as batch:
        for data in blobs:
            batch.add(_Reader(data), Expected(len(data), _sha(data)))
        assert not any(store.has_blob(_sha(d)) for d in blobs)  # nothing visible before the flush
        assert [i.sha256 for i in batch.flush()] == [_sha(d) for d in blobs]
    assert {b.sha256 for b in store.iter_blobs()} == {_sha(d) for d in blobs}
    abandoned = os.urandom(777)
    with store.batch() as batch:
        batch.add(_Reader(abandoned), Expected(len(abandoned), _sha(abandoned)))
    assert not store.has_blob(_sha(abandoned)) and not any(store.tmp_dir.iterdir())


def test_a_batch_filled_from_threads_flushes_what_it_holds_and_a_failed_flush_keeps_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = [os.urandom(2000 + n) for n in range(40)]
    with store.batch() as batch, ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda d: batch.add(_Reader(d), Expected(len(d), _sha(d))), blobs[:20]))
        assert sorted(i.sha256 for i in batch.flush()) == sorted(_sha(d) for d in blobs[:20])
        list(pool.map(lambda d: batch.add(_Reader(d), Expected(len(d), _sha(d))), blobs[20:]))
        assert sorted(i.sha256 for i in batch.flush()) == sorted(_sha(d) for d in blobs[20:])  # only the new
        assert batch.flush() == []
    assert {b.sha256 for b in store.iter_blobs()} == {_sha(d) for d in blobs}

    def full(*args: object, **kw: object) -> None:
        raise StoreError("cannot write the store: No space left on device")

    doomed = os.urandom(999)
    with store.batch() as batch:
        batch.add(_Reader(doomed), Expected(len(doomed), _sha(doomed)))
        monkeypatch.setattr(store.blobs, "publish", full)
        with pytest.raises(StoreError, match="No space left"):
            batch.flush()
        assert not any(store.tmp_dir.iterdir())  # the failed flush's temp files are gone at once
    assert not store.has_blob(_sha(doomed))


def test_copies_out_are_verified_and_deleting_is_final(store: Store, tmp_path: Path) -> None:
    data = os.urandom(70_000)
    sha = _put(store, data)
    target = tmp_path / "copy.bin"
    store.copy_blob(sha, target)
    assert target.read_bytes() == data
    with pytest.raises(FileNotFoundError):
        store.copy_blob(_sha(b"never stored"), tmp_path / "nothing.bin")
    assert not (tmp_path / "nothing.bin").exists()
    where = store.quarantine(sha)
    assert where is not None and not store.has_blob(sha)
    other = _put(store, b"second")
    store.delete_blob(other)
    store.delete_blob(other)  # gone already is fine
    assert list(store.iter_blobs()) == []


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.pos + size
        chunk, self.pos = self.data[self.pos : end], min(end, len(self.data))
        return chunk


# ============================================================================ the object store only
def test_a_large_blob_goes_up_in_checked_parts(s3_bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hubmirror.store import _s3

    monkeypatch.setattr(_s3, "PART_SIZE", 5 * 1024 * 1024)  # S3's smallest part: three parts for 12 MiB
    sent: list[dict] = []
    store = Store(tmp_path / "home", store_url=s3_bucket.url, endpoint_url=s3_bucket.endpoint_url)
    client = store.blobs.client  # type: ignore[attr-defined]
    real = client.upload_part
    monkeypatch.setattr(client, "upload_part", lambda **kw: sent.append(kw) or real(**kw))
    data = os.urandom(12 * 1024 * 1024 + 123)
    sha = _put(store, data)
    assert sorted(kw["PartNumber"] for kw in sent) == [1, 2, 3]
    for kw in sent:  # every part carries its own checksum for the service to check
        assert kw["ChecksumCRC32"] == base64.b64encode(zlib.crc32(kw["Body"]).to_bytes(4, "big")).decode()
    assert hashlib.sha256(store.read_blob(sha)).hexdigest() == sha
    head = client.head_object(Bucket=s3_bucket.bucket, Key=f"store/blobs/sha256/{sha[:2]}/{sha}")
    assert head["ContentLength"] == len(data)


def test_a_batched_large_blob_goes_up_once_and_leaves_no_open_upload(
    s3_bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch (import, push) publishes its verified temp files: a big blob of known hash must not also be
    streamed while it is copied, which sent it twice and left a multipart upload open."""
    from hubmirror.store import _s3

    monkeypatch.setattr(_s3, "PART_SIZE", 5 * 1024 * 1024)
    store = Store(tmp_path / "home", store_url=s3_bucket.url, endpoint_url=s3_bucket.endpoint_url)
    client = store.blobs.client  # type: ignore[attr-defined]
    sent: list[int] = []
    real = client.upload_part
    monkeypatch.setattr(client, "upload_part", lambda **kw: sent.append(len(kw["Body"])) or real(**kw))
    data = os.urandom(12 * 1024 * 1024 + 7)
    with store.batch() as batch:
        batch.add(_Reader(data), Expected(len(data), _sha(data)))
        batch.flush()
    assert client.list_multipart_uploads(Bucket=s3_bucket.bucket).get("Uploads", []) == []
    assert sum(sent) <= len(data)  # each byte went up at most once (a single PUT sends none as parts)
    assert store.read_blob(_sha(data)) == data


def test_a_blob_of_known_hash_is_sent_while_it_arrives_and_shows_only_once_verified(
    s3_bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubmirror.store import _s3

    monkeypatch.setattr(_s3, "PART_SIZE", 5 * 1024 * 1024)
    store = Store(tmp_path / "home", store_url=s3_bucket.url, endpoint_url=s3_bucket.endpoint_url)
    client = store.blobs.client  # type: ignore[attr-defined]
    data = os.urandom(16 * 1024 * 1024 + 5)
    for promised, whole in ((_sha(data), True), (_sha(b"something else"), False)):
        with store.writer(Expected(len(data), promised)) as writer:
            writer.write(data[: 11 * 1024 * 1024])
            uploads = client.list_multipart_uploads(Bucket=s3_bucket.bucket).get("Uploads", [])
            assert len(uploads) == 1  # parts went up while the bytes were still arriving...
            deadline = time.monotonic() + 30  # (parts go up on the upload's own threads)
            while not client.list_parts(
                Bucket=s3_bucket.bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]
            ).get("Parts"):
                assert time.monotonic() < deadline, "no part was sent while the bytes arrived"
                time.sleep(0.02)
            assert not store.has_blob(promised)  # ...and nothing is visible yet
            writer.write(data[11 * 1024 * 1024 :])
            if whole:
                writer.commit()
            else:
                with pytest.raises(IntegrityError):
                    writer.commit()
        assert client.list_multipart_uploads(Bucket=s3_bucket.bucket).get("Uploads", []) == []
        assert store.has_blob(promised) is whole
    assert store.read_blob(_sha(data)) == data
    assert [b.sha256 for b in store.iter_blobs()] == [_sha(data)] and not any(store.tmp_dir.iterdir())


def test_the_home_records_the_bucket_and_refuses_another(s3_bucket, tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home, store_url=s3_bucket.url, endpoint_url=s3_bucket.endpoint_url)
    sha = _put(store, b"recorded")
    again = Store(home, create=False)  # given only the home (resolve --home): the record finds the bucket
    assert again.blobs.location == s3_bucket.url and again.read_blob(sha) == b"recorded"
    with pytest.raises(StoreError, match="keeps its blobs in s3://") as refused:
        Store(home, store_url=s3_bucket.url + "-other", endpoint_url=s3_bucket.endpoint_url)
    assert "\n" not in str(refused.value)
    local = Store(tmp_path / "local")
    _put(local, b"on disk")
    with pytest.raises(StoreError, match="does not move its blobs in place"):
        Store(tmp_path / "local", store_url=s3_bucket.url, endpoint_url=s3_bucket.endpoint_url)


def test_a_damaged_store_record_is_one_line(s3_bucket, tmp_path: Path) -> None:
    home = tmp_path / "home"
    Store(home, store_url=s3_bucket.url, endpoint_url=s3_bucket.endpoint_url)
    for damage in ("{not json", '{"endpoint_url": null}', "[1, 2]", "\udcff"):
        (home / "store.json").write_text(damage, errors="surrogateescape")
        with pytest.raises(StoreError, match="store.json is damaged") as caught:
            Store(home, create=False)
        assert "\n" not in str(caught.value)


def test_a_missing_bucket_or_a_dead_endpoint_is_one_line(s3_bucket, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist") as missing:
        Store(tmp_path / "a", store_url="s3://no-such-bucket/x", endpoint_url=s3_bucket.endpoint_url)
    assert "\n" not in str(missing.value)
    assert not (tmp_path / "a" / "store.json").exists()  # nothing recorded for a store that could not open
    from prockit import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreError, match="unreachable") as unreachable:
        Store(tmp_path / "b", store_url=s3_bucket.url, endpoint_url=dead)
    assert "\n" not in str(unreachable.value)


_UPLOADER = """
import os, sys
from hubmirror.store import Expected, Store, _s3
_s3.PART_SIZE = 5 * 1024 * 1024
store = Store(sys.argv[1], store_url=sys.argv[2], endpoint_url=sys.argv[3])
data = os.urandom(200 * 1024 * 1024)
import hashlib
with store.writer(Expected(len(data))) as writer:
    writer.write(data)
    print(hashlib.sha256(data).hexdigest(), flush=True)
    writer.commit()
"""


def test_a_writer_killed_mid_upload_leaves_no_object(s3_bucket, s3_server, tmp_path: Path) -> None:
    """The object appears only when the whole upload completes: killing the writer between parts leaves an
    unfinished upload (invisible) and no object at the blob's key."""
    from s3kit import aws_env

    proc = subprocess.Popen(
        [sys.executable, "-c", _UPLOADER, str(tmp_path / "home"), s3_bucket.url, s3_bucket.endpoint_url],
        stdout=subprocess.PIPE,
        env=aws_env(dict(os.environ)),
    )
    client = s3_server.client()
    try:
        assert proc.stdout is not None
        sha = proc.stdout.readline().decode().strip()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            uploads = client.list_multipart_uploads(Bucket=s3_bucket.bucket).get("Uploads", [])
            if uploads and client.list_parts(
                Bucket=s3_bucket.bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]
            ).get("Parts"):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the upload never started")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    store = Store(tmp_path / "home", create=False)
    assert not store.has_blob(sha)
    assert list(store.iter_blobs()) == []
    # gc's sweep aborts unfinished uploads older than a day (moto reports a fixed 2010 start time for every
    # upload, so only the abort itself can be shown here)
    assert store.blobs.sweep(time.time() + 1) == 1
    assert client.list_multipart_uploads(Bucket=s3_bucket.bucket).get("Uploads", []) == []
