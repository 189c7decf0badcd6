"""A pull request's changes: what it changed since it started, its conflicts with the base branch, its diff,
and the merge (file by file, three-way: a file changed on one side takes that side; changed on both sides
differently is a conflict, and a pull request with conflicts is not merged)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..cards import card_json
from ..index import Discussion, DiscussionEvent, utcnow
from ..models import CommitMeta, FileRecord, Repo
from ..view import HFCacheView, view_root
from . import commits
from .catalog import Catalog
from .http import HubHTTPError
from .writes import Writer

DIFF_FILE_LIMIT = 256 * 1024  # text files up to this size get a line diff; larger ones "differ"
DIFF_LIMIT = 1024 * 1024


def _same(a: FileRecord | None, b: FileRecord | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.sha256, a.git_oid) == (b.sha256, b.git_oid)


@dataclass
class PullRequest:
    start: dict[str, FileRecord]  # the base branch when the pull request started
    base: dict[str, FileRecord]  # the base branch now
    head: dict[str, FileRecord]  # the pull request's ref now
    base_commit: str
    head_commit: str
    catalog: Catalog

    @classmethod
    def load(cls, catalog: Catalog, repo: Repo, d: Discussion) -> PullRequest:
        index = catalog.index()
        head = index.ref(repo, f"refs/pr/{d.num}")
        base = index.ref(repo, d.base or "main")
        if head is None or base is None:
            raise HubHTTPError(409, f"pull request #{d.num} of {repo.name} lost its ref or its base branch")
        start = head
        commits_ = [e.data.get("oid") for e in index.discussion_events(repo.id, d.num) if e.type == "commit"]
        if commits_ and isinstance(commits_[0], str):
            meta = index.commit_meta(repo, commits_[0])
            start = (meta.parent if meta else None) or head
        return cls(
            catalog.files(repo, start), catalog.files(repo, base), catalog.files(repo, head), base, head, catalog
        )

    def changed(self) -> list[str]:
        """Paths the pull request changed (added, modified, deleted) since it started."""
        return sorted(p for p in set(self.start) | set(self.head) if not _same(self.start.get(p), self.head.get(p)))

    def conflicts(self) -> list[str]:
        return [
            p
            for p in self.changed()
            if not _same(self.start.get(p), self.base.get(p)) and not _same(self.base.get(p), self.head.get(p))
        ]

    def merged_files(self) -> list[FileRecord]:
        files = dict(self.base)
        for path in self.changed():
            record = self.head.get(path)
            if record is None:
                files.pop(path, None)
            else:
                files[path] = record
        return sorted(files.values(), key=lambda f: f.path)

    def diff(self) -> str:
        """A git-style diff of the pull request's changes (line diffs for small text files)."""
        out: list[str] = []
        size = 0
        for path in self.changed():
            old, new = self.start.get(path), self.head.get(path)
            part = [f"diff --git a/{path} b/{path}\n"]
            if old is None:
                part.append("new file\n")
            elif new is None:
                part.append("deleted file\n")
            old_text, new_text = self._text(old), self._text(new)
            if old_text is None or new_text is None:
                part.append(f"Binary files a/{path} and b/{path} differ\n")
            else:
                lines = difflib.unified_diff(
                    old_text.splitlines(keepends=True), new_text.splitlines(keepends=True), f"a/{path}", f"b/{path}"
                )
                part.extend(line if line.endswith("\n") else line + "\n" for line in lines)
            chunk = "".join(part)
            size += len(chunk)
            if size > DIFF_LIMIT:
                out.append("... (diff truncated)\n")
                break
            out.append(chunk)
        return "".join(out)

    def _text(self, record: FileRecord | None) -> str | None:
        if record is None:
            return ""
        if record.size > DIFF_FILE_LIMIT:
            return None
        try:
            data = self.catalog.store.read_blob(record.sha256)
            return None if b"\0" in data else data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None


def merge(
    catalog: Catalog, writer: Writer, repo: Repo, d: Discussion, author: str, comment: str | None
) -> DiscussionEvent:
    """Merge the pull request onto its base branch: one new commit, the branch moved, the pull request
    marked merged with its merge commit, in one transaction after the commit is published."""
    index, store = catalog.index(), catalog.store
    with store.gc_guard(), store.write_lock():
        pr = PullRequest.load(catalog, repo, d)
        conflicts = pr.conflicts()
        if conflicts:
            raise HubHTTPError(
                409,
                f"pull request #{d.num} conflicts with '{d.base}' in {len(conflicts)} file(s): "
                f"{', '.join(conflicts[:10])}; update the pull request and try again",
            )
        files = pr.merged_files()
        title = f"{d.title} (#{d.num})"
        sha = commits.commit_id(pr.base_commit, files, title)
        meta = CommitMeta(pr.base_commit, title, comment or "", (d.author or author,), utcnow())
        card = card_json(files, store.open_blob)
        index.publish_commit(repo.type, repo.name, sha, files, [], source="push", card=card, meta=meta)
        with index.atomic():
            index.set_ref(repo.type, repo.name, d.base or "main", sha, kind="branch")
            if comment:
                index.add_event(repo.id, d.num, "comment", author, {"content": comment})
            event = index.add_event(repo.id, d.num, "status-change", author, {"status": "merged", "mergeCommit": sha})
    writer.guard_view(lambda: HFCacheView(view_root(store.home), store, index).update(repo.type, repo.name, sha))
    return event
