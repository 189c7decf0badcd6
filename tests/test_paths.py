from __future__ import annotations

import pytest

from hubmirror.errors import UnsafePathError
from hubmirror.hashing import git_blob_sha1, lfs_pointer
from hubmirror.paths import blob_relpath, join_within, safe_relpath, sha256_from_blob_path


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a\\b",
        "..\\x",
        "a\x00b",
        "C:/x",
        "c:x",
        "a//b",
        "./a",
        "a/./b",
        "a/",
        "x" * 5000,
        "a/\nb",
    ],
)
def test_safe_relpath_refuses(bad: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_relpath(bad)


@pytest.mark.parametrize("good", ["config.json", "1_Pooling/config.json", "a b+#.txt", "..a", "a..b/c.."])
def test_safe_relpath_accepts(good: str) -> None:
    assert safe_relpath(good) == good


def test_join_within_stays_below_root(tmp_path) -> None:
    assert join_within(tmp_path, "a/b.txt") == tmp_path / "a" / "b.txt"
    with pytest.raises(UnsafePathError):
        join_within(tmp_path, "../escape")


def test_blob_addresses_round_trip() -> None:
    digest = "ab" + "0" * 62
    path = blob_relpath(digest)
    assert str(path) == f"blobs/sha256/ab/{digest}"
    assert sha256_from_blob_path(path) == digest
    for bad in ("AB" + "0" * 62, "ab", "zz" + "0" * 62):
        with pytest.raises(ValueError):
            blob_relpath(bad)


def test_git_hashes_match_git() -> None:
    # Values documented in HUB-PROTOCOL.md F1 (identical to `git hash-object`).
    assert git_blob_sha1(b"Hello, World!") == "b45ef6fec89518d314f546fd6c3025367b721684"
    assert git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    pointer = lfs_pointer("9be78e" + "0" * 58, 548123560)
    assert pointer.endswith(b"size 548123560\n") and pointer.startswith(b"version https://git-lfs")
