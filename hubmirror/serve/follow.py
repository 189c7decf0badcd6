"""Serving a file while pull-through fetches it: clients read the bytes as they reach the store's temp file,
and the last byte only once the whole file verified.

The last byte is released as soon as the whole content verified (before the store's fsync: durability is
the store's business, correctness the client's). So a client never holds a complete-looking file whose
bytes did not verify: on a mismatch (or when the
fetch has to start over) the response ends short of its Content-Length and the connection is closed,
which every HTTP client reports as a broken transfer. A reader keeps its own descriptor of the temp
file, so the rename into the store (or its removal after an upload to object storage) does not disturb it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..store import BlobWriter

READ_CHUNK = 1024 * 1024


class Follow:
    """One fetch's progress, shared by its readers: written by the fetch's thread, awaited on the event loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._path: str | None = None
        self._available = 0  # bytes of the temp file readers may see
        self._state = "fetching"  # → "verified" or "failed"

    # -- the fetch's side ------------------------------------------------------------------------
    def wrap(self, writer: BlobWriter) -> _Tee:
        """The sink the download writes through (called once per writer)."""
        with self._lock:
            if self._path is not None:
                self._state = "failed"  # a second writer: the first one's bytes did not verify
            self._path, self._available = os.fspath(writer.tmp_path), writer.offset
            self._changed()
        return _Tee(writer, self)

    def _advance(self, offset: int) -> None:
        with self._lock:
            self._available = offset
            self._changed()

    def end(self, verified: bool) -> None:
        with self._lock:
            if self._state == "fetching":
                self._state = "verified" if verified else "failed"
            self._changed()

    def broken(self) -> None:
        """The fetch starts over from byte 0: what readers got may not be the file's beginning."""
        self.end(False)

    def _changed(self) -> None:
        """Wake every waiting reader (called with the lock held)."""
        for loop, event in self._waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that reader's event loop is gone (server shutting down)
                pass
        self._waiters.clear()

    # -- the readers' side (on the event loop) ------------------------------------------------------
    async def _until(self, ready: Callable[[], bool]) -> None:
        while True:
            with self._lock:
                if ready():
                    return
                event = asyncio.Event()
                self._waiters.append((asyncio.get_running_loop(), event))
            await event.wait()

    async def open(self) -> int | None:
        """A descriptor of the temp file once bytes arrive; None when there is nothing to follow (the blob
        was stored already, or the fetch failed, or it is in the store already): then the caller waits for
        the fetch and serves the stored file."""
        await self._until(lambda: self._path is not None or self._state != "fetching")
        with self._lock:
            path = self._path if self._state != "failed" else None
        if path is None:
            return None
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # renamed into the store meanwhile: serve it from there
            return None

    def _allowed(self) -> int:
        # Until the whole file verified, the last byte is held back: no client can complete a wrong file.
        return self._available if self._state == "verified" else min(self._available, self.size - 1)

    async def read(self, fd: int, offset: int) -> bytes | None:
        """The next bytes from ``offset``; None when the fetch failed (the response must end short). The
        bytes were just written: a read from the page cache, short enough for the event loop."""
        await self._until(lambda: self._state == "failed" or self._allowed() > offset)
        with self._lock:
            if self._state == "failed":
                return None
            allowed = self._allowed()
        return os.pread(fd, min(allowed - offset, READ_CHUNK), offset)


class _Tee:
    """The writer as the download sees it, telling the follow after every chunk."""

    def __init__(self, writer: BlobWriter, follow: Follow) -> None:
        self.writer, self.follow = writer, follow
        self.offset = writer.offset

    @property
    def expected_size(self) -> int | None:
        return self.writer.expected_size

    def write(self, chunk: bytes) -> None:
        self.writer.write(chunk)
        self.writer.flush()
        self.offset = self.writer.offset
        self.follow._advance(self.offset)
        if self.offset == self.follow.size and self.writer.problem() is None:
            # Every byte is here and verified: readers may finish while the store makes it durable.
            self.follow.end(True)

    def restart(self) -> None:
        self.follow.broken()
        self.writer.restart()
        self.offset = self.writer.offset


class FollowResponse(Response):
    """A 200 whose body comes from a :class:`Follow` (``fd`` is closed when done)."""

    def __init__(self, follow: Follow, fd: int, headers: dict[str, str], media_type: str) -> None:
        super().__init__(headers={**headers, "Content-Length": str(follow.size)}, media_type=media_type)
        self.follow, self.fd = follow, fd

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            offset = 0
            while offset < self.follow.size:
                chunk = await self.follow.read(self.fd, offset)
                if not chunk:
                    return  # ends short of Content-Length: the server closes the connection
                offset += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": offset < self.follow.size})
        finally:
            os.close(self.fd)
