from __future__ import annotations

import hashlib
import os
import stat
import time

import pytest

from hubmirror.errors import IntegrityError, StoreError
from hubmirror.hashing import git_blob_sha1
from hubmirror.store import Expected, Store


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_layout_created(tmp_path) -> None:
    store = Store(tmp_path / "home")
    for name in ("blobs/sha256", "tmp", "locks"):
        assert (store.home / name).is_dir()
    assert (store.home / "VERSION").read_text() == "1\n"
    assert (store.home / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_newer_layout_refused(tmp_path) -> None:
    (tmp_path / "VERSION").write_text("99\n")
    with pytest.raises(StoreError, match="newer than this hubmirror"):
        Store(tmp_path)


def test_writer_verifies_and_publishes_read_only(tmp_path) -> None:
    store = Store(tmp_path)
    data = b"hello world" * 1000
    with store.writer(Expected(len(data), _sha(data), git_blob_sha1(data))) as writer:
        writer.write(data[:100])
        writer.write(data[100:])
        info = writer.commit()
    assert info.sha256 == _sha(data) and info.git_sha1 == git_blob_sha1(data) and info.fetched
    path = store.blob_file(info.sha256)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert list(store.tmp_dir.iterdir()) == []


@pytest.mark.parametrize(
    "expected", [Expected(size=20), Expected(sha256="0" * 64), Expected(size=11, git_sha1="0" * 40)]
)
def test_writer_mismatch_stores_nothing(tmp_path, expected) -> None:
    store = Store(tmp_path)
    with pytest.raises(IntegrityError, match="nothing was stored"), store.writer(expected) as writer:
        writer.write(b"hello world")
        writer.commit()
    assert not any(store.home.joinpath("blobs", "sha256").iterdir())
    assert list(store.tmp_dir.iterdir()) == []


def test_writer_refuses_more_bytes_than_promised(tmp_path) -> None:
    store = Store(tmp_path)
    with pytest.raises(IntegrityError, match="more than the promised"), store.writer(Expected(size=3)) as w:
        w.write(b"abcdef")


def test_duplicate_blob_is_not_rewritten(tmp_path) -> None:
    store = Store(tmp_path)
    src = tmp_path / "f"
    src.write_bytes(b"same")
    first = store.ingest_file(src)
    mtime = store.blob_file(first.sha256).stat().st_mtime_ns
    second = store.ingest_file(src)
    assert first.fetched and not second.fetched
    assert store.blob_file(first.sha256).stat().st_mtime_ns == mtime


def test_resumable_partial_survives_and_is_rehashed(tmp_path) -> None:
    store = Store(tmp_path)
    data = os.urandom(300_000)
    expected = Expected(len(data), _sha(data))
    with store.writer(expected, resume_key="k") as writer:
        writer.write(data[:120_000])
        # leaving without commit keeps the partial, as a killed process would
    assert (store.tmp_dir / "k.partial").stat().st_size == 120_000
    with store.writer(expected, resume_key="k") as writer:
        assert writer.offset == 120_000
        writer.write(data[120_000:])
        info = writer.commit()
    assert store.blob_file(info.sha256).read_bytes() == data


def test_corrupt_partial_is_caught_at_commit(tmp_path) -> None:
    store = Store(tmp_path)
    data = os.urandom(1000)
    (store.tmp_dir / "k.partial").write_bytes(b"\x00" * 500)  # not a prefix of data
    with pytest.raises(IntegrityError), store.writer(Expected(len(data), _sha(data)), resume_key="k") as w:
        w.write(data[500:])
        w.commit()
    assert not (store.tmp_dir / "k.partial").exists()


def test_restart_discards_partial(tmp_path) -> None:
    store = Store(tmp_path)
    data = b"abcdef"
    (store.tmp_dir / "k.partial").write_bytes(b"xyz")
    with store.writer(Expected(len(data), _sha(data)), resume_key="k") as writer:
        writer.restart()
        writer.write(data)
        assert writer.commit().sha256 == _sha(data)


def test_sweep_removes_only_stale_temp_files(tmp_path) -> None:
    store = Store(tmp_path)
    old, new = store.tmp_dir / "old.partial", store.tmp_dir / "new.partial"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    past = time.time() - 30 * 86400
    os.utime(old, (past, past))
    assert store.sweep_tmp() == 1
    assert not old.exists() and new.exists()


def test_disk_full_is_a_store_error(tmp_path, monkeypatch) -> None:
    import errno

    store = Store(tmp_path)
    with store.writer(Expected(size=10), resume_key="full") as writer:

        def no_space(_chunk: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(writer._handle, "write", no_space)
        with pytest.raises(StoreError, match="disk full"):
            writer.write(b"0123456789")


def test_sweep_removes_old_download_locks_only(tmp_path) -> None:
    store = Store(tmp_path)
    old, new, other = (store.locks_dir / name for name in ("dl-a.lock", "dl-b.lock", "index-write.lock"))
    for path in (old, new, other):
        path.write_bytes(b"")
    past = time.time() - 2 * 86400
    for path in (old, other):
        os.utime(path, (past, past))
    assert store.sweep_tmp() == 1
    assert not old.exists() and new.exists() and other.exists()
