"""Reads hubmirror.yaml into the frozen dataclasses of ``_model`` (YAML reading itself is in ``_reader``).

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
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..cron import check_cron
from ..errors import ConfigError
from ..models import REPO_TYPES
from ._model import (
    DEFAULT_ENDPOINT,
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
from ._places import CONFIG_FILENAME, absolute_path, default_home
from ._reader import _format_path, _KeyPath, _Reader, read_document

_TOP_KEYS = ("home", "upstream", "sync", "repos", "watch", "serve", "gc", "index", "store")
_UPSTREAM_KEYS = ("endpoint", "token", "timeout", "max_retries", "max_requests_per_5min")
_SYNC_KEYS = ("workers", "every", "cron", "jitter")
_REPO_KEYS = ("repo", "type", "revisions", "allow_patterns", "ignore_patterns")
_WATCH_KEYS = (
    "path",
    "repo",
    "type",
    "revision",
    "private",
    "debounce",
    "delete_remote",
    "create",
    "add_model_card",
    "message",
)
_SERVE_KEYS = (
    "host",
    "port",
    "token",
    "users",
    "anonymous",
    "access_log",
    "redirect",
    "presigned_expiry",
    "pull_through",
)
_PULL_KEYS = ("enabled", "allow", "deny", "metadata_ttl", "max_file_size", "max_total_size")
_USER_KEYS = ("name", "token", "write", "read_private")
_GC_KEYS = ("keep_previous", "grace")
_INDEX_KEYS = ("url",)
_STORE_KEYS = ("url", "endpoint_url")
_REDIRECTS = ("stream", "presigned")


# --- public helpers -------------------------------------------------------------------------------------


def find_config_path(
    explicit: str | Path | None = None, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Path:
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
        return _existing_file(cwd / Path(named).expanduser(), "named by $HUBMIRROR_CONFIG; fix or unset the variable")
    candidate = cwd / CONFIG_FILENAME
    if candidate.is_file():
        return candidate
    raise ConfigError(
        f"no config file found: looked for -c/--config (not given), $HUBMIRROR_CONFIG (not set) and "
        f"{candidate} (missing); create {CONFIG_FILENAME} there (see config/hubmirror.example.yaml), "
        f"pass -c PATH or set HUBMIRROR_CONFIG"
    )


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
        raise ConfigError("the file is not UTF-8 text", file=shown, line=data[: exc.start].count(b"\n") + 1) from None
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
        home = absolute_path(home_text, base, env)

    up = reader.section(top, "upstream", _UPSTREAM_KEYS)
    endpoint = reader.string(up, ("upstream",), "endpoint", DEFAULT_ENDPOINT)
    upstream = UpstreamConfig(
        endpoint=_check_endpoint(reader, endpoint),
        token=reader.secret(up, ("upstream",), "token"),
        timeout=reader.duration(up, ("upstream",), "timeout", 30.0, positive=True, maximum=86400),
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
        users=_read_users(reader, se),
        anonymous=reader.boolean(se, ("serve",), "anonymous", True),
        access_log=reader.boolean(se, ("serve",), "access_log", False),
        redirect=reader.string(se, ("serve",), "redirect", "stream"),
        presigned_expiry=reader.duration(se, ("serve",), "presigned_expiry", 300.0),
        pull_through=_read_pull_through(reader, se),
        enabled="serve" in top,
    )
    _check_tokens(reader, serve)
    if serve.redirect not in _REDIRECTS:
        raise reader.invalid(("serve", "redirect"), "expected stream (the default) or presigned")
    if not 1 <= serve.presigned_expiry <= 7 * 24 * 3600:
        raise reader.invalid(("serve", "presigned_expiry"), "expected between 1s and 7d (S3's longest)")

    gc_section = reader.section(top, "gc", _GC_KEYS)
    gc = GcConfig(
        keep_previous=reader.integer(gc_section, ("gc",), "keep_previous", 2, 0, 1000),
        grace=reader.duration(gc_section, ("gc",), "grace", 3600.0),
    )

    index_section = reader.section(top, "index", _INDEX_KEYS)
    index = IndexConfig(url=_check_index_url(reader, reader.secret(index_section, ("index",), "url")))
    store_section = reader.section(top, "store", _STORE_KEYS)
    endpoint_url = reader.optional_string(store_section, ("store",), "endpoint_url")
    store = StoreConfig(
        url=_check_store_url(reader, reader.optional_string(store_section, ("store",), "url")),
        endpoint_url=None if endpoint_url is None else _check_endpoint(reader, endpoint_url, ("store", "endpoint_url")),
    )
    if store.endpoint_url is not None and store.url is None:
        raise reader.error(("store", "endpoint_url"), "needs store.url (s3://bucket/prefix) beside it")
    if serve.redirect == "presigned" and store.url is None:
        raise reader.error(("serve", "redirect"), "presigned needs the blobs in object storage (store.url: s3://...)")

    return Config(
        path=config_path,
        home=home,
        upstream=upstream,
        sync=sync,
        repos=_read_repos(reader, top),
        watch=_read_watch(reader, top, base, env),
        serve=serve,
        gc=gc,
        index=index,
        store=store,
    )


def _check_endpoint(reader: _Reader, endpoint: str, where: _KeyPath = ("upstream", "endpoint")) -> str:
    try:
        parts = urlsplit(endpoint)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        has_credentials = parts.username is not None or parts.password is not None
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        ok, has_credentials = False, False
    if has_credentials:  # the value is not echoed: it holds a secret
        hint = "put the token in upstream.token" if where[0] == "upstream" else "use the standard AWS_* variables"
        raise reader.error(where, f"must not contain credentials; {hint}")
    if not ok or parts.query or parts.fragment or any(ch.isspace() for ch in endpoint):
        raise reader.invalid(where, "expected an http:// or https:// URL such as https://huggingface.co")
    return endpoint.rstrip("/")


def _check_store_url(reader: _Reader, url: str | None) -> str | None:
    """``s3://bucket`` or ``s3://bucket/prefix``, the prefix without empty, ``.`` or ``..`` segments."""
    if url is None:
        return None
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    segments_ok = not prefix or all(seg not in ("", ".", "..") for seg in prefix.split("/"))
    if parts.scheme != "s3" or not parts.netloc or "@" in parts.netloc or parts.query or parts.fragment:
        raise reader.invalid(("store", "url"), "expected s3://bucket/prefix (leave store: out for home/blobs)")
    if not segments_ok or any(ch.isspace() for ch in url):
        raise reader.invalid(("store", "url"), "the prefix must not have empty, '.' or '..' segments or spaces")
    return url.rstrip("/")


def _check_index_url(reader: _Reader, url: str | None) -> str | None:
    """A PostgreSQL URL (``postgresql://user@host:port/db``); it may hold a password, so it is never echoed."""
    if url is None:
        return None
    where = ("index", "url")
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:  # (libpq's several host:port pairs, for failover, are its to check)
            _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
        ok = parts.scheme.lower() in ("postgresql", "postgres") and url.lower().startswith(parts.scheme.lower() + "://")
    except ValueError:
        ok = False
    if not ok or parts.fragment or any(ch.isspace() for ch in url):
        raise reader.error(
            where,
            "expected a PostgreSQL URL such as postgresql://hubmirror@db:5432/hubmirror (value not shown: it may "
            "hold a password); leave index: out for home/index.sqlite",
        )
    return url


def _check_cron(reader: _Reader, cron: str | None) -> str | None:
    if cron is not None:
        try:
            check_cron(cron)
        except ValueError as exc:
            raise reader.invalid(("sync", "cron"), str(exc)) from exc
    return cron


def _read_users(reader: _Reader, section: dict[str, Any]) -> tuple[ServeUser, ...]:
    entries = section.get("users")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise reader.expected(("serve", "users"), entries, "a list of users")
    users: list[ServeUser] = []
    for index, entry in enumerate(entries):
        path: _KeyPath = ("serve", "users", index)
        if not isinstance(entry, dict):
            raise reader.expected(path, entry, "a mapping with 'name' and 'token'")
        reader.check_keys(entry, path, _USER_KEYS)
        name = reader.required(entry, path, "name")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
            raise reader.invalid((*path, "name"), "use letters, digits, '.', '_' and '-' (at most 64)")
        if name in {u.name for u in users}:
            raise reader.error((*path, "name"), f"duplicate user name {name!r}")
        if "token" not in entry:
            raise reader.error((*path, "token"), "missing required key 'token'")
        token = reader.secret(entry, path, "token")
        if token is None:  # its ${VAR} is unset on this machine: the user has no way in here (fails safe)
            continue
        write = reader.string_list(entry, path, "write", single=True) or ()
        for number, pattern in enumerate(write):
            if not re.fullmatch(r"[A-Za-z0-9*?._\-\[\]]+(/[A-Za-z0-9*?._\-\[\]]+)?", pattern):
                raise reader.invalid((*path, "write", number), f"{pattern!r} is not a repo pattern such as 'my-org/*'")
        users.append(ServeUser(name, token, tuple(write), reader.boolean(entry, path, "read_private", False)))
    return tuple(users)


def _read_pull_through(reader: _Reader, serve: dict[str, Any]) -> PullThroughConfig:
    where: _KeyPath = ("serve", "pull_through")
    section = serve.get("pull_through")
    if section is None:
        return PullThroughConfig()
    if not isinstance(section, dict):
        raise reader.expected(where, section, "a mapping")
    reader.check_keys(section, where, _PULL_KEYS)
    default = PullThroughConfig()
    patterns: dict[str, tuple[str, ...]] = {}
    for key in ("allow", "deny"):
        listed = section.get(key)
        if listed == []:  # deny: [] is the default spelled out; allow: [] would allow nothing
            patterns[key] = ()
            continue
        patterns[key] = reader.string_list(section, where, key, single=True) or getattr(default, key)
        for number, pattern in enumerate(patterns[key]):
            kind, colon, _ = pattern.partition(":")
            if colon and kind not in REPO_TYPES:
                raise reader.invalid(
                    (*where, key, number), f"unknown repo type {kind!r} (expected one of {', '.join(REPO_TYPES)})"
                )
    return PullThroughConfig(
        enabled=reader.boolean(section, where, "enabled", False),
        allow=patterns["allow"],
        deny=patterns["deny"],
        metadata_ttl=reader.duration(section, where, "metadata_ttl", default.metadata_ttl, maximum=30 * 86400),
        max_file_size=reader.size(section, where, "max_file_size", default.max_file_size),
        max_total_size=reader.size(section, where, "max_total_size", default.max_total_size),
    )


def _check_tokens(reader: _Reader, serve: ServeConfig) -> None:
    """Two identities with one token would be one identity with the rights of whichever matched first."""
    tokens = [serve.token] if serve.token else []
    for index, user in enumerate(serve.users):
        if user.token in tokens:
            raise reader.error(
                ("serve", "users", index, "token"),
                "the same token as another user or serve.token (value not shown); give every user a token of its own",
            )
        tokens.append(user.token)


def _read_repos(reader: _Reader, top: dict[str, Any]) -> tuple[RepoSpec, ...]:
    # Absent, empty or null: a machine that only pushes or watches has nothing to mirror.
    entries = top.get("repos")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise reader.expected(("repos",), entries, "a list of repo entries")
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
            raise reader.error(
                path,
                f"duplicate entry for {repo_type} {repo!r} (first listed at line "
                f"{reader.lines[('repos', first)]}, repos[{first}]); merge the two",
            )
        first_seen[identity] = index
        specs.append(
            RepoSpec(
                repo=repo,
                type=repo_type,
                revisions=revisions,
                allow_patterns=reader.string_list(entry, path, "allow_patterns", single=True),
                ignore_patterns=reader.string_list(entry, path, "ignore_patterns", single=True),
                line=line,
            )
        )
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


def _read_watch(reader: _Reader, top: dict[str, Any], base: Path, env: Mapping[str, str]) -> tuple[WatchSpec, ...]:
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
        folder = absolute_path(reader.required(entry, path, "path"), base, env)
        repo = reader.repo_id(entry, path)
        specs.append(
            WatchSpec(
                path=folder,
                repo=repo,
                type=reader.repo_type(entry, path),
                revision=reader.revision((*path, "revision"), reader.string(entry, path, "revision", "main")),
                private=reader.boolean(entry, path, "private", False),
                debounce=reader.duration(entry, path, "debounce", 5.0),
                delete_remote=reader.boolean(entry, path, "delete_remote", False),
                create=reader.boolean(entry, path, "create", True),
                add_model_card=reader.boolean(entry, path, "add_model_card", False),
                message=reader.string(entry, path, "message", "Update from hubmirror watch"),
            )
        )
    return tuple(specs)


# --- small pure helpers ---------------------------------------------------------------------------------


def _existing_file(path: Path, how: str) -> Path:
    if path.is_dir():
        raise ConfigError(f"is a directory, not a config file ({how})", file=str(path))
    if not path.is_file():
        raise ConfigError(f"config file not found ({how})", file=str(path))
    return path
