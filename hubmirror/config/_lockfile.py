"""``hubmirror.lock``: every repo-revision pinned to a commit, every file with path, size and sha256.

JSON with sorted keys and one file a line-group, so a team can review and diff it like a package lock.
Reading validates everything and raises :class:`ConfigError` naming the lock file (and line for syntax).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UnsafePathError
from ..paths import is_sha1, is_sha256, safe_relpath
from ..version import __version__

LOCK_VERSION = 1


@dataclass(frozen=True)
class LockedFile:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class LockedRevision:
    repo: str
    type: str
    revision: str
    commit: str
    files: tuple[LockedFile, ...]


def write_lock(path: Path, revisions: Sequence[LockedRevision]) -> None:
    """Write the lock atomically (temp file, fsync, rename)."""
    data = {
        "version": LOCK_VERSION,
        "generated_by": f"hubmirror {__version__}",
        "repos": [
            {
                "repo": r.repo,
                "type": r.type,
                "revision": r.revision,
                "commit": r.commit,
                "files": [
                    {"path": f.path, "size": f.size, "sha256": f.sha256} for f in sorted(r.files, key=lambda f: f.path)
                ],
            }
            for r in sorted(revisions, key=lambda r: (r.type, r.repo, r.revision))
        ],
    }
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_lock(path: Path) -> list[LockedRevision]:
    if not path.exists():
        raise ConfigError("no lock file; run 'hubmirror lock' first", file=str(path))
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", file=str(path), line=exc.lineno) from exc
    if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
        raise ConfigError(f"unsupported lock file (expected version {LOCK_VERSION})", file=str(path))
    repos = data.get("repos")
    if not isinstance(repos, list):
        raise ConfigError("'repos' must be a list", file=str(path), key="repos")
    return [_revision(item, i, path) for i, item in enumerate(repos)]


def _revision(item: Any, i: int, path: Path) -> LockedRevision:
    key = f"repos[{i}]"

    def bad(message: str, sub: str = "") -> ConfigError:
        return ConfigError(message, file=str(path), key=key + sub)

    if not isinstance(item, dict):
        raise bad("expected a mapping")
    for name in ("repo", "type", "revision", "commit"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise bad("expected a non-empty string", f".{name}")
    if not is_sha1(item["commit"]):
        raise bad("expected a 40-hex commit sha", ".commit")
    files = item.get("files")
    if not isinstance(files, list):
        raise bad("expected a list", ".files")
    locked = []
    for j, entry in enumerate(files):
        sub = f".files[{j}]"
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("path"), str)
            or not isinstance(entry.get("size"), int)
            or not isinstance(entry.get("sha256"), str)
            or not is_sha256(entry["sha256"])
        ):
            raise bad("expected {path, size, sha256 (64 hex)}", sub)
        try:
            safe_relpath(entry["path"])
        except UnsafePathError as exc:
            raise bad(str(exc), sub + ".path") from exc
        locked.append(LockedFile(entry["path"], entry["size"], entry["sha256"]))
    return LockedRevision(item["repo"], item["type"], item["revision"], item["commit"], tuple(locked))
