"""What the far side has: ``hubmirror inventory`` writes it (compact: gzip'd JSON of commits and blob hashes),
and ``export --since`` reads it back, or reads an earlier bundle's manifest instead."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import HubMirrorError
from ..index import CommitKey, Index
from ._format import MANIFEST, BundleError, _commit_key, _sha256, parse_manifest
from ._io import open_reader

INVENTORY_FORMAT = "hubmirror-inventory"
INVENTORY_VERSION = 1
MAX_INVENTORY_BYTES = 2 * 1024**3  # uncompressed: tens of millions of blobs


@dataclass(frozen=True)
class FarSide:
    kind: str  # "none" | "inventory" | "bundle"
    id: str
    created_at: str
    commits: frozenset[CommitKey]
    blobs: frozenset[str]  # known exactly from an inventory; from a manifest, those it carried

    def describe(self) -> str:
        return f"{self.kind} {self.id[:12]} of {self.created_at}"


def write_inventory(index: Index, out: BinaryIO, created_at: str) -> dict[str, int]:
    """Everything this store holds, for the other side's ``export --since``; returns the counts."""
    commits = index.complete_commits(index.list_repos())
    blobs = index.all_blob_sha256s()
    body = {
        "format": INVENTORY_FORMAT,
        "version": INVENTORY_VERSION,
        "store": index.store_id(),
        "id": f"{index.store_id()}@{created_at}",
        "created_at": created_at,
        "commits": sorted([list(c) for c in commits]),
        "blobs": blobs,
    }
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed:
        packed.write(json.dumps(body, separators=(",", ":")).encode())
    return {"commits": len(commits), "blobs": len(blobs)}


def far_side_from(path: Path) -> FarSide:
    """An inventory file, or an earlier bundle (its directory, its .tar, or its MANIFEST.json)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise HubMirrorError(f"--since {path}: no such file")
    if path.is_file() and path.name != MANIFEST:
        head = path.open("rb").read(2)
        if head == b"\x1f\x8b":
            return _from_inventory(path)
    if path.is_file() and path.name == MANIFEST:
        manifest = parse_manifest(path.read_bytes(), str(path))
    else:
        with open_reader(path) as reader:
            manifest = parse_manifest(reader.manifest(), reader.where)
    return FarSide(
        "bundle",
        manifest.id,
        manifest.created_at,
        frozenset(manifest.state),
        frozenset(sha for sha, _ in manifest.blobs),
    )


def _from_inventory(path: Path) -> FarSide:
    try:
        with gzip.open(path, "rb") as packed:
            data = packed.read(MAX_INVENTORY_BYTES + 1)
        if len(data) > MAX_INVENTORY_BYTES:
            raise ValueError("too large")
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("format") != INVENTORY_FORMAT:
            raise ValueError(f"not a {INVENTORY_FORMAT}")
        if body.get("version") != INVENTORY_VERSION:
            raise ValueError(f"inventory version {body.get('version')!r} (this hubmirror reads {INVENTORY_VERSION})")
        return FarSide(
            "inventory",
            str(body["id"])[:200],
            str(body["created_at"])[:40],
            frozenset(_commit_key(c) for c in body["commits"]),
            frozenset(_sha256(b) for b in body["blobs"]),
        )
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"--since {path}: not a readable hubmirror inventory ({exc})") from None
