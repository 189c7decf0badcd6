"""The Hugging Face cache format: the HF-cache view laid over the store (so unmodified code loads offline
with ``HF_HUB_CACHE``), and importing an existing HF cache into the store."""

from __future__ import annotations

from ._hfcache import HFCacheView, ViewReport, repo_folder_name, view_root
from ._hfimport import CacheImporter, ImportReport
from ._upkeep import check_repo, prune_repo, remove_ref, remove_repo, repair_repo

__all__ = [
    "CacheImporter",
    "HFCacheView",
    "ImportReport",
    "ViewReport",
    "check_repo",
    "prune_repo",
    "remove_ref",
    "remove_repo",
    "repair_repo",
    "repo_folder_name",
    "view_root",
]
