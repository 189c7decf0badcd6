"""The config (``hubmirror.yaml``) and lock file (``hubmirror.lock``), read once into frozen dataclasses, and
where the home is. Every problem is a ConfigError naming file, line and key path. Never touches the network,
the store or the index.

The YAML reader (and cron checking) load on first use, so ``hubmirror resolve`` does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._home import find_home, find_place
from ._model import (
    DEFAULT_ENDPOINT,
    LOCK_FILENAME,
    Config,
    GcConfig,
    IndexConfig,
    PullThroughConfig,
    RepoSpec,
    ServeConfig,
    ServeUser,
    StoreConfig,
    SyncConfig,
    UpstreamConfig,
    WatchSpec,
)
from ._places import CONFIG_FILENAME, default_home

if TYPE_CHECKING:
    from ._loader import find_config_path, load_config
    from ._lockfile import LockedFile, LockedRevision, read_lock, write_lock
    from ._reader import parse_card_metadata, parse_duration, validate_repo_id

_LAZY = {
    "find_config_path": "_loader",
    "load_config": "_loader",
    "LockedFile": "_lockfile",
    "LockedRevision": "_lockfile",
    "read_lock": "_lockfile",
    "write_lock": "_lockfile",
    "parse_card_metadata": "_reader",
    "parse_duration": "_reader",
    "validate_repo_id": "_reader",
}

__all__ = [
    "CONFIG_FILENAME",
    "DEFAULT_ENDPOINT",
    "LOCK_FILENAME",
    "Config",
    "GcConfig",
    "IndexConfig",
    "LockedFile",
    "LockedRevision",
    "PullThroughConfig",
    "RepoSpec",
    "ServeConfig",
    "ServeUser",
    "StoreConfig",
    "SyncConfig",
    "UpstreamConfig",
    "WatchSpec",
    "default_home",
    "find_config_path",
    "find_home",
    "find_place",
    "load_config",
    "parse_card_metadata",
    "parse_duration",
    "read_lock",
    "validate_repo_id",
    "write_lock",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hubmirror.config' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
