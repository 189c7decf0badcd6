"""In-memory repository model behind the fake Hub (`tests/hubserver.py`).

Owns: the content-addressed blob directory on disk (``<root>/blobs/<sha256>``, including verified streamed
uploads), git blob sha1 / LFS pointer hashing (protocol doc section F), repos with branches, tags and commits,
renames (aliases), revision resolution, the tree/paths-info/siblings entry shapes (section B) and the
operation-level commits behind the upload API (section D6: add / delete file / delete folder, parent check).
No HTTP here.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1024 * 1024
REPO_TYPES = ("model", "dataset", "space")
LFS_PATTERNS = (
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.onnx",
    "*.h5",
    "*.msgpack",
    "*.parquet",
    "*.arrow",
    "*.zip",
    "*.gz",
    "*.npy",
    "*.ckpt",
)
PR_PREFIX = "refs/pr/"


# --------------------------------------------------------------------------------------------- hashes
def git_blob_header(size: int) -> bytes:
    return b"blob %d\x00" % size


def git_blob_sha1(data: bytes) -> str:
    """`git hash-object` id of ``data`` (ETag / tree oid of a regular file)."""
    return hashlib.sha1(git_blob_header(len(data)) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """git-lfs v1 pointer text; its git blob sha1 is the tree oid of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def unsafe_path(path: str) -> bool:
    """True for repo paths the Hub refuses: empty, absolute, backslash, NUL, ``.``/``..``/empty segments, ``.git``."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return True
    return any(part in ("", ".", "..", ".git") for part in path.split("/"))


# --------------------------------------------------------------------------------------------- blobs
class BlobMismatch(ValueError):
    """Streamed bytes do not match the announced sha256 / size (nothing was stored)."""


@dataclass(frozen=True)
class Blob:
    sha256: str
    sha1: str  # git blob sha1 of the content
    size: int


class BlobStore:
    """Content addressed by sha256 under ``<root>/blobs``; large inputs are streamed, never held whole."""

    def __init__(self, root: Path):
        self.dir = Path(root) / "blobs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._path_cache: dict[tuple, Blob] = {}
        self._index: dict[str, Blob] = {}  # sha256 -> Blob, for blobs written or looked up through this store
        self._lock = threading.Lock()

    def path(self, sha256: str) -> Path:
        return self.dir / sha256

    def has(self, sha256: str) -> bool:
        return len(sha256) == 64 and self.path(sha256).is_file()

    def get(self, sha256: str) -> Blob | None:
        """The stored blob with this sha256 (its sha1 is computed, streamed, on the first look-up), or None."""
        with self._lock:
            blob = self._index.get(sha256)
        if blob is not None and self.path(sha256).is_file():
            return blob
        if not self.has(sha256):
            return None
        path = self.path(sha256)
        size = path.stat().st_size
        sha1 = hashlib.sha1(git_blob_header(size))
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                sha1.update(chunk)
        return self._remember(Blob(sha256, sha1.hexdigest(), size))

    def _remember(self, blob: Blob) -> Blob:
        with self._lock:
            self._index[blob.sha256] = blob
        return blob

    def put_bytes(self, data: bytes) -> Blob:
        blob = Blob(hashlib.sha256(data).hexdigest(), git_blob_sha1(data), len(data))
        target = self.path(blob.sha256)
        if not target.exists():
            self._write_atomic(target, [data])
        return self._remember(blob)

    def put_stream(self, chunks: Iterable[bytes], sha256: str, size: int) -> Blob:
        """Store the bytes of ``chunks`` (consumed to the end) if they hash to ``sha256`` and are ``size`` long.

        Streamed to a temp file while hashing; raises `BlobMismatch` (and stores nothing) otherwise.
        """
        h256, sha1 = hashlib.sha256(), hashlib.sha1(git_blob_header(size))
        received = 0
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    received += len(chunk)
                    h256.update(chunk)
                    if received <= size:  # never write more than announced
                        sha1.update(chunk)
                        out.write(chunk)
            if received != size:
                raise BlobMismatch(f"size mismatch: expected {size} bytes, received {received}")
            if h256.hexdigest() != sha256:
                raise BlobMismatch(f"sha256 mismatch: expected {sha256}, received {h256.hexdigest()}")
            blob = Blob(sha256, sha1.hexdigest(), size)
            os.replace(tmp, self.path(sha256))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._remember(blob)

    def put_path(self, src: Path) -> Blob:
        src = Path(src)
        st = src.stat()
        key = (str(src.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            cached = self._path_cache.get(key)
        if cached is not None and self.path(cached.sha256).exists():
            return cached
        sha256 = hashlib.sha256()
        sha1 = hashlib.sha1(git_blob_header(st.st_size))
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".incoming-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
                while chunk := inp.read(CHUNK):
                    sha256.update(chunk)
                    sha1.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if size != st.st_size:
                raise RuntimeError(f"{src} changed size while being committed")
            blob = Blob(sha256.hexdigest(), sha1.hexdigest(), size)
            os.replace(tmp, self.path(blob.sha256))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self._path_cache[key] = blob
        return self._remember(blob)

    def _write_atomic(self, target: Path, chunks: Iterable[bytes]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------------------------- repos
@dataclass(frozen=True)
class FileEntry:
    path: str
    blob: Blob
    lfs: bool

    @property
    def size(self) -> int:
        return self.blob.size

    @property
    def pointer(self) -> bytes:
        return lfs_pointer(self.blob.sha256, self.blob.size)

    @property
    def oid(self) -> str:
        """Tree oid: git sha1 of the content, or of the LFS pointer text for LFS files."""
        return git_blob_sha1(self.pointer) if self.lfs else self.blob.sha1

    def tree_json(self) -> dict:
        out: dict = {"type": "file", "oid": self.oid, "size": self.size, "path": self.path}
        if self.lfs:
            out["lfs"] = {"oid": self.blob.sha256, "size": self.size, "pointerSize": len(self.pointer)}
        return out

    def sibling_json(self, blobs: bool) -> dict:
        out: dict = {"rfilename": self.path}
        if blobs:
            out["size"] = self.size
            out["blobId"] = self.oid
            if self.lfs:
                out["lfs"] = {"size": self.size, "sha256": self.blob.sha256, "pointerSize": len(self.pointer)}
        return out


@dataclass
class Commit:
    sha: str
    parent: str | None
    files: dict[str, FileEntry]
    message: str
    date: str
    _children: dict[str, list[str]] | None = field(default=None, repr=False)
    _dir_oids: dict[str, str] = field(default_factory=dict, repr=False)

    def children(self) -> dict[str, list[str]]:
        """Directory path ("" = root) -> sorted immediate child paths (files and directories)."""
        if self._children is None:
            kids: dict[str, set[str]] = {"": set()}
            for path in self.files:
                parts = path.split("/")
                for i in range(len(parts)):
                    parent = "/".join(parts[:i])
                    kids.setdefault(parent, set()).add("/".join(parts[: i + 1]))
            self._children = {k: sorted(v) for k, v in kids.items()}
        return self._children

    def is_dir(self, path: str) -> bool:
        return path in self.children()

    def dir_oid(self, path: str) -> str:
        """A git-tree-like sha1 over the directory's children."""
        if path not in self._dir_oids:
            body = b""
            for child in self.children().get(path, []):
                name = child.rsplit("/", 1)[-1].encode()
                if child in self.files:
                    body += b"100644 " + name + b"\x00" + bytes.fromhex(self.files[child].oid)
                else:
                    body += b"40000 " + name + b"\x00" + bytes.fromhex(self.dir_oid(child))
            self._dir_oids[path] = hashlib.sha1(b"tree %d\x00" % len(body) + body).hexdigest()
        return self._dir_oids[path]

    def entry_json(self, path: str) -> dict | None:
        if path in self.files:
            return self.files[path].tree_json()
        if path and self.is_dir(path):
            return {"type": "directory", "oid": self.dir_oid(path), "size": 0, "path": path}
        return None

    def listing(self, path: str, recursive: bool) -> list[str] | None:
        """Paths under directory ``path`` (pre-order when recursive), or None if it is not a directory."""
        kids = self.children()
        if path not in kids:
            return None
        if not recursive:
            return list(kids[path])
        out: list[str] = []
        stack = list(reversed(kids[path]))
        while stack:
            item = stack.pop()
            out.append(item)
            stack.extend(reversed(kids.get(item, [])))
        return out


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    gated: bool = False
    created: str = field(default_factory=now_iso)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """Branch, tag (branches win), `refs/heads/x`, `refs/tags/x`, `refs/pr/N` or full 40-hex sha."""
        sha = self.branches.get(revision) or self.tags.get(revision)
        if sha is None and revision.startswith("refs/heads/"):
            sha = self.branches.get(revision[len("refs/heads/") :])
        if sha is None and revision.startswith("refs/tags/"):
            sha = self.tags.get(revision[len("refs/tags/") :])
        if sha is None and len(revision) == 40:
            sha = revision.lower()
        return self.commits.get(sha) if sha else None

    def last_commit_for(self, commit: Commit, path: str) -> Commit:
        """Newest ancestor-or-self of ``commit`` after which ``path`` did not change."""

        def value(c: Commit):
            if path in c.files:
                return c.files[path].oid
            return c.dir_oid(path) if c.is_dir(path) else None

        current, wanted = commit, value(commit)
        while current.parent is not None:
            parent = self.commits[current.parent]
            if value(parent) != wanted:
                break
            current = parent
        return current


class ParentMismatch(Exception):
    """``parent_commit`` is not the head of the branch being committed to."""


class MissingPath(LookupError):
    """A delete operation names a file / folder that is not in the tree."""

    def __init__(self, path: str, folder: bool):
        super().__init__(path)
        self.path, self.folder = path, folder


@dataclass
class CommitResult:
    sha: str
    parent: str
    added: list[str]  # paths that did not exist before
    changed: list[str]  # paths whose content changed
    unchanged: list[str]  # paths re-added with identical content
    deleted: list[str]  # paths removed (folders expanded)


class RepoStore:
    """All repos of one fake Hub, keyed by (repo_type, repo_id); thread-safe mutations."""

    def __init__(self, root: Path):
        self.blobs = BlobStore(root)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.aliases: dict[tuple[str, str], str] = {}  # (type, old id) -> current id
        self.lock = threading.RLock()
        self._counter = 0

    @staticmethod
    def _check_type(repo_type: str) -> None:
        if repo_type not in REPO_TYPES:
            raise ValueError(f"unknown repo_type {repo_type!r}")

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def canonical(self, repo_type: str, repo_id: str) -> str | None:
        """Current id of a renamed repo (None when ``repo_id`` is not an old name)."""
        return self.aliases.get((repo_type, repo_id))

    def require(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.get(repo_type, repo_id)
        if repo is None:
            new = self.canonical(repo_type, repo_id)
            repo = self.get(repo_type, new) if new else None
        if repo is None:
            raise KeyError(f"{repo_type} repo {repo_id!r} does not exist")
        return repo

    def create(self, repo_id: str, repo_type: str, private: bool, gated: bool) -> Repo:
        self._check_type(repo_type)
        if not repo_id or repo_id.count("/") > 1 or repo_id.startswith("/") or repo_id.endswith("/"):
            raise ValueError(f"bad repo id {repo_id!r}")
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise ValueError(f"{repo_type} repo {repo_id!r} already exists")
            self.aliases.pop((repo_type, repo_id), None)
            repo = Repo(repo_type, repo_id, private=private, gated=gated)
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def is_lfs(self, path: str, size: int, threshold: int) -> bool:
        if size == 0:
            return False
        name = path.rsplit("/", 1)[-1]
        return size >= threshold or any(fnmatch.fnmatch(name, pat) for pat in LFS_PATTERNS)

    def commit(
        self,
        repo_id: str,
        files: dict,
        *,
        repo_type: str,
        branch: str,
        deletes: Iterable[str],
        message: str,
        lfs_threshold: int,
    ) -> str:
        self._check_type(repo_type)
        # Hash/copy content before taking the lock: it may be a large file.
        entries: dict[str, FileEntry] = {}
        for path, content in files.items():
            path = str(path).strip("/")
            if not path or any(part in ("", ".", "..") for part in path.split("/")):
                raise ValueError(f"bad file path {path!r}")
            if isinstance(content, (bytes, bytearray, memoryview)):
                blob = self.blobs.put_bytes(bytes(content))
            elif isinstance(content, (str, os.PathLike)):
                blob = self.blobs.put_path(Path(content))
            else:
                raise TypeError(f"{path}: content must be bytes or a Path, got {type(content).__name__}")
            entries[path] = FileEntry(path, blob, self.is_lfs(path, blob.size, lfs_threshold))
        with self.lock:
            try:
                repo = self.require(repo_type, repo_id)
            except KeyError:
                repo = self.create(repo_id, repo_type, private=False, gated=False)
            parent_sha = repo.branches.get(branch)
            if parent_sha is None:
                parent_sha = repo.branches.get("main")
            tree = dict(repo.commits[parent_sha].files) if parent_sha else {}
            for gone in deletes:
                gone = str(gone).strip("/")
                tree.pop(gone, None)
                for path in [p for p in tree if p.startswith(gone + "/")]:
                    del tree[path]
            tree.update(entries)
            return self._new_commit(repo, branch, parent_sha, tree, message)

    def _new_commit(
        self, repo: Repo, branch: str, parent_sha: str | None, tree: dict[str, FileEntry], message: str
    ) -> str:
        """Record a commit of ``tree`` on top of ``parent_sha`` and move ``branch`` to it (caller holds the lock)."""
        self._counter += 1
        digest = hashlib.sha1()
        digest.update((parent_sha or "").encode() + b"\x00")
        for path in sorted(tree):
            digest.update(path.encode() + b"\x00" + tree[path].oid.encode() + b"\x00")
        digest.update(message.encode() + b"\x00" + str(self._counter).encode())
        sha = digest.hexdigest()
        repo.commits[sha] = Commit(sha, parent_sha, tree, message, now_iso())
        repo.branches[branch] = sha
        return sha

    def apply(
        self,
        repo: Repo,
        branch: str,
        ops: Iterable[tuple[str, str, FileEntry | None]],
        message: str,
        parent_commit: str | None = None,
    ) -> CommitResult:
        """Commit operations, in order, on top of the head of existing ``branch`` (the upload API's commit).

        ``ops`` items are ``("add", path, entry)``, ``("delete_file", path, None)`` or
        ``("delete_folder", path, None)``.  Raises `ParentMismatch` when ``parent_commit`` (full sha or a prefix
        of it) is given and is not the head, `MissingPath` when a delete names nothing, KeyError for a missing
        branch.  Nothing changes unless the whole commit succeeds.
        """
        ops = list(ops)
        with self.lock:
            parent_sha = repo.branches[branch]
            if parent_commit is not None and not (parent_commit and parent_sha.startswith(parent_commit.lower())):
                raise ParentMismatch(parent_commit)
            before = repo.commits[parent_sha].files
            tree = dict(before)
            deleted: list[str] = []
            for kind, path, entry in ops:
                if kind == "add":
                    tree[path] = entry
                elif kind == "delete_file":
                    if path not in tree:
                        raise MissingPath(path, folder=False)
                    del tree[path]
                    deleted.append(path)
                elif kind == "delete_folder":
                    gone = [p for p in tree if p.startswith(path + "/")]
                    if not gone:
                        raise MissingPath(path, folder=True)
                    for p in gone:
                        del tree[p]
                    deleted += sorted(gone)
                else:
                    raise ValueError(f"unknown operation {kind!r}")
            added, changed, unchanged, seen = [], [], [], set()
            for kind, path, _ in ops:
                if kind != "add" or path not in tree or path in seen:
                    continue
                seen.add(path)
                old = before.get(path)
                (added if old is None else unchanged if old.oid == tree[path].oid else changed).append(path)
            deleted = [p for p in dict.fromkeys(deleted) if p not in tree]
            sha = self._new_commit(repo, branch, parent_sha, tree, message)
            return CommitResult(sha, parent_sha, added, changed, unchanged, deleted)

    def rename(self, old: str, new: str, repo_type: str) -> None:
        self._check_type(repo_type)
        with self.lock:
            repo = self.repos.pop((repo_type, old), None)
            if repo is None:
                raise KeyError(f"{repo_type} repo {old!r} does not exist")
            if (repo_type, new) in self.repos:
                self.repos[(repo_type, old)] = repo
                raise ValueError(f"{repo_type} repo {new!r} already exists")
            repo.repo_id = new
            self.repos[(repo_type, new)] = repo
            self.aliases.pop((repo_type, new), None)
            for key, target in list(self.aliases.items()):
                if key[0] == repo_type and target == old:
                    self.aliases[key] = new
            self.aliases[(repo_type, old)] = new
