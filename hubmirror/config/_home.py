"""Where the store is: the one place that decides a home from flags, the environment and the config.

Precedence, lowest first: the default (``$XDG_CACHE_HOME/hubmirror`` or ``~/.cache/hubmirror``) < the config's
``home:`` < ``$HUBMIRROR_HOME`` < ``--home``. The environment is read when a function is called, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..models import Backends
from ._places import CONFIG_FILENAME, default_home


def find_place(
    explicit: str | Path | None = None, config_path: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> tuple[Path, Backends]:
    """Like :func:`find_home`, with where the config puts index and blobs (its ``index:`` and ``store:``):
    a machine with only the config (no records in a home yet) finds them. With ``explicit`` no config is
    read: the home's records say where they are."""
    env = os.environ if env is None else env
    if explicit is None and (config_path is not None or env.get("HUBMIRROR_CONFIG") or Path(CONFIG_FILENAME).exists()):
        from ._loader import find_config_path, load_config

        config = load_config(find_config_path(config_path, env), env)
        return config.home, config.backends
    return find_home(explicit, config_path, env=env), Backends()


def find_home(
    explicit: str | Path | None = None,
    config_path: str | Path | None = None,
    *,
    read_config: bool = True,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The home a command works on: ``explicit`` (--home, or ``home=`` in Python), else (when
    ``read_config``) the config's if a config is named or found, else ``$HUBMIRROR_HOME`` or the default.

    Only "there is no config at all" falls back to the default; a config that exists, or is named by -c or
    ``$HUBMIRROR_CONFIG``, and is broken raises ConfigError: it is never silently ignored."""
    env = os.environ if env is None else env
    if explicit is not None:  # no config module (and its YAML parser) to import: resolve stays fast
        return Path(explicit).expanduser().absolute()
    if read_config and (config_path is not None or env.get("HUBMIRROR_CONFIG") or Path(CONFIG_FILENAME).exists()):
        from ._loader import find_config_path, load_config

        return load_config(find_config_path(config_path, env), env).home
    return default_home(env)
