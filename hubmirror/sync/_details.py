"""What sync keeps beside the files: each ref's kind (branch, tag, PR) and what upstream says about a new
commit (parent, title, message, authors, date). Optional detail: a failed request is logged and leaves the
detail unknown; it never fails a sync. Reads the index, never writes it (the syncer does, under its lock).
"""

from __future__ import annotations

import logging

from ..errors import RepoNotFoundError, UpstreamError
from ..hub import UpstreamClient
from ..index import Index
from ..models import CommitMeta, Repo, RevisionInfo, ref_spelling
from ..paths import is_sha1

logger = logging.getLogger(__name__)


class Details:
    """Asks upstream for ref kinds (one ``/refs`` request per repo per run at most, remembered for the
    run) and for commit metadata (one ``/commits`` request per commit the index knows nothing about)."""

    def __init__(self, client: UpstreamClient, index: Index) -> None:
        self.client, self.index = client, index
        self._kinds: dict[tuple[str, str], dict[str, str]] = {}

    def new_run(self) -> None:
        self._kinds = {}

    # -- refs ------------------------------------------------------------------------------------
    def ref_kind(self, repo_type: str, name: str, ref: str, commit: str) -> str | None:
        """The kind to record for a bare ref name about to point at ``commit``: asked upstream only when
        the ref moves (or is new) or its kind is not known yet; None keeps what the index has."""
        repo = self.index.find_repo(repo_type, name)
        current = next((r for r in self.index.refs(repo) if r.name == ref), None) if repo is not None else None
        if current is not None and current.commit == commit and current.kind is not None:
            return None
        key = (repo_type, name)
        kinds = self._kinds.get(key)
        if kinds is None:
            try:
                # A bare name is a branch or a tag (PR refs are spelled refs/pr/N): no pull requests.
                kinds = self.client.ref_kinds(repo_type, name)
            except UpstreamError as exc:
                _log_failure(f"the refs of {repo_type} {name}", "ref kinds stay unknown", exc)
                kinds = {}
            self._kinds[key] = kinds
        kind = kinds.get(ref)
        if kind is None and kinds:
            logger.debug("%s %s: upstream does not list a ref named %r; its kind stays unknown", repo_type, name, ref)
        return kind

    # -- commits ---------------------------------------------------------------------------------
    def new_commit_meta(
        self, repo_type: str, name: str, revision: str, commit: str, asked: RevisionInfo | None
    ) -> CommitMeta | None:
        """What to record about a commit sync is about to publish: upstream's title, message, authors and
        date (one request, only when the index has no title for it), else the date of the revision
        answer (``asked``); as parent, the mirrored commit the ref pointed at until now."""
        repo = self.index.find_repo(repo_type, name)
        known = self.index.commit_meta(repo, commit) if repo is not None else None
        listed = None
        if known is None or known.title is None:
            listed = self._listed_meta(repo_type, name, commit)
        parent = self._previous(repo, repo_type, revision, commit) if repo is not None else None
        date = (listed.date if listed else None) or (asked.last_modified if asked else None)
        if listed is None:
            return CommitMeta(parent=parent, date=date) if parent or date else None
        return CommitMeta(parent, listed.title, listed.message, listed.authors, date)

    def date_to_backfill(
        self, repo_type: str, name: str, commit: str, asked: RevisionInfo | None
    ) -> tuple[Repo, str, CommitMeta] | None:
        """(repo, commit, meta) to record for a mirrored commit whose date the index lacks and the revision
        answer just gave (no request), else None."""
        if asked is None or asked.last_modified is None:
            return None
        repo = self.index.find_repo(repo_type, name)
        known = self.index.commit_meta(repo, commit) if repo is not None else None
        if repo is None or known is None or known.date is not None:
            return None
        return repo, commit, CommitMeta(date=asked.last_modified)

    def _previous(self, repo: Repo, repo_type: str, revision: str, commit: str) -> str | None:
        if is_sha1(revision):
            return None
        before = self.index.ref(repo, ref_spelling(revision)[0])
        if before is None or before == commit or not self.index.commit_complete(repo_type, repo.name, before):
            return None
        return before

    def _listed_meta(self, repo_type: str, name: str, sha: str) -> CommitMeta | None:
        try:
            meta = self.client.commit_meta(repo_type, name, sha)
        except UpstreamError as exc:
            _log_failure(f"commit {sha[:12]} of {repo_type} {name}", "its title and authors stay unknown", exc)
            return None
        if meta is None:
            logger.debug("%s %s: upstream's commit listing does not show %s", repo_type, name, sha[:12])
        return meta


def _log_failure(what: str, outcome: str, exc: UpstreamError) -> None:
    # A hub without the endpoint (404) is not news on every run; anything else may be worth a look.
    level = logging.DEBUG if isinstance(exc, RepoNotFoundError) else logging.WARNING
    logger.log(level, "could not read %s (%s); %s", what, exc, outcome)
