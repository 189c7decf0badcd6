"""Reading and writing the bundle tree: a directory, a ``.tar`` file, or a tar stream on stdin/stdout (``-``).

Writers build under a temporary name and rename at the end, so a bundle at its final name is complete. The
readers never extract anything to disk and never follow a name out of the bundle: they hand out the members
the format names, each as a stream of its exact size; anything else in a tar is refused.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from ..errors import HubMirrorError, StoreError
from ..models import Readable
from ._format import MANIFEST, MAX_MANIFEST_BYTES, RECORDS, SUMS, BundleError, blob_member

COPY_BUFFER = 1024 * 1024


def is_tar(dest: str | Path) -> bool:
    return str(dest) == "-" or str(dest).endswith(".tar")


# -- writing -------------------------------------------------------------------------------------------
class BundleWriter:
    """Members in order: the manifest, the records, the sums, then the blobs."""

    def add_bytes(self, name: str, data: bytes) -> None:
        raise NotImplementedError

    def add_file(self, name: str, source: Path, size: int) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


def open_writer(dest: str | Path) -> BundleWriter:
    if str(dest) == "-":
        return _TarWriter(sys.stdout.buffer, None)
    target = Path(dest).expanduser().absolute()
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise HubMirrorError(f"{target} already exists; export to a new name (a bundle is never overwritten)")
    if not target.parent.is_dir():
        raise HubMirrorError(f"{target.parent} is not a directory; create it first")
    try:
        if is_tar(target):
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
            return _TarWriter(partial.open("xb"), (partial, target))
        return _DirWriter(target)
    except OSError as exc:
        raise StoreError(f"cannot write the bundle {target}: {exc.strerror or exc}") from exc


class _DirWriter(BundleWriter):
    def __init__(self, target: Path) -> None:
        self.target = target
        self.partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
        self.partial.mkdir()

    def _path(self, name: str) -> Path:
        path = self.partial.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add_bytes(self, name: str, data: bytes) -> None:
        self._path(name).write_bytes(data)

    def add_file(self, name: str, source: Path, size: int) -> None:
        shutil.copyfile(source, self._path(name))  # copy_file_range/sendfile where the kernel has them

    def finish(self) -> None:
        if self.target.exists():
            self.target.rmdir()  # the empty directory the user named
        os.rename(self.partial, self.target)

    def abort(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


class _TarWriter(BundleWriter):
    """A POSIX (pax) tar written straight to a file descriptor: headers from ``tarfile``, contents moved by
    the kernel (``sendfile``), so an export runs at the speed of tar(1) rather than of a Python copy loop."""

    def __init__(self, stream: BinaryIO, rename: tuple[Path, Path] | None) -> None:
        self.stream, self.rename = stream, rename
        stream.flush()
        self.fd = stream.fileno()
        self.now = int(time.time())

    def _header(self, name: str, size: int, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, mode, self.now
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def _pad(self, size: int) -> None:
        rest = size % tarfile.BLOCKSIZE
        if rest:
            self._write(b"\0" * (tarfile.BLOCKSIZE - rest))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data), 0o644)
        self._write(data)
        self._pad(len(data))

    def add_file(self, name: str, source: Path, size: int) -> None:
        self._header(name, size, 0o444)
        with source.open("rb") as handle:
            sent = 0
            while sent < size:
                try:
                    n = os.sendfile(self.fd, handle.fileno(), sent, size - sent)
                except OSError:  # a target sendfile cannot write to: copy through user space
                    handle.seek(sent)
                    n = len(chunk := handle.read(min(COPY_BUFFER, size - sent)))
                    self._write(chunk)
                if n == 0:
                    raise HubMirrorError(f"{source} shrank while it was being exported")
                sent += n
        self._pad(size)

    def finish(self) -> None:
        # Two zero blocks end a tar; the file is padded to a whole record as tar(1) does.
        # No fsync: a bundle checks itself (manifest digest, every blob's hash), so one cut short by a crash is
        # refused on import, never half-used; syncing would double the time of an export to a slow USB stick.
        self._write(b"\0" * (2 * tarfile.BLOCKSIZE))
        written = os.lseek(self.fd, 0, os.SEEK_CUR) if self.rename is not None else 0
        if written % tarfile.RECORDSIZE:
            self._write(b"\0" * (tarfile.RECORDSIZE - written % tarfile.RECORDSIZE))
        if self.rename is not None:
            self.stream.close()
            os.rename(*self.rename)

    def abort(self) -> None:
        if self.rename is not None:
            self.stream.close()
            self.rename[0].unlink(missing_ok=True)


# -- reading -------------------------------------------------------------------------------------------
class BundleReader:
    """The manifest, then the records, then the blobs (each as a stream of exactly its size, or None when
    the bundle lacks it)."""

    where: str

    def manifest(self) -> bytes:
        raise NotImplementedError

    def records(self, size: int) -> IO[bytes]:
        raise NotImplementedError

    def blobs(
        self, listed: list[tuple[str, int]], wanted: set[str] | None = None
    ) -> Iterator[tuple[str, int, Readable | None]]:
        """Each ``wanted`` blob (default: all ``listed``, the manifest's list) with a stream of it, or None
        when the bundle lacks it."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_reader(src: str | Path) -> BundleReader:
    if str(src) == "-":
        return _TarReader(sys.stdin.buffer, "standard input")
    path = Path(src).expanduser().absolute()
    if path.is_dir():
        return _DirReader(path)
    if not path.is_file():
        raise HubMirrorError(f"{path} does not exist (give a bundle directory, a .tar, or - for standard input)")
    try:
        return _TarReader(path.open("rb"), str(path))
    except OSError as exc:
        raise HubMirrorError(f"cannot read {path}: {exc.strerror or exc}") from exc


class _DirReader(BundleReader):
    def __init__(self, root: Path) -> None:
        self.root, self.where = root, str(root)

    def _regular(self, name: str) -> Path | None:
        path = self.root.joinpath(*name.split("/"))
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return None
        return path if stat.S_ISREG(mode) else None  # never a link, FIFO or device

    def manifest(self) -> bytes:
        path = self._regular(MANIFEST)
        if path is None:
            raise BundleError(f"{self.where}: no {MANIFEST}; not a bundle, or an incomplete copy of one")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{self.where}: {MANIFEST} is implausibly large")
        return path.read_bytes()

    def records(self, size: int) -> IO[bytes]:
        path = self._regular(RECORDS)
        if path is None:
            raise BundleError(f"{self.where}: {RECORDS} is missing; the bundle is incomplete")
        return path.open("rb")

    def blobs(
        self, listed: list[tuple[str, int]], wanted: set[str] | None = None
    ) -> Iterator[tuple[str, int, Readable | None]]:
        for sha256, size in listed:
            if wanted is not None and sha256 not in wanted:
                continue
            path = self._regular(blob_member(sha256))
            if path is None:
                yield sha256, size, None
                continue
            with path.open("rb") as handle:
                yield sha256, size, handle


class _TarReader(BundleReader):
    def __init__(self, stream: BinaryIO, where: str) -> None:
        self.stream, self.where = stream, where
        # A file is read in random-access mode (no copying through tarfile's stream buffer); a pipe as a stream.
        try:
            if stream.seekable():
                self.tar = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 (closed by close)
            else:
                self.tar = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 (closed by close)
        except tarfile.TarError as exc:
            raise BundleError(f"{where}: not a tar file ({exc})") from None
        self._members = iter(self.tar)

    def _next(self) -> tarfile.TarInfo | None:
        try:
            return next(self._members)
        except StopIteration:
            return None
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError(f"{self.where}: the tar is damaged or truncated ({exc})") from None

    def _expect(self, name: str, limit: int) -> tarfile.TarInfo:
        member = self._next()
        if member is None or member.name != name or not member.isfile():
            found = member.name if member is not None else "the end of the file"
            raise BundleError(
                f"{self.where}: expected {name} next in the tar, found {found!r}; the bundle is "
                "damaged or not one of ours"
            )
        if member.size > limit:
            raise BundleError(f"{self.where}: {name} is larger than its manifest allows")
        return member

    def _open(self, member: tarfile.TarInfo) -> IO[bytes]:
        handle = self.tar.extractfile(member)
        assert handle is not None  # a regular file member
        return handle

    def manifest(self) -> bytes:
        return self._open(self._expect(MANIFEST, MAX_MANIFEST_BYTES)).read()

    def records(self, size: int) -> IO[bytes]:
        data = self._open(self._expect(RECORDS, size)).read(size + 1)  # read now: a stream cannot go back
        sums = self._next()  # the sums are for people with sha256sum; the manifest says the same
        if sums is None or sums.name != SUMS:
            raise BundleError(f"{self.where}: expected {SUMS} after {RECORDS}; the bundle is damaged")
        return io.BytesIO(data)

    def blobs(
        self, listed: list[tuple[str, int]], wanted: set[str] | None = None
    ) -> Iterator[tuple[str, int, Readable | None]]:
        sizes = dict(listed)
        seen: set[str] = set()
        truncated = False
        while True:
            try:
                member = self._next()
            except BundleError:
                truncated = True
                break
            if member is None:
                break
            sha256 = member.name.rsplit("/", 1)[-1]
            if member.name != blob_member(sha256) or sha256 not in sizes or sha256 in seen or not member.isfile():
                raise BundleError(f"{self.where}: unexpected member {member.name[:120]!r} in the tar")
            seen.add(sha256)
            if wanted is None or sha256 in wanted:
                yield sha256, sizes[sha256], _Counted(self._open(member), member.size)
        for sha256, size in listed:  # what the tar never delivered (truncated)
            if sha256 not in seen and (wanted is None or sha256 in wanted):
                yield sha256, size, None
        if truncated:
            self.truncated = True

    def close(self) -> None:
        self.tar.close()
        if self.stream is not sys.stdin.buffer:
            self.stream.close()


class _Counted(io.RawIOBase):
    """A tar member's stream that turns the end of a cut-off file into a short read, not an exception."""

    def __init__(self, inner: IO[bytes], size: int) -> None:
        self.inner, self.left = inner, size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        try:
            data = self.inner.read(size if size >= 0 else self.left)
        except (tarfile.TarError, EOFError, OSError):
            return b""
        self.left -= len(data)
        return data
