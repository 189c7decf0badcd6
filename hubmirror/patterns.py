"""allow/ignore pattern filtering with huggingface_hub's meaning (fnmatch; a trailing '/' means a folder)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from fnmatch import fnmatchcase


def _normalise(patterns: Sequence[str] | None) -> list[str] | None:
    if patterns is None:
        return None
    return [p + "*" if p.endswith("/") else p for p in patterns]


class PathFilter:
    def __init__(self, allow: Sequence[str] | None = None, ignore: Sequence[str] | None = None) -> None:
        self.allow, self.ignore = _normalise(allow), _normalise(ignore)

    def __call__(self, path: str) -> bool:
        if self.allow is not None and not any(fnmatchcase(path, p) for p in self.allow):
            return False
        return not (self.ignore is not None and any(fnmatchcase(path, p) for p in self.ignore))

    @property
    def key(self) -> str:
        """A stable id of this pattern set: a commit mirrored under one set is not complete for another."""
        text = json.dumps([self.allow, self.ignore], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
