"""``az://container/key`` URIs over an azure.storage.blob BlobServiceClient (one storage account).

Uploads above ``BLOCK_THRESHOLD`` are block uploads: the file is read and staged ``block_size`` bytes
at a time (each block carrying an MD5 the service checks), then committed in one atomic
Put Block List, so readers never see a partial blob. Reads are ranged requests pinned to the blob's
ETag; copies are server-side (Copy Blob from URL, polled until done), with a streamed block copy
as the fallback where the service cannot copy; listings are paged. Storage classes are the access
tiers Hot, Cool, Cold and Archive (Set Blob Tier).

The default client (``make_azure_client``) comes from ``AZURE_STORAGE_CONNECTION_STRING`` (for
Azurite: the development account with ``BlobEndpoint=http://127.0.0.1:PORT/devstoreaccount1``).
"""

from __future__ import annotations

import base64
import io
import logging
import mimetypes
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobServiceClient, ContentSettings

from vam.errors import StorageError
from vam.storage.base import ObjectInfo, ObjectStore, RangeReader

log = logging.getLogger(__name__)

MIB = 1024 * 1024
BLOCK_THRESHOLD = 8 * MIB
DEFAULT_BLOCK_SIZE = 8 * MIB
READ_CHUNK_SIZE = 8 * MIB
COPY_TIMEOUT = 3600.0
TIERS = {"hot": "Hot", "cool": "Cool", "cold": "Cold", "archive": "Archive"}
_SERVER_COPY_UNSUPPORTED = {"CannotVerifyCopySource", "NotImplemented", "FeatureNotSupported"}


def split_az_uri(uri: str) -> tuple[str, str]:
    """``az://container/key`` -> ``(container, key)``; the key may be empty (a container-wide prefix)."""
    if not str(uri).startswith("az://"):
        raise StorageError(f"not an az:// URI: {uri!r}")
    container, _, key = str(uri)[len("az://") :].partition("/")
    if not container:
        raise StorageError(f"az URI {uri!r} has no container; expected az://container/key")
    return container, key


def _object_key(uri: str) -> tuple[str, str]:
    container, key = split_az_uri(uri)
    if not key or key.endswith("/"):
        raise StorageError(f"no object at {uri}: an object URI needs a key that does not end with '/'")
    return container, key


def normalize_tier(storage_class: str | None) -> str | None:
    """``"COOL"`` -> ``"Cool"``; StorageError for anything but Hot, Cool, Cold, Archive."""
    if not storage_class:
        return None
    tier = TIERS.get(storage_class.strip().lower())
    if tier is None:
        raise StorageError(
            f"unknown Azure access tier {storage_class!r}; use one of Hot, Cool, Cold, Archive"
        )
    return tier


def make_azure_client(
    *,
    connection_string: str | None = None,
    account_url: str | None = None,
    credential: Any | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> BlobServiceClient:
    """A BlobServiceClient from ``connection_string`` (else ``AZURE_STORAGE_CONNECTION_STRING``), or
    from ``account_url`` + ``credential`` (an account key, SAS token or azure-identity credential).
    Transfers are bounded to ``block_size`` bytes per request."""
    sizes = {
        "max_single_put_size": block_size,
        "max_block_size": block_size,
        "max_single_get_size": block_size,
        "max_chunk_get_size": block_size,
    }
    try:
        if account_url:
            return BlobServiceClient(account_url, credential=credential, **sizes)
        conn = connection_string or os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if not conn:
            raise StorageError(
                "no Azure Blob account configured: set AZURE_STORAGE_CONNECTION_STRING (for Azurite: "
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=...;"
                "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;) or configure an az:// store"
            )
        return BlobServiceClient.from_connection_string(conn, **sizes)
    except ValueError as exc:
        raise StorageError(f"cannot build an Azure Blob client: {exc}") from exc


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", "") or "")


def _storage_error(exc: BaseException, action: str, uri: str) -> StorageError:
    """Translate an Azure SDK error into a StorageError that names the URI."""
    code = _code(exc)
    if code == "ContainerNotFound":
        container = split_az_uri(uri)[0]
        return StorageError(f"no object at {uri}: container {container!r} does not exist; create it first")
    if isinstance(exc, ResourceNotFoundError):
        return StorageError(f"no object at {uri}")
    if code == "BlobArchived":
        return StorageError(
            f"cannot {action} {uri}: the blob is in the Archive tier; "
            "rehydrate it (set tier Hot or Cool) first"
        )
    if isinstance(exc, ClientAuthenticationError) or code in ("AuthenticationFailed", "AuthorizationFailure"):
        return StorageError(
            f"cannot {action} {uri}: access denied ({code or exc}); check the Azure credentials"
        )
    if isinstance(exc, ResourceModifiedError):
        return StorageError(f"cannot {action} {uri}: the blob changed meanwhile; retry")
    if isinstance(exc, HttpResponseError):
        message = str(getattr(exc, "reason", "") or "")
        return StorageError(f"cannot {action} {uri}: {code or exc.status_code} {message}".rstrip())
    return StorageError(f"cannot {action} {uri}: {exc}")


class AzureStore(ObjectStore):
    """Blobs (block blobs) in the containers of one Azure storage account."""

    scheme = "az"

    def __init__(
        self,
        service_client: BlobServiceClient,
        *,
        page_size: int = 1000,
        block_size: int = DEFAULT_BLOCK_SIZE,
        block_threshold: int = BLOCK_THRESHOLD,
        copy_timeout: float = COPY_TIMEOUT,
        read_chunk_size: int = READ_CHUNK_SIZE,
    ):
        self.service = service_client
        self.page_size = page_size
        self.block_size = block_size
        self.block_threshold = block_threshold
        self.copy_timeout = copy_timeout
        self.read_chunk_size = read_chunk_size

    def _blob(self, uri: str) -> Any:
        container, key = _object_key(uri)
        return self.service.get_blob_client(container, key)

    @staticmethod
    def _info(uri: str, props: Any) -> ObjectInfo:
        return ObjectInfo(
            uri=uri,
            size=int(props.size or 0),
            etag=str(props.etag or "").strip('"') or None,
            last_modified=props.last_modified,
            storage_class=str(props.blob_tier) if props.blob_tier else "Hot",
        )

    def _props(self, uri: str, action: str = "read") -> Any:
        try:
            return self._blob(uri).get_blob_properties()
        except AzureError as exc:
            if isinstance(exc, ResourceNotFoundError) and not _code(exc):
                return self._missing(uri, exc)  # HEAD has no body: find out which is missing
            raise _storage_error(exc, action, uri) from exc

    def _missing(self, uri: str, exc: BaseException) -> Any:
        container = split_az_uri(uri)[0]
        try:
            container_exists = self.service.get_container_client(container).exists()
        except AzureError:
            container_exists = True
        if not container_exists:
            raise StorageError(
                f"no object at {uri}: container {container!r} does not exist; create it first"
            ) from exc
        raise StorageError(f"no object at {uri}") from exc

    def head(self, uri: str) -> ObjectInfo:
        return self._info(uri, self._props(uri))

    def exists(self, uri: str) -> bool:
        container, key = split_az_uri(uri)
        if not key or key.endswith("/"):
            return False
        try:
            return bool(self.service.get_blob_client(container, key).exists())
        except AzureError as exc:
            raise _storage_error(exc, "read", uri) from exc

    def get(self, uri: str, dest: Path) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.vam-tmp"
        try:
            with self.open_read(uri) as stream, tmp.open("wb") as out:
                while chunk := stream.read(self.block_size):
                    out.write(chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def _settings(self, uri: str, content_type: str | None) -> ContentSettings:
        return ContentSettings(
            content_type=content_type or mimetypes.guess_type(uri)[0] or "application/octet-stream"
        )

    def _upload_stream(
        self,
        stream: BinaryIO,
        uri: str,
        size: int | None,
        settings: ContentSettings,
        tier: str | None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """One Put Blob for small data, else staged blocks committed at once (atomic either way)."""
        blob = self._blob(uri)
        if size is not None and size <= self.block_threshold:
            data = stream.read()
            blob.upload_blob(
                data,
                overwrite=True,
                content_settings=settings,
                metadata=metadata,
                validate_content=True,
                max_concurrency=1,
            )
        else:
            prefix = secrets.token_hex(8)  # uncommitted blocks of an abandoned upload never mix in
            blocks = []
            while chunk := stream.read(self.block_size):
                block_id = base64.b64encode(f"{prefix}-{len(blocks):08d}".encode()).decode()
                blob.stage_block(block_id, chunk, length=len(chunk), validate_content=True)
                blocks.append(BlobBlock(block_id=block_id))
            blob.commit_block_list(blocks, content_settings=settings, metadata=metadata)
        if tier:
            blob.set_standard_blob_tier(tier)

    def put(
        self, src: Path, uri: str, *, content_type: str | None = None, storage_class: str | None = None
    ) -> ObjectInfo:
        _object_key(uri)
        src = Path(src)
        if not src.is_file():
            raise StorageError(f"cannot upload {src} to {uri}: {src} is not a file")
        tier = normalize_tier(storage_class)
        try:
            with src.open("rb") as stream:
                self._upload_stream(stream, uri, src.stat().st_size, self._settings(uri, content_type), tier)
        except AzureError as exc:
            raise _storage_error(exc, "upload to", uri) from exc
        log.debug("uploaded %s to %s", src, uri)
        return self.head(uri)

    def put_bytes(self, data: bytes, uri: str, *, content_type: str | None = None) -> ObjectInfo:
        """Write a small object in one request (Put Blob, MD5-checked by the service)."""
        blob = self._blob(uri)
        try:
            resp = blob.upload_blob(
                data,
                overwrite=True,
                content_settings=self._settings(uri, content_type),
                validate_content=True,
                max_concurrency=1,
            )
        except AzureError as exc:
            raise _storage_error(exc, "write", uri) from exc
        return ObjectInfo(
            uri=uri,
            size=len(data),
            etag=str(resp.get("etag") or "").strip('"') or None,
            last_modified=resp.get("last_modified"),
            storage_class="Hot",
        )

    def read_bytes(self, uri: str) -> bytes:
        with self.open_read(uri) as stream:
            return stream.read()

    def open_read(self, uri: str) -> BinaryIO:
        """A buffered stream of ranged GETs (``read_chunk_size`` bytes each) pinned to the blob's ETag."""
        props = self._props(uri)
        blob = self._blob(uri)

        def fetch(offset: int, length: int) -> bytes:
            try:
                downloader = blob.download_blob(
                    offset=offset,
                    length=length,
                    etag=props.etag,
                    match_condition=MatchConditions.IfNotModified,
                    max_concurrency=1,
                )
                return bytes(downloader.readall())
            except AzureError as exc:
                raise _storage_error(exc, "read", uri) from exc

        raw = RangeReader(int(props.size or 0), fetch, self.read_chunk_size)
        return io.BufferedReader(raw, buffer_size=self.read_chunk_size)  # type: ignore[return-value]

    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        container, prefix = split_az_uri(prefix_uri)
        try:
            blobs = self.service.get_container_client(container).list_blobs(
                name_starts_with=prefix or None, results_per_page=self.page_size
            )
            for page in blobs.by_page():  # one page in memory at a time
                for props in page:
                    if props.name.endswith("/"):
                        continue  # a "folder" placeholder, not an object
                    yield self._info(f"az://{container}/{props.name}", props)
        except ResourceNotFoundError as exc:
            raise StorageError(
                f"cannot list {prefix_uri}: container {container!r} does not exist; create it first"
            ) from exc
        except AzureError as exc:
            raise _storage_error(exc, "list", prefix_uri) from exc

    def delete(self, uri: str) -> None:
        container, key = split_az_uri(uri)
        if not key:
            raise StorageError(f"cannot delete {uri}: it names a container, not an object")
        try:
            self.service.get_blob_client(container, key).delete_blob(delete_snapshots="include")
        except ResourceNotFoundError as exc:
            if _code(exc) == "ContainerNotFound":
                raise _storage_error(exc, "delete", uri) from exc
            return
        except AzureError as exc:
            raise _storage_error(exc, "delete", uri) from exc

    def set_tier(self, uri: str, storage_class: str) -> ObjectInfo:
        """Change the access tier of the blob at ``uri`` in place (Archive needs rehydration to read)."""
        tier = normalize_tier(storage_class)
        try:
            self._blob(uri).set_standard_blob_tier(tier)
        except AzureError as exc:
            raise _storage_error(exc, "set the tier of", uri) from exc
        return self.head(uri)

    def copy(self, src_uri: str, dst_uri: str, *, storage_class: str | None = None) -> ObjectInfo:
        """Server-side Copy Blob (polled until it completes); a streamed block copy where the
        service refuses. With ``storage_class`` the destination gets that tier (in place when
        ``src_uri == dst_uri``). Content settings and metadata are kept."""
        tier = normalize_tier(storage_class)
        source = self._props(src_uri)
        if split_az_uri(src_uri) == split_az_uri(dst_uri):
            current = str(source.blob_tier) if source.blob_tier else "Hot"
            if tier and tier != current:
                return self.set_tier(dst_uri, tier)
            return self._info(dst_uri, source)
        src_blob, dst_blob = self._blob(src_uri), self._blob(dst_uri)
        try:
            try:
                self._server_copy(src_blob, dst_blob, source, dst_uri)
            except HttpResponseError as exc:
                if _code(exc) not in _SERVER_COPY_UNSUPPORTED:
                    raise
                log.info("server-side copy of %s refused (%s); streaming it", src_uri, _code(exc))
                self._stream_copy(src_uri, dst_uri, source)
            if tier:
                dst_blob.set_standard_blob_tier(tier)
        except AzureError as exc:
            raise _storage_error(exc, "copy to", dst_uri) from exc
        log.debug("copied %s to %s (tier %s)", src_uri, dst_uri, tier or "default")
        return self.head(dst_uri)

    def _server_copy(self, src_blob: Any, dst_blob: Any, source: Any, dst_uri: str) -> None:
        dst_blob.start_copy_from_url(
            src_blob.url, source_etag=source.etag, source_match_condition=MatchConditions.IfNotModified
        )
        deadline = time.monotonic() + self.copy_timeout
        delay = 0.05
        while True:
            props = dst_blob.get_blob_properties()
            status = props.copy.status
            if status in (None, "success"):
                return
            if status != "pending":
                raise StorageError(
                    f"cannot copy to {dst_uri}: copy {status} ({props.copy.status_description})"
                )
            if time.monotonic() > deadline:
                dst_blob.abort_copy(props.copy.id)
                raise StorageError(
                    f"cannot copy to {dst_uri}: not done after {self.copy_timeout:.0f} s; aborted"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _stream_copy(self, src_uri: str, dst_uri: str, source: Any) -> None:
        settings = source.content_settings
        with self.open_read(src_uri) as stream:
            self._upload_stream(
                stream, dst_uri, int(source.size or 0), settings, None, source.metadata or None
            )

    def local_path(self, uri: str) -> Path | None:
        return None
