"""``Mirror``: one store + index opened together, and the operations the CLI (or Python code) runs on it.

Builds the upstream client and syncer from a config; holds no state of its own beyond open handles.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .config import Config, LockedFile, LockedRevision, RepoSpec, read_lock, write_lock
from .errors import HubMirrorError, NotMirroredError
from .home import open_store_index
from .hub import UpstreamClient, upstream_client
from .index import NEXT_SYNC_KEY, Index, PushBook
from .models import Backends, Progress, Repo, ref_spelling
from .paths import is_sha1
from .patterns import PathFilter
from .store import LAYOUT_VERSION, Store
from .sync import Syncer, SyncObserver, SyncReport
from .view import HFCacheView, ViewReport, view_root

if TYPE_CHECKING:
    from .bundle import ExportReport
    from .bundle import ImportReport as BundleImport
    from .maintenance import GcReport, RemoveReport, Retention, VerifyReport
    from .push import Pusher
    from .view import ImportReport

logger = logging.getLogger(__name__)


class Mirror:
    """A hubmirror home: ``Mirror(home)`` opens (and if needed creates) its store and index."""

    def __init__(self, home: Path | str, *, write: bool = True, backends: Backends | None = None) -> None:
        """Open the store at ``home``: for a write (creating it if needed), or (``write=False``) only to read,
        which never creates or changes anything. ``backends``: where the config puts the index (a PostgreSQL
        database) and the blobs (an S3 bucket); default: what the store recorded, else the home."""
        self.store: Store
        self.index: Index
        self.store, self.index = open_store_index(Path(home), write=write, backends=backends)
        self.view = HFCacheView(view_root(self.store.home), self.store, self.index)
        # Sync keeps the HF-cache view current after each published commit.
        self.on_published: Callable[[str, str, str], None] | None = self._update_view

    def _update_view(self, repo_type: str, name: str, commit: str) -> None:
        # The view is derived: failing to update it must not fail the sync that fed the store.
        if not self.store.blobs_local:
            # With blobs in object storage the home holds no copies: resolve lays out what is asked for, and
            # 'hf-cache --dir' what a machine needs.
            return
        try:
            self.view.update(repo_type, name, commit)
        except OSError as exc:
            logger.warning(
                "HF-cache view at %s not updated for %s %s (%s); run 'hubmirror hf-cache'",
                self.view.root,
                repo_type,
                name,
                exc,
            )

    @property
    def home(self) -> Path:
        return self.store.home

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- sync ------------------------------------------------------------------------------------
    def _syncer(
        self, config: Config, client: UpstreamClient, observer: SyncObserver | None, stop: threading.Event | None = None
    ) -> Syncer:
        return Syncer(
            self.store,
            self.index,
            client,
            workers=config.sync.workers,
            observer=observer,
            on_published=self.on_published,
            stop=stop,
        )

    @staticmethod
    def client_for(config: Config, stop: threading.Event | None = None) -> UpstreamClient:
        return upstream_client(config.upstream, pool_size=config.sync.workers, stop=stop)

    def sync(
        self,
        config: Config,
        repos: Sequence[str] = (),
        *,
        dry_run: bool = False,
        locked: bool = False,
        observer: SyncObserver | None = None,
        stop: threading.Event | None = None,
    ) -> SyncReport:
        """Sync the config's repos (or the named subset). Raises only for config/lock problems;
        per-repo failures are in the report."""
        specs = config.select(repos) if repos else config.repos
        pins = read_lock(config.lock_path) if locked else None
        with self.client_for(config, stop) as client:
            syncer = self._syncer(config, client, observer, stop)
            try:
                if pins is not None:
                    return syncer.sync_locked(specs, pins, dry_run=dry_run)
                return syncer.sync(specs, dry_run=dry_run)
            finally:
                syncer.close()

    def lock(self, config: Config, observer: SyncObserver | None = None) -> tuple[SyncReport, Path | None]:
        """Sync everything, then pin what was mirrored into ``hubmirror.lock`` (only if all synced)."""
        report = self.sync(config, observer=observer)
        if not report.ok:
            return report, None
        write_lock(config.lock_path, [self._locked(spec, rev) for spec in config.repos for rev in spec.revisions])
        return report, config.lock_path

    def _locked(self, spec: RepoSpec, revision: str) -> LockedRevision:
        repo = self.index.find_repo(spec.type, spec.repo)
        if repo is None:
            raise HubMirrorError(f"{spec.type} {spec.repo} vanished from the index while locking")
        commit = revision if is_sha1(revision) else self.index.ref(repo, ref_spelling(revision)[0])
        if commit is None:
            raise HubMirrorError(f"{spec.type} {spec.repo}@{revision} vanished from the index while locking")
        keep = PathFilter(spec.allow_patterns, spec.ignore_patterns)
        files = tuple(LockedFile(f.path, f.size, f.sha256) for f in self.index.files(repo, commit) if keep(f.path))
        return LockedRevision(spec.repo, spec.type, revision, commit, files)

    # -- push ------------------------------------------------------------------------------------
    def pusher(self, client: UpstreamClient) -> Pusher:
        from .push import Pusher  # the push stack is not loaded for syncs and reads

        return Pusher(self.store, self.index, client, on_published=self.on_published)

    def push_status(self) -> dict[str, Any]:
        book = PushBook(self.index)
        return {"targets": book.states(), "pending": [asdict(job) for job in book.jobs()]}

    # -- views and imports -----------------------------------------------------------------------
    def build_view(self, directory: Path | None = None) -> ViewReport:
        """(Re)build the HF-cache view, in ``home/hf/hub`` or any directory (e.g. a user's HF cache)."""
        view = self.view if directory is None else HFCacheView(directory, self.store, self.index)
        return view.rebuild()

    def import_hf_cache(self, cache_dir: Path) -> ImportReport:
        """Bring an existing huggingface_hub cache into the store (verified), then refresh the view."""
        from .view import CacheImporter

        report = CacheImporter(self.store, self.index).run(cache_dir)
        self.view.rebuild()
        return report

    # -- across the air gap -------------------------------------------------------------------------
    def export(
        self,
        dest: str | Path,
        repos: Sequence[str] = (),
        *,
        since: Path | None = None,
        incremental: bool = False,
        progress: Progress | None = None,
    ) -> ExportReport:
        """A bundle of what the far side lacks (see :mod:`hubmirror.bundle`)."""
        from .bundle import Exporter

        return Exporter(self.store, self.index, progress).export(dest, repos, since=since, incremental=incremental)

    def inventory(self, out: BinaryIO) -> dict[str, int]:
        """What this store holds, for the other side's ``export --since``."""
        from .bundle import write_inventory
        from .index import utcnow

        return write_inventory(self.index, out, utcnow())

    def import_bundle(self, src: str | Path, progress: Progress | None = None) -> BundleImport:
        """Bring a bundle in, verified; imported repos show in the HF-cache view at once."""
        from .bundle import Importer

        return Importer(self.store, self.index, progress, on_published=self._refresh_repo).run(src)

    def _refresh_repo(self, repo_type: str, name: str) -> None:
        repo = self.index.find_repo(repo_type, name)
        if repo is None:
            return
        try:
            self.view.update_repo(repo)
        except OSError as exc:
            logger.warning("HF-cache view not updated for %s %s (%s); run 'hubmirror hf-cache'", repo_type, name, exc)

    # -- upkeep ------------------------------------------------------------------------------------
    def verify(
        self,
        repos: Sequence[str] = (),
        *,
        repair: bool = False,
        bundle: Path | None = None,
        client: UpstreamClient | None = None,
        progress: Progress | None = None,
        locked: Sequence[LockedRevision] = (),
    ) -> VerifyReport:
        """Rehash blobs and check invariants (of ``repos`` or everything) and the lock file's pins; with
        ``repair``, heal."""
        from .maintenance import Repairer, Verifier

        chosen = [self._repo(name) for name in repos]
        report = Verifier(self.store, self.index, self.view, progress=progress).run(chosen, locked)
        if repair and not report.ok:
            Repairer(self.store, self.index, self.view, client=client, bundle=bundle).repair(report)
        return report

    def gc(self, retention: Retention, *, dry_run: bool = False) -> GcReport:
        from .maintenance import Collector

        return Collector(self.store, self.index, self.view).run(retention, dry_run=dry_run)

    def remove(self, name: str, repo_type: str = "model", revision: str | None = None) -> RemoveReport:
        from .maintenance import remove

        return remove(self.store, self.index, self.view, name, repo_type, revision)

    def _repo(self, name: str) -> Repo:
        found = [r for r in self.index.list_repos() if r.name == name or name in self.index.aliases(r)]
        if not found:
            raise NotMirroredError(f"repo '{name}' is not in this store (see 'hubmirror status')")
        return found[0]

    # -- status ----------------------------------------------------------------------------------
    def status(self, runs: int = 5, retention: Retention | None = None) -> dict[str, Any]:
        """What the store holds, recent runs, pushes, and what ``gc`` would reclaim under ``retention``."""
        from .maintenance import Collector, Retention

        plan = Collector(self.store, self.index).plan(retention or Retention())
        stats = self.index.stats()
        repos = []
        for repo in self.index.list_repos():
            commits = {c.sha: c for c in self.index.commits(repo)}
            refs = self.index.refs(repo)
            repos.append(
                {
                    "type": repo.type,
                    "name": repo.name,
                    "private": repo.private,
                    "gated": repo.gated,
                    # fetched on first request by serve's pull-through (serve.pull_through), not listed for sync
                    "pulled": bool(commits) and all(c.source == "pull" for c in commits.values()),
                    "aliases": self.index.aliases(repo),
                    "refs": {r.name: r.commit for r in refs},
                    "ref_kinds": {r.name: r.kind for r in refs},
                    "commits": [
                        {
                            "sha": c.sha,
                            "files": c.files,
                            "size": c.size,
                            "source": c.source,
                            "recorded_at": c.recorded_at,
                        }
                        for c in commits.values()
                    ],
                }
            )
        return {
            "home": str(self.home),
            "index": self.index.location,
            "layout": LAYOUT_VERSION,
            "store": {
                "blobs": stats.blobs,
                "stored_bytes": stats.stored_bytes,
                "logical_bytes": stats.logical_bytes,
                "saved_bytes": max(0, stats.logical_bytes - stats.stored_bytes),
                "repos": stats.repos,
                "commits": stats.commits,
            },
            "repos": repos,
            "sync_runs": [asdict(r) for r in self.index.sync_runs(runs)],
            "push": self.push_status(),
            "next_sync": self.index.get_meta(NEXT_SYNC_KEY),
            "failing_repos": self._failing_repos(),
            "reclaimable": {"commits": plan.commits, "blobs": len(plan.blobs), "bytes": plan.bytes},
        }

    def _failing_repos(self, last: int = 3) -> list[dict[str, Any]]:
        """Repo revisions that failed in each of the last ``last`` finished sync runs (flagged in status)."""
        runs = [r for r in self.index.sync_runs(20) if r.finished_at][:last]
        if len(runs) < last:
            return []
        failing = None
        for run in runs:
            keys = {(e["type"], e["repo"], e["revision"]) for e in run.errors}
            failing = keys if failing is None else failing & keys
        latest = {(e["type"], e["repo"], e["revision"]): e["error"] for e in runs[0].errors}
        return [
            {"type": t, "repo": r, "revision": v, "runs": last, "error": latest[(t, r, v)]}
            for t, r, v in sorted(failing or ())
        ]


@contextmanager
def planning_mirror(home: Path, backends: Backends | None = None) -> Iterator[Mirror]:
    """A Mirror to plan a dry run against while writing nothing: the store opened read-only, or, when there
    is no store yet, an empty throwaway one (everything would be fetched)."""
    if Store.exists(home):
        with Mirror(home, write=False, backends=backends) as mirror:
            yield mirror
        return
    logger.info("no store at %s yet: everything would be fetched", home)
    with tempfile.TemporaryDirectory(prefix="hubmirror-dry-run-") as scratch, Mirror(Path(scratch)) as mirror:
        yield mirror
