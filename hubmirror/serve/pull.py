"""Pull-through (``serve.pull_through``): a request for a repo, revision or file this mirror lacks is fetched
from upstream on first use, verified and recorded like a sync, then answered from the store.

- **Who may cause a pull.** Repos listed under ``repos:`` belong to sync and local repos to their pushers:
  neither is ever pulled. Others must pass ``allow``/``deny``. A private or gated repo is recorded only for a
  caller who may read private repos here (anonymous callers pull public repos only); it keeps upstream's flags.
- **Once.** Concurrent requests for the same revision or file wait for one fetch (a future per key). The
  fetch runs on this module's threads, so a client that disconnects does not cancel what others wait for.
  A file is answered only after its bytes verified: nobody receives a complete-looking wrong file.
- **Upstream down.** A revision's commit is trusted for ``metadata_ttl``. After that upstream is asked
  again; if it cannot answer (unreachable, 5xx, 429) the last commit recorded here is served, with a log line.
- **Limits.** A file above ``max_file_size``, or one that would take the pulled bytes past
  ``max_total_size``, is refused with 413 and the ``hubmirror sync`` command that mirrors it instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..config import PullThroughConfig, UpstreamConfig, validate_repo_id
from ..errors import (
    AccessDeniedError,
    EntryNotFoundError,
    GatedRepoError,
    IntegrityError,
    NotMirroredError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsafePathError,
    UpstreamError,
    UpstreamUnavailableError,
)
from ..hub import upstream_client
from ..index import open_index
from ..models import REPO_TYPES, Repo
from ..paths import is_sha1
from ..resolve import Resolver
from ..sync import Puller
from ..view import HFCacheView, view_root
from .auth import Caller
from .catalog import Catalog, Snapshot
from .follow import Follow, FollowResponse
from .http import HubHTTPError
from .reads import file_headers, media_type

logger = logging.getLogger(__name__)

T = TypeVar("T")
PULL_WORKERS = 8
STREAM_FROM = 1  # an empty file is answered once stored (it has no last byte to hold back)
PULLED_BYTES_TTL = 30.0  # seconds the pulled total (serve.pull_through.max_total_size) is trusted
REFUSAL_TTL = 30.0  # seconds upstream's "no such repo/revision" (or 403) is answered without asking again
MAX_REFUSALS = 10_000
MAX_REVISION = 256  # longer revision names are not sent upstream (the Hub's refs are far shorter)
DOWN_RETRY = 30.0  # seconds between asking an upstream that was down again, while the last good commit is served
MAX_PULL_RETRIES = 2  # serve answers a client waiting on the line: few retries, not sync's patience


class PullThrough:
    def __init__(
        self,
        catalog: Catalog,
        config: PullThroughConfig,
        upstream: UpstreamConfig,
        mirrored: frozenset[tuple[str, str]],
    ) -> None:
        self.catalog, self.config, self.mirrored = catalog, config, mirrored
        self.client = upstream_client(
            upstream, pool_size=PULL_WORKERS, max_retries=min(upstream.max_retries, MAX_PULL_RETRIES)
        )
        self._index = open_index(catalog.index_at)
        self.puller = Puller(catalog.store, self._index, self.client, on_published=self._published)
        self._pool = ThreadPoolExecutor(max_workers=PULL_WORKERS, thread_name_prefix="hubmirror-pull")
        self._lock = threading.Lock()
        self._pending: dict[Hashable, Future[None]] = {}
        self._files: dict[tuple[str, str, str, str], tuple[Future[None], Follow]] = {}
        self._pulled, self._pulled_at = 0, float("-inf")
        self._refusals: OrderedDict[tuple[str, str, str], tuple[float, HubHTTPError]] = OrderedDict()
        self._checked: dict[tuple[str, str, str], float] = {}  # (type, name, revision) → when it is next asked
        self._private: dict[tuple[str, str, str], float] = {}  # … private upstream: until when others skip it

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.puller.close()
        self.client.close()
        self._index.close()

    # -- entry points (on the event loop) ---------------------------------------------------------
    async def revision(self, repo_type: str, name: str, revision: str, caller: Caller) -> None:
        """Make sure the revision's current commit is recorded, when pull-through applies to the repo."""
        key = (repo_type, name, revision)
        now = time.monotonic()
        if now < self._checked.get(key, 0.0):  # asked upstream lately: the index has the answer
            return
        if now < self._private.get(key, 0.0) and not _privileged(caller):
            return  # private or gated upstream, asked lately: nothing to pull for this caller
        self._refused_lately(key)
        if len(revision) > MAX_REVISION or not self._applies(repo_type, name):
            return
        await self._once(("revision", *key), lambda: self._pull_revision(repo_type, name, revision, caller))

    async def resolve(self, request: Request, snapshot: Snapshot, path: str) -> Response | None:
        """Answer a resolve of a file upstream lists and the store lacks yet: a HEAD at once from the listing
        (and the fetch starts), a GET while the bytes arrive; None once the file is stored (a small file or a
        Range request waits for the fetch): then the caller answers as for any stored file."""
        entry = snapshot.missing[path]
        if time.monotonic() - self._pulled_at > PULLED_BYTES_TTL:  # an index query: off the event loop
            await run_in_threadpool(self._refresh_pulled)
        self._check_limits(snapshot.repo, path, entry.size)
        future, follow = self._start_file(snapshot, path)
        headers = file_headers(snapshot, snapshot.files[path])
        if request.method == "HEAD":
            return Response(headers={**headers, "Content-Length": str(entry.size)}, media_type=media_type(path))
        if "range" not in request.headers and entry.size >= STREAM_FROM:
            fd = await follow.open()
            if fd is not None:
                return FollowResponse(follow, fd, headers, media_type(path))
        # shield: a waiter that goes away (client disconnected) must not cancel the fetch the others wait for
        await asyncio.shield(asyncio.wrap_future(future))
        return None

    # -- policy ----------------------------------------------------------------------------------
    def _applies(self, repo_type: str, name: str) -> bool:
        """Pull-through may fetch this repo: a well-formed name (nothing else reaches upstream), not one sync
        owns (listed), not a local one (pushed here)."""
        if (repo_type, name) in self.mirrored or repo_type not in REPO_TYPES or not _well_formed(name):
            return False
        index = self.catalog.index()
        repo = index.find_repo(repo_type, name)
        if repo is None:
            if not self.config.permits(repo_type, name):
                raise HubHTTPError(
                    403,
                    f"{repo_type} repo '{name}' is not on this mirror, and its pull-through does not allow it "
                    f"(serve.pull_through.allow/deny); to mirror it, list it under repos: and run "
                    f"'hubmirror sync {name}'",
                    "PullThroughDenied",
                )
            return True
        # A repo that is here already: pulled ones stay pulled (and follow upstream); others are not touched.
        return self.config.permits(repo_type, repo.name) and all(c.source == "pull" for c in index.commits(repo))

    def _check_limits(self, repo: Repo, path: str, size: int) -> None:
        if size > self.config.max_file_size:
            raise self._too_big(repo, f"'{path}' is {size} bytes, above serve.pull_through.max_file_size")
        if self._pulled + size > self.config.max_total_size:
            raise self._too_big(repo, f"'{path}' would take the pulled bytes past serve.pull_through.max_total_size")

    def _refresh_pulled(self) -> None:
        """Re-read the pulled total from the index now and then: other replicas pull too."""
        total = self.catalog.index().pulled_bytes()
        with self._lock:
            self._pulled, self._pulled_at = total, time.monotonic()

    def _too_big(self, repo: Repo, why: str) -> HubHTTPError:
        return HubHTTPError(
            413,
            f"{why}: not pulled through. Mirror it ahead of time instead: list {repo.type} '{repo.name}' "
            f"under repos: and run 'hubmirror sync {repo.name}'",
            "PullThroughTooLarge",
        )

    # -- the fetches (on the pool's threads) ------------------------------------------------------
    def _pull_revision(self, repo_type: str, name: str, revision: str, caller: Caller) -> None:
        key = (repo_type, name, revision)
        if is_sha1(revision) and self._known_commit(repo_type, name, revision):
            self._checked[key] = float("inf")  # a commit never changes: never asked again
            return
        try:
            info = self.puller.revision(repo_type, name, revision)
        except UpstreamError as exc:
            if isinstance(exc, UpstreamUnavailableError) or exc.status == 429 or (exc.status or 0) >= 500:
                self._upstream_down(key, exc)
                return
            if isinstance(exc, RepoNotFoundError):
                self.puller.hide(repo_type, name)
            raise self._refused(key, _answer(exc)) from exc
        if (info.private or info.gated) and not _privileged(caller):
            self._private[key] = time.monotonic() + self.config.metadata_ttl
            logger.info(
                "pull-through: %s %s is %s upstream; not pulled for a caller who may not read private repos",
                repo_type,
                name,
                "private" if info.private else "gated",
            )
            return
        try:
            self.puller.record_revision(repo_type, name, revision, info)
        except UnsafePathError as exc:
            raise HubHTTPError(502, f"upstream's listing of {repo_type} {name} was refused: {exc}") from exc
        except UpstreamError as exc:
            raise _answer(exc) from exc
        self._checked[key] = time.monotonic() + self.config.metadata_ttl

    def _refused(self, key: tuple[str, str, str], answer: HubHTTPError) -> HubHTTPError:
        """Remember upstream's refusal for a while: made-up names must not become one upstream request each
        (the rate budget is shared with the pulls and syncs that matter)."""
        with self._lock:
            self._refusals[key] = (time.monotonic() + REFUSAL_TTL, answer)
            self._refusals.move_to_end(key)
            while len(self._refusals) > MAX_REFUSALS:
                self._refusals.popitem(last=False)
        return answer

    def _refused_lately(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            refusal = self._refusals.get(key)
        if refusal is not None and time.monotonic() < refusal[0]:
            raise refusal[1]

    def _upstream_down(self, key: tuple[str, str, str], exc: UpstreamError) -> None:
        repo_type, name, revision = key
        if not self._known_revision(repo_type, name, revision):
            raise HubHTTPError(
                502 if not isinstance(exc, UpstreamUnavailableError) else 503,
                f"{repo_type} repo '{name}' is not on this mirror yet, and upstream could not be asked for it: {exc}",
                headers={"Retry-After": "30"},
            )
        logger.warning(
            "pull-through: upstream could not answer for %s %s@%s (%s); serving the last commit mirrored here",
            repo_type,
            name,
            revision,
            exc,
        )
        self._checked[key] = time.monotonic() + min(DOWN_RETRY, self.config.metadata_ttl)

    def _start_file(self, snapshot: Snapshot, path: str) -> tuple[Future[None], Follow]:
        """The fetch of ``path`` under way, or a new one."""
        key = (snapshot.repo.type, snapshot.repo.name, snapshot.commit, path)
        with self._lock:
            pending = self._files.get(key)
            if pending is None:
                follow = Follow(snapshot.missing[path].size)
                future = self._pool.submit(self._run_file, key, snapshot, path, follow)
                pending = self._files[key] = (future, follow)
            return pending

    def _run_file(self, key: tuple[str, str, str, str], snapshot: Snapshot, path: str, follow: Follow) -> None:
        try:
            self._pull_file(snapshot, path, follow)
            follow.end(True)
        except BaseException:
            follow.end(False)
            raise
        finally:
            with self._lock:
                self._files.pop(key, None)

    def _pull_file(self, snapshot: Snapshot, path: str, follow: Follow) -> None:
        repo, entry = snapshot.repo, snapshot.missing[path]
        with self.catalog.store.gc_guard():  # the new blob is not collected before its commit names it
            try:
                record = self.puller.file(repo.type, repo.name, snapshot.commit, entry, follow.wrap)
            except IntegrityError as exc:
                logger.error("pull-through: %s", exc)
                raise HubHTTPError(
                    502, f"upstream sent '{path}' with bytes that did not verify; nothing was stored: {exc}"
                ) from exc
            except UpstreamError as exc:
                raise _answer(exc) from exc
        self.catalog.stored(repo, snapshot.commit, record)
        with self._lock:
            self._pulled += entry.size
        if self.catalog.store.blobs_local:  # as sync: with blobs in object storage, resolve lays out what it needs
            try:
                view = self._view()
                view.add_snapshot(repo, snapshot.commit, [record])
                view.sync_refs(repo)
            except OSError as exc:
                logger.warning("HF-cache view not updated for pulled %s %s (%s)", repo.type, repo.name, exc)

    def _view(self) -> HFCacheView:
        """The HF-cache view over this thread's index connection (pull threads never share one)."""
        return HFCacheView(view_root(self.catalog.store.home), self.catalog.store, self.catalog.index())

    def _published(self, repo_type: str, name: str, commit: str) -> None:
        if not self.catalog.store.blobs_local:
            return  # as sync: with blobs in object storage, resolve lays out what is asked for
        try:
            self._view().update(repo_type, name, commit)
        except OSError as exc:
            logger.warning("HF-cache view not updated for pulled %s %s (%s)", repo_type, name, exc)

    def _known_commit(self, repo_type: str, name: str, sha: str) -> bool:
        index = self.catalog.index()
        repo = index.find_repo(repo_type, name)
        return repo is not None and index.listing(repo, sha) is not None

    def _known_revision(self, repo_type: str, name: str, revision: str) -> bool:
        index = self.catalog.index()
        repo = index.find_repo(repo_type, name)
        if repo is None:
            return False
        try:
            Resolver(self.catalog.home, index, self.catalog.store).commit(repo, revision)
        except NotMirroredError:
            return False
        return True

    # -- single flight ---------------------------------------------------------------------------
    async def _once(self, key: Hashable, work: Callable[[], None]) -> None:
        """Run ``work`` once for every request that asks for ``key`` meanwhile; each gets its outcome."""
        with self._lock:
            future = self._pending.get(key)
            if future is None:
                future = self._pending[key] = self._pool.submit(self._run, key, work)
        # shield: a waiter that goes away (client disconnected) must not cancel the fetch the others wait for
        await asyncio.shield(asyncio.wrap_future(future))

    def _run(self, key: Hashable, work: Callable[[], None]) -> None:
        try:
            work()
        finally:
            with self._lock:
                self._pending.pop(key, None)


def _well_formed(name: str) -> bool:
    try:
        validate_repo_id(name)
    except ValueError:
        return False
    return True


def _privileged(caller: Caller) -> bool:
    """May cause pulls of private and gated repos (and read them once pulled)."""
    return caller.admin or caller.read_private


def _answer(exc: UpstreamError) -> HubHTTPError:
    """Upstream's refusal as serve's answer (the same status and error code the Hub would give)."""
    if isinstance(exc, RepoNotFoundError):
        return HubHTTPError(404, f"not on this mirror, and upstream has no such repo: {exc}", "RepoNotFound")
    if isinstance(exc, RevisionNotFoundError):
        return HubHTTPError(404, str(exc), "RevisionNotFound")
    if isinstance(exc, EntryNotFoundError):
        return HubHTTPError(404, str(exc), "EntryNotFound")
    if isinstance(exc, GatedRepoError):
        return HubHTTPError(403, f"upstream refuses this mirror's token: {exc}", "GatedRepo")
    if isinstance(exc, AccessDeniedError):
        return HubHTTPError(403, f"upstream refuses this mirror's token: {exc}")
    return HubHTTPError(502, f"upstream: {exc}")
