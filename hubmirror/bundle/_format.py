"""The bundle format: a manifest, index records and blobs named by their sha256, as a directory or a tar.

```
MANIFEST.json     format, id, source store, base, the far side's state after import, every blob's sha256 and
                  size, the records file's sha256, and the bundle's own digest (of all of the above)
records.jsonl     one JSON object a line: repos (flags, aliases, creation date), commits (files, filters,
                  what the commit says about itself), refs (kind, time)
SHA256SUMS        "sha256  path" for records.jsonl and every blob: `sha256sum -c SHA256SUMS` checks a bundle
blobs/ab/<sha256> the content, byte for byte
```

In a ``.tar`` the members come in that order, so an import can stream it from a tape or a pipe: it knows what
it will receive (and refuses a bundle whose base it lacks) before the first blob arrives.

Everything read from a bundle is checked here before anything else sees it: names, paths, hashes, sizes.
Keys added since version 1 (a commit's ``meta``, a repo's ``created_at``) are optional: older bundles import
as before, and older hubmirrors ignore them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..commitmeta import checked_meta, iso_date
from ..config import validate_repo_id
from ..errors import IntegrityError, UnsafePathError
from ..index import CommitKey, FullCommit
from ..models import REPO_TYPES, Access, CommitMeta, FileRecord
from ..paths import check_tree, is_sha1, is_sha256, safe_relpath

FORMAT = "hubmirror-bundle"
VERSION = 1
MANIFEST = "MANIFEST.json"
RECORDS = "records.jsonl"
SUMS = "SHA256SUMS"
REF_KINDS = ("branch", "tag", "pr")
MAX_MANIFEST_BYTES = 512 * 1024 * 1024  # a manifest lists blobs: millions fit; more is not a bundle of ours


def blob_member(sha256: str) -> str:
    """Where a blob lives inside a bundle: ``blobs/ab/<sha256>``."""
    return f"blobs/{sha256[:2]}/{sha256}"


class BundleError(IntegrityError):
    """A bundle that is not one, is damaged, or does not match its own manifest (exit 7)."""


@dataclass(frozen=True)
class RepoRecord:
    type: str
    name: str
    access: Access
    aliases: tuple[str, ...] = ()
    created_at: str | None = None


@dataclass(frozen=True)
class RefRecord:
    type: str
    repo: str
    name: str
    commit: str
    kind: str | None
    updated_at: str


@dataclass
class Records:
    repos: list[RepoRecord] = field(default_factory=list)
    commits: list[FullCommit] = field(default_factory=list)
    refs: list[RefRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Manifest:
    id: str
    created_at: str
    source: str
    base: dict[str, str] | None  # {"kind": "inventory" | "bundle", "id": ..., "created_at": ...}; None: full
    state: tuple[CommitKey, ...]
    blobs: tuple[tuple[str, int], ...]  # (sha256, size), sorted
    records_sha256: str
    records_size: int
    digest: str

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.blobs)

    def describe(self) -> str:
        return f"bundle {self.id[:12]} exported {self.created_at}"


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def manifest_json(
    *,
    id: str,
    created_at: str,
    created_by: str,
    source: str,
    base: dict[str, str] | None,
    state: Iterable[CommitKey],
    blobs: Iterable[tuple[str, int]],
    records_sha256: str,
    records_size: int,
) -> tuple[bytes, str]:
    """The manifest file and the bundle digest it carries."""
    body: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "id": id,
        "created_at": created_at,
        "created_by": created_by,
        "source": source,
        "base": base,
        "state": sorted([list(k) for k in state]),
        "records": {"path": RECORDS, "sha256": records_sha256, "size": records_size},
        "blobs": [{"sha256": sha, "size": size} for sha, size in sorted(blobs)],
    }
    digest = hashlib.sha256(_canonical(body)).hexdigest()
    return json.dumps({**body, "digest": digest}, indent=1, sort_keys=True).encode() + b"\n", digest


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Read and check a manifest, including its digest; raises BundleError saying what is wrong."""
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise BundleError(f"{where}: {MANIFEST} is not JSON ({exc}); the bundle is damaged") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise BundleError(f"{where}: not a hubmirror bundle (its {MANIFEST} does not say '{FORMAT}')")
    if body.get("version") != VERSION:
        raise BundleError(
            f"{where}: bundle format version {body.get('version')!r}; this hubmirror reads "
            f"version {VERSION} (upgrade hubmirror on this side)"
        )
    claimed = body.pop("digest", None)
    if claimed != hashlib.sha256(_canonical(body)).hexdigest():
        raise BundleError(f"{where}: {MANIFEST} does not match its own digest; the bundle is damaged")
    try:
        records = body["records"]
        blobs = tuple((_sha256(b["sha256"]), _size(b["size"])) for b in body["blobs"])
        base = body.get("base")
        if base is not None and not (isinstance(base, dict) and all(isinstance(v, str) for v in base.values())):
            raise ValueError("base")
        return Manifest(
            id=_text(body["id"]),
            created_at=_text(body["created_at"]),
            source=_text(body.get("source", "")),
            base=base,
            state=tuple(_commit_key(k) for k in body["state"]),
            blobs=blobs,
            records_sha256=_sha256(records["sha256"]),
            records_size=_size(records["size"]),
            digest=claimed,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{where}: {MANIFEST} is malformed ({exc!r})") from None


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError(f"expected a short string, got {str(value)[:40]!r}")
    return value


def _sha256(value: Any) -> str:
    if not isinstance(value, str) or not is_sha256(value):
        raise ValueError(f"not a sha256: {str(value)[:80]!r}")
    return value


def _size(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"not a size: {str(value)[:40]!r}")
    return value


def _repo_type(value: Any) -> str:
    if value not in REPO_TYPES:
        raise ValueError(f"unknown repo type {str(value)[:40]!r}")
    return str(value)


def _repo_id(value: Any) -> str:
    return validate_repo_id(value)


def _commit(value: Any) -> str:
    if not isinstance(value, str) or not is_sha1(value):
        raise ValueError(f"not a commit sha: {str(value)[:80]!r}")
    return value


def _commit_key(value: Any) -> CommitKey:
    kind, repo, commit = value
    return CommitKey(_repo_type(kind), _repo_id(repo), _commit(commit))


# -- records ------------------------------------------------------------------------------------------
def records_lines(
    repos: Iterable[RepoRecord], commits: Iterable[FullCommit], refs: Iterable[RefRecord]
) -> Iterator[bytes]:
    for repo in repos:
        yield _line(
            {
                "kind": "repo",
                "type": repo.type,
                "name": repo.name,
                "private": repo.access.private,
                "gated": repo.access.gated,
                "aliases": list(repo.aliases),
                **({"created_at": repo.created_at} if repo.created_at else {}),
            }
        )
    for c in commits:
        yield _line(
            {
                "kind": "commit",
                "type": c.type,
                "repo": c.repo,
                "sha": c.sha,
                "source": c.source,
                "recorded_at": c.recorded_at,
                "filters": list(c.filters),
                "files": [[f.path, f.size, f.sha256, f.git_oid, int(f.lfs)] for f in c.files],
                **({"meta": _meta_json(c.meta)} if c.meta is not None else {}),
            }
        )
    for ref in refs:
        yield _line(
            {
                "kind": "ref",
                "type": ref.type,
                "repo": ref.repo,
                "name": ref.name,
                "commit": ref.commit,
                "ref_kind": ref.kind,
                "updated_at": ref.updated_at,
            }
        )


def _meta_json(meta: CommitMeta) -> dict[str, Any]:
    out = {"parent": meta.parent, "title": meta.title, "message": meta.message, "date": meta.date}
    return {
        **{k: v for k, v in out.items() if v is not None},
        **({"authors": list(meta.authors)} if meta.authors else {}),
    }


def _parse_meta(value: Any) -> CommitMeta | None:
    """A commit's ``meta``: each field kept only when well-formed (a damaged field is dropped, not stored)."""
    if not isinstance(value, dict):
        return None
    meta = checked_meta(
        parent=value.get("parent"),
        title=value.get("title"),
        message=value.get("message"),
        authors=value.get("authors"),
        date=value.get("date"),
    )
    return meta if meta != CommitMeta() else None


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def parse_records(lines: Iterable[bytes], where: str) -> Records:
    """Read and check every record; raises BundleError (or UnsafePathError for a hostile path)."""
    out = Records()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            kind = item["kind"]
            if kind == "repo":
                gated = item.get("gated")
                out.repos.append(
                    RepoRecord(
                        _repo_type(item["type"]),
                        _repo_id(item["name"]),
                        Access(bool(item.get("private")), gated if gated in ("auto", "manual") else None),
                        tuple(_repo_id(a) for a in item.get("aliases", [])),
                        iso_date(item.get("created_at")),
                    )
                )
            elif kind == "commit":
                out.commits.append(_parse_commit(item))
            elif kind == "ref":
                ref_kind = item.get("ref_kind")
                out.refs.append(
                    RefRecord(
                        _repo_type(item["type"]),
                        _repo_id(item["repo"]),
                        _ref_name(item["name"]),
                        _commit(item["commit"]),
                        ref_kind if ref_kind in REF_KINDS else None,
                        _text(item["updated_at"]),
                    )
                )
            else:
                raise ValueError(f"unknown record kind {str(kind)[:40]!r}")
        except UnsafePathError as exc:
            raise UnsafePathError(f"{where}: {RECORDS} line {number}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: {RECORDS} line {number} is malformed ({exc!r})") from None
    return out


def _ref_name(value: Any) -> str:
    name = _text(value)
    safe_relpath(name)  # a ref becomes a path in the HF-cache view (refs/<name>)
    return name


def _parse_commit(item: dict[str, Any]) -> FullCommit:
    files = []
    for path, size, sha256, git_oid, lfs in item["files"]:
        if not (isinstance(git_oid, str) and is_sha1(git_oid)):
            raise ValueError(f"not a git object id: {str(git_oid)[:80]!r}")
        files.append(FileRecord(safe_relpath(path), _size(size), _sha256(sha256), git_oid, bool(lfs)))
    check_tree(f.path for f in files)  # nothing a view could not lay out is ever published
    filters = tuple(_text(f) for f in item.get("filters", []))
    return FullCommit(
        _repo_type(item["type"]),
        _repo_id(item["repo"]),
        _commit(item["sha"]),
        _text(item.get("source", "import")),
        _text(item.get("recorded_at", "")),
        filters,
        tuple(files),
        _parse_meta(item.get("meta")),
    )


def sums_lines(records_sha256: str, blobs: Iterable[str]) -> Iterator[bytes]:
    """``sha256sum -c`` input for a bundle."""
    yield f"{records_sha256}  {RECORDS}\n".encode()
    for sha in sorted(blobs):
        yield f"{sha}  {blob_member(sha)}\n".encode()
