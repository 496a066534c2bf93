"""Files in S3: import files stored, streamed and peeked at; export files written once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from inventory.errors import InvalidInput, TemporarilyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef


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


class Bucket:
    """One bucket, by name; its client is created on first use."""

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


class S3FileStore(Bucket):
    """The import bucket."""

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


# A gzip file, not a gzip-encoded one: a client that decompressed it on the way would not see the
# bytes the manifest's checksum is of.
EXPORT_CONTENT_TYPE = "application/gzip"
PART_BYTES = 8 * 1024 * 1024  # a multipart upload's parts (S3 takes 5 MB at least, but the last)


def _precondition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412"}


class S3ExportFiles(Bucket):
    """The export bucket: files put only where none is yet (`If-None-Match: *`), and their metadata."""

    def upload_new(self, key: str, path: Path, metadata: Mapping[str, str]) -> bool:
        try:
            if path.stat().st_size <= PART_BYTES:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=path.read_bytes(),
                    ContentType=EXPORT_CONTENT_TYPE,
                    Metadata=dict(metadata),
                    IfNoneMatch="*",
                )
                return True
            return self._multipart(key, path, metadata)
        except ClientError as error:
            if _precondition_failed(error):
                return False
            raise TemporarilyUnavailable(f"S3 refused the export file ({type(error).__name__})") from error
        except BotoCoreError as error:
            raise TemporarilyUnavailable(f"S3 refused the export file ({type(error).__name__})") from error

    def _multipart(self, key: str, path: Path, metadata: Mapping[str, str]) -> bool:
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            ContentType=EXPORT_CONTENT_TYPE,
            Metadata=dict(metadata),
        )["UploadId"]
        parts: list[CompletedPartTypeDef] = []
        try:
            with path.open("rb") as file:
                while chunk := file.read(PART_BYTES):
                    number = len(parts) + 1
                    etag = self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk
                    )["ETag"]
                    parts.append({"ETag": etag, "PartNumber": number})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
            )
        except ClientError:
            with contextlib.suppress(ClientError, BotoCoreError):  # else the bucket's lifecycle aborts it
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            raise
        return True

    def metadata(self, key: str) -> dict[str, str]:
        uri = self.uri(key)
        with _serving(uri):
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        return {name.lower(): value for name, value in head.get("Metadata", {}).items()}

    def put(self, key: str, data: bytes, content_type: str) -> str:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as error:
            raise TemporarilyUnavailable(f"S3 refused {key} ({type(error).__name__})") from error
        return self.uri(key)
