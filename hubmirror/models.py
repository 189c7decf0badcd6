"""Small frozen records shared by the layers (no behaviour, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

REPO_TYPES = ("model", "dataset")
REPO_TYPE_BY_PLURAL = {f"{t}s": t for t in REPO_TYPES}  # "models" → "model", as in URLs and cache folders


def url_prefix(repo_type: str) -> str:
    """The path prefix the Hub puts before a repo id in file URLs (models have none)."""
    return "" if repo_type == "model" else f"{repo_type}s/"


REF_KINDS = ("branch", "tag", "pr")


def ref_spelling(revision: str) -> tuple[str, str | None]:
    """The name the Hub lists a revision's ref under, and its kind when the spelling says it:
    ``refs/heads/dev`` → ("dev", "branch"), ``refs/tags/v1`` → ("v1", "tag"), ``refs/pr/3`` →
    ("refs/pr/3", "pr"); a bare name (a branch or a tag) → (name, None)."""
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if revision.startswith(prefix) and len(revision) > len(prefix):
            return revision[len(prefix) :], kind
    if revision.startswith("refs/pr/"):
        return revision, "pr"
    return revision, None


def ref_name(revision: str) -> str:
    """The name a ref is kept under, for every spelling the Hub accepts (see :func:`ref_spelling`)."""
    return ref_spelling(revision)[0]


@dataclass(frozen=True)
class Backends:
    """Where a home keeps its index and its blobs when not in the home itself (None: what the store
    recorded, else ``home/index.sqlite`` and ``home/blobs/``)."""

    index_url: str | None = field(default=None, repr=False)  # a PostgreSQL URL (may hold a password)
    store_url: str | None = None  # s3://bucket/prefix
    endpoint_url: str | None = None  # an S3-compatible service (None: AWS)


@dataclass(frozen=True)
class TreeEntry:
    """A file in an upstream tree listing. ``oid`` is the git blob sha1 (of the pointer, for LFS)."""

    path: str
    size: int
    oid: str
    lfs_sha256: str | None = None

    @property
    def is_lfs(self) -> bool:
        return self.lfs_sha256 is not None


@dataclass(frozen=True)
class RevisionInfo:
    repo_id: str  # canonical id as upstream names it (differs from the asked one after a rename)
    sha: str
    private: bool = False
    gated: str | None = None  # None, or how upstream gates downloads: "auto" | "manual"
    last_modified: str | None = None  # the revision's commit date (ISO 8601), when upstream says
    created_at: str | None = None  # when the repo was created upstream, when it says

    @property
    def access(self) -> Access:
        return Access(self.private, self.gated)


@dataclass(frozen=True)
class FileRecord:
    """A file of a mirrored commit as the index keeps it."""

    path: str
    size: int
    sha256: str
    git_oid: str  # the tree oid: git blob sha1 of the content, or of the LFS pointer for LFS files
    lfs: bool

    @property
    def etag(self) -> str:
        """The name the HF cache and the Hub's ETag use: sha256 for LFS files, git sha1 otherwise."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass(frozen=True)
class BlobRecord:
    sha256: str
    size: int
    git_sha1: str | None  # git blob sha1 of the content, when known


@dataclass(frozen=True)
class Repo:
    """A repo in the index. ``private``: invisible without a token that may read private repos.
    ``gated``: metadata public, files only for such a token ("auto" | "manual", as upstream says)."""

    id: int
    type: str
    name: str
    private: bool
    gated: str | None = None
    created_at: str | None = None  # ISO 8601: upstream's date for a mirrored repo, else when it was created here


@dataclass(frozen=True)
class Access:
    """A repo's visibility flags, as upstream (or the pushing client) sets them; see :class:`Repo`."""

    private: bool = False
    gated: str | None = None


@dataclass(frozen=True)
class Ref:
    name: str
    commit: str
    updated_at: str
    kind: str | None = None  # "branch" | "tag" | "pr"; None: not known (mirrored before kinds were kept)


@dataclass(frozen=True)
class CommitMeta:
    """What a commit says about itself, as the Hub's commit listing shows it (None/empty: not known).

    ``date`` is ISO 8601 UTC; ``authors`` are user names."""

    parent: str | None = None
    title: str | None = None
    message: str | None = None
    authors: tuple[str, ...] = ()
    date: str | None = None


@dataclass(frozen=True)
class CommitRecord:
    sha: str
    recorded_at: str
    source: str
    files: int
    size: int


class Progress(Protocol):
    """Progress callbacks for long work (a terminal bar, or nothing); may be called from worker threads."""

    def planned(self, label: str, files: int, nbytes: int) -> None: ...
    def advanced(self, nbytes: int) -> None: ...
    def file_done(self) -> None: ...


class NoProgress:
    """The :class:`Progress` that shows nothing."""

    def planned(self, label: str, files: int, nbytes: int) -> None:
        pass

    def advanced(self, nbytes: int) -> None:
        pass

    def file_done(self) -> None:
        pass


class Readable(Protocol):
    """Anything bytes can be read from in chunks (a file, a tar member, a socket stream)."""

    def read(self, size: int = -1, /) -> bytes: ...


class ByteSink(Protocol):
    """Where a download streams to (the store's BlobWriter), as the upstream client sees it."""

    offset: int

    @property
    def expected_size(self) -> int | None: ...

    def write(self, chunk: bytes) -> None: ...

    def restart(self) -> None: ...
