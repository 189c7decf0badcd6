"""Repos, blobs, commits and refs: the core of the index (portable SQL over the backend's connection)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from ..models import Access, BlobRecord, CommitMeta, CommitRecord, FileRecord, Ref, Repo, TreeEntry
from ._base import Queries, inserted_id, utcnow

_REPO_COLUMNS = "id, type, name, private, gated, created_at"
_META_COLUMNS = "parent, title, message, authors_json, committed_at"
# For display: a commit mirrored before dates were kept is dated when it was mirrored.
_META_SHOWN = "c.parent, c.title, c.message, c.authors_json, COALESCE(c.committed_at, c.recorded_at)"
# The key of each table whose rows follow a repo when an old name of it turns out to be an alias.
_REPO_ROW_KEYS = {
    "commits": ("sha",),
    "commit_filters": ("sha", "filter_key"),
    "files": ("commit_sha", "path"),
    "refs": ("name",),
    "listings": ("commit_sha",),
}


def _repo(row: Sequence[Any]) -> Repo:
    return Repo(row[0], row[1], row[2], bool(row[3]), row[4] or None, row[5])


def _meta(row: Sequence[Any]) -> CommitMeta:
    authors = tuple(a for a in json.loads(row[3]) if isinstance(a, str)) if row[3] else ()
    return CommitMeta(row[0], row[1], row[2], authors, row[4])


def _meta_values(meta: CommitMeta | None) -> tuple[Any, ...]:
    if meta is None:
        return (None, None, None, None, None)
    authors = json.dumps(list(meta.authors)) if meta.authors else None
    return (meta.parent, meta.title, meta.message, authors, meta.date)


class RepoQueries(Queries):
    # -- repos -----------------------------------------------------------------------------------
    def find_repo(self, repo_type: str, name: str) -> Repo | None:
        """The repo by canonical name or alias, or None."""
        rows = self._rows(
            f"SELECT {_REPO_COLUMNS} FROM repos WHERE type = ? AND name = ? "
            "UNION ALL SELECT r.id, r.type, r.name, r.private, r.gated, r.created_at FROM aliases a JOIN repos r "
            "ON r.id = a.repo_id WHERE a.type = ? AND a.alias = ? LIMIT 1",
            (repo_type, name, repo_type, name),
        )
        return _repo(rows[0]) if rows else None

    def list_repos(self, repo_type: str | None = None) -> list[Repo]:
        sql = f"SELECT {_REPO_COLUMNS} FROM repos"
        params: tuple[Any, ...] = ()
        if repo_type:
            sql, params = sql + " WHERE type = ?", (repo_type,)
        return [_repo(r) for r in self._rows(sql + " ORDER BY type, name", params)]

    def aliases(self, repo: Repo) -> list[str]:
        return [r[0] for r in self._rows("SELECT alias FROM aliases WHERE repo_id = ? ORDER BY alias", (repo.id,))]

    def _ensure_repo(self, repo_type: str, name: str, access: Access | None) -> int:
        """The repo's id, creating it if needed; ``access`` (when given) replaces its flags."""
        rows = self._rows("SELECT id FROM repos WHERE type = ? AND name = ?", (repo_type, name))
        if rows:
            if access is not None:
                self.conn.execute(
                    "UPDATE repos SET private = ?, gated = ? WHERE id = ?",
                    (int(access.private), access.gated, rows[0][0]),
                )
            return int(rows[0][0])
        # A repo renamed back and forth: the new canonical name must not also be an alias.
        self.conn.execute("DELETE FROM aliases WHERE type = ? AND alias = ?", (repo_type, name))
        access = access or Access()
        return inserted_id(
            self.conn,
            "INSERT INTO repos (type, name, private, gated, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (repo_type, name, int(access.private), access.gated, utcnow()),
        )

    def set_access(self, repo_type: str, name: str, access: Access) -> bool:
        """Replace the private/gated flags of a repo the index has; returns True if they changed."""
        with self.atomic():
            repo = self.find_repo(repo_type, name)
            if repo is None or (repo.private, repo.gated) == (access.private, access.gated):
                return False
            self._ensure_repo(repo_type, repo.name, access)
            return True

    def add_alias(self, repo_type: str, alias: str, canonical: str) -> None:
        """Record that ``alias`` (a listed or old name) means the repo now called ``canonical``.

        If ``alias`` was itself a mirrored repo (mirrored before the rename), its commits and refs move
        to the canonical repo, so nothing mirrored under the old name is lost."""
        with self.atomic():
            target = self._ensure_repo(repo_type, canonical, None)
            old = self._rows("SELECT id FROM repos WHERE type = ? AND name = ?", (repo_type, alias))
            if old and old[0][0] != target:
                old_id = old[0][0]
                for table, key in _REPO_ROW_KEYS.items():
                    # Rows move unless the canonical repo has the same one already (then the old copy goes).
                    same = " AND ".join(f"o.{column} = {table}.{column}" for column in key)
                    self.conn.execute(
                        f"UPDATE {table} SET repo_id = ? WHERE repo_id = ? "
                        f"AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.repo_id = ? AND {same})",
                        (target, old_id, target),
                    )
                    self.conn.execute(f"DELETE FROM {table} WHERE repo_id = ?", (old_id,))
                self.conn.execute("UPDATE aliases SET repo_id = ? WHERE repo_id = ?", (target, old_id))
                self.conn.execute("DELETE FROM repos WHERE id = ?", (old_id,))
            self.conn.execute(
                "INSERT INTO aliases (type, alias, repo_id) VALUES (?, ?, ?) "
                "ON CONFLICT (type, alias) DO UPDATE SET repo_id = excluded.repo_id",
                (repo_type, alias, target),
            )

    # -- blobs -----------------------------------------------------------------------------------
    def sha256_for_git_sha1(self, git_sha1: str) -> str | None:
        rows = self._rows("SELECT sha256 FROM blobs WHERE git_sha1 = ? LIMIT 1", (git_sha1,))
        return rows[0][0] if rows else None

    def sha256s_for_git_sha1s(self, git_sha1s: Sequence[str]) -> dict[str, str]:
        """git sha1 → sha256 for the ones the index knows, in a few queries whatever the count."""
        unique = list(dict.fromkeys(git_sha1s))
        return dict(self._each("SELECT git_sha1, sha256 FROM blobs WHERE git_sha1 IN ({marks})", unique))

    def has_blob(self, sha256: str) -> bool:
        return bool(self._rows("SELECT 1 FROM blobs WHERE sha256 = ?", (sha256,)))

    def add_blobs(self, blobs: Iterable[BlobRecord]) -> None:
        """Record durable blobs that no commit names yet (a failed revision's downloads), for dedupe."""
        with self.atomic():
            self._upsert_blobs(blobs)

    def _upsert_blobs(self, blobs: Iterable[BlobRecord]) -> None:
        now = utcnow()  # (once: formatting a date per row cost more than the insert)
        self.conn.executemany(
            "INSERT INTO blobs (sha256, size, git_sha1, verified_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (sha256) DO UPDATE SET git_sha1 = COALESCE(blobs.git_sha1, excluded.git_sha1)",
            [(b.sha256, b.size, b.git_sha1, now) for b in blobs],
        )

    # -- commits ---------------------------------------------------------------------------------
    def commit_complete(self, repo_type: str, name: str, sha: str, filter_key: str | None = None) -> bool:
        """True when the commit is fully mirrored (for ``filter_key``'s patterns, when given)."""
        repo = self.find_repo(repo_type, name)
        if repo is None:
            return False
        if filter_key is None:
            return bool(
                self._rows("SELECT 1 FROM commits WHERE repo_id = ? AND sha = ? AND complete = 1", (repo.id, sha))
            )
        return bool(
            self._rows(
                "SELECT 1 FROM commits c JOIN commit_filters f ON f.repo_id = c.repo_id AND f.sha = c.sha "
                "WHERE c.repo_id = ? AND c.sha = ? AND c.complete = 1 AND f.filter_key = ?",
                (repo.id, sha, filter_key),
            )
        )

    def publish_commit(
        self,
        repo_type: str,
        name: str,
        sha: str,
        files: Iterable[FileRecord],
        blobs: Iterable[BlobRecord],
        *,
        source: str,
        filter_key: str | None = None,
        access: Access | None = None,
        card: str | None = None,
        meta: CommitMeta | None = None,
        repo_created_at: str | None = None,
        listing: Sequence[TreeEntry] | None = None,
    ) -> None:
        """Record a commit's blobs and files and mark it complete, in one transaction.

        The caller has made every blob durable first. Files add to what the commit already had (a
        second pattern set widens a snapshot; nothing is removed). ``access`` sets the repo's flags in
        the same transaction, so a new private repo is never visible without them. ``meta`` fills what
        the commit says about itself where the index does not know it yet; ``repo_created_at`` is when
        upstream created the repo. ``listing`` (pull-through) is upstream's whole file list of the commit,
        of which ``files`` are the ones fetched."""
        now = utcnow()
        with self.atomic():
            repo_id = self._ensure_repo(repo_type, name, access)
            if repo_created_at:
                self.conn.execute("UPDATE repos SET created_at = ? WHERE id = ?", (repo_created_at, repo_id))
            self._upsert_blobs(blobs)
            self.conn.executemany(
                "INSERT INTO files (repo_id, commit_sha, path, size, sha256, git_oid, lfs) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo_id, commit_sha, path) DO UPDATE SET "
                "size = excluded.size, sha256 = excluded.sha256, git_oid = excluded.git_oid, lfs = excluded.lfs",
                [(repo_id, sha, f.path, f.size, f.sha256, f.git_oid, int(f.lfs)) for f in files],
            )
            self.conn.execute(
                "INSERT INTO commits (repo_id, sha, complete, source, recorded_at, card_json, "
                f"{_META_COLUMNS}) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (repo_id, sha) DO UPDATE SET complete = 1, "
                "card_json = COALESCE(excluded.card_json, commits.card_json), "
                "parent = COALESCE(commits.parent, excluded.parent), "
                "title = COALESCE(commits.title, excluded.title), "
                "message = COALESCE(commits.message, excluded.message), "
                "authors_json = COALESCE(commits.authors_json, excluded.authors_json), "
                "committed_at = COALESCE(commits.committed_at, excluded.committed_at)",
                (repo_id, sha, source, now, card, *_meta_values(meta)),
            )
            if filter_key is not None:
                self.conn.execute(
                    "INSERT INTO commit_filters (repo_id, sha, filter_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (repo_id, sha, filter_key),
                )
            if listing is not None:
                self.conn.execute(
                    "INSERT INTO listings (repo_id, commit_sha, entries_json) VALUES (?, ?, ?) "
                    "ON CONFLICT (repo_id, commit_sha) DO NOTHING",
                    (repo_id, sha, json.dumps([[e.path, e.size, e.oid, e.lfs_sha256] for e in listing])),
                )

    def listing(self, repo: Repo, sha: str) -> list[TreeEntry] | None:
        """Upstream's whole file list of a pulled commit; None for a commit that was not pulled."""
        rows = self._rows("SELECT entries_json FROM listings WHERE repo_id = ? AND commit_sha = ?", (repo.id, sha))
        if not rows:
            return None
        return [TreeEntry(path, size, oid, lfs) for path, size, oid, lfs in json.loads(rows[0][0])]

    def pulled_bytes(self) -> int:
        """The bytes of the distinct blobs that pulled commits name (serve.pull_through.max_total_size)."""
        rows = self._rows(
            "SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b WHERE b.sha256 IN "
            "(SELECT f.sha256 FROM files f JOIN commits c ON c.repo_id = f.repo_id AND c.sha = f.commit_sha "
            "WHERE c.source = 'pull')"
        )
        return int(rows[0][0])

    def set_commit_meta(self, repo: Repo, sha: str, meta: CommitMeta) -> None:
        """Replace what the index knows about a commit with ``meta`` where ``meta`` knows something."""
        with self.atomic():
            self.conn.execute(
                "UPDATE commits SET parent = COALESCE(?, parent), title = COALESCE(?, title), "
                "message = COALESCE(?, message), authors_json = COALESCE(?, authors_json), "
                "committed_at = COALESCE(?, committed_at) WHERE repo_id = ? AND sha = ?",
                (*_meta_values(meta), repo.id, sha),
            )

    def commit_meta(self, repo: Repo, sha: str, *, shown: bool = False) -> CommitMeta | None:
        """What the commit says about itself, or None for a commit the index does not have. ``shown``: for
        display, a commit whose date is not known is dated when it was recorded here."""
        columns = _META_SHOWN if shown else ", ".join(f"c.{col}" for col in _META_COLUMNS.split(", "))
        rows = self._rows(f"SELECT {columns} FROM commits c WHERE c.repo_id = ? AND c.sha = ?", (repo.id, sha))
        return _meta(rows[0]) if rows else None

    def history(self, repo: Repo, head: str, limit: int) -> list[tuple[str, CommitMeta]]:
        """``head`` and its ancestors the index has, newest first, at most ``limit`` (one recursive query);
        dated for display, as ``commit_meta(shown=True)``."""
        rows = self._rows(
            # The chain starts from the head's row (not from the bare parameter), so both of its terms are
            # columns of one type and collation, which PostgreSQL requires of a recursive query.
            "WITH RECURSIVE chain (sha, depth) AS (SELECT sha, 0 FROM commits WHERE repo_id = ? AND sha = ? "
            "UNION ALL "
            "SELECT c.parent, chain.depth + 1 FROM chain JOIN commits c ON c.repo_id = ? AND c.sha = chain.sha "
            "WHERE c.parent IS NOT NULL AND chain.depth < ?) "
            f"SELECT c.sha, {_META_SHOWN} FROM chain "
            "JOIN commits c ON c.repo_id = ? AND c.sha = chain.sha ORDER BY chain.depth",
            (repo.id, head, repo.id, limit, repo.id),
        )
        return [(r[0], _meta(r[1:])) for r in rows[:limit]]

    def files(self, repo: Repo, sha: str) -> list[FileRecord]:
        return [
            FileRecord(r[0], r[1], r[2], r[3], bool(r[4]))
            for r in self._rows(
                "SELECT path, size, sha256, git_oid, lfs FROM files WHERE repo_id = ? AND commit_sha = ? ORDER BY path",
                (repo.id, sha),
            )
        ]

    def file_count(self, repo: Repo, sha: str) -> int:
        """How many files a commit has (an unchanged sync reports it without reading 10k rows)."""
        return int(self._rows("SELECT COUNT(*) FROM files WHERE repo_id = ? AND commit_sha = ?", (repo.id, sha))[0][0])

    def commits(self, repo: Repo) -> list[CommitRecord]:
        return [
            CommitRecord(r[0], r[1], r[2], r[3], r[4] or 0)
            for r in self._rows(
                # SUM of a BIGINT is NUMERIC on PostgreSQL: cast back to an integer.
                "SELECT c.sha, c.recorded_at, c.source, COUNT(f.path), CAST(SUM(f.size) AS BIGINT) FROM commits c "
                "LEFT JOIN files f ON f.repo_id = c.repo_id AND f.commit_sha = c.sha "
                "WHERE c.repo_id = ? AND c.complete = 1 GROUP BY c.repo_id, c.sha ORDER BY c.recorded_at, c.sha",
                (repo.id,),
            )
        ]

    # -- refs ------------------------------------------------------------------------------------
    def set_ref(
        self, repo_type: str, name: str, ref: str, sha: str, *, kind: str | None = None, at: str | None = None
    ) -> bool:
        """Point ``ref`` at a complete commit; returns True if it moved. Refs move last.

        ``kind`` (branch | tag | pr) is kept when not given; ``at`` is when the ref moved where it was
        decided (an imported ref keeps its source's time), default now. Every position is kept in
        ``ref_history`` (gc's retention counts on it)."""
        repo = self.find_repo(repo_type, name)
        if repo is None:
            raise KeyError(f"{repo_type} {name} is not in the index")
        when = at or utcnow()
        with self.atomic():
            current = self._rows("SELECT commit_sha, kind FROM refs WHERE repo_id = ? AND name = ?", (repo.id, ref))
            if current and current[0][0] == sha:
                if kind is not None and current[0][1] != kind:
                    self.conn.execute("UPDATE refs SET kind = ? WHERE repo_id = ? AND name = ?", (kind, repo.id, ref))
                return False
            kept_kind = kind if kind is not None else (current[0][1] if current else None)
            self.conn.execute(
                "INSERT INTO refs (repo_id, name, commit_sha, updated_at, kind) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (repo_id, name) DO UPDATE SET commit_sha = excluded.commit_sha, "
                "updated_at = excluded.updated_at, kind = excluded.kind",
                (repo.id, ref, sha, when, kept_kind),
            )
            self.conn.execute(
                "INSERT INTO ref_history (repo_id, name, commit_sha, moved_at) VALUES (?, ?, ?, ?)",
                (repo.id, ref, sha, when),
            )
            return True

    def delete_ref(self, repo: Repo, ref: str) -> bool:
        """Remove a ref; its positions stay in ``ref_history`` (gc's retention). True if it existed."""
        with self.atomic():
            cursor = self.conn.execute("DELETE FROM refs WHERE repo_id = ? AND name = ?", (repo.id, ref))
            return bool(cursor.rowcount)

    def ref(self, repo: Repo, name: str) -> str | None:
        rows = self._rows("SELECT commit_sha FROM refs WHERE repo_id = ? AND name = ?", (repo.id, name))
        return rows[0][0] if rows else None

    def repos_using_blob(self, sha256: str, limit: int = 100) -> list[Repo]:
        return [
            _repo(r)
            for r in self._rows(
                "SELECT DISTINCT r.id, r.type, r.name, r.private, r.gated, r.created_at FROM files f "
                "JOIN repos r ON r.id = f.repo_id WHERE f.sha256 = ? LIMIT ?",
                (sha256, limit),
            )
        ]

    def record_upload(self, sha256: str, caller: str) -> None:
        with self.atomic():
            self.conn.execute(
                "INSERT INTO lfs_uploads (sha256, caller, uploaded_at) VALUES (?, ?, ?) "
                "ON CONFLICT (sha256, caller) DO UPDATE SET uploaded_at = excluded.uploaded_at",
                (sha256, caller, utcnow()),
            )

    def uploaded_by(self, sha256: str, caller: str) -> bool:
        return bool(self._rows("SELECT 1 FROM lfs_uploads WHERE sha256 = ? AND caller = ?", (sha256, caller)))

    def is_local(self, repo: Repo) -> bool:
        """True for a repo created by a push to this store (its commits come from pushes, not from a mirror)."""
        return bool(self._rows("SELECT 1 FROM commits WHERE repo_id = ? AND source = 'push' LIMIT 1", (repo.id,)))

    def card(self, repo: Repo, sha: str) -> str | None:
        """The commit's model-card JSON ('' when it has none), or None when it was never parsed."""
        rows = self._rows("SELECT card_json FROM commits WHERE repo_id = ? AND sha = ?", (repo.id, sha))
        return rows[0][0] if rows else None

    def set_card(self, repo: Repo, sha: str, card: str) -> None:
        with self.atomic():
            self.conn.execute("UPDATE commits SET card_json = ? WHERE repo_id = ? AND sha = ?", (card, repo.id, sha))

    def commit_shas(self, repo: Repo) -> list[str]:
        return [r[0] for r in self._rows("SELECT sha FROM commits WHERE repo_id = ? AND complete = 1", (repo.id,))]

    def create_repo(self, repo_type: str, name: str, private: bool) -> bool:
        """Create an empty repo; returns False if it (or an alias of that name) exists."""
        with self.atomic():
            if self.find_repo(repo_type, name) is not None:
                return False
            self._ensure_repo(repo_type, name, Access(private))
            return True

    def rename_repo(self, repo: Repo, new_name: str) -> bool:
        """Give the repo a new canonical name; the old one stays an alias (it keeps resolving). False when
        the new name is taken (by a repo or an alias)."""
        with self.atomic():
            if self.find_repo(repo.type, new_name) is not None:
                return False
            self.conn.execute("UPDATE repos SET name = ? WHERE id = ?", (new_name, repo.id))
            self.conn.execute(
                "INSERT INTO aliases (type, alias, repo_id) VALUES (?, ?, ?) "
                "ON CONFLICT (type, alias) DO UPDATE SET repo_id = excluded.repo_id",
                (repo.type, repo.name, repo.id),
            )
            return True

    def delete_repo(self, repo: Repo) -> None:
        """Forget a repo: its commits, files, refs, aliases and discussions (its blobs stay for gc)."""
        with self.atomic():
            for table in (
                "files",
                "commit_filters",
                "listings",
                "commits",
                "refs",
                "ref_history",
                "aliases",
                "discussions",
                "discussion_events",
            ):
                self.conn.execute(f"DELETE FROM {table} WHERE repo_id = ?", (repo.id,))
            self.conn.execute("DELETE FROM repos WHERE id = ?", (repo.id,))

    def refs(self, repo: Repo) -> list[Ref]:
        return [
            Ref(r[0], r[1], r[2], r[3])
            for r in self._rows(
                "SELECT name, commit_sha, updated_at, kind FROM refs WHERE repo_id = ? ORDER BY name", (repo.id,)
            )
        ]
