"""What verify, gc and remove need: every commit with its refs and their history, blob users, and the
deletions (only gc and remove delete, each in one transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..models import Repo
from ._base import Queries, utcnow
from ._records import BlobUse, CommitInfo


class UpkeepQueries(Queries):
    def commit_infos(self, repo: Repo) -> list[CommitInfo]:
        """Every commit of a repo (complete or not) with its source and when it was recorded."""
        return [
            CommitInfo(r[0], r[1], r[2], bool(r[3]))
            for r in self._rows(
                "SELECT sha, source, recorded_at, complete FROM commits WHERE repo_id = ? ORDER BY recorded_at, sha",
                (repo.id,),
            )
        ]

    def ref_history(self, repo: Repo) -> dict[str, list[str]]:
        """ref name → the commits it pointed at, newest first (each once)."""
        out: dict[str, list[str]] = {}
        # rowid: insertion order (SQLite's implicit column; the PostgreSQL schema names one for this table).
        for name, sha in self._rows(
            "SELECT name, commit_sha FROM ref_history WHERE repo_id = ? ORDER BY moved_at DESC, rowid DESC", (repo.id,)
        ):
            seen = out.setdefault(name, [])
            if sha not in seen:
                seen.append(sha)
        return out

    def blob_rows(self) -> dict[str, int]:
        return dict(self._rows("SELECT sha256, size FROM blobs"))

    def referenced_blobs(self) -> set[str]:
        """Every sha256 a file of any commit names."""
        return {r[0] for r in self._rows("SELECT DISTINCT sha256 FROM files")}

    def blob_uses(self, sha256s: Sequence[str], limit: int = 20) -> dict[str, list[BlobUse]]:
        """Which files (repo, commit, path) use each of these blobs, up to ``limit`` each."""
        out: dict[str, list[BlobUse]] = {}
        for sha, kind, name, commit, path in self._each(
            "SELECT f.sha256, r.type, r.name, f.commit_sha, f.path FROM files f JOIN repos r ON r.id = f.repo_id "
            "WHERE f.sha256 IN ({marks}) ORDER BY r.name, f.commit_sha, f.path",
            list(sha256s),
        ):
            uses = out.setdefault(sha, [])
            if len(uses) < limit:
                uses.append(BlobUse(kind, name, commit, path))
        return out

    def files_without_blob_rows(self) -> list[BlobUse]:
        return [
            BlobUse(*row)
            for row in self._rows(
                "SELECT r.type, r.name, f.commit_sha, f.path FROM files f JOIN repos r ON r.id = f.repo_id "
                "WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = f.sha256)"
            )
        ]

    def dangling_refs(self) -> list[tuple[str, str, str, str]]:
        """(type, repo, ref, commit) for refs that name a commit the index does not hold complete."""
        return [
            (row[0], row[1], row[2], row[3])
            for row in self._rows(
                "SELECT r.type, r.name, x.name, x.commit_sha FROM refs x JOIN repos r ON r.id = x.repo_id "
                "WHERE NOT EXISTS (SELECT 1 FROM commits c WHERE c.repo_id = x.repo_id AND c.sha = x.commit_sha "
                "AND c.complete = 1)"
            )
        ]

    def mark_verified(self, sha256s: Iterable[str]) -> None:
        now = utcnow()
        with self.atomic():
            self.conn.executemany("UPDATE blobs SET verified_at = ? WHERE sha256 = ?", [(now, s) for s in sha256s])

    # -- deleting ---------------------------------------------------------------------------------
    def drop_commits(self, repo: Repo, shas: Sequence[str], *, blobs: Sequence[str] = ()) -> None:
        """Forget commits of a repo (their files, filters and history entries) and, in the same transaction,
        the rows of ``blobs`` (whose files the caller deletes afterwards)."""
        with self.atomic():
            for table, column in (
                ("files", "commit_sha"),
                ("commit_filters", "sha"),
                ("listings", "commit_sha"),
                ("commits", "sha"),
                ("ref_history", "commit_sha"),
            ):
                for start in range(0, len(shas), 500):
                    part = list(shas[start : start + 500])
                    marks = ",".join("?" * len(part))
                    self.conn.execute(
                        f"DELETE FROM {table} WHERE repo_id = ? AND {column} IN ({marks})", [repo.id, *part]
                    )
            self.delete_blob_rows(blobs)

    def delete_blob_rows(self, sha256s: Sequence[str]) -> None:
        with self.atomic():
            self.conn.executemany("DELETE FROM blobs WHERE sha256 = ?", [(s,) for s in sha256s])

    def delete_ref(self, repo: Repo, name: str) -> bool:
        with self.atomic():
            gone = self.conn.execute("DELETE FROM refs WHERE repo_id = ? AND name = ?", (repo.id, name)).rowcount
            self.conn.execute("DELETE FROM ref_history WHERE repo_id = ? AND name = ?", (repo.id, name))
            return bool(gone)

    def delete_repo(self, repo: Repo) -> None:
        """Forget a repo: its refs, history, aliases, commits and files (blobs stay until gc)."""
        with self.atomic():
            for table in ("refs", "ref_history", "aliases", "files", "commit_filters", "listings", "commits"):
                self.conn.execute(f"DELETE FROM {table} WHERE repo_id = ?", (repo.id,))
            self.conn.execute("DELETE FROM repos WHERE id = ?", (repo.id,))
