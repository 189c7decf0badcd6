"""The package's import rules (DESIGN.md, CONVENTIONS.md), read from the real imports of every module,
including imports inside functions (``if TYPE_CHECKING:`` blocks excepted):

* parts (a subpackage, or a top-level module) import only parts of lower layers, never sideways except the
  pairs listed below, and never each other's private modules (``from ..store._layout`` is refused);
* no import cycle between modules;
* no absolute self-import (``hubmirror.x`` inside the package);
* each third-party library has one owner module (``starlette``/``uvicorn``/``typer``: their whole part).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "hubmirror"

LAYERS = [
    {"version", "errors", "models"},  # records and the error tree
    {"paths", "hashing", "failpoints", "patterns", "units", "cron", "commitmeta"},  # pure helpers
    {"config"},  # config and lock file
    {"cards", "weights"},  # model-card metadata (config's YAML, bounded); safetensors parameter counts
    {"hub", "store", "index"},  # the three backends: never each other
    {"home", "view"},  # store + index opened; the HF-cache view
    {"sync", "resolve", "push", "bundle", "maintenance"},  # what the product does
    {"mirror", "serve"},  # the facade; the Hub API server
    {"schedule"},  # scheduled sync and `hubmirror run`
    {"cli"},  # the command line
    {"__init__", "__main__"},  # the public surface
]
# Same-layer imports that are part of the design. push → sync: a push mirrors the commit it made through the
# syncer's publish path, given the tree the push knows (``Syncer.publish_tree``; it downloads only what
# neither the store nor the folder has). maintenance → bundle: repair takes blobs
# from a bundle; maintenance → resolve: remove resolves a revision the way every lookup does.
ALLOWED_SIDEWAYS = {("push", "sync"), ("maintenance", "bundle"), ("maintenance", "resolve")}
OWNERS = {
    "yaml": {"config/_reader.py"},
    "httpx2": {"hub/_http.py"},
    "sqlite3": {"index/_sqlite.py", "index/_schema.py"},
    "sqlite_utils": set(),  # no longer used: its import pulls in pandas (see index/_schema.py)
    "psycopg": {"index/_postgres.py"},
    "filelock": {"store/_layout.py"},
    "boto3": {"store/_s3.py"},
    "botocore": {"store/_s3.py"},
    "watchdog": {"push/_watcher.py"},
    "rich": {"cli/_progress.py"},
    "cronsim": {"cron.py"},
    "starlette": {"serve/*"},
    "uvicorn": {"serve/*"},
    "typer": {"cli/*"},
    "markdown_it": {"serve/web/card.py"},
}


def _layer(part: str) -> int:
    for layer, names in enumerate(LAYERS):
        if part in names:
            return layer
    raise AssertionError(f"part {part!r} has no layer in tests/test_layers.py")


def _modules() -> dict[str, Path]:
    """Dotted module name (``hubmirror.sync._syncer``, ``hubmirror.sync`` for its __init__) → file."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def _imports(module: str) -> tuple[list[str], list[str], list[str]]:
    """(internal modules imported, third-party top-level names, absolute self-imports) of one module."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    package = module if _is_package(module) else module.rpartition(".")[0]
    internal, external, absolute = [], [], []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "hubmirror":
                    absolute.append(alias.name)
                    internal.append(alias.name)
                else:
                    external.append(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                name = node.module or ""
                if name.split(".")[0] == "hubmirror":
                    absolute.append(name)
                    internal.extend(_targets(name, node))
                else:
                    external.append(name.split(".")[0])
                continue
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            internal.extend(_targets(target, node))
    return internal, external, absolute


def _targets(target: str, node: ast.ImportFrom) -> list[str]:
    """``from target import a, b``: the submodules named, or the module itself."""
    subs = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES]
    return subs or [target]


def _part(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _file(module: str) -> str:
    return MODULES[module].relative_to(PACKAGE).as_posix()


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        _layer(_part(module))


def test_parts_import_downward_only_and_never_private_modules_of_other_parts() -> None:
    problems = []
    for module in MODULES:
        me = _part(module)
        for target in _imports(module)[0]:
            assert target in MODULES, f"{_file(module)} imports {target}, which does not exist"
            other = _part(target)
            if other == me or (other == "__init__" and target != "hubmirror"):
                continue
            if any(piece.startswith("_") for piece in target.split(".")[2:]):
                problems.append(f"{_file(module)} reaches into {target}: import from hubmirror.{other}")
            if _layer(other) > _layer(me) or (_layer(other) == _layer(me) and (me, other) not in ALLOWED_SIDEWAYS):
                problems.append(f"{_file(module)}: {me} (layer {_layer(me)}) imports {other} (layer {_layer(other)})")
    assert not problems, "\n".join(problems)


def test_no_absolute_self_imports() -> None:
    problems = [
        f"{_file(m)} imports {name} absolutely; import it relatively" for m in MODULES for name in _imports(m)[2]
    ]
    assert not problems, "\n".join(problems)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        graph[module].update(t for t in _imports(module)[0] if t != module)
    seen: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in seen and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        seen[node] = 2
        return None

    for module in sorted(MODULES):
        if module not in seen and (cycle := visit(module)):
            raise AssertionError("import cycle: " + " → ".join(cycle))


def test_each_third_party_library_has_one_owner() -> None:
    problems = []
    for module in MODULES:
        where = _file(module)
        for name in _imports(module)[1]:
            owners = OWNERS.get(name)
            if owners is None:
                continue
            if not any(where == owner or (owner.endswith("/*") and where.startswith(owner[:-1])) for owner in owners):
                problems.append(f"{where} imports {name}, owned by {sorted(owners)}")
    assert not problems, "\n".join(problems)


def test_the_rules_can_fail() -> None:
    """The walker sees imports inside functions and resolves relative levels (a check of the checker)."""
    internal, external, _ = _imports("hubmirror.cli._cmd_push")
    assert "hubmirror.push" in internal  # imported inside watch()
    assert "hubmirror.cli._common" in internal and "typer" in external
    assert _part("hubmirror.sync._syncer") == "sync" and _layer("cli") > _layer("sync")
