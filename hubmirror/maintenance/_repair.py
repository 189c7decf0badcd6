"""``hubmirror verify --repair``: damaged blobs go to ``home/quarantine/`` and come back verified, from a
bundle (``--from``) or from upstream; missing blob rows are restored; broken view entries are laid out again.
What cannot be healed (upstream refuses, a ref names a commit the store lacks) stays in ``unrepaired``."""

from __future__ import annotations

import logging
from pathlib import Path

from ..bundle import blobs_from_bundle
from ..errors import HubMirrorError
from ..hub import UpstreamClient
from ..index import BlobUse, Index
from ..models import BlobRecord
from ..store import Expected, Store
from ..view import HFCacheView, check_repo, repair_repo
from ._verify import VerifyReport

logger = logging.getLogger(__name__)


class Repairer:
    def __init__(
        self,
        store: Store,
        index: Index,
        view: HFCacheView,
        *,
        client: UpstreamClient | None = None,
        bundle: Path | None = None,
    ) -> None:
        self.store, self.index, self.view = store, index, view
        self.client, self.bundle = client, bundle

    def repair(self, report: VerifyReport) -> None:
        with self.store.gc_guard():  # what is put back is not collected meanwhile
            wanted = {d.sha256: d.uses for d in report.damaged}
            for damage in report.damaged:
                if damage.problem != "missing":
                    where = self.store.quarantine(damage.sha256)
                    logger.warning("blob %s (%s) moved to %s", damage.sha256, damage.problem, where)
            rows_only: set[str] = set()
            for use in self.index.files_without_blob_rows():
                sha = self._sha256_of(use)
                if sha is None or sha in wanted:
                    continue
                if self.store.has_blob(sha):  # intact (verify rehashed it): only its row was lost
                    rows_only.add(sha)
                else:
                    wanted[sha] = [use]
            restored = self._restore(wanted, report)
            report.repaired.extend(f"blob {sha}: index row restored" for sha in sorted(rows_only))
            for sha in [*restored, *sorted(rows_only)]:
                size = self.store.blob_size(sha) or 0
                with self.store.write_lock():
                    self.index.add_blobs([BlobRecord(sha, size, None)])
            for line in report.index_problems:
                if "ref " in line:
                    report.unrepaired.append(f"{line}: run 'hubmirror sync' (or import a bundle) to bring it")
            # The view's hard links still hold the damaged bytes: lay out every repo that used them again.
            relink = dict.fromkeys((u.type, u.repo) for uses in wanted.values() for u in uses)
            relink.update(dict.fromkeys(report.view_problems))
            for kind, name in relink:
                repo = self.index.find_repo(kind, name)
                if repo is None:
                    continue
                try:
                    repair_repo(self.view, repo)
                except OSError as exc:  # a blob it needs is still missing: said above as unrepaired
                    report.unrepaired.append(f"HF-cache view of {kind} {name} not laid out again ({exc.strerror})")
                    continue
                left = check_repo(self.view, repo)
                (
                    report.unrepaired.extend(left)
                    if left
                    else report.repaired.append(f"HF-cache view of {kind} {name} laid out again")
                )

    def _sha256_of(self, use: BlobUse) -> str | None:
        repo = self.index.find_repo(use.type, use.repo)
        if repo is None:
            return None
        return next((f.sha256 for f in self.index.files(repo, use.commit) if f.path == use.path), None)

    def _restore(self, wanted: dict[str, list[BlobUse]], report: VerifyReport) -> list[str]:
        done: list[str] = []
        left = dict(wanted)
        if self.bundle is not None and left:
            for sha, what in blobs_from_bundle(self.store, self.bundle, set(left)).items():
                if what == "restored":
                    done.append(sha)
                    report.repaired.append(f"blob {sha}: restored from {self.bundle}")
                    del left[sha]
        for sha, uses in left.items():
            try:
                self._from_upstream(sha, uses)
            except HubMirrorError as exc:
                report.unrepaired.append(f"blob {sha}: not restored ({exc})")
                continue
            done.append(sha)
            report.repaired.append(f"blob {sha}: fetched again from upstream")
        return done

    def _from_upstream(self, sha256: str, uses: list[BlobUse]) -> None:
        if self.client is None:
            raise HubMirrorError("no upstream configured and no --from BUNDLE holds it")
        if not uses:
            raise HubMirrorError("no file uses it, so nothing says where upstream has it (gc will remove it)")
        last: HubMirrorError | None = None
        for use in uses:
            repo = self.index.find_repo(use.type, use.repo)
            record = next((f for f in self.index.files(repo, use.commit) if f.path == use.path), None) if repo else None
            if record is None:
                continue
            expected = Expected(size=record.size, sha256=sha256, git_sha1=None if record.lfs else record.git_oid)
            try:
                with self.store.writer(expected) as writer:
                    self.client.download(use.type, use.repo, use.commit, use.path, writer)
                    writer.commit()
                return
            except HubMirrorError as exc:
                last = exc
        raise last or HubMirrorError("no file record to fetch it by")
