"""Pure address functions: blob paths from hashes, and the one check for repo-relative paths.

Every path that comes from outside (an upstream tree listing, a request, an upload, a lock file) goes
through :func:`safe_relpath` before it touches the filesystem. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from .errors import UnsafePathError

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA1 = re.compile(r"[0-9a-f]{40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")
MAX_PATH_LENGTH = 4096


def is_sha256(value: str) -> bool:
    return bool(_SHA256.fullmatch(value))


def is_sha1(value: str) -> bool:
    return bool(_SHA1.fullmatch(value))


def blob_relpath(sha256: str) -> PurePosixPath:
    """``blobs/sha256/ab/<64 hex>`` for a content hash; raises ValueError for anything but 64 lowercase hex."""
    if not is_sha256(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return PurePosixPath("blobs", "sha256", sha256[:2], sha256)


def sha256_from_blob_path(path: Path | PurePosixPath) -> str:
    """The inverse of :func:`blob_relpath`; raises ValueError if the path is not a blob address."""
    name = path.name
    if not is_sha256(name) or path.parent.name != name[:2]:
        raise ValueError(f"not a blob path: {path}")
    return name


def safe_relpath(path: str) -> str:
    """Return ``path`` as a normalised repo-relative POSIX path, or raise :class:`UnsafePathError`.

    Refused: empty, absolute, drive letters, backslashes, NUL and other control characters, ``.`` or ``..``
    segments, empty segments (``a//b``), and paths longer than 4096 characters. Paths are compared as
    given: no normalisation that could turn a hostile name into a harmless-looking one.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"refused empty path {path!r}")
    if len(path) > MAX_PATH_LENGTH:
        raise UnsafePathError(f"refused path longer than {MAX_PATH_LENGTH} characters: {path[:80]!r}...")
    if _CONTROL.search(path):
        raise UnsafePathError(f"refused path with control characters: {path!r}")
    if "\\" in path:
        raise UnsafePathError(f"refused path with a backslash: {path!r}")
    if path.startswith("/") or _DRIVE.match(path):
        raise UnsafePathError(f"refused absolute path: {path!r}")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePathError(f"refused path with an empty, '.' or '..' segment: {path!r}")
    return path


def join_within(root: Path, relpath: str) -> Path:
    """``root / relpath`` after :func:`safe_relpath`; the result is guaranteed to stay below ``root``."""
    return root.joinpath(*safe_relpath(relpath).split("/"))


MAX_COMPONENT_BYTES = 255  # what ext4, xfs and most filesystems allow for one name


def check_tree(paths: Iterable[str]) -> None:
    """Refuse a set of repo paths that cannot be laid out as files, before anything is published.

    Each path must pass :func:`safe_relpath`, have no component over 255 bytes (UTF-8) and no ``.git``
    component, and no path may be both a file and a folder (``x`` beside ``x/y``). Raises
    :class:`UnsafePathError` naming the first problem."""
    seen: set[str] = set()
    for path in paths:
        safe_relpath(path)
        for part in path.split("/"):
            if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
                raise UnsafePathError(f"refused path with a name over {MAX_COMPONENT_BYTES} bytes: {path[:80]!r}...")
            if part.lower() == ".git":
                raise UnsafePathError(f"refused path inside a .git folder: {path!r}")
        if path in seen:
            raise UnsafePathError(f"refused path listed twice: {path!r}")
        seen.add(path)
    folders = {"/".join(p.split("/")[:i]) for p in seen for i in range(1, p.count("/") + 1)}
    clash = sorted(seen & folders)
    if clash:
        raise UnsafePathError(f"refused '{clash[0]}': it is both a file and a folder")
