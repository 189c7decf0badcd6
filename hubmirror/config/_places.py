"""Default places: the config file name, the default home, and how relative paths in a config are read.

The environment is read when a function is called, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CONFIG_FILENAME = "hubmirror.yaml"


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """Return ``$HUBMIRROR_HOME`` if set, else ``$XDG_CACHE_HOME/hubmirror``, else ``~/.cache/hubmirror``."""
    env = os.environ if env is None else env
    if env.get("HUBMIRROR_HOME"):
        return absolute_path(env["HUBMIRROR_HOME"], Path.cwd(), env)
    xdg = env.get("XDG_CACHE_HOME")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    cache = Path(xdg) if xdg and Path(xdg).is_absolute() else expanduser("~/.cache", env)
    return cache / "hubmirror"


def expanduser(text: str, env: Mapping[str, str]) -> Path:
    if (text == "~" or text.startswith("~/")) and env.get("HOME"):
        return Path(env["HOME"] + text[1:])
    return Path(text).expanduser()


def absolute_path(text: str, base: Path, env: Mapping[str, str]) -> Path:
    """``~`` expanded; a relative path joined to ``base`` (the config file's directory)."""
    path = expanduser(text, env)
    return path if path.is_absolute() else base / path
