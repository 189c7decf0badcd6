"""Keeping a store sound over the years: verify (rehash, invariants) and repair, gc (retention), remove."""

from __future__ import annotations

from ._gc import Collector, GcReport, Retention, pinned_commits
from ._remove import RemoveReport, remove
from ._repair import Repairer
from ._verify import Verifier, VerifyReport

__all__ = [
    "Collector",
    "GcReport",
    "RemoveReport",
    "Repairer",
    "Retention",
    "Verifier",
    "VerifyReport",
    "pinned_commits",
    "remove",
]
