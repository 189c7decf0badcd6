"""Content hashes as the Hub defines them: sha256 for LFS content, git blob sha1 for regular files."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1024 * 1024


def git_blob_header(size: int) -> bytes:
    return b"blob " + str(size).encode() + b"\x00"


def git_blob_sha1(data: bytes) -> str:
    """The id ``git hash-object`` gives these bytes (the Hub's ETag for regular files)."""
    digest = hashlib.sha1(git_blob_header(len(data)))
    digest.update(data)
    return digest.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs v1 pointer text whose git blob sha1 is the tree ``oid`` of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def hash_file(path: Path) -> tuple[str, str, int]:
    """Return (sha256, git blob sha1, size) of a file, reading it once in 1 MiB chunks."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(git_blob_header(size))
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
    return sha256.hexdigest(), sha1.hexdigest(), size
