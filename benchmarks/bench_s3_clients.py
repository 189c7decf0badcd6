#!/usr/bin/env python
"""Benchmark boto3 against obstore as the client of the S3 store, on the store's work, against moto's S3
server on loopback (started with tests/s3kit.py). It informs the choice of client; obstore is not a
dependency of hubmirror: ``pip install obstore`` into the venv to run this.

Cases, each run per client in a fresh subprocess (timed inside the child around the operation only; its
CPU is the child's user+sys over the operation, its peak RSS the child's VmHWM), each client in its own bucket:

  (a) PUT N small objects (1-50 KB random, the same bytes for both), each with its SHA256 checksum:
      boto3 from a pool of 8 threads, ``ChecksumSHA256`` computed by the caller (the store knows a blob's
      sha256 anyway); obstore ``put_async`` with at most 8 in flight, ``checksum_algorithm=SHA256`` (it
      hashes each body itself: it takes no precomputed checksum).
  (b) one BIG MiB object as a multipart upload streamed from a local file, 16 MiB parts, 4 in flight:
      boto3 create_multipart_upload / upload_part with each part's ``ChecksumSHA256`` / complete (memory:
      4 parts); obstore ``put(Path, chunk_size, max_concurrency)``.
  (c) GET of that object to a file, streamed in 1 MiB chunks, sha256 while writing, checked at the end.

Then the capabilities, checked live, not asserted: per-part SHA256 (every UploadPart carries
``x-amz-checksum-sha256`` *and* CompleteMultipartUpload lists each part's checksum, which AWS requires of
an upload created with a checksum algorithm; seen through a recording proxy), presigned GET (the URL is
fetched with httpx2), S3-compatible ``endpoint_url`` (everything here ran against one).

moto is one Python process sharing the 2 cores with the client, and it verifies no checksum: wall times
are bounded by it, so read the CPU column for the client's own cost. On http endpoints both clients also
sign the payload (sha256 of every body for SigV4): on AWS over https boto3 sends UNSIGNED-PAYLOAD.

Usage: python benchmarks/bench_s3_clients.py [--small 500] [--big-mib 256] [--repeat 3] [--json]
Exit status: 0 when every run succeeded and read back what was written, 2 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import resource
import shutil
import socket
import socketserver
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import run_child, write_random_file  # noqa: E402

if TYPE_CHECKING:
    from s3kit import S3Server

# the measured children import only their client: s3kit (and with it pytest) is imported by the parent alone
REGION = "us-east-1"  # s3kit's
MIB = 1 << 20
PART = 16 * MIB
IN_FLIGHT_PARTS = 4
SMALL_WORKERS = 8
CHUNK = MIB
SEED = 20240601
CLIENTS = ("boto3", "obstore")


# ------------------------------------------------------------------------------------------- the clients
def b64sha256(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def small_objects(n: int) -> list[tuple[str, bytes]]:
    """The same N (key, 1-50 KB random body) pairs in every process (seeded)."""
    rng = random.Random(SEED)
    return [(f"store/small/{i:05d}", rng.randbytes(rng.randint(1_000, 50_000))) for i in range(n)]


def boto3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    # response checksums are checked by the caller (sha256 of the whole object); botocore's own check would
    # compare a composite multipart checksum with a full-object one
    config = Config(
        max_pool_connections=SMALL_WORKERS * 2,
        retries={"max_attempts": 3, "mode": "standard"},
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, config=config)


def obstore_store(endpoint: str, bucket: str) -> Any:
    from obstore.store import S3Store

    return S3Store(
        bucket,
        endpoint=endpoint,
        region=REGION,
        virtual_hosted_style_request=False,
        checksum_algorithm="SHA256",
        client_options={"allow_http": True},
    )


def boto3_put_small(endpoint: str, bucket: str, objects: list[tuple[str, bytes]]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    s3 = boto3_client(endpoint)

    def put(item: tuple[str, bytes]) -> None:
        key, body = item
        s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumSHA256=b64sha256(body))

    with ThreadPoolExecutor(SMALL_WORKERS) as pool:
        list(pool.map(put, objects))


def obstore_put_small(endpoint: str, bucket: str, objects: list[tuple[str, bytes]]) -> None:
    import asyncio

    import obstore

    store = obstore_store(endpoint, bucket)

    async def run() -> None:
        gate = asyncio.Semaphore(SMALL_WORKERS)  # as many requests in flight as boto3's pool

        async def put(key: str, body: bytes) -> None:
            async with gate:
                await obstore.put_async(store, key, body, use_multipart=False)

        await asyncio.gather(*(put(key, body) for key, body in objects))

    asyncio.run(run())


def boto3_put_big(endpoint: str, bucket: str, key: str, path: Path, part_size: int = PART) -> None:
    """Parts read in order from the file, at most IN_FLIGHT_PARTS of them in memory and in flight."""
    from concurrent.futures import Future, ThreadPoolExecutor

    s3 = boto3_client(endpoint)
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    upload_id = upload["UploadId"]

    def send(number: int, data: bytes) -> dict[str, Any]:
        checksum = b64sha256(data)
        answer = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
        )
        return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}

    parts: list[dict[str, Any]] = []
    pending: list[Future[dict[str, Any]]] = []
    try:
        with ThreadPoolExecutor(IN_FLIGHT_PARTS) as pool, path.open("rb") as handle:
            number = 0
            while data := handle.read(part_size):
                number += 1
                if len(pending) >= IN_FLIGHT_PARTS:
                    parts.append(pending.pop(0).result())
                pending.append(pool.submit(send, number, data))
            parts.extend(future.result() for future in pending)
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})


def obstore_put_big(endpoint: str, bucket: str, key: str, path: Path, part_size: int = PART) -> None:
    import obstore

    obstore.put(
        obstore_store(endpoint, bucket),
        key,
        path,
        use_multipart=True,
        chunk_size=part_size,
        max_concurrency=IN_FLIGHT_PARTS,
    )


def boto3_get(endpoint: str, bucket: str, key: str, out: Path) -> str:
    digest = hashlib.sha256()
    body = boto3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"]
    with out.open("wb") as handle:
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def obstore_get(endpoint: str, bucket: str, key: str, out: Path) -> str:
    import obstore

    digest = hashlib.sha256()
    result = obstore.get(obstore_store(endpoint, bucket), key)
    with out.open("wb") as handle:
        for chunk in result.stream(min_chunk_size=CHUNK):
            view = memoryview(chunk)
            digest.update(view)
            handle.write(view)
    return digest.hexdigest()


def child(args: argparse.Namespace) -> int:
    """One measured operation; prints {"seconds", "cpu", "sha256"} as JSON."""
    objects = small_objects(args.small) if args.case == "a" else []
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, started = usage.ru_utime + usage.ru_stime, time.perf_counter()
    sha = ""
    if args.case == "a":
        (boto3_put_small if args.client == "boto3" else obstore_put_small)(args.endpoint, args.bucket, objects)
    elif args.case == "b":
        (boto3_put_big if args.client == "boto3" else obstore_put_big)(
            args.endpoint, args.bucket, "store/big", Path(args.file)
        )
    else:
        sha = (boto3_get if args.client == "boto3" else obstore_get)(
            args.endpoint, args.bucket, "store/big", Path(args.file)
        )
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    print(json.dumps({"seconds": seconds, "cpu": cpu, "sha256": sha, "rss_mib": peak_rss_mib()}))
    return 0


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM): rusage's ru_maxrss would not do, Linux carries the parent's
    high-water mark into a child started with vfork+exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------------ capabilities
class RecordingProxy(socketserver.ThreadingTCPServer):
    """A TCP proxy to the S3 server that keeps every byte clients send, to see what a client puts on the wire."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sent = bytearray()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def requests(self) -> list[tuple[str, str, bytes]]:
        """(request line, headers, the bytes that follow) for each request head seen (bodies are not random
        here, so a head pattern inside a body is not expected)."""
        data = bytes(self.sent)
        found = list(re.finditer(rb"(?:PUT|POST|GET|HEAD) [^\r\n]* HTTP/1\.1\r\n(.*?)\r\n\r\n", data, re.DOTALL))
        out = []
        for n, match in enumerate(found):
            end = found[n + 1].start() if n + 1 < len(found) else len(data)
            line = match.group(0).split(b"\r\n", 1)[0].decode()
            out.append((line, match.group(1).decode(errors="replace").lower(), data[match.end() : end]))
        return out


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: RecordingProxy

    def handle(self) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.server.upstream_port))

        def back() -> None:
            while data := upstream.recv(65536):
                self.request.sendall(data)
            self.request.shutdown(socket.SHUT_WR)

        replies = threading.Thread(target=back, daemon=True)
        replies.start()
        try:
            while data := self.request.recv(65536):
                with self.server.lock:
                    self.server.sent.extend(data)
                upstream.sendall(data)
            upstream.shutdown(socket.SHUT_WR)
            replies.join(timeout=30)
        except OSError:
            pass
        finally:
            upstream.close()


def per_part_sha256(server: S3Server, client: str) -> str:
    """Whether a multipart upload by ``client`` carries each part's SHA256 on the part and in the completion."""
    bucket = server.bucket(f"probe-{client}").bucket
    proxy = RecordingProxy(server.port)
    parts = [b"p" * (5 * MIB), b"q" * 1000]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "two-parts"
        path.write_bytes(b"".join(parts))
        try:
            put_big = boto3_put_big if client == "boto3" else obstore_put_big
            put_big(proxy.endpoint, bucket, "probe", path, part_size=5 * MIB)
        finally:
            proxy.shutdown()
            proxy.server_close()
    seen = proxy.requests()
    on_parts = [head for line, head, _ in seen if "partNumber=" in line]
    completes = [body for line, _, body in seen if line.startswith("POST") and "uploadId=" in line]
    part_ok = len(on_parts) == len(parts) and all("x-amz-checksum-sha256:" in head for head in on_parts)
    complete_ok = bool(completes) and completes[-1].count(b"<ChecksumSHA256>") == len(parts)
    if part_ok and complete_ok:
        return "yes"
    if part_ok:
        return "no: sent on each part, missing from CompleteMultipartUpload (AWS rejects that)"
    return "no"


def presigned_get(server: S3Server, client: str) -> str:
    """Whether ``client`` makes a GET URL that a plain HTTP client can fetch without credentials."""
    from datetime import timedelta

    import httpx2

    bucket = server.bucket(f"sign-{client}").bucket
    body = os.urandom(2000)
    boto3_client(server.endpoint_url).put_object(Bucket=bucket, Key="signed", Body=body)
    if client == "boto3":
        url = boto3_client(server.endpoint_url).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "signed"}, ExpiresIn=300
        )
    else:
        import obstore

        url = obstore.sign(obstore_store(server.endpoint_url, bucket), "GET", "signed", timedelta(minutes=5))
    response = httpx2.get(url, timeout=30)
    return "yes" if response.status_code == 200 and response.content == body else f"no ({response.status_code})"


# ------------------------------------------------------------------------------------------------ driver
def measure(
    client: str, case: str, server: S3Server, bucket: str, args: argparse.Namespace, file: Path
) -> dict[str, Any]:
    from s3kit import aws_env

    cmd = [sys.executable, __file__, "--child", client, "--case", case, "--endpoint", server.endpoint_url]
    cmd += ["--bucket", bucket, "--small", str(args.small), "--file", str(file)]
    wall, code, out, err, _usage, _noise = run_child(cmd, env=aws_env())
    if code != 0:
        raise RuntimeError(f"{client} case ({case}) failed ({code}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the repeats for time and CPU (machine noise pushes single runs up), the highest peak RSS."""
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "best": min(r["seconds"] for r in runs),
        "cpu": statistics.median(r["cpu"] for r in runs),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "runs": len(runs),
    }


def print_table(rows: list[dict[str, Any]], capabilities: dict[str, dict[str, str]], args: argparse.Namespace) -> None:
    print(f"boto3 vs obstore against moto {_version('moto')} on loopback ({os.cpu_count()} cores shared with it)")
    print(
        f"boto3 {_version('boto3')}, obstore {_version('obstore')}; seconds of the operation in a fresh process, "
        f"median of {args.repeat} (cpu: median; RSS: highest peak)"
    )
    print()
    head = f"{'case':<44} {'boto3 s':>8} {'obstore s':>9} {'obs/boto3':>9} {'cpu boto3':>9} {'cpu obs':>8} {'RSS boto3':>9} {'RSS obs':>8}"
    print(head)
    print("-" * len(head))
    for row in rows:
        b, o = row["boto3"], row["obstore"]
        print(
            f"{row['label']:<44} {b['seconds']:>8.2f} {o['seconds']:>9.2f} {o['seconds'] / b['seconds']:>9.2f}"
            f" {b['cpu']:>9.2f} {o['cpu']:>8.2f} {b['rss_mib']:>7.0f}Mi {o['rss_mib']:>6.0f}Mi"
        )
    print()
    print(f"{'capability':<30} {'boto3':<8} obstore")
    for name, values in capabilities.items():
        print(f"{name:<30} {values['boto3']:<8} {values['obstore']}")


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "(not installed)"


def run(args: argparse.Namespace) -> int:
    try:
        import obstore  # noqa: F401
    except ImportError:
        print(
            "obstore is not installed: .venv/bin/pip install obstore (it is not a hubmirror dependency)",
            file=sys.stderr,
        )
        return 2
    from s3kit import S3Server, aws_env

    os.environ.update(aws_env())  # for the capability checks made in this process
    work = Path(tempfile.mkdtemp(prefix="bench-s3-", dir=args.tmp_dir))
    server = S3Server()
    try:
        server.start()
        big = work / "big.bin"
        big_sha = write_random_file(big, args.big_mib * MIB)
        cases = [
            ("a", f"(a) PUT {args.small} small (1-50 KB), sha256 each"),
            ("b", f"(b) PUT {args.big_mib} MiB multipart from a file"),
            ("c", f"(c) GET {args.big_mib} MiB to a file (+sha256)"),
        ]
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        s3 = boto3_client(server.endpoint_url)
        for repeat in range(args.repeat):
            # fresh buckets each time; the clients take turns going first, so neither always meets a warmer moto
            order = CLIENTS if repeat % 2 == 0 else CLIENTS[::-1]
            buckets = {client: server.bucket(client).bucket for client in CLIENTS}
            for case, _label in cases:
                for client in order:
                    got = work / f"got-{client}.bin"
                    result = measure(client, case, server, buckets[client], args, got if case == "c" else big)
                    if case == "c":
                        if result["sha256"] != big_sha:
                            raise RuntimeError(f"{client} read back bytes that differ from what was written")
                        got.unlink()
                    results.setdefault((case, client), []).append(result)
            for client in CLIENTS:
                listed = s3.list_objects_v2(Bucket=buckets[client], Prefix="store/small/")["KeyCount"]
                if listed != min(args.small, 1000):
                    raise RuntimeError(f"{client} stored {listed} small objects, not {args.small}")
                s3.delete_object(Bucket=buckets[client], Key="store/big")  # moto keeps it on disk otherwise
        rows = [
            {"case": case, "label": label, **{client: summarize(results[case, client]) for client in CLIENTS}}
            for case, label in cases
        ]
        capabilities = {
            "per-part SHA256 checksums": {c: per_part_sha256(server, c) for c in CLIENTS},
            "presigned GET URLs": {c: presigned_get(server, c) for c in CLIENTS},
            "S3-compatible endpoint_url": dict.fromkeys(CLIENTS, "yes"),  # every case above ran against moto
        }
    except (RuntimeError, OSError) as exc:
        print(f"bench_s3_clients: {exc}", file=sys.stderr)
        return 2
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps({"rows": rows, "capabilities": capabilities}, indent=2))
    else:
        print_table(rows, capabilities, args)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=500, metavar="N", help="small objects in case (a)")
    parser.add_argument("--big-mib", type=int, default=256, metavar="M", help="size of the object in (b) and (c)")
    parser.add_argument("--repeat", type=int, default=3, metavar="K", help="runs per case and client (medians)")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--tmp-dir", metavar="DIR", help="where to put the temp dir (default: system temp)")
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=("a", "b", "c"), help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.client = args.child
        return child(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
