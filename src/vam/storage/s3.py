"""``s3://bucket/key`` URIs over a boto3 S3 client (AWS S3 or any S3-compatible store).

Uploads use boto3's managed transfer (multipart above the threshold) with SHA-256 checksums;
copies are server-side (CopyObject, multipart copy above 5 GiB); listings are paginated.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import S3Transfer, TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vam.errors import StorageError
from vam.storage.base import ObjectInfo, ObjectStore

if TYPE_CHECKING:
    from datetime import datetime

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MAX_SINGLE_COPY = 5 * 1024 * MIB  # CopyObject limit; larger objects need a multipart copy
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_TRANSFER = TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=16 * MIB, max_concurrency=4)
_CHECKSUM_ARGS = (
    {"ChecksumAlgorithm": "SHA256"} if "ChecksumAlgorithm" in S3Transfer.ALLOWED_UPLOAD_ARGS else {}
)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; the key may be empty (a bucket-wide prefix)."""
    if not uri.startswith("s3://"):
        raise StorageError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise StorageError(f"s3 URI {uri!r} has no bucket; expected s3://bucket/key")
    return bucket, key


def make_s3_client(
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Any:
    """A boto3 S3 client. With ``endpoint_url`` (an S3-compatible server such as SeaweedFS) it uses
    path-style addressing. Credentials come from the arguments, else from boto3's standard chain
    (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles...)."""
    if (access_key is None) != (secret_key is None):
        raise StorageError(
            "give both access_key and secret_key, or neither (to use the AWS credential chain)"
        )
    config = Config(
        region_name=region,
        signature_version="s3v4",
        retries={"max_attempts": 5, "mode": "standard"},
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    session = boto3.session.Session()  # one session per client: the default session is not thread-safe
    return session.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _storage_error(exc: Exception, action: str, uri: str) -> StorageError:
    """Translate a botocore error into a StorageError that names the URI."""
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code in _NOT_FOUND:
            return StorageError(f"no object at {uri}")
        if code == "NoSuchBucket":
            bucket = split_s3_uri(uri)[0]
            return StorageError(f"no object at {uri}: bucket {bucket!r} does not exist; create it first")
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            return StorageError(
                f"cannot {action} {uri}: access denied ({code}); check the S3 credentials and bucket policy"
            )
        message = exc.response.get("Error", {}).get("Message", "")
        return StorageError(f"cannot {action} {uri}: {code} {message}".rstrip())
    return StorageError(f"cannot {action} {uri}: {exc}")


class S3Store(ObjectStore):
    """Objects in S3 buckets, through one boto3 client (so one endpoint and one set of credentials)."""

    scheme = "s3"

    def __init__(self, client: Any, *, page_size: int = 1000, transfer_config: TransferConfig | None = None):
        self.client = client
        self.page_size = page_size
        self.transfer_config = transfer_config or _TRANSFER

    def _info(self, uri: str, head: dict[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            uri=uri,
            size=int(head["ContentLength"]),
            etag=str(head.get("ETag", "")).strip('"') or None,
            last_modified=cast("datetime | None", head.get("LastModified")),
            storage_class=head.get("StorageClass") or "STANDARD",  # S3 omits it for STANDARD
        )

    def _head(self, uri: str) -> dict[str, Any]:
        bucket, key = split_s3_uri(uri)
        if not key or key.endswith("/"):
            raise StorageError(f"no object at {uri}: an object URI needs a key that does not end with '/'")
        try:
            return cast("dict[str, Any]", self.client.head_object(Bucket=bucket, Key=key))
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "read", uri) from exc

    def head(self, uri: str) -> ObjectInfo:
        return self._info(uri, self._head(uri))

    def exists(self, uri: str) -> bool:
        bucket, key = split_s3_uri(uri)
        if not key or key.endswith("/"):
            return False
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND | {"NoSuchBucket"}:
                return False
            raise _storage_error(exc, "read", uri) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc, "read", uri) from exc
        return True

    def get(self, uri: str, dest: Path) -> Path:
        bucket, key = split_s3_uri(uri)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.vam-tmp"
        try:
            self.client.download_file(bucket, key, str(tmp), Config=self.transfer_config)
            os.replace(tmp, dest)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "download", uri) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def _extra_args(self, uri: str, content_type: str | None, storage_class: str | None) -> dict[str, str]:
        extra: dict[str, str] = {}
        content_type = content_type or mimetypes.guess_type(uri)[0]
        if content_type:
            extra["ContentType"] = content_type
        if storage_class:
            extra["StorageClass"] = storage_class
        return extra

    def put(
        self, src: Path, uri: str, *, content_type: str | None = None, storage_class: str | None = None
    ) -> ObjectInfo:
        bucket, key = split_s3_uri(uri)
        src = Path(src)
        if not src.is_file():
            raise StorageError(f"cannot upload {src} to {uri}: {src} is not a file")
        extra = {**self._extra_args(uri, content_type, storage_class), **_CHECKSUM_ARGS}
        try:
            self.client.upload_file(str(src), bucket, key, ExtraArgs=extra, Config=self.transfer_config)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "upload to", uri) from exc
        except S3UploadFailedError as exc:
            cause = exc.__context__ if isinstance(exc.__context__, ClientError) else exc
            raise _storage_error(cause, "upload to", uri) from exc
        return self.head(uri)

    def put_bytes(self, data: bytes, uri: str, *, content_type: str | None = None) -> ObjectInfo:
        """Write a small object in one request. The returned info has no ``last_modified``."""
        bucket, key = split_s3_uri(uri)
        extra = self._extra_args(uri, content_type, None)
        try:
            resp = self.client.put_object(
                Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256", **extra
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "write", uri) from exc
        etag = str(resp.get("ETag", "")).strip('"') or None
        return ObjectInfo(uri=uri, size=len(data), etag=etag, last_modified=None, storage_class="STANDARD")

    def read_bytes(self, uri: str) -> bytes:
        with self.open_read(uri) as body:
            try:
                return body.read()
            except (ClientError, BotoCoreError) as exc:
                raise _storage_error(exc, "read", uri) from exc

    def open_read(self, uri: str) -> BinaryIO:
        bucket, key = split_s3_uri(uri)
        try:
            resp = self.client.get_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "read", uri) from exc
        return cast("BinaryIO", resp["Body"])

    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        bucket, prefix = split_s3_uri(prefix_uri)
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
        )
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key.endswith("/"):
                        continue  # a "directory" marker, not an object
                    yield ObjectInfo(
                        uri=f"s3://{bucket}/{key}",
                        size=int(obj["Size"]),
                        etag=str(obj.get("ETag", "")).strip('"') or None,
                        last_modified=obj.get("LastModified"),
                        storage_class=obj.get("StorageClass") or "STANDARD",
                    )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "list", prefix_uri) from exc

    def delete(self, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        if not key:
            raise StorageError(f"cannot delete {uri}: it names a bucket, not an object")
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return
            raise _storage_error(exc, "delete", uri) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc, "delete", uri) from exc

    def copy(self, src_uri: str, dst_uri: str, *, storage_class: str | None = None) -> ObjectInfo:
        src_bucket, src_key = split_s3_uri(src_uri)
        dst_bucket, dst_key = split_s3_uri(dst_uri)
        source = self._head(src_uri)  # StorageError naming the source when it is missing
        copy_source = {"Bucket": src_bucket, "Key": src_key}
        args: dict[str, Any] = {"Bucket": dst_bucket, "Key": dst_key}
        if storage_class:
            args["StorageClass"] = storage_class
        if (src_bucket, src_key) == (dst_bucket, dst_key):
            if not storage_class or storage_class == (source.get("StorageClass") or "STANDARD"):
                return self._info(dst_uri, source)  # nothing to change
            # S3 refuses an in-place copy unless something changes: REPLACE, keeping the metadata.
            args["MetadataDirective"] = "REPLACE"
            args["Metadata"] = source.get("Metadata", {})
            for field in (
                "ContentType",
                "ContentEncoding",
                "ContentDisposition",
                "ContentLanguage",
                "CacheControl",
            ):
                if source.get(field):
                    args[field] = source[field]
        try:
            if int(source["ContentLength"]) <= MAX_SINGLE_COPY:
                self.client.copy_object(CopySource=copy_source, **args)
            else:
                extra = {k: v for k, v in args.items() if k not in ("Bucket", "Key")}
                config = TransferConfig(multipart_threshold=MAX_SINGLE_COPY, multipart_chunksize=512 * MIB)
                self.client.copy(copy_source, dst_bucket, dst_key, ExtraArgs=extra, Config=config)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "copy to", dst_uri) from exc
        log.debug("copied %s to %s (storage class %s)", src_uri, dst_uri, storage_class or "unchanged")
        return self.head(dst_uri)

    def local_path(self, uri: str) -> Path | None:
        return None
