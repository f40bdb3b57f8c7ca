"""``gs://bucket/key`` URIs over a google.cloud.storage Client (Google Cloud Storage or an emulator).

Uploads above ``RESUMABLE_THRESHOLD`` are resumable uploads sent in ``chunk_size`` pieces read from
the file (never the whole file in memory), with a CRC32C checked against the server's; reads are
ranged requests pinned to the object generation; copies are server-side rewrites (looped with the
rewrite token for large objects); listings are paged. Storage classes (STANDARD, NEARLINE,
COLDLINE, ARCHIVE) are set on upload and on copy.

The default client (``make_gcs_client``) honours ``STORAGE_EMULATOR_HOST`` (an emulator such as
fake-gcs-server: anonymous credentials, project ``vam-local`` unless ``GOOGLE_CLOUD_PROJECT`` is
set); otherwise it uses Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud
login, workload identity).
"""

from __future__ import annotations

import io
import logging
import mimetypes
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import requests
from google.api_core import exceptions as gexc
from google.auth.exceptions import GoogleAuthError
from google.resumable_media.common import DataCorruption, InvalidResponse

from vam.errors import StorageError
from vam.storage.base import ObjectInfo, ObjectStore, RangeReader

log = logging.getLogger(__name__)

MIB = 1024 * 1024
RESUMABLE_THRESHOLD = 8 * MIB
DEFAULT_CHUNK_SIZE = 16 * MIB  # a multiple of 256 KiB, as GCS requires for resumable chunks
READ_CHUNK_SIZE = 8 * MIB
EMULATOR_PROJECT = "vam-local"
STORAGE_CLASSES = frozenset(
    {
        "STANDARD",
        "NEARLINE",
        "COLDLINE",
        "ARCHIVE",
        "MULTI_REGIONAL",
        "REGIONAL",
        "DURABLE_REDUCED_AVAILABILITY",
    }
)
_ERRORS: tuple[type[BaseException], ...] = (
    gexc.GoogleAPIError,
    GoogleAuthError,
    requests.RequestException,
    InvalidResponse,
    DataCorruption,
    ValueError,  # the library raises it for a malformed response or a bad argument
)


def split_gs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/key`` -> ``(bucket, key)``; the key may be empty (a bucket-wide prefix)."""
    if not str(uri).startswith("gs://"):
        raise StorageError(f"not a gs:// URI: {uri!r}")
    bucket, _, key = str(uri)[len("gs://") :].partition("/")
    if not bucket:
        raise StorageError(f"gs URI {uri!r} has no bucket; expected gs://bucket/key")
    return bucket, key


def _object_key(uri: str) -> tuple[str, str]:
    bucket, key = split_gs_uri(uri)
    if not key or key.endswith("/"):
        raise StorageError(f"no object at {uri}: an object URI needs a key that does not end with '/'")
    return bucket, key


def normalize_storage_class(storage_class: str | None) -> str | None:
    """``"nearline"`` -> ``"NEARLINE"``; StorageError for a class GCS does not have."""
    if not storage_class:
        return None
    value = storage_class.strip().upper()
    if value not in STORAGE_CLASSES:
        raise StorageError(
            f"unknown GCS storage class {storage_class!r}; use one of STANDARD, NEARLINE, COLDLINE, ARCHIVE"
        )
    return value


def make_gcs_client(
    *,
    project: str | None = None,
    credentials: Any | None = None,
    emulator_host: str | None = None,
) -> Any:
    """A google.cloud.storage.Client.

    With ``emulator_host`` or ``STORAGE_EMULATOR_HOST`` set (``http://127.0.0.1:4443`` or
    ``127.0.0.1:4443``): anonymous credentials and project ``project`` / ``GOOGLE_CLOUD_PROJECT`` /
    ``vam-local``. Otherwise ``credentials`` or Application Default Credentials; StorageError when
    there are none.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    emulator = emulator_host or os.environ.get("STORAGE_EMULATOR_HOST") or None
    try:
        if emulator:
            endpoint = emulator if "://" in emulator else f"http://{emulator}"
            return storage.Client(
                project=project or os.environ.get("GOOGLE_CLOUD_PROJECT") or EMULATOR_PROJECT,
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": endpoint.rstrip("/")},
            )
        return storage.Client(project=project, credentials=credentials)
    except GoogleAuthError as exc:
        raise StorageError(
            f"cannot build a GCS client: {exc}; set GOOGLE_APPLICATION_CREDENTIALS (or run "
            "`gcloud auth application-default login`), or STORAGE_EMULATOR_HOST for an emulator"
        ) from exc


def _storage_error(exc: BaseException, action: str, uri: str) -> StorageError:
    """Translate a google-cloud-storage error into a StorageError that names the URI."""
    if isinstance(exc, gexc.NotFound):
        message = str(getattr(exc, "message", "") or exc).lower()
        if "bucket" in message:
            bucket = split_gs_uri(uri)[0]
            return StorageError(f"no object at {uri}: bucket {bucket!r} does not exist; create it first")
        return StorageError(f"no object at {uri}")
    if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized, GoogleAuthError)):
        return StorageError(
            f"cannot {action} {uri}: access denied ({exc}); check the GCS credentials and the bucket's IAM"
        )
    if isinstance(exc, gexc.PreconditionFailed):
        return StorageError(f"cannot {action} {uri}: the object changed meanwhile; retry")
    if isinstance(exc, DataCorruption):
        return StorageError(f"cannot {action} {uri}: checksum mismatch in transfer ({exc}); retry")
    if isinstance(exc, requests.ConnectionError):
        return StorageError(f"cannot {action} {uri}: GCS endpoint unreachable ({exc})")
    return StorageError(f"cannot {action} {uri}: {exc}")


class GCSStore(ObjectStore):
    """Objects in GCS buckets, through one google.cloud.storage.Client (one project, one identity)."""

    scheme = "gs"

    def __init__(
        self,
        client: Any,
        *,
        page_size: int = 1000,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        resumable_threshold: int = RESUMABLE_THRESHOLD,
        read_chunk_size: int = READ_CHUNK_SIZE,
    ):
        if chunk_size % (256 * 1024):
            raise StorageError(f"GCS chunk_size must be a multiple of 256 KiB, not {chunk_size}")
        self.client = client
        self.page_size = page_size
        self.chunk_size = chunk_size
        self.resumable_threshold = resumable_threshold
        self.read_chunk_size = read_chunk_size

    def _blob(self, bucket: str, key: str, **kwargs: Any) -> Any:
        return self.client.bucket(bucket).blob(key, **kwargs)

    @staticmethod
    def _info(uri: str, blob: Any) -> ObjectInfo:
        return ObjectInfo(
            uri=uri,
            size=int(blob.size or 0),
            etag=blob.etag or None,
            last_modified=blob.updated,
            storage_class=blob.storage_class or "STANDARD",
        )

    def _reload(self, uri: str) -> Any:
        bucket, key = _object_key(uri)
        blob = self._blob(bucket, key)
        try:
            blob.reload()
        except _ERRORS as exc:
            raise self._missing_or(exc, "read", uri) from exc
        return blob

    def _missing_or(self, exc: BaseException, action: str, uri: str) -> StorageError:
        """For a 404, say whether the bucket or the object is missing (one extra request)."""
        if isinstance(exc, gexc.NotFound):
            bucket = split_gs_uri(uri)[0]
            try:
                bucket_exists = self.client.bucket(bucket).exists()
            except _ERRORS:
                bucket_exists = True  # cannot tell (no right to read bucket metadata)
            if not bucket_exists:
                return StorageError(f"no object at {uri}: bucket {bucket!r} does not exist; create it first")
            return StorageError(f"no object at {uri}")
        return _storage_error(exc, action, uri)

    def head(self, uri: str) -> ObjectInfo:
        return self._info(uri, self._reload(uri))

    def exists(self, uri: str) -> bool:
        bucket, key = split_gs_uri(uri)
        if not key or key.endswith("/"):
            return False
        try:
            return bool(self._blob(bucket, key).exists())
        except _ERRORS as exc:
            raise _storage_error(exc, "read", uri) from exc

    def get(self, uri: str, dest: Path) -> Path:
        blob = self._reload(uri)  # pins the generation: a concurrent overwrite cannot mix versions
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.vam-tmp"
        pinned = self._blob(blob.bucket.name, blob.name, generation=blob.generation)
        pinned.chunk_size = self.chunk_size  # chunked download: bounded memory
        try:
            pinned.download_to_filename(str(tmp), checksum="crc32c")
            os.replace(tmp, dest)
        except _ERRORS as exc:
            raise self._missing_or(exc, "download", uri) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def put(
        self, src: Path, uri: str, *, content_type: str | None = None, storage_class: str | None = None
    ) -> ObjectInfo:
        bucket, key = _object_key(uri)
        src = Path(src)
        if not src.is_file():
            raise StorageError(f"cannot upload {src} to {uri}: {src} is not a file")
        storage_class = normalize_storage_class(storage_class)
        size = src.stat().st_size
        resumable = size > self.resumable_threshold
        blob = self._blob(bucket, key, chunk_size=self.chunk_size if resumable else None)
        if storage_class:
            blob.storage_class = storage_class  # sent in the upload's object metadata
        content_type = content_type or mimetypes.guess_type(uri)[0] or "application/octet-stream"
        try:
            with src.open("rb") as stream:
                # size=None: the library then always takes the resumable path, chunk_size at a time
                blob.upload_from_file(
                    stream, size=None if resumable else size, content_type=content_type, checksum="crc32c"
                )
        except _ERRORS as exc:
            raise self._missing_or(exc, "upload to", uri) from exc
        log.debug("uploaded %s (%s bytes) to %s", src, size, uri)
        return self._info(uri, blob)

    def put_bytes(self, data: bytes, uri: str, *, content_type: str | None = None) -> ObjectInfo:
        bucket, key = _object_key(uri)
        blob = self._blob(bucket, key)
        content_type = content_type or mimetypes.guess_type(uri)[0] or "application/octet-stream"
        try:
            blob.upload_from_string(data, content_type=content_type, checksum="crc32c")
        except _ERRORS as exc:
            raise self._missing_or(exc, "write", uri) from exc
        return self._info(uri, blob)

    def read_bytes(self, uri: str) -> bytes:
        with self.open_read(uri) as stream:
            return stream.read()

    def open_read(self, uri: str) -> BinaryIO:
        """A buffered stream of ranged GETs (``read_chunk_size`` bytes each), pinned to the current
        generation (an overwrite meanwhile makes the read fail rather than mix versions)."""
        blob = self._reload(uri)
        pinned = self._blob(blob.bucket.name, blob.name, generation=blob.generation)

        def fetch(offset: int, length: int) -> bytes:
            try:
                return bytes(pinned.download_as_bytes(start=offset, end=offset + length - 1, checksum=None))
            except _ERRORS as exc:
                raise _storage_error(exc, "read", uri) from exc

        raw = RangeReader(int(blob.size or 0), fetch, self.read_chunk_size)
        return io.BufferedReader(raw, buffer_size=self.read_chunk_size)  # type: ignore[return-value]

    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        bucket, prefix = split_gs_uri(prefix_uri)
        try:
            blobs = self.client.list_blobs(bucket, prefix=prefix or None, page_size=self.page_size)
            for page in blobs.pages:  # one page in memory at a time
                for blob in page:
                    if blob.name.endswith("/"):
                        continue  # a "folder" placeholder, not an object
                    yield self._info(f"gs://{bucket}/{blob.name}", blob)
        except gexc.NotFound as exc:
            raise StorageError(
                f"cannot list {prefix_uri}: bucket {bucket!r} does not exist; create it first"
            ) from exc
        except _ERRORS as exc:
            raise _storage_error(exc, "list", prefix_uri) from exc

    def delete(self, uri: str) -> None:
        bucket, key = split_gs_uri(uri)
        if not key:
            raise StorageError(f"cannot delete {uri}: it names a bucket, not an object")
        try:
            self._blob(bucket, key).delete()
        except gexc.NotFound:
            return
        except _ERRORS as exc:
            raise _storage_error(exc, "delete", uri) from exc

    def copy(self, src_uri: str, dst_uri: str, *, storage_class: str | None = None) -> ObjectInfo:
        """Server-side rewrite; with ``storage_class`` the destination gets that class (in place
        when ``src_uri == dst_uri``). Content type and metadata are kept."""
        storage_class = normalize_storage_class(storage_class)
        source = self._reload(src_uri)
        dst_bucket, dst_key = _object_key(dst_uri)
        same = (source.bucket.name, source.name) == (dst_bucket, dst_key)
        if same and (not storage_class or storage_class == (source.storage_class or "STANDARD")):
            return self._info(dst_uri, source)  # nothing to change
        src_blob = self._blob(source.bucket.name, source.name, generation=source.generation)
        dst_blob = self._blob(dst_bucket, dst_key)
        if storage_class:
            # The rewrite body then carries metadata: carry the source's over so none is lost.
            dst_blob.storage_class = storage_class
            for attr in ("content_type", "content_encoding", "content_disposition", "content_language"):
                value = getattr(source, attr)
                if value:
                    setattr(dst_blob, attr, value)
            if source.cache_control:
                dst_blob.cache_control = source.cache_control
            if source.metadata:
                dst_blob.metadata = source.metadata
        try:
            token, rewritten, total = dst_blob.rewrite(src_blob)
            while token is not None:
                log.debug("rewriting %s to %s: %s of %s bytes", src_uri, dst_uri, rewritten, total)
                token, rewritten, total = dst_blob.rewrite(src_blob, token=token)
        except _ERRORS as exc:
            raise self._missing_or(exc, "copy to", dst_uri) from exc
        log.debug("copied %s to %s (storage class %s)", src_uri, dst_uri, storage_class or "unchanged")
        return self._info(dst_uri, dst_blob)

    def local_path(self, uri: str) -> Path | None:
        return None
