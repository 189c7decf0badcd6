"""The YAML side of config loading: a reader that keeps every value's line, ${VAR} expansion, and the
value parsers (durations, repo ids, revisions). The only module that imports yaml; it also parses
model-card headers, for the same reason."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from ..errors import ConfigError
from ..models import REPO_TYPES
from ..units import parse_size

_MAX_NODES = 100_000  # a config is small; this stops alias bombs ("billion laughs") early

_KeyPath = tuple[str | int, ...]

MAX_DURATION = 366 * 86400.0  # longer waits overflow the clocks they are handed to
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
    if seconds > MAX_DURATION:
        raise ValueError(f"duration {text!r} is longer than a year (366d), the longest hubmirror accepts")
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
            raise invalid(
                "each part must start with a letter or digit and contain only letters, digits, '.', '_' and '-'"
            )
        if "--" in part or ".." in part:
            raise invalid("'--' and '..' are not allowed")
        if part.endswith(("-", ".")):
            raise invalid("a part must not end with '-' or '.'")
    if parts[-1].endswith(".git"):
        raise invalid("the name must not end in '.git'")
    return repo_id


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
            raise ValueError("malformed '${' reference: write ${NAME} or ${NAME:-default} ('$${' gives a literal '${')")
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
                        raise self.error(
                            (*path, key),
                            f"duplicate key (first given on line {self.lines[(*path, key)]})",
                            line=key_line,
                        )
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

    def integer(
        self, data: dict[str, Any], path: _KeyPath, key: str, default: int, low: int, high: int | None = None
    ) -> int:
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

    def duration(
        self,
        data: dict[str, Any],
        path: _KeyPath,
        key: str,
        default: float,
        *,
        positive: bool = False,
        maximum: float | None = None,
    ) -> float:
        if key not in data:
            return default
        value = data[key]
        if value == "":
            raise self.blank((*path, key))
        seconds = self._duration((*path, key), value, positive)
        if maximum is not None and seconds > maximum:
            raise self.error((*path, key), f"must be at most {maximum:g} seconds, got {seconds:g}")
        return seconds

    def size(self, data: dict[str, Any], path: _KeyPath, key: str, default: int) -> int:
        """Bytes, given as a number or with a unit (``50GB``, ``512MiB``)."""
        if key not in data:
            return default
        value = self._typed((*path, key), data[key])
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.expected((*path, key), value, "a size such as '500MB' or '50GB'")
        try:
            return parse_size(value)
        except ValueError as exc:
            raise self.invalid((*path, key), str(exc)) from None

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

    def string_list(
        self, data: dict[str, Any], path: _KeyPath, key: str, *, single: bool = False
    ) -> tuple[str, ...] | None:
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
            raise self.invalid(
                (*path, "type"), f"unknown repo type {repo_type!r} (expected one of: {', '.join(REPO_TYPES)})"
            )
        return repo_type

    def revision(self, path: _KeyPath, revision: str) -> str:
        problem = _revision_problem(revision)
        if problem:
            raise self.invalid(path, f"invalid revision {revision!r}: {problem}")
        return revision


# --- building the Config ---------------------------------------------------------------------------------


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
    for types, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (dict, "a mapping"),
        (list, "a list"),
        (bytes, "binary data"),
    ):
        if isinstance(value, types):
            return name
    return f"a {type(value).__name__}"  # date, datetime


def _is_scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, (dict, list, str))


MAX_CARD_HEADER = 256 * 1024  # bytes of YAML between the --- lines; real cards have a few kB
MAX_CARD_VALUES = 20_000  # values once aliases are expanded: a few hundred bytes can otherwise expand to GBs


def parse_card_metadata(text: str) -> dict[str, Any] | None:
    """The YAML header of a model card (``---`` … ``---`` at the top of README.md) as plain JSON-able values.

    Returns None when there is no header; raises ValueError when the header is not valid YAML, not a mapping,
    too large, or expands (through aliases) to more than a bounded number of values. Lives here because this
    module owns YAML parsing."""
    if not text.startswith("---"):
        return None
    match = re.match(r"^---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*$", text[: MAX_CARD_HEADER + 4096], re.S | re.M)
    if match is None:
        if len(text) > MAX_CARD_HEADER:
            raise ValueError(f"model card metadata is larger than {MAX_CARD_HEADER // 1024} kB")
        return None
    if len(match.group(1)) > MAX_CARD_HEADER:
        raise ValueError(f"model card metadata is larger than {MAX_CARD_HEADER // 1024} kB")
    try:
        data = yaml.safe_load(match.group(1)) if match.group(1).strip() else {}
    except (yaml.YAMLError, RecursionError) as exc:
        raise ValueError(f"model card metadata is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("model card metadata is not a mapping")
    return _plain_values(data, [MAX_CARD_VALUES], set())


def _plain_values(value: Any, budget: list[int], active: set[int]) -> Any:
    """A copy made of dicts, lists, strings, numbers, booleans and None, counting every value it expands;
    past the budget (an alias bomb) it raises ValueError before the copy grows."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"model card metadata expands to more than {MAX_CARD_VALUES} values (too many aliases?)")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if id(value) in active:
        raise ValueError("model card metadata refers to itself")
    if isinstance(value, dict):
        active.add(id(value))
        try:
            return {str(k): _plain_values(v, budget, active) for k, v in value.items()}
        finally:
            active.discard(id(value))
    if isinstance(value, (list, tuple)):
        active.add(id(value))
        try:
            return [_plain_values(v, budget, active) for v in value]
        finally:
            active.discard(id(value))
    return str(value)  # dates, timestamps, binary: as text


def read_document(text: str, shown: str, env: Mapping[str, str]) -> tuple[_Reader, dict[str, Any]]:
    """Parse the config text into plain values (a mapping) and the reader that knows their lines."""
    reader = _Reader(shown, env)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None or (root.tag == "tag:yaml.org,2002:null" and not root.value):  # nothing, or "---"
            raise ConfigError(
                "the file is empty; list repos to mirror under 'repos:' or folders to push under "
                "'watch:' (see config/hubmirror.example.yaml)",
                file=shown,
                line=1,
            )
        top = reader.plain(root, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # PyYAML's context reads first: "while parsing a flow sequence, expected ',' or ']', but got ':'"
        message = "invalid YAML: " + ", ".join(part for part in (exc.context, exc.problem) if part)
        if mark is not None:
            message += f" at column {mark.column + 1}"
        raise ConfigError(message, file=shown, line=mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(
            f"invalid YAML: {exc.reason}", file=shown, line=text[: exc.position].count("\n") + 1
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=shown) from None
    if not isinstance(top, dict):
        raise ConfigError(
            f"the top level must be a mapping with keys such as 'repos', got {_kind(top)}",
            file=shown,
            line=reader.lines[()],
        )
    return reader, top
