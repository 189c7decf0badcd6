"""Reads hubmirror.yaml into frozen dataclasses (YAML reading itself is in ``_reader``).

Everything is validated at load time and every problem raises ConfigError naming file, line and key path.
This module never touches the network, the store or the index.

Precedence, lowest first: **defaults < file < environment < flags**.
  defaults     the field defaults of the dataclasses below;
  file         the YAML file (``${VAR}`` / ``${VAR:-default}`` in string values expand from the environment);
  environment  ``$HUBMIRROR_HOME`` replaces ``home``; ``$HUBMIRROR_CONFIG`` picks the file;
  flags        applied by the CLI on top of the loaded Config with ``dataclasses.replace``.
The environment is read only when a function here is called (``env`` defaults to ``os.environ``), never at
import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..cron import parse_cron
from ..errors import ConfigError
from ._reader import (
    REPO_TYPES,
    _format_path,
    _KeyPath,
    _Reader,
    parse_card_metadata,
    parse_duration,
    read_document,
    validate_repo_id,
)

__all__ = [
    "CONFIG_FILENAME", "DEFAULT_ENDPOINT", "LOCK_FILENAME", "REPO_TYPES", "Config", "RepoSpec", "ServeConfig",
    "SyncConfig", "UpstreamConfig", "WatchSpec", "default_home", "find_config_path", "load_config",
    "parse_card_metadata", "parse_duration", "validate_repo_id",
]

DEFAULT_ENDPOINT = "https://huggingface.co"
CONFIG_FILENAME = "hubmirror.yaml"
LOCK_FILENAME = "hubmirror.lock"

_TOP_KEYS = ("home", "upstream", "sync", "repos", "watch", "serve")
_UPSTREAM_KEYS = ("endpoint", "token", "timeout", "max_retries", "max_requests_per_5min")
_SYNC_KEYS = ("workers", "every", "cron", "jitter")
_REPO_KEYS = ("repo", "type", "revisions", "allow_patterns", "ignore_patterns")
_WATCH_KEYS = ("path", "repo", "type", "revision", "private", "debounce", "delete_remote", "create",
               "add_model_card", "message")
_SERVE_KEYS = ("host", "port", "token")



@dataclass(frozen=True)
class UpstreamConfig:
    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = field(default=None, repr=False)  # repr=False: a logged Config never shows it
    timeout: float = 30.0
    max_retries: int = 8
    max_requests_per_5min: int = 800


@dataclass(frozen=True)
class SyncConfig:
    workers: int = 16
    every: float | None = None  # seconds; `every` and `cron` are mutually exclusive
    cron: str | None = None
    jitter: float = 0.0


@dataclass(frozen=True)
class RepoSpec:
    repo: str
    type: str = "model"
    revisions: tuple[str, ...] = ("main",)
    allow_patterns: tuple[str, ...] | None = None
    ignore_patterns: tuple[str, ...] | None = None
    line: int | None = None  # where the entry starts in the config file, for messages


@dataclass(frozen=True)
class WatchSpec:
    path: Path
    repo: str
    type: str = "model"
    revision: str = "main"
    private: bool = False
    debounce: float = 5.0
    delete_remote: bool = False
    create: bool = True
    add_model_card: bool = False
    message: str = "Update from hubmirror watch"


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = field(default=None, repr=False)
    enabled: bool = False  # the file has a serve: section, so `hubmirror run` starts the server


@dataclass(frozen=True)
class Config:
    path: Path | None
    home: Path
    upstream: UpstreamConfig
    sync: SyncConfig
    repos: tuple[RepoSpec, ...]
    watch: tuple[WatchSpec, ...]
    serve: ServeConfig

    @property
    def lock_path(self) -> Path:
        """``hubmirror.lock`` beside the config file (in the current directory if there is no file)."""
        base = self.path.parent if self.path is not None else Path.cwd()
        return base / LOCK_FILENAME

    def select(self, names: Sequence[str]) -> tuple[RepoSpec, ...]:
        """Return the repos (in config order) whose repo id is in ``names``.

        Raises ConfigError for a name the config does not list.
        """
        listed = list(dict.fromkeys(spec.repo for spec in self.repos))
        for name in names:
            if name not in listed:
                more = f", ... ({len(listed) - 10} more)" if len(listed) > 10 else ""
                shown = ", ".join(listed[:10]) + more
                raise ConfigError(f"repo {name!r} is not listed in repos: (listed: {shown})",
                                  file=str(self.path) if self.path is not None else None)
        wanted = set(names)
        return tuple(spec for spec in self.repos if spec.repo in wanted)


# --- public helpers -------------------------------------------------------------------------------------

def find_config_path(explicit: str | Path | None = None, env: Mapping[str, str] | None = None,
                     cwd: Path | None = None) -> Path:
    """Return the config file to use: ``explicit`` (-c/--config), else ``$HUBMIRROR_CONFIG``, else
    ``./hubmirror.yaml``. Relative paths are taken from ``cwd``.

    Raises ConfigError if the chosen file does not exist, or if none of the three gives a file.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else Path(cwd)
    if explicit is not None:
        return _existing_file(cwd / Path(explicit).expanduser(), "given with -c/--config; fix the path")
    named = env.get("HUBMIRROR_CONFIG")
    if named:
        return _existing_file(cwd / Path(named).expanduser(),
                              "named by $HUBMIRROR_CONFIG; fix or unset the variable")
    candidate = cwd / CONFIG_FILENAME
    if candidate.is_file():
        return candidate
    raise ConfigError(
        f"no config file found: looked for -c/--config (not given), $HUBMIRROR_CONFIG (not set) and "
        f"{candidate} (missing); create {CONFIG_FILENAME} there (see config/hubmirror.example.yaml), "
        f"pass -c PATH or set HUBMIRROR_CONFIG")


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """Return ``$HUBMIRROR_HOME`` if set, else ``$XDG_CACHE_HOME/hubmirror``, else ``~/.cache/hubmirror``."""
    env = os.environ if env is None else env
    if env.get("HUBMIRROR_HOME"):
        return _absolute(env["HUBMIRROR_HOME"], Path.cwd(), env)
    xdg = env.get("XDG_CACHE_HOME")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    cache = Path(xdg) if xdg and Path(xdg).is_absolute() else _expanduser("~/.cache", env)
    return cache / "hubmirror"


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return the config at ``path``; ``env`` (default ``os.environ``) feeds ``${VAR}``
    references and ``$HUBMIRROR_HOME``.

    Raises ConfigError (naming file, line and key path) for anything unreadable, malformed or invalid.
    """
    env = os.environ if env is None else env
    shown = str(path)
    config_path = Path(path).absolute()
    try:
        data = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("config file not found", file=shown) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror or exc}", file=shown) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError("the file is not UTF-8 text", file=shown,
                          line=data[:exc.start].count(b"\n") + 1) from None
    reader, top = read_document(text, shown, env)
    return _build(reader, top, config_path, env)


# --- reading YAML nodes into plain values, remembering where each came from ----------------------------

def _build(reader: _Reader, top: dict[str, Any], config_path: Path, env: Mapping[str, str]) -> Config:
    reader.check_keys(top, (), _TOP_KEYS)
    base = config_path.parent
    home_text = reader.optional_string(top, (), "home")
    if env.get("HUBMIRROR_HOME") or home_text is None:
        home = default_home(env)
    else:
        home = _absolute(home_text, base, env)

    up = reader.section(top, "upstream", _UPSTREAM_KEYS)
    endpoint = reader.string(up, ("upstream",), "endpoint", DEFAULT_ENDPOINT)
    upstream = UpstreamConfig(
        endpoint=_check_endpoint(reader, endpoint),
        token=reader.secret(up, ("upstream",), "token"),
        timeout=reader.duration(up, ("upstream",), "timeout", 30.0, positive=True),
        max_retries=reader.integer(up, ("upstream",), "max_retries", 8, 0, 100),
        max_requests_per_5min=reader.integer(up, ("upstream",), "max_requests_per_5min", 800, 1),
    )

    sy = reader.section(top, "sync", _SYNC_KEYS)
    sync = SyncConfig(
        workers=reader.integer(sy, ("sync",), "workers", 16, 1, 128),
        every=reader.optional_duration(sy, ("sync",), "every"),
        cron=_check_cron(reader, reader.optional_string(sy, ("sync",), "cron")),
        jitter=reader.duration(sy, ("sync",), "jitter", 0.0),
    )
    if sync.every is not None and sync.cron is not None:
        later = max(("every", "cron"), key=lambda key: reader.lines[("sync", key)])
        raise reader.error(("sync", later), "'every' and 'cron' are mutually exclusive; keep one of them")

    se = reader.section(top, "serve", _SERVE_KEYS)
    serve = ServeConfig(
        host=reader.string(se, ("serve",), "host", "127.0.0.1"),
        port=reader.integer(se, ("serve",), "port", 8080, 0, 65535),
        token=reader.secret(se, ("serve",), "token"),
        enabled="serve" in top,
    )

    return Config(path=config_path, home=home, upstream=upstream, sync=sync,
                  repos=_read_repos(reader, top), watch=_read_watch(reader, top, base, env), serve=serve)


def _check_endpoint(reader: _Reader, endpoint: str) -> str:
    where = ("upstream", "endpoint")
    try:
        parts = urlsplit(endpoint)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        has_credentials = parts.username is not None or parts.password is not None
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        ok, has_credentials = False, False
    if has_credentials:  # the value is not echoed: it holds a secret
        raise reader.error(where, "must not contain credentials; put the token in upstream.token")
    if not ok or parts.query or parts.fragment or any(ch.isspace() for ch in endpoint):
        raise reader.invalid(where, "expected an http:// or https:// URL such as https://huggingface.co")
    return endpoint.rstrip("/")


def _check_cron(reader: _Reader, cron: str | None) -> str | None:
    if cron is not None:
        try:
            parse_cron(cron).next_after(datetime.now())
        except ValueError as exc:
            raise reader.invalid(("sync", "cron"), str(exc)) from exc
    return cron


def _read_repos(reader: _Reader, top: dict[str, Any]) -> tuple[RepoSpec, ...]:
    if "repos" not in top:
        raise reader.error(("repos",), "missing required key 'repos' (the list of repos to mirror)")
    entries = top["repos"]
    if not isinstance(entries, list):
        raise reader.expected(("repos",), entries, "a list of repo entries")
    if not entries:
        raise reader.error(("repos",), "empty list (list at least one repo to mirror)")
    specs: list[RepoSpec] = []
    first_seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        path: _KeyPath = ("repos", index)
        if not isinstance(entry, dict):
            raise reader.expected(path, entry, "a mapping with a 'repo' key")
        reader.check_keys(entry, path, _REPO_KEYS)
        repo = reader.repo_id(entry, path)
        repo_type = reader.repo_type(entry, path)
        revisions = _read_revisions(reader, entry, path) if "revisions" in entry else ("main",)
        line = reader.lines[path]
        identity = (repo_type, repo.casefold())  # the Hub treats repo ids case-insensitively
        if identity in first_seen:
            first = first_seen[identity]
            raise reader.error(path, f"duplicate entry for {repo_type} {repo!r} (first listed at line "
                                     f"{reader.lines[('repos', first)]}, repos[{first}]); merge the two")
        first_seen[identity] = index
        specs.append(RepoSpec(
            repo=repo, type=repo_type, revisions=revisions,
            allow_patterns=reader.string_list(entry, path, "allow_patterns", single=True),
            ignore_patterns=reader.string_list(entry, path, "ignore_patterns", single=True),
            line=line,
        ))
    return tuple(specs)


def _read_revisions(reader: _Reader, entry: dict[str, Any], path: _KeyPath) -> tuple[str, ...]:
    revisions = reader.string_list(entry, path, "revisions")
    where = (*path, "revisions")
    if revisions is None:  # `revisions:` with nothing after it
        raise reader.expected(where, None, "a list of strings")
    for index, revision in enumerate(revisions):
        reader.revision((*where, index), revision)
        if revision in revisions[:index]:
            first = _format_path((*where, revisions.index(revision)))
            raise reader.error((*where, index), f"duplicate revision {revision!r} (already at {first})")
    return revisions


def _read_watch(reader: _Reader, top: dict[str, Any], base: Path,
                env: Mapping[str, str]) -> tuple[WatchSpec, ...]:
    if "watch" not in top:
        return ()
    entries = top["watch"]
    if not isinstance(entries, list):
        raise reader.expected(("watch",), entries, "a list of watch entries")
    if not entries:
        raise reader.error(("watch",), "empty list (remove the 'watch' key if nothing is watched)")
    specs: list[WatchSpec] = []
    for index, entry in enumerate(entries):
        path: _KeyPath = ("watch", index)
        if not isinstance(entry, dict):
            raise reader.expected(path, entry, "a mapping with 'path' and 'repo' keys")
        reader.check_keys(entry, path, _WATCH_KEYS)
        folder = _absolute(reader.required(entry, path, "path"), base, env)
        repo = reader.repo_id(entry, path)
        specs.append(WatchSpec(
            path=folder, repo=repo, type=reader.repo_type(entry, path),
            revision=reader.revision((*path, "revision"), reader.string(entry, path, "revision", "main")),
            private=reader.boolean(entry, path, "private", False),
            debounce=reader.duration(entry, path, "debounce", 5.0),
            delete_remote=reader.boolean(entry, path, "delete_remote", False),
            create=reader.boolean(entry, path, "create", True),
            add_model_card=reader.boolean(entry, path, "add_model_card", False),
            message=reader.string(entry, path, "message", "Update from hubmirror watch"),
        ))
    return tuple(specs)


# --- small pure helpers ---------------------------------------------------------------------------------

def _expanduser(text: str, env: Mapping[str, str]) -> Path:
    if (text == "~" or text.startswith("~/")) and env.get("HOME"):
        return Path(env["HOME"] + text[1:])
    return Path(text).expanduser()


def _absolute(text: str, base: Path, env: Mapping[str, str]) -> Path:
    """``~`` expanded; a relative path joined to ``base`` (the config file's directory)."""
    path = _expanduser(text, env)
    return path if path.is_absolute() else base / path


def _existing_file(path: Path, how: str) -> Path:
    if path.is_dir():
        raise ConfigError(f"is a directory, not a config file ({how})", file=str(path))
    if not path.is_file():
        raise ConfigError(f"config file not found ({how})", file=str(path))
    return path
