"""Terminal progress for long work (rich), shown only when stderr is a terminal."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..sync import NullObserver


class SyncProgress(NullObserver):
    """One bar for overall bytes, labelled with overall files done/total; grows as plans are known."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("", total=0)
        self._lock = threading.Lock()
        self._files_done = self._files_total = 0
        self._label = ""

    def __enter__(self) -> SyncProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def _describe(self) -> str:
        return f"{self._label}  {self._files_done}/{self._files_total} files"

    def planned(self, label: str, files: int, nbytes: int) -> None:
        with self._lock:
            self._label = label
            self._files_total += files
            total = (self._progress.tasks[0].total or 0) + nbytes
            self._progress.update(self._task, total=total, description=self._describe())

    def advanced(self, nbytes: int) -> None:
        self._progress.advance(self._task, nbytes)

    def file_done(self) -> None:
        with self._lock:
            self._files_done += 1
            self._progress.update(self._task, description=self._describe())
