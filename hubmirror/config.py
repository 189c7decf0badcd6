"""Reads hubmirror.yaml into frozen dataclasses; the only module that imports yaml.

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

import difflib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .cron import parse_cron
from .errors import ConfigError

DEFAULT_ENDPOINT = "https://huggingface.co"
CONFIG_FILENAME = "hubmirror.yaml"
LOCK_FILENAME = "hubmirror.lock"
REPO_TYPES = ("model", "dataset")

_TOP_KEYS = ("home", "upstream", "sync", "repos", "watch", "serve")
_UPSTREAM_KEYS = ("endpoint", "token", "timeout", "max_retries", "max_requests_per_5min")
_SYNC_KEYS = ("workers", "every", "cron", "jitter")
_REPO_KEYS = ("repo", "type", "revisions", "allow_patterns", "ignore_patterns")
_WATCH_KEYS = ("path", "repo", "type", "revision", "private", "debounce", "delete_remote", "create",
               "add_model_card", "message")
_SERVE_KEYS = ("host", "port", "token")
_MAX_NODES = 100_000  # a config is small; this stops alias bombs ("billion laughs") early

_KeyPath = tuple[str | int, ...]


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


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | int | float) -> float:
    """Return the number of seconds in ``text``: ``"90s"``, ``"30m"``, ``"6h"``, ``"1d"``, ``"1h30m"``,
    ``"500ms"``, or a bare number of seconds (``30``, ``"2.5"``).

    Raises ValueError for anything else, including negative or non-finite values.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ValueError(f"expected a duration such as '30s', '5m' or '6h', got {type(text).__name__}")
    if isinstance(text, str):
        stripped = text.strip()
        try:
            seconds = float(stripped)
        except ValueError:
            seconds = _parse_units(stripped, text)
    else:
        seconds = float(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration {text!r} must be a finite number of seconds, 0 or more")
    return seconds


def _parse_units(stripped: str, text: str) -> float:
    total, pos, seen = 0.0, 0, set()
    while pos < len(stripped):
        match = _DURATION_PART.match(stripped, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a duration (write e.g. 90s, 30m, 6h, 1d, 1h30m or 500ms)")
        if match[2] in seen:
            raise ValueError(f"duration {text!r} gives the unit {match[2]!r} twice")
        seen.add(match[2])
        total += float(match[1]) * _UNIT_SECONDS[match[2]]
        pos = match.end()
    if not seen:
        raise ValueError("empty duration")
    return total


_REPO_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it is ``name`` or ``namespace/name`` as the Hub allows; else raise ValueError
    saying why."""
    if not isinstance(repo_id, str):
        raise ValueError(f"a repo id must be a string, got {type(repo_id).__name__}")

    def invalid(reason: str) -> ValueError:
        return ValueError(f"invalid repo id {repo_id!r}: {reason}")

    if not repo_id:
        raise invalid("it is empty")
    parts = repo_id.split("/")
    if len(parts) > 2:
        raise invalid("expected 'name' or 'namespace/name' (at most one '/')")
    for part in parts:
        if not part:
            raise invalid("the namespace and the name must not be empty")
        if len(part) > 96:
            raise invalid("the namespace and the name must be at most 96 characters each")
        if not _REPO_PART.fullmatch(part):
            raise invalid("each part must start with a letter or digit and contain only letters, digits, "
                          "'.', '_' and '-'")
        if "--" in part or ".." in part:
            raise invalid("'--' and '..' are not allowed")
        if part.endswith(("-", ".")):
            raise invalid("a part must not end with '-' or '.'")
    if parts[-1].endswith(".git"):
        raise invalid("the name must not end in '.git'")
    return repo_id


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
    reader = _Reader(shown, env)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None or (root.tag == "tag:yaml.org,2002:null" and not root.value):  # nothing, or "---"
            raise ConfigError("the file is empty; it needs at least a 'repos' list "
                              "(see config/hubmirror.example.yaml)", file=shown, line=1)
        top = reader.plain(root, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # PyYAML's context reads first: "while parsing a flow sequence, expected ',' or ']', but got ':'"
        message = "invalid YAML: " + ", ".join(part for part in (exc.context, exc.problem) if part)
        if mark is not None:
            message += f" at column {mark.column + 1}"
        raise ConfigError(message, file=shown, line=mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"invalid YAML: {exc.reason}", file=shown,
                          line=text[:exc.position].count("\n") + 1) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=shown) from None
    if not isinstance(top, dict):
        raise ConfigError(f"the top level must be a mapping with keys such as 'repos', got {_kind(top)}",
                          file=shown, line=reader.lines[()])
    return _build(reader, top, config_path, env)


# --- reading YAML nodes into plain values, remembering where each came from ----------------------------

_ENV_REF = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?")


def _expand(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ``${VAR}`` / ``${VAR:-default}`` (``$${`` is a literal ``${``); return the text and the names
    of referenced variables that were unset or empty."""
    blank: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$${":
            return "${"
        name, default = match[1], match[2]
        if name is None:
            raise ValueError("malformed '${' reference: write ${NAME} or ${NAME:-default} "
                             "('$${' gives a literal '${')")
        value = env.get(name, "")
        if not value:
            if default is not None:
                return default
            blank.append(name)
        return value

    return _ENV_REF.sub(substitute, text), blank


class _Reader:
    """Turns YAML nodes into plain values and reports errors at the line of a key path."""

    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.file, self.env = file, env
        self.lines: dict[_KeyPath, int] = {}
        self.env_refs: dict[_KeyPath, list[str]] = {}  # key path → referenced variables that were blank
        self.retype: set[_KeyPath] = set()  # unquoted scalars changed by ${...}: re-resolve where typed
        self.loader = yaml.SafeLoader("")
        self._active: set[int] = set()
        self._count = 0

    def plain(self, node: yaml.Node, path: _KeyPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        self._count += 1
        if self._count > _MAX_NODES:
            raise self.error((), f"the document expands to more than {_MAX_NODES} values (too many aliases?)")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._active:
            raise self.error(path, "a YAML alias refers to a node that contains it")
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode) and node.tag == "tag:yaml.org,2002:seq":
                result: Any = []
                for index, item in enumerate(node.value):
                    self.lines[(*path, index)] = item.start_mark.line + 1
                    result.append(self.plain(item, (*path, index)))
            elif isinstance(node, yaml.MappingNode) and node.tag == "tag:yaml.org,2002:map":
                result = {}
                for key_node, value_node in node.value:
                    key = self._key(key_node, path)
                    key_line = key_node.start_mark.line + 1
                    if key in result:
                        raise self.error((*path, key), f"duplicate key (first given on line "
                                                        f"{self.lines[(*path, key)]})", line=key_line)
                    self.lines[(*path, key)] = key_line
                    result[key] = self.plain(value_node, (*path, key))
            else:
                raise self.error(path, f"unsupported YAML tag {node.tag!r}")
        finally:
            self._active.discard(id(node))
        return result

    def _key(self, node: yaml.Node, path: _KeyPath) -> str:
        line = node.start_mark.line + 1
        if node.tag == "tag:yaml.org,2002:merge":
            raise self.error(path, "merge keys ('<<') are not supported; write the keys out", line=line)
        key = self.loader.construct_object(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            kind = _kind(key) if isinstance(node, yaml.ScalarNode) else "a collection"
            raise self.error(path, f"keys must be strings, got {kind} (quote it)", line=line)
        return key

    def _scalar(self, node: yaml.ScalarNode, path: _KeyPath) -> Any:
        value = self.loader.construct_object(node)
        if isinstance(value, str) and "${" in value:
            try:
                expanded, blank = _expand(value, self.env)
            except ValueError as exc:
                raise self.error(path, str(exc)) from None
            if blank:
                self.env_refs[path] = blank
            if node.style is None:
                self.retype.add(path)
            value = expanded
        return value

    # --- errors ---

    def error(self, path: _KeyPath, message: str, *, line: int | None = None) -> ConfigError:
        if line is None:
            probe = path
            while probe and probe not in self.lines:
                probe = probe[:-1]
            line = self.lines.get(probe)
        return ConfigError(message, file=self.file, line=line, key=_format_path(path) or None)

    def expected(self, path: _KeyPath, value: Any, what: str) -> ConfigError:
        hint = " (quote it to make it a string)" if what == "a string" and _is_scalar(value) else ""
        return self.error(path, f"expected {what}, got {_kind(value)}{hint}" + self._env_note(path))

    def blank(self, path: _KeyPath) -> ConfigError:
        names = self.env_refs.get(path)
        if names:
            return self.error(path, f"environment variable {names[0]!r} {self._env_state(names[0])}")
        return self.error(path, "must not be empty")

    def invalid(self, path: _KeyPath, message: str) -> ConfigError:
        return self.error(path, message + self._env_note(path))

    def _env_note(self, path: _KeyPath) -> str:
        names = self.env_refs.get(path)
        return f" (environment variable {names[0]!r} {self._env_state(names[0])})" if names else ""

    def _env_state(self, name: str) -> str:
        return "is not set" if name not in self.env else "is empty"

    # --- typed getters: each returns `default` when the key is absent ---

    def section(self, data: dict[str, Any], key: str, allowed: Sequence[str]) -> dict[str, Any]:
        value = data.get(key)
        if value is None:  # absent, or every key under it commented out
            return {}
        if not isinstance(value, dict):
            raise self.expected((key,), value, "a mapping")
        self.check_keys(value, (key,), allowed)
        return value

    def check_keys(self, data: dict[str, Any], path: _KeyPath, allowed: Sequence[str]) -> None:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "expected one of: " + ", ".join(allowed)
                raise self.error((*path, key), f"unknown key ({hint})")

    def string(self, data: dict[str, Any], path: _KeyPath, key: str, default: str) -> str:
        if key not in data:
            return default
        value = data[key]
        if not isinstance(value, str):
            raise self.expected((*path, key), value, "a string")
        if not value.strip():
            raise self.blank((*path, key))
        return str(value)

    def optional_string(self, data: dict[str, Any], path: _KeyPath, key: str) -> str | None:
        """A string whose empty value (also from an unset ``${VAR}``) or null means "not given"."""
        value = data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.expected((*path, key), value, "a string")
        return str(value)

    def secret(self, data: dict[str, Any], path: _KeyPath, key: str) -> str | None:
        """Like optional_string; messages never include the value."""
        value = self.optional_string(data, path, key)
        if value is None or not value.strip():
            return None
        value = value.strip()  # a token read with $(cat file) often ends in a newline
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise self.error((*path, key), "contains whitespace or control characters (value not shown)")
        return value

    def required(self, data: dict[str, Any], path: _KeyPath, key: str) -> str:
        if key not in data:
            raise self.error((*path, key), f"missing required key {key!r}")
        return self.string(data, path, key, "")

    def integer(self, data: dict[str, Any], path: _KeyPath, key: str, default: int,
                low: int, high: int | None = None) -> int:
        if key not in data:
            return default
        value = self._typed((*path, key), data[key])
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.expected((*path, key), value, "an integer")
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.error((*path, key), f"must be {bounds}, got {value}")
        return value

    def boolean(self, data: dict[str, Any], path: _KeyPath, key: str, default: bool) -> bool:
        if key not in data:
            return default
        value = self._typed((*path, key), data[key])
        if not isinstance(value, bool):
            raise self.expected((*path, key), value, "a boolean (true or false)")
        return value

    def duration(self, data: dict[str, Any], path: _KeyPath, key: str, default: float,
                 *, positive: bool = False) -> float:
        if key not in data:
            return default
        value = data[key]
        if value == "":
            raise self.blank((*path, key))
        return self._duration((*path, key), value, positive)

    def optional_duration(self, data: dict[str, Any], path: _KeyPath, key: str) -> float | None:
        value = data.get(key)
        if value is None or value == "":
            return None
        return self._duration((*path, key), value, positive=True)

    def _duration(self, path: _KeyPath, value: Any, positive: bool) -> float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.expected(path, value, "a duration such as '30s', '5m' or '6h'")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.invalid(path, str(exc)) from None
        if positive and seconds <= 0:
            raise self.error(path, "must be greater than 0")
        return seconds

    def _typed(self, path: _KeyPath, value: Any) -> Any:
        """Give an unquoted value built by ``${...}`` the YAML type its expanded text would have had."""
        if isinstance(value, str) and path in self.retype:
            if value == "":
                raise self.blank(path)
            tag = self.loader.resolve(yaml.ScalarNode, value, (True, False))
            return self.loader.construct_object(yaml.ScalarNode(tag, value))
        return value

    def string_list(self, data: dict[str, Any], path: _KeyPath, key: str, *,
                    single: bool = False) -> tuple[str, ...] | None:
        """A non-empty list of non-empty strings (a lone string too if ``single``); None when absent/null."""
        value = data.get(key)
        if value is None:
            return None
        where = (*path, key)
        if single and isinstance(value, str):
            if not value:
                raise self.blank(where)
            return (str(value),)
        if not isinstance(value, list):
            raise self.expected(where, value, "a list of strings")
        if not value:
            raise self.error(where, "empty list (remove the key or list at least one entry)")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.expected((*where, index), item, "a string")
            if not item:
                raise self.blank((*where, index))
        return tuple(str(item) for item in value)

    def repo_id(self, data: dict[str, Any], path: _KeyPath) -> str:
        repo = self.required(data, path, "repo")
        try:
            return validate_repo_id(repo)
        except ValueError as exc:
            raise self.invalid((*path, "repo"), str(exc)) from None

    def repo_type(self, data: dict[str, Any], path: _KeyPath) -> str:
        repo_type = self.string(data, path, "type", "model")
        if repo_type not in REPO_TYPES:
            raise self.invalid((*path, "type"), f"unknown repo type {repo_type!r} "
                                                 f"(expected one of: {', '.join(REPO_TYPES)})")
        return repo_type

    def revision(self, path: _KeyPath, revision: str) -> str:
        problem = _revision_problem(revision)
        if problem:
            raise self.invalid(path, f"invalid revision {revision!r}: {problem}")
        return revision


# --- building the Config ---------------------------------------------------------------------------------

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

def _revision_problem(revision: str) -> str | None:
    if any(ch.isspace() or not ch.isprintable() for ch in revision):
        return "contains whitespace or control characters"
    if ".." in revision:
        return "contains '..'"
    if revision.startswith("/") or revision.endswith("/"):
        return "starts or ends with '/'"
    return None


def _format_path(path: _KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for types, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
                        (dict, "a mapping"), (list, "a list"), (bytes, "binary data")):
        if isinstance(value, types):
            return name
    return f"a {type(value).__name__}"  # date, datetime


def _is_scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, (dict, list, str))


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


def parse_card_metadata(text: str) -> dict[str, Any] | None:
    """The YAML header of a model card (``---`` … ``---`` at the top of README.md) as a dict.

    Returns None when there is no header; raises ValueError when the header is not valid YAML or not a
    mapping. Lives here because this module owns YAML parsing."""
    if not text.startswith("---"):
        return None
    match = re.match(r"^---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*$", text, re.S | re.M)
    if match is None:
        return None
    try:
        data = yaml.safe_load(match.group(1)) if match.group(1).strip() else {}
    except yaml.YAMLError as exc:
        raise ValueError(f"model card metadata is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("model card metadata is not a mapping")
    return data
