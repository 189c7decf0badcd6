"""What of a local model folder counts as content: skips VCS dirs, temp/partial/lock files and links that
leave the folder. Shared by the watcher (is it settled?) and the pusher (what to upload)."""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

from ..errors import HubMirrorError
from ..paths import safe_relpath

IGNORED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints"}
IGNORED_FILES = (
    "*.tmp",
    "*.temp",
    "*.incomplete",
    "*.lock",
    "*.part",
    "*.partial",
    "*.swp",
    "*~",
    ".DS_Store",
    ".~*",
    "*.crdownload",
)


def is_ignored(relpath: str) -> bool:
    parts = relpath.split("/")
    # all parts: the folder itself (a watcher event on '.git') and a '.git' *file* (a submodule's pointer)
    if any(p in IGNORED_DIRS for p in parts) or relpath.startswith(".cache/huggingface/"):
        return True
    return any(fnmatch.fnmatchcase(parts[-1], pattern) for pattern in IGNORED_FILES)


def scan_folder(folder: Path) -> tuple[dict[str, os.stat_result], list[str]]:
    """Files to push (relative path → stat) and what was skipped with why (links leaving the folder)."""
    root = folder.resolve()
    files: dict[str, os.stat_result] = {}
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        kept = []
        for name in sorted(d for d in dirnames if d not in IGNORED_DIRS):
            full = Path(dirpath) / name
            if full.is_symlink():  # os.walk does not follow it; say so rather than drop it silently
                target = full.resolve()
                where = "inside" if target.is_relative_to(root) else "outside"
                rel = full.relative_to(root).as_posix()
                skipped.append(
                    f"'{rel}' is a link to the folder {target}, {where} the folder: not followed, not uploaded"
                )
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if is_ignored(rel):
                continue
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(root) or not target.is_file():
                    skipped.append(f"'{rel}' is a link to {target}, outside the folder or not a file: not uploaded")
                    continue
            try:
                safe_relpath(rel)
                st = full.stat()
            except (HubMirrorError, OSError) as exc:
                skipped.append(f"'{rel}': {exc}")
                continue
            if not stat.S_ISREG(st.st_mode):
                # Reading a FIFO blocks until a writer comes; a socket or device is not content either.
                skipped.append(f"'{rel}' is {_kind(st.st_mode)}, not a regular file: not uploaded")
                continue
            files[rel] = st
    return files, skipped


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
