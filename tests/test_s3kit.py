"""The S3 test kit (tests/s3kit.py) gives what the S3 store's tests rely on: a real HTTP endpoint that boto3
reaches with the credentials from the environment, multipart uploads with per-part SHA256 checksums,
presigned GET URLs, and a clear record of what moto does not check."""

from __future__ import annotations

import base64
import hashlib
import os

import boto3
import httpx2
import pytest
from botocore.exceptions import ClientError, FlexibleChecksumError
from s3kit import S3Bucket

MIB = 1024 * 1024


def b64sha256(data: bytes) -> str:
    """The value S3 takes and returns in ``x-amz-checksum-sha256``: the base64 of the raw digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def env_client(bucket: S3Bucket):
    """A client made the way the code under test makes one: endpoint only, credentials from the environment."""
    return boto3.client("s3", endpoint_url=bucket.endpoint_url)


def test_bucket_fixture_fields_and_put_get(s3_bucket: S3Bucket) -> None:
    assert s3_bucket.url == f"s3://{s3_bucket.bucket}/store"
    assert s3_bucket.endpoint_url.startswith("http://127.0.0.1:")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    s3 = env_client(s3_bucket)
    assert s3.list_objects_v2(Bucket=s3_bucket.bucket)["KeyCount"] == 0  # fresh and empty

    body = os.urandom(10_000)
    s3.put_object(Bucket=s3_bucket.bucket, Key="store/blob", Body=body, ChecksumSHA256=b64sha256(body))
    assert s3.get_object(Bucket=s3_bucket.bucket, Key="store/blob")["Body"].read() == body


def test_each_test_gets_its_own_bucket(s3_server, s3_bucket: S3Bucket) -> None:
    other = s3_server.bucket()
    assert other.bucket != s3_bucket.bucket
    assert other.endpoint_url == s3_bucket.endpoint_url == s3_server.endpoint_url


def test_multipart_upload_with_per_part_sha256(s3_bucket: S3Bucket) -> None:
    s3 = env_client(s3_bucket)
    key = "store/big"
    parts = [os.urandom(5 * MIB), os.urandom(1000)]  # 5 MiB is S3's (and moto's) minimum for all but the last
    upload = s3.create_multipart_upload(Bucket=s3_bucket.bucket, Key=key, ChecksumAlgorithm="SHA256")
    assert upload["ChecksumAlgorithm"] == "SHA256"
    done = []
    for number, data in enumerate(parts, 1):
        sent = b64sha256(data)
        answer = s3.upload_part(
            Bucket=s3_bucket.bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=sent,
        )
        assert answer["ChecksumSHA256"] == sent
        done.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": sent})
    completed = s3.complete_multipart_upload(
        Bucket=s3_bucket.bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    assert completed["ETag"].endswith('-2"')

    assert s3.get_object(Bucket=s3_bucket.bucket, Key=key)["Body"].read() == b"".join(parts)
    # the object's checksum is S3's composite: sha256 of the parts' raw digests (AWS adds "-N"; moto does
    # not when no ChecksumType was asked for)
    head = s3.head_object(Bucket=s3_bucket.bucket, Key=key, ChecksumMode="ENABLED")
    composite = b64sha256(b"".join(hashlib.sha256(p).digest() for p in parts))
    assert head["ChecksumSHA256"].split("-")[0] == composite
    assert head["ContentLength"] == sum(map(len, parts))


def test_presigned_get_url_is_fetched_without_credentials(s3_bucket: S3Bucket) -> None:
    s3 = env_client(s3_bucket)
    body = os.urandom(3000)
    s3.put_object(Bucket=s3_bucket.bucket, Key="store/presigned", Body=body)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket.bucket, "Key": "store/presigned"}, ExpiresIn=60
    )
    assert url.startswith(s3_bucket.endpoint_url + "/")
    response = httpx2.get(url, timeout=30)
    assert response.status_code == 200
    assert response.content == body


def test_moto_does_not_reject_a_wrong_checksum(s3_bucket: S3Bucket) -> None:
    """AWS answers 400 BadDigest to a body whose x-amz-checksum-sha256 does not match; moto (5.x) stores the
    body and the wrong value as sent. So no test may count on the server refusing a corrupt upload: the S3
    store must check what it reads back itself (boto3 does, on a GET with ChecksumMode=ENABLED). If moto
    starts checking, this fails: then assert the error."""
    s3 = env_client(s3_bucket)
    wrong = b64sha256(b"something else")
    try:
        s3.put_object(
            Bucket=s3_bucket.bucket, Key="store/bad", Body=b"hello", ChecksumAlgorithm="SHA256", ChecksumSHA256=wrong
        )
    except ClientError as exc:  # pragma: no cover - the day moto checks
        pytest.fail(f"moto now rejects a wrong ChecksumSHA256 ({exc}): assert that instead (tests/s3kit.py docstring)")
    head = s3.head_object(Bucket=s3_bucket.bucket, Key="store/bad", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == wrong  # stored as sent, not computed
    with pytest.raises(FlexibleChecksumError, match="did not match"):
        s3.get_object(Bucket=s3_bucket.bucket, Key="store/bad", ChecksumMode="ENABLED")["Body"].read()
