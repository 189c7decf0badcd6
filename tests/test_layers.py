"""The package's import rules (DESIGN.md): layers import only downward, and each third-party library
has one owner module. Walks the real imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "hubmirror"

LAYERS = {
    -1: {"errors", "models", "version"},
    0: {"paths", "hashing", "failpoints", "cron", "patterns", "__main__"},
    1: {"config", "folderscan", "lockfile"},
    2: {"upstream", "store", "index", "uploader"},
    3: {"hfcache", "sync", "resolve", "importer", "watcher", "scheduler"},
    4: {"pusher", "serve", "autopush", "mirror", "service"},
    5: {"cli", "entry", "progress", "__init__"},
}
# Same-layer imports that are part of the design (a module built on its neighbour).
ALLOWED_SIDEWAYS = {("uploader", "upstream"), ("resolve", "hfcache"), ("autopush", "pusher"),
                    ("mirror", "pusher"), ("service", "autopush"), ("service", "mirror"),
                    ("service", "serve"), ("cli", "progress"), ("entry", "cli"), ("cli", "entry"), ("__main__", "entry"), ("__init__", "errors")}
NEVER_EACH_OTHER = {"upstream", "store", "index"}
OWNERS = {"yaml": {"config"}, "httpx2": {"upstream"}, "sqlite_utils": {"index"}, "filelock": {"store"},
          "watchdog": {"watcher"}, "starlette": {"serve"}, "uvicorn": {"serve"}, "typer": {"cli"},
          "rich": {"progress"}}


def _layer(module: str) -> int:
    for layer, names in LAYERS.items():
        if module in names:
            return layer
    raise AssertionError(f"module {module} has no layer in tests/test_layers.py")


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported name, is_internal) for every import statement, including ones inside functions."""
    tree = ast.parse(path.read_text())
    out = []
    depth_in_package = len(path.relative_to(PACKAGE).parts) - 1
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name.split(".")[0], False) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                out.append(((node.module or "").split(".")[0], False))
                continue
            up = node.level - 1 - depth_in_package
            if up >= 0 or depth_in_package == 0:
                target = (node.module or "").split(".")[0]
                if target:
                    out.append((target, True))
                else:
                    out += [(alias.name, True) for alias in node.names]
    return out


def _module_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_layers_import_downward_only() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        me = _module_of(path)
        for name, internal in _imports(path):
            if not internal or name == me:
                continue
            if me in NEVER_EACH_OTHER and name in NEVER_EACH_OTHER:
                problems.append(f"{path.name}: {me} must not import {name}")
            elif _layer(name) > _layer(me) or (_layer(name) == _layer(me) and (me, name) not in ALLOWED_SIDEWAYS):
                problems.append(f"{path.relative_to(PACKAGE)}: {me} (layer {_layer(me)}) imports {name} "
                                f"(layer {_layer(name)})")
    assert not problems, "\n".join(problems)


def test_each_third_party_library_has_one_owner() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        me = _module_of(path)
        for name, internal in _imports(path):
            if not internal and name in OWNERS and me not in OWNERS[name]:
                problems.append(f"{path.relative_to(PACKAGE)} imports {name}, owned by {OWNERS[name]}")
    assert not problems, "\n".join(problems)
