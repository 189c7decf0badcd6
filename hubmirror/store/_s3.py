"""The S3-compatible blob backend: one object per sha256 under ``<prefix>/blobs/sha256/ab/<sha256>``.

Only the standard S3 calls that AWS S3, MinIO and Ceph RGW all serve are used: HeadObject, GetObject (with
Range), PutObject, CreateMultipartUpload / UploadPart / CompleteMultipartUpload / AbortMultipartUpload,
ListObjectsV2, CopyObject, DeleteObject, and presigned GetObject URLs. Credentials come from boto3's standard
chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles), never from our config.

An object at a blob's key is always complete and verified: the writer checks the whole blob's sha256 before
the object can become visible. A blob up to PART_SIZE goes as one PutObject carrying that sha256 as its
``ChecksumSHA256`` (so the service checks the content against the address too); a larger one as a
multipart upload, each part with its CRC32 for the service to check the transfer, fed while the bytes arrive
(:class:`PartUpload`) and completed only after the writer verified the whole. A crash mid-upload leaves an
unfinished multipart upload (invisible; gc's sweep, or a bucket lifecycle rule, aborts it).
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions

from ..errors import StoreError
from ..paths import is_sha256
from ._interface import StoredBlob

logger = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # multipart part size (larger for blobs over 78 GiB: S3 allows 10,000 parts)
PART_THREADS = 4  # parts in flight per blob: memory is bounded by PART_SIZE x (PART_THREADS + 1)
MAX_PARTS = 10_000
UPLOAD_THREADS = 8  # blobs uploaded at once by a batch
READ_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix`` and the endpoint of an S3-compatible service (None: AWS)."""

    bucket: str
    prefix: str
    endpoint_url: str | None = None

    @classmethod
    def parse(cls, url: str, endpoint_url: str | None = None) -> S3Location:
        """Raises ValueError for anything but ``s3://bucket[/prefix]``."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("expected s3://bucket/prefix")
        prefix = parts.path.strip("/")
        if any(seg in ("", ".", "..") for seg in prefix.split("/")) and prefix:
            raise ValueError("the prefix must not have empty, '.' or '..' segments")
        return cls(parts.netloc, prefix, endpoint_url)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Blobs:
    """Blobs as objects in an S3-compatible bucket."""

    local = False

    def __init__(self, where: S3Location) -> None:
        self.where = where
        self.location = where.url
        self._config = botocore.config.Config(
            max_pool_connections=32,
            retries={"max_attempts": 5, "mode": "standard"},
            # We send our own checksums; no extra ones by default (older S3-compatible services refuse them).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            signature_version="s3v4",
        )
        self.client = self._new_client()

    def _new_client(self) -> Any:
        session = boto3.session.Session()
        return session.client(
            "s3",
            endpoint_url=self.where.endpoint_url,
            region_name=session.region_name or "us-east-1",
            config=self._config,
        )

    # -- addresses -------------------------------------------------------------------------------
    def key(self, sha256: str) -> str:
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.where.key("blobs", "sha256", sha256[:2], sha256)

    def file_path(self, sha256: str) -> Path | None:
        return None

    def file_name(self, sha256: str) -> str | None:
        return None

    def _fail(self, exc: Exception, what: str) -> StoreError:
        """One line for a failed object-store call: what, where, and the service's reason."""
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _code(exc)
            if code == "NoSuchBucket":
                return StoreError(f"the bucket '{self.where.bucket}' does not exist at {self._service()}: create it")
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                return StoreError(
                    f"the object store at {self._service()} refused {what} ({code}): check AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY and the bucket policy"
                )
            return StoreError(f"the object store at {self._service()} failed {what}: {code or exc}")
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return StoreError(
                f"no credentials for the object store {self.location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        return StoreError(f"the object store at {self._service()} is unreachable during {what}: {exc}")

    def _service(self) -> str:
        return f"{self.where.endpoint_url or 'AWS S3'} ({self.location})"

    # -- reading ---------------------------------------------------------------------------------
    def size(self, sha256: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.where.bucket, Key=self.key(sha256))
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail(exc, f"HEAD of blob {sha256}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail(exc, f"HEAD of blob {sha256}") from exc
        return int(head["ContentLength"])

    def exists(self, sha256: str) -> bool:
        return is_sha256(sha256) and self.size(sha256) is not None

    def open(self, sha256: str) -> BinaryIO:
        size = self.size(sha256)
        if size is None:
            raise FileNotFoundError(f"blob {sha256} is not in {self.location}")
        return io.BufferedReader(_RangedReader(self, sha256, size), buffer_size=READ_BUFFER)

    def get(self, sha256: str, start: int = 0, end: int | None = None) -> Any:
        """The body stream of bytes ``start``..``end`` (inclusive; None: to the end) of a stored blob."""
        byte_range = f"bytes={start}-{'' if end is None else end}"
        try:
            answer = self.client.get_object(Bucket=self.where.bucket, Key=self.key(sha256), Range=byte_range)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey"):
                raise FileNotFoundError(f"blob {sha256} is not in {self.location}") from exc
            raise self._fail(exc, f"GET of blob {sha256}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail(exc, f"GET of blob {sha256}") from exc
        return answer["Body"]

    def presigned_url(self, sha256: str, expires: int) -> str:
        """A GET URL of the blob's object, valid for ``expires`` seconds, signed with our credentials."""
        try:
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.where.bucket, "Key": self.key(sha256)}, ExpiresIn=expires
            )
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail(exc, f"signing a URL of blob {sha256}") from exc
        return url

    def iter_blobs(self) -> Iterator[StoredBlob]:
        prefix = self.where.key("blobs", "sha256") + "/"
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.where.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    rest = item["Key"][len(prefix) :].split("/")
                    if len(rest) == 2 and is_sha256(rest[1]) and rest[1][:2] == rest[0]:
                        yield StoredBlob(rest[1], int(item["Size"]), item["LastModified"].timestamp())
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._fail(exc, "listing blobs") from exc

    def has_any(self) -> bool:
        prefix = self.where.key("blobs", "sha256") + "/"
        try:
            page = self.client.list_objects_v2(Bucket=self.where.bucket, Prefix=prefix, MaxKeys=1)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._fail(exc, "listing blobs") from exc
        return bool(page.get("Contents"))

    def check(self) -> None:
        """Fail now, in one line, when the bucket is missing or refuses us (rather than at the first blob)."""
        try:
            self.client.head_bucket(Bucket=self.where.bucket)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket"):
                raise StoreError(
                    f"the bucket '{self.where.bucket}' does not exist at {self._service()}: create it"
                ) from exc
            raise self._fail(exc, "opening the bucket") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail(exc, "opening the bucket") from exc

    # -- writing ---------------------------------------------------------------------------------
    def publish(self, items: Sequence[tuple[Path, str]], *, durable: bool) -> None:
        """Upload each verified temp file, then remove it. No HEAD first: callers only publish blobs the
        index does not name (an object already there is overwritten with the same bytes). An object is
        durable once S3 answers, so ``durable`` changes nothing here."""
        if len(items) == 1:
            self._publish_one(*items[0])
            return
        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="hubmirror-s3put") as pool:
            for future in [pool.submit(self._publish_one, path, sha) for path, sha in items]:
                future.result()

    def _publish_one(self, tmp_path: Path, sha256: str) -> None:
        size = tmp_path.stat().st_size
        if size <= PART_SIZE:
            self._put(tmp_path, sha256, size)
        else:
            upload = self.upload(sha256, size)
            try:
                with tmp_path.open("rb") as source:
                    while data := source.read(upload.part_size):
                        upload.feed(data)
                upload.complete()
            except BaseException:
                upload.abort()
                raise
        tmp_path.unlink(missing_ok=True)

    def upload(self, sha256: str, size: int) -> PartUpload:
        """A multipart upload of a blob whose bytes are fed as they arrive; see :class:`PartUpload`."""
        return PartUpload(self, sha256, size)

    def begin_upload(self, sha256: str, size: int) -> PartUpload | None:
        return self.upload(sha256, size) if size > PART_SIZE else None

    def _put(self, tmp_path: Path, sha256: str, size: int) -> None:
        try:
            with tmp_path.open("rb") as body:
                self.client.put_object(
                    Bucket=self.where.bucket,
                    Key=self.key(sha256),
                    Body=body,
                    ContentLength=size,
                    ChecksumSHA256=_b64(bytes.fromhex(sha256)),  # the service checks content == address
                )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._fail(exc, f"upload of blob {sha256}") from exc

    def sweep(self, cutoff: float) -> int:
        """Abort multipart uploads under our prefix started before ``cutoff``: a writer killed mid-upload
        leaves one (invisible, but its parts take space until aborted)."""
        aborted = 0
        prefix = self.where.key("blobs") + "/"
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.where.bucket, Prefix=prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.where.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._fail(exc, "aborting unfinished uploads") from exc
        return aborted

    # -- deleting (gc and repair only) ------------------------------------------------------------
    def delete(self, sha256: str) -> None:
        try:
            self.client.delete_object(Bucket=self.where.bucket, Key=self.key(sha256))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._fail(exc, f"deleting blob {sha256}") from exc

    def quarantine(self, sha256: str, stamp: str) -> str | None:
        target = self.where.key("quarantine", f"{sha256}.{stamp}")
        if not self.exists(sha256):
            return None
        try:
            self.client.copy({"Bucket": self.where.bucket, "Key": self.key(sha256)}, self.where.bucket, target)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._fail(exc, f"moving blob {sha256} to quarantine") from exc
        self.delete(sha256)
        return f"s3://{self.where.bucket}/{target}"


class PartUpload:
    """A multipart upload fed with a blob's bytes as they arrive (a download), parts sent by PART_THREADS
    threads while more bytes come: the upload overlaps the download instead of following it.

    Nothing is visible at the blob's key until :meth:`complete`, which the writer calls only after the whole
    blob verified; :meth:`abort` (a mismatch, a failure, a stop) discards the parts. Each part carries its
    CRC32. Memory: at most PART_THREADS parts in flight plus the one filling; a feed waits for a free slot.
    """

    def __init__(self, blobs: S3Blobs, sha256: str, size: int) -> None:
        self.blobs, self.sha256 = blobs, sha256
        self.part_size = max(PART_SIZE, -(-size // MAX_PARTS))
        self._key = blobs.key(sha256)
        self._buffer = bytearray()
        self._futures: list[Future[dict[str, Any]]] = []
        self._slots = threading.BoundedSemaphore(PART_THREADS)
        self._pool = ThreadPoolExecutor(max_workers=PART_THREADS, thread_name_prefix="hubmirror-s3part")
        try:
            self._id = blobs.client.create_multipart_upload(
                Bucket=blobs.where.bucket, Key=self._key, ChecksumAlgorithm="CRC32"
            )["UploadId"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self._pool.shutdown()
            raise blobs._fail(exc, f"upload of blob {sha256}") from exc

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self.part_size:
            part = bytes(self._buffer[: self.part_size])
            del self._buffer[: self.part_size]
            self._send(part)

    def _send(self, data: bytes) -> None:
        self._slots.acquire()
        for future in self._futures:  # a failed part fails the upload now, not after the whole download
            if future.done() and future.exception() is not None:
                self._slots.release()
                future.result()
        number = len(self._futures) + 1
        self._futures.append(self._pool.submit(self._part, number, data))

    def _part(self, number: int, data: bytes) -> dict[str, Any]:
        try:
            # CRC32 per part (zlib's, about 20x cheaper than a second SHA-256 of every byte): it checks the
            # transfer; the content was checked against its address by the writer's own SHA-256.
            checksum = _b64(zlib.crc32(data).to_bytes(4, "big"))
            answer = self.blobs.client.upload_part(
                Bucket=self.blobs.where.bucket,
                Key=self._key,
                UploadId=self._id,
                PartNumber=number,
                Body=data,
                ContentLength=len(data),
                ChecksumCRC32=checksum,
            )
            return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": checksum}
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self.blobs._fail(exc, f"upload of blob {self.sha256}") from exc
        finally:
            self._slots.release()

    def complete(self) -> None:
        """Send what is left and make the object visible (only for bytes that verified)."""
        if self._buffer or not self._futures:
            self._send(bytes(self._buffer))
            self._buffer = bytearray()
        parts = [future.result() for future in self._futures]
        self._pool.shutdown()
        try:
            self.blobs.client.complete_multipart_upload(
                Bucket=self.blobs.where.bucket, Key=self._key, UploadId=self._id, MultipartUpload={"Parts": parts}
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self.blobs._fail(exc, f"upload of blob {self.sha256}") from exc

    def abort(self) -> None:
        """Discard the parts (nothing was visible); a failure here leaves them to gc's sweep."""
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True)
        try:
            self.blobs.client.abort_multipart_upload(Bucket=self.blobs.where.bucket, Key=self._key, UploadId=self._id)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            logger.warning("could not abort the unfinished upload of blob %s (gc removes it)", self.sha256)


class _RangedReader(io.RawIOBase):
    """A seekable reader of one object: reads stream from the current position; a seek reopens there
    (card and safetensors-header readers read a few KB of a multi-GB blob)."""

    def __init__(self, blobs: S3Blobs, sha256: str, size: int) -> None:
        super().__init__()
        self._blobs, self._sha256, self._size = blobs, sha256, size
        self._pos = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._pos + offset, io.SEEK_END: self._size + offset}[whence]
        if target != self._pos:
            self._drop_body()
            self._pos = max(0, target)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        if self._body is None:
            self._body = self._blobs.get(self._sha256, self._pos)
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()
