"""The HF-cache view: a ``huggingface_hub``-compatible cache laid over the store.

``<root>/models--org--name/{blobs/<etag>, snapshots/<commit>/<path>, refs/<ref>}`` exactly as the
``huggingface_hub`` client writes it (etag = sha256 for LFS files, git blob sha1 otherwise; snapshot entries
are relative symlinks into ``blobs/``; refs hold the commit with no newline). Blobs are hard links to the
store (one copy on disk); where that is impossible (another filesystem), symlinks to the store. It is
derived from the index: deleting it loses nothing, :meth:`HFCacheView.rebuild` lays it out again.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HubMirrorError, StoreError
from ..index import Index
from ..models import FileRecord, Repo
from ..paths import safe_relpath
from ..store import CACHEDIR_TAG, Store

logger = logging.getLogger(__name__)

COPY_THREADS = 8  # blobs copied down from object storage at once


def view_root(home: Path) -> Path:
    """Where a home keeps its HF-cache view: ``home/hf/hub``."""
    return Path(home) / "hf" / "hub"


def repo_folder_name(repo_type: str, name: str) -> str:
    """``models--org--name``, the folder name huggingface_hub uses for a repo."""
    return "--".join([f"{repo_type}s", *name.split("/")])


@dataclass(frozen=True)
class ViewReport:
    root: Path
    repos: int
    snapshots: int
    link_mode: str  # "hardlink" | "symlink" (how blobs point at the store)
    problems: list[str] = field(default_factory=list)  # repos that could not be laid out, with why


def disk_error(exc: OSError, what: str) -> StoreError:
    return StoreError(f"cannot write {what}: {exc.strerror or exc}")


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_symlink(target: str, link: Path) -> None:
    """Create or replace a symlink atomically."""
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)


class HFCacheView:
    """Maintains one HF-cache view directory for a store and its index."""

    def __init__(self, root: Path, store: Store, index: Index) -> None:
        self.root = Path(root).expanduser().absolute()
        self.store, self.index = store, index
        # hardlink or symlink to blobs on disk; copy (verified) of blobs in object storage
        self.link_mode = "hardlink" if store.blobs_local else "copy"

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            tag.write_text(CACHEDIR_TAG)

    # -- blobs -----------------------------------------------------------------------------------
    def _link_blob(self, record: FileRecord, blobs_dir: str) -> None:
        # Creating a (hard or symbolic) link is atomic by itself: no temp name needed, and an existing
        # blob costs one failed system call. (Plain strings, not pathlib: a view holds many thousands.)
        target = f"{blobs_dir}/{record.etag}"
        source = self.store.blob_file_name(record.sha256)
        if source is None:  # blobs in object storage: a verified copy, made once
            if not os.path.exists(target):
                self.store.copy_blob(record.sha256, Path(target))
            return
        try:
            if self.link_mode == "hardlink":
                try:
                    os.link(source, target)
                    return
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                        raise
                    logger.info(
                        "cannot hard-link into %s (%s); the view links blobs by symlink instead",
                        self.root,
                        exc.strerror,
                    )
                    self.link_mode = "symlink"
            os.symlink(source, target)
        except FileExistsError:
            if os.path.islink(target):
                self.link_mode = "symlink"  # laid out before where hard links were impossible: say so

    # -- one commit ------------------------------------------------------------------------------
    def add_snapshot(
        self,
        repo: Repo,
        commit: str,
        files: list[FileRecord],
        *,
        folder: str | None = None,
        reuse: str | None = None,
    ) -> Path:
        """Lay out ``snapshots/<commit>`` for these files; returns the snapshot directory.

        A new snapshot is built under a temp name and renamed into place, so a reader never sees a
        snapshot folder with files missing; an existing one only gains links (a widened pattern set).
        ``folder`` lays it out under another repo folder name (an old name kept as a real folder).
        ``reuse``: an earlier commit (the parent) whose snapshot, where it is laid out, lends its links: an
        entry whose link says the same is hard-linked from there (creating a symlink costs ~0.3 ms on ext4,
        a hard link to an existing one ~10 µs: a one-file change of a 500-file repo was dominated by it)."""
        self._prepare_root()
        repo_dir = self.root / (folder or repo_folder_name(repo.type, repo.name))
        blobs_dir = repo_dir / "blobs"
        blobs_dir.mkdir(parents=True, exist_ok=True)
        (repo_dir / "snapshots").mkdir(exist_ok=True)
        blobs_name = os.fspath(blobs_dir)
        if self.store.blobs_local:
            for record in files:
                self._link_blob(record, blobs_name)
        else:  # copies from object storage: a round trip each, so several at once
            with ThreadPoolExecutor(max_workers=COPY_THREADS, thread_name_prefix="hubmirror-view") as pool:
                for done in [pool.submit(self._link_blob, record, blobs_name) for record in files]:
                    done.result()
        final = repo_dir / "snapshots" / commit
        exists = final.is_dir()
        build = final if exists else repo_dir / "snapshots" / f".{commit}.{uuid.uuid4().hex[:8]}.tmp"
        build_name = os.fspath(build)
        lender = _lender(repo_dir / "snapshots", reuse, commit) if not exists else None
        made: set[str] = set()
        for record in files:
            relpath = safe_relpath(record.path)
            link = f"{build_name}/{relpath}"
            parent = os.path.dirname(link)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            # snapshots/<commit>/<dirs…>/<file> → ../../<one more per dir>/blobs/<etag>
            target = "../" * (relpath.count("/") + 2) + "blobs/" + record.etag
            if lender is not None and _link_alike(f"{lender}/{relpath}", target, link):
                continue
            try:
                os.symlink(target, link)
            except FileExistsError:
                if not exists:
                    raise
        if not exists:
            try:
                os.rename(build, final)
            except OSError:
                # another process published the same snapshot first: theirs is as good as ours
                shutil.rmtree(build, ignore_errors=True)
        return final

    def set_ref(self, repo: Repo, ref: str, commit: str, *, folder: str | None = None) -> None:
        refs_dir = self.root / (folder or repo_folder_name(repo.type, repo.name)) / "refs"
        _atomic_write_text(refs_dir.joinpath(*safe_relpath(ref).split("/")), commit)

    def sync_refs(self, repo: Repo, *, folder: str | None = None) -> None:
        """Write the repo's refs and remove ref files the index no longer has (a deleted branch or tag)."""
        refs_dir = self.root / (folder or repo_folder_name(repo.type, repo.name)) / "refs"
        wanted = {ref.name: ref.commit for ref in self.index.refs(repo)}
        for name, commit in wanted.items():
            self.set_ref(repo, name, commit, folder=folder)
        if not refs_dir.is_dir():
            return
        for path in sorted(refs_dir.rglob("*"), reverse=True):  # files before the folders holding them
            name = path.relative_to(refs_dir).as_posix()
            if path.is_file() and name not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()

    def remove_repo(self, repo_type: str, name: str) -> None:
        """Take a deleted repo out of the view (its folder, or the alias link of that name)."""
        folder = self.root / repo_folder_name(repo_type, name)
        if folder.is_symlink():
            folder.unlink()
        elif folder.is_dir():
            doomed = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.deleted")
            os.rename(folder, doomed)  # gone for readers at once; the tree is removed after
            shutil.rmtree(doomed, ignore_errors=True)

    def rename_repo(self, repo: Repo, old_name: str) -> None:
        """After a move: the folder takes the new name and the old name becomes an alias link to it."""
        old = self.root / repo_folder_name(repo.type, old_name)
        new = self.root / repo_folder_name(repo.type, repo.name)
        if old.is_dir() and not old.is_symlink() and not new.exists():
            os.rename(old, new)
        self.update_repo(repo)

    def add_alias(self, repo: Repo, alias: str) -> bool:
        """``models--old--name`` → ``models--new--name``, so code using an old name still finds it.

        Returns False when the old name is a real folder (mirrored before the rename, or the user's own
        cache): it is kept, and the caller lays the repo out in it too so its refs do not go stale."""
        link = self.root / repo_folder_name(repo.type, alias)
        target = repo_folder_name(repo.type, repo.name)
        if link.is_symlink() and os.readlink(link) == target:
            return True
        if link.exists() and not link.is_symlink():
            logger.info("%s exists as a real folder; keeping it up to date instead of an alias link", link)
            return False
        _atomic_symlink(target, link)
        return True

    def _update_aliases(self, repo: Repo, commits: list[str]) -> None:
        for alias in self.index.aliases(repo):
            if self.add_alias(repo, alias):
                continue
            folder = repo_folder_name(repo.type, alias)
            for commit in commits:
                self.add_snapshot(repo, commit, self.index.files(repo, commit), folder=folder)
            self.sync_refs(repo, folder=folder)

    # -- whole repos -----------------------------------------------------------------------------
    def update_repo(self, repo: Repo) -> int:
        """Bring one repo's snapshots, refs and aliases up to date with the index; returns snapshots."""
        commits = self.index.commits(repo)
        for commit in commits:
            self.add_snapshot(repo, commit.sha, self.index.files(repo, commit.sha))
        self.sync_refs(repo)
        self._update_aliases(repo, [commit.sha for commit in commits])
        return len(commits)

    def update(self, repo_type: str, name: str, commit: str) -> None:
        """Sync's hook after a commit is published and its ref moved."""
        repo = self.index.find_repo(repo_type, name)
        if repo is None:
            return
        meta = self.index.commit_meta(repo, commit)
        self.add_snapshot(repo, commit, self.index.files(repo, commit), reuse=meta.parent if meta else None)
        self.sync_refs(repo)
        self._update_aliases(repo, [commit])

    def rebuild(self) -> ViewReport:
        """Lay out every mirrored repo (idempotent: existing links are kept). A repo that cannot be laid
        out is reported and the others still are; a view that cannot be written at all is a StoreError."""
        try:
            self._prepare_root()
        except OSError as exc:
            raise disk_error(exc, f"the HF-cache view at {self.root}") from exc
        repos = self.index.list_repos()
        snapshots = 0
        problems = []
        for repo in repos:
            try:
                snapshots += self.update_repo(repo)
            except (OSError, HubMirrorError) as exc:
                problems.append(f"{repo.type} {repo.name}: not laid out in the view ({exc})")
                logger.warning("HF-cache view at %s: %s", self.root, problems[-1])
        logger.info(
            "HF-cache view at %s: %d repos, %d snapshots, blobs by %s",
            self.root,
            len(repos) - len(problems),
            snapshots,
            self.link_mode,
        )
        return ViewReport(self.root, len(repos) - len(problems), snapshots, self.link_mode, problems)


def _lender(snapshots: Path, reuse: str | None, commit: str) -> str | None:
    """The snapshot folder of ``reuse`` when it is laid out (and is not ``commit`` itself), else None."""
    if reuse is None or reuse == commit or "/" in reuse or reuse.startswith("."):
        return None
    lender = snapshots / reuse
    return os.fspath(lender) if lender.is_dir() and not lender.is_symlink() else None


def _link_alike(source: str, target: str, link: str) -> bool:
    """Hard-link the symlink ``source`` to ``link`` if it points at ``target``; False when it does not (or
    is missing, or the filesystem will not link a symlink: the caller makes a symlink then)."""
    try:
        if os.readlink(source) != target:
            return False
        os.link(source, link, follow_symlinks=False)
    except (OSError, NotImplementedError):  # (NotImplementedError: a platform that cannot link a symlink)
        return False
    return True
