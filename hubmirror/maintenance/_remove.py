"""``hubmirror remove``: forget a repo, or one revision of it. Its blobs stay until ``hubmirror gc`` (the only
deleter of content), which then frees whatever no kept commit uses."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NotMirroredError
from ..index import Index
from ..store import Store
from ..view import HFCacheView, prune_repo, remove_ref, remove_repo


@dataclass
class RemoveReport:
    type: str
    repo: str
    revision: str | None
    refs_removed: list[str]
    commits_removed: list[str]

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def remove(
    store: Store, index: Index, view: HFCacheView, name: str, repo_type: str = "model", revision: str | None = None
) -> RemoveReport:
    """Drop the repo (``revision`` None) or the revision: a ref name drops the ref, a commit sha (or a unique
    prefix) drops that commit and every ref naming it."""
    from ..resolve import Resolver  # revisions are resolved the way every lookup resolves them

    repo = index.find_repo(repo_type, name)
    if repo is None:
        raise NotMirroredError(f"{repo_type} repo '{name}' is not in this store (see 'hubmirror status')")
    with store.write_lock():
        if revision is None:
            refs = [r.name for r in index.refs(repo)]
            commits = index.commit_shas(repo)
            aliases = index.aliases(repo)
            index.delete_repo(repo)
            remove_repo(view, repo, aliases)
            return RemoveReport(repo_type, repo.name, None, refs, commits)
        if index.ref(repo, revision) is not None:
            index.delete_ref(repo, revision)
            remove_ref(view, repo, revision)
            return RemoveReport(repo_type, repo.name, revision, [revision], [])
        commit = Resolver(store.home, index, store).commit(repo, revision)
        naming = [r.name for r in index.refs(repo) if r.commit == commit]
        with index.atomic():
            for ref in naming:
                index.delete_ref(repo, ref)
            index.drop_commits(repo, [commit])
        for ref in naming:
            remove_ref(view, repo, ref)
        prune_repo(view, repo)
        return RemoveReport(repo_type, repo.name, revision, naming, [commit])
