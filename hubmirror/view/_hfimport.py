"""Import an existing ``huggingface_hub`` cache into the store, verifying every file against its name.

In an HF cache a blob's file name is its etag: the sha256 of an LFS file, the git blob sha1 of a regular
one, so each imported file is checked against the hash its name promises. A corrupt file or a dangling
link is skipped (and reported) and the rest of its snapshot imported: HF-cache snapshots are often partial
anyway, and a later import of a repaired or grown cache adds the files a mirrored commit lacks. Refs follow
their commits. Importing twice changes nothing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..cards import card_json
from ..errors import IntegrityError, StoreError, UnsafePathError
from ..hashing import git_blob_sha1, hash_file, lfs_pointer
from ..index import Index
from ..models import REPO_TYPE_BY_PLURAL, BlobRecord, FileRecord, ref_spelling
from ..paths import is_sha1, is_sha256, safe_relpath
from ..store import Expected, Store

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    commits_imported: int = 0
    commits_present: int = 0  # already mirrored before this import
    files_imported: int = 0
    bytes_imported: int = 0
    bytes_saved: int = 0  # content that was already in the store
    refs: int = 0
    skipped: list[str] = field(default_factory=list)  # one line per skipped snapshot or file, with why

    def as_dict(self) -> dict[str, object]:
        return {
            k: getattr(self, k)
            for k in (
                "commits_imported",
                "commits_present",
                "files_imported",
                "bytes_imported",
                "bytes_saved",
                "refs",
                "skipped",
            )
        }


def _parse_folder(name: str) -> tuple[str, str] | None:
    parts = name.split("--")
    if len(parts) < 2 or parts[0] not in REPO_TYPE_BY_PLURAL:
        return None
    return REPO_TYPE_BY_PLURAL[parts[0]], "/".join(parts[1:])


class CacheImporter:
    def __init__(self, store: Store, index: Index) -> None:
        self.store, self.index = store, index

    def run(self, cache_dir: Path) -> ImportReport:
        report = ImportReport()
        cache_dir = Path(cache_dir).expanduser()
        if not cache_dir.is_dir():
            raise StoreError(
                f"{cache_dir} is not a directory (give the 'hub' folder of a huggingface_hub "
                "cache, e.g. ~/.cache/huggingface/hub)"
            )
        for repo_dir in sorted(cache_dir.iterdir()):
            parsed = _parse_folder(repo_dir.name)
            if parsed is None or not repo_dir.is_dir() or repo_dir.is_symlink():
                continue
            self._import_repo(repo_dir, *parsed, report)
        return report

    def _import_repo(self, repo_dir: Path, repo_type: str, name: str, report: ImportReport) -> None:
        snapshots = repo_dir / "snapshots"
        imported: set[str] = set()
        for snap in sorted(snapshots.iterdir()) if snapshots.is_dir() else []:
            if not is_sha1(snap.name) or not snap.is_dir():
                continue
            known = self._known_paths(repo_type, name, snap.name)
            if known is not None and all(rel in known for rel in _snapshot_files(snap).values()):
                report.commits_present += 1
                imported.add(snap.name)
                continue
            if self._import_snapshot(repo_dir, repo_type, name, snap, report, known or set()):
                imported.add(snap.name)
            elif known is not None:  # mirrored already; nothing this cache adds could be used
                report.commits_present += 1
                imported.add(snap.name)
        refs_dir = repo_dir / "refs"
        for ref_file in sorted(refs_dir.rglob("*")) if refs_dir.is_dir() else []:
            if not ref_file.is_file():
                continue
            commit = ref_file.read_text().strip()
            # refs/refs/pr/1 is PR 1's ref; a bare name may be a branch or a tag (sync learns which)
            ref, kind = ref_spelling(ref_file.relative_to(refs_dir).as_posix())
            if commit in imported:
                with self.store.write_lock():
                    if self.index.set_ref(repo_type, name, ref, commit, kind=kind):
                        report.refs += 1

    def _known_paths(self, repo_type: str, name: str, sha: str) -> set[str] | None:
        """The paths the index has for a complete commit, or None when it is not mirrored."""
        repo = self.index.find_repo(repo_type, name)
        if repo is None or not self.index.commit_complete(repo_type, name, sha):
            return None
        return {f.path for f in self.index.files(repo, sha)}

    def _import_snapshot(
        self, repo_dir: Path, repo_type: str, name: str, snap: Path, report: ImportReport, known: set[str]
    ) -> bool:
        """Import the files of ``snap`` not in ``known``; True if any was recorded."""
        label = f"{repo_type} {name}@{snap.name[:12]}"
        records: list[FileRecord] = []
        blobs: list[BlobRecord] = []
        problems: list[str] = []
        new_files = new_bytes = saved = 0
        for path, rel in _snapshot_files(snap).items():
            if rel in known:
                continue
            try:
                safe_relpath(rel)
            except UnsafePathError as exc:
                problems.append(str(exc))
                continue
            if not path.exists():
                problems.append(f"'{rel}' is a dangling link")
                continue
            try:
                record, blob, fetched = self._ingest(path)
            except IntegrityError as exc:
                problems.append(f"'{rel}' is corrupt ({exc})")
                continue
            records.append(FileRecord(rel, record[1], record[0], record[2], record[3]))
            blobs.append(blob)
            if fetched:
                new_files, new_bytes = new_files + 1, new_bytes + blob.size
            else:
                saved += blob.size
        if blobs:
            with self.store.write_lock():
                self.index.add_blobs(blobs)
        for problem in problems:
            report.skipped.append(f"{label}: {problem}, skipped")
            logger.warning("import %s: %s, skipped", label, problem)
        if not records:
            if not known:
                report.skipped.append(f"{label}: no usable files, snapshot skipped")
            return False
        with self.store.write_lock():
            self.index.publish_commit(
                repo_type,
                name,
                snap.name,
                records,
                blobs,
                source="import",
                card=card_json(records, self.store.open_blob),
            )
        report.commits_imported += 1
        report.files_imported += new_files
        report.bytes_imported += new_bytes
        report.bytes_saved += saved
        logger.info("imported %s: %d files (%d new)", label, len(records), new_files)
        return True

    def _ingest(self, path: Path) -> tuple[tuple[str, int, str, bool], BlobRecord, bool]:
        """Verify a cache file against its blob name and store it. Returns ((sha256, size, git_oid, lfs),
        blob record, whether new bytes were stored)."""
        etag = Path(os.path.realpath(path)).name
        size = path.stat().st_size
        if is_sha256(etag):
            lfs = True
            if self.store.has_blob(etag):
                return (etag, size, _pointer_oid(etag, size), lfs), BlobRecord(etag, size, None), False
            info = self.store.ingest_file(path, Expected(size=size, sha256=etag))
            return (info.sha256, size, _pointer_oid(etag, size), lfs), BlobRecord(info.sha256, size, None), info.fetched
        if is_sha1(etag):
            known = self.index.sha256_for_git_sha1(etag)
            if known and self.store.has_blob(known):
                return (known, size, etag, False), BlobRecord(known, size, etag), False
            info = self.store.ingest_file(path, Expected(size=size, git_sha1=etag))
            return (info.sha256, size, etag, False), BlobRecord(info.sha256, size, etag), info.fetched
        # A cache written without symlinks holds plain files: nothing names their hash, so take git's.
        _, data_sha1, _ = hash_file(path)
        info = self.store.ingest_file(path, Expected(size=size, git_sha1=data_sha1))
        return (info.sha256, size, data_sha1, False), BlobRecord(info.sha256, size, data_sha1), info.fetched


def _snapshot_files(snap: Path) -> dict[Path, str]:
    """Files and links of a snapshot folder → their repo-relative paths, sorted."""
    return {
        p: p.relative_to(snap).as_posix() for p in sorted(p for p in snap.rglob("*") if p.is_file() or p.is_symlink())
    }


def _pointer_oid(sha256: str, size: int) -> str:
    return git_blob_sha1(lfs_pointer(sha256, size))
