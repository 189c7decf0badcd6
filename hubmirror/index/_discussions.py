"""Discussions and pull requests of local repos, as the Hub models them: numbered per repo (one sequence for
both), each with an event log (the opening comment, comments, status and title changes, commits to a PR)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._base import Queries, inserted_id, utcnow
from ._records import Discussion, DiscussionEvent

_COLUMNS = "num, title, author, is_pr, status, created_at, base, merge_commit"


def _discussion(row: Sequence[Any]) -> Discussion:
    return Discussion(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6], row[7])


class DiscussionQueries(Queries):
    def open_discussion(
        self, repo_id: int, title: str, author: str | None, *, is_pr: bool, base: str | None, description: str
    ) -> int:
        """A new discussion (or pull request onto branch ``base``) with its opening comment; its number."""
        now = utcnow()
        with self.atomic():
            rows = self._rows("SELECT COALESCE(MAX(num), 0) + 1 FROM discussions WHERE repo_id = ?", (repo_id,))
            num = int(rows[0][0])
            self.conn.execute(
                f"INSERT INTO discussions (repo_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, NULL)",
                (repo_id, num, title, author, int(is_pr), now, base),
            )
            self._event(repo_id, num, "comment", author, {"content": description}, now)
        return num

    def _event(self, repo_id: int, num: int, kind: str, author: str | None, data: dict[str, Any], at: str) -> int:
        return inserted_id(
            self.conn,
            "INSERT INTO discussion_events (repo_id, num, type, author, created_at, data_json) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (repo_id, num, kind, author, at, json.dumps(data)),
        )

    def add_event(self, repo_id: int, num: int, kind: str, author: str | None, data: dict[str, Any]) -> DiscussionEvent:
        """Append an event; a ``status`` or ``title`` event also changes the discussion (one transaction)."""
        now = utcnow()
        with self.atomic():
            if kind == "status-change":
                self.conn.execute(
                    "UPDATE discussions SET status = ?, merge_commit = COALESCE(?, merge_commit) "
                    "WHERE repo_id = ? AND num = ?",
                    (data["status"], data.get("mergeCommit"), repo_id, num),
                )
            elif kind == "title-change":
                self.conn.execute(
                    "UPDATE discussions SET title = ? WHERE repo_id = ? AND num = ?", (data["to"], repo_id, num)
                )
            event_id = self._event(repo_id, num, kind, author, data, now)
        return DiscussionEvent(event_id, kind, author, now, data)

    def discussion(self, repo_id: int, num: int) -> Discussion | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM discussions WHERE repo_id = ? AND num = ?", (repo_id, num))
        return _discussion(rows[0]) if rows else None

    def discussions(self, repo_id: int) -> list[Discussion]:
        """Every discussion of the repo, newest first."""
        return [
            _discussion(r)
            for r in self._rows(f"SELECT {_COLUMNS} FROM discussions WHERE repo_id = ? ORDER BY num DESC", (repo_id,))
        ]

    def discussion_events(self, repo_id: int, num: int) -> list[DiscussionEvent]:
        return [
            DiscussionEvent(r[0], r[1], r[2], r[3], json.loads(r[4]))
            for r in self._rows(
                "SELECT id, type, author, created_at, data_json FROM discussion_events "
                "WHERE repo_id = ? AND num = ? ORDER BY id",
                (repo_id, num),
            )
        ]
