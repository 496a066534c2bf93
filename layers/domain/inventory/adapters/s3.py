"""Import files in S3: stored, streamed and peeked at."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from inventory.errors import InvalidInput, TemporarilyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


@contextmanager
def _serving(uri: str) -> Iterator[None]:
    """A missing object can never be read (422); anything else S3 says may pass (retry)."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {
            "NoSuchKey",
            "404",
            "NoSuchBucket",
            "InvalidRange",
            "KeyTooLongError",
        }:
            raise InvalidInput(f"{uri} does not exist or is empty") from error
        raise TemporarilyUnavailable(f"S3 could not serve {uri}") from error
    except BotoCoreError as error:
        raise TemporarilyUnavailable(f"S3 could not serve {uri}") from error


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of s3://<bucket>/<key>. Not read as a URL: a key may hold '#', '?' or '['
    (which urlparse takes for a fragment, a query or an IPv6 host, or fails on)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key.strip("/"):
        raise InvalidInput(
            f"{uri!r} is not an s3://bucket/key address",
            details=[{"field": "body.source", "code": "invalid_source", "message": "expected s3://<bucket>/<key>"}],
        )
    return bucket, key.lstrip("/")


class S3FileStore:
    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 8}))
        return self._client

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, data: bytes) -> str:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/x-ndjson")
        except (ClientError, BotoCoreError) as error:
            raise TemporarilyUnavailable(f"S3 refused the import file ({type(error).__name__})") from error
        return self.uri(key)

    def holds(self, uri: str) -> bool:
        return split_uri(uri)[0] == self.bucket

    def open(self, uri: str) -> BinaryIO:
        bucket, key = split_uri(uri)
        with _serving(uri):
            return cast(BinaryIO, self.client.get_object(Bucket=bucket, Key=key)["Body"])

    def head(self, uri: str, size: int = 1024) -> bytes:
        bucket, key = split_uri(uri)
        with _serving(uri):
            return self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")["Body"].read()

    def metadata(self, uri: str) -> dict[str, str]:
        bucket, key = split_uri(uri)
        with _serving(uri):
            head = self.client.head_object(Bucket=bucket, Key=key)
        return {name.lower(): value for name, value in head.get("Metadata", {}).items()}
