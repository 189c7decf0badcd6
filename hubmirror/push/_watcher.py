"""Watch folders (watchdog) and decide when one has settled: quiet for ``debounce`` and two scans agree.

Owns watchdog. It only decides *when* a folder is ready; it never pushes: a ready folder is handed to a
callback (which queues a job in the outbox). Temp, partial and lock files never make a folder "changed".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from ..config import WatchSpec
from ._folderscan import is_ignored, scan_folder

logger = logging.getLogger(__name__)

CHANGE_EVENTS = {EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED}
Fingerprint = dict[str, tuple[int, int]]


def fingerprint(folder: Path) -> Fingerprint:
    stats, _ = scan_folder(folder)
    return {rel: (st.st_size, st.st_mtime_ns) for rel, st in stats.items()}


@dataclass
class _Folder:
    spec: WatchSpec
    dirty: bool = True  # start-up counts as a change: what changed while we were not running is found
    last_event: float = 0.0
    candidate: Fingerprint | None = None
    pushed: Fingerprint | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(FileSystemEventHandler):
    def __init__(self, folder: _Folder, root: Path) -> None:
        self.folder, self.root = folder, root

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGE_EVENTS:
            return
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        relevant = False
        for raw in paths:
            if not raw:
                continue
            try:
                rel = Path(str(raw)).resolve().relative_to(self.root).as_posix()
            except ValueError:
                continue
            if rel != "." and not is_ignored(rel):
                relevant = True
        if relevant:
            with self.folder.lock:
                self.folder.dirty, self.folder.last_event = True, time.monotonic()
                self.folder.candidate = None


class FolderWatcher:
    """Calls ``on_ready(spec)`` once per settled change of each watched folder."""

    def __init__(self, specs: list[WatchSpec], on_ready: Callable[[WatchSpec], None], settle: float = 1.0) -> None:
        self.folders = [_Folder(spec) for spec in specs]
        self.on_ready = on_ready
        self.settle = settle  # seconds between the two scans that must agree
        self._observer = Observer()

    def start(self) -> None:
        for folder in self.folders:
            root = folder.spec.path.resolve()
            root.mkdir(parents=True, exist_ok=True)
            self._observer.schedule(_Handler(folder, root), str(root), recursive=True)
            logger.info(
                "watching %s → %s %s@%s (debounce %.1fs)",
                root,
                folder.spec.type,
                folder.spec.repo,
                folder.spec.revision,
                folder.spec.debounce,
            )
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=10)

    def poll(self) -> None:
        """Check every folder once; cheap when nothing happened."""
        now = time.monotonic()
        for folder in self.folders:
            with folder.lock:
                if not folder.dirty or now - folder.last_event < folder.spec.debounce:
                    continue
                candidate = folder.candidate
            current = fingerprint(folder.spec.path)
            with folder.lock:
                if folder.last_event > now:  # an event arrived while we scanned
                    continue
                if candidate is None or candidate != current:
                    # first scan, or the folder is still changing: look again after `settle`
                    folder.candidate, folder.last_event = current, now - folder.spec.debounce + self.settle
                    continue
                folder.dirty, folder.candidate = False, None
            if current != folder.pushed:
                folder.pushed = current
                logger.info("%s settled (%d files); queueing a push", folder.spec.path, len(current))
                self.on_ready(folder.spec)
