"""vam.storage: one small object-store interface over URIs, plus checksums and verified copies.

``store_for(uri)`` returns the store for a URI's scheme from a module-level registry:
``file://`` always works; ``s3://`` uses the client given to ``configure(s3_client=...)`` or else
one built on first use for the endpoint and region given to ``set_s3_defaults`` (the runtime
passes vam's settings down once) and credentials
from ``VAM_S3_ACCESS_KEY``/``VAM_S3_SECRET_KEY`` or boto3's standard chain (``AWS_*`` variables).
``gs://`` and ``az://`` build default clients on first use (``STORAGE_EMULATOR_HOST`` or Application
Default Credentials; ``AZURE_STORAGE_CONNECTION_STRING``) unless ``configure_store`` installed one.
Other backends (ftp) plug in with ``register_scheme``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from vam.errors import ChecksumMismatch, StorageError
from vam.storage.base import ObjectInfo, ObjectStore
from vam.storage.file import FileStore

__all__ = [
    "ObjectInfo",
    "ObjectStore",
    "configure",
    "configure_store",
    "set_s3_defaults",
    "copy_verified",
    "delete_prefix",
    "parse_uri",
    "register_scheme",
    "sha256_file",
    "sha256_object",
    "store_for",
    "to_uri",
    "uri_join",
]

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024

_lock = threading.Lock()
_factories: dict[str, Callable[[], ObjectStore]] = {}
_stores: dict[str, ObjectStore] = {}
_s3_defaults: dict[str, str | None] = {"endpoint_url": None, "region": "us-east-1"}


def _default_s3_store() -> ObjectStore:
    from vam.storage.s3 import S3Store, make_s3_client

    endpoint_url, region = _s3_defaults["endpoint_url"], _s3_defaults["region"]
    access_key = os.environ.get("VAM_S3_ACCESS_KEY") or None
    secret_key = os.environ.get("VAM_S3_SECRET_KEY") or None
    if (access_key is None) != (secret_key is None):
        raise StorageError("set both VAM_S3_ACCESS_KEY and VAM_S3_SECRET_KEY, or neither")
    client = make_s3_client(
        endpoint_url=endpoint_url or None,
        region=region or "us-east-1",
        access_key=access_key,
        secret_key=secret_key,
    )
    log.debug("built the S3 client for endpoint %s", endpoint_url or "AWS")
    store = S3Store(client)
    store._vam_from_defaults = True  # type: ignore[attr-defined]
    return store


def register_scheme(scheme: str, factory: Callable[[], ObjectStore]) -> None:
    """Make ``store_for`` serve ``scheme://`` URIs with the store ``factory()`` builds on first use."""
    with _lock:
        _factories[scheme.lower()] = factory
        _stores.pop(scheme.lower(), None)


register_scheme("file", FileStore)
register_scheme("s3", _default_s3_store)


def _default_gs_store() -> ObjectStore:
    from vam.storage.gs import GCSStore, make_gcs_client

    return GCSStore(make_gcs_client())  # STORAGE_EMULATOR_HOST, else Application Default Credentials


def _default_az_store() -> ObjectStore:
    from vam.storage.az import AzureStore, make_azure_client

    return AzureStore(make_azure_client())  # AZURE_STORAGE_CONNECTION_STRING


register_scheme("gs", _default_gs_store)
register_scheme("az", _default_az_store)


def configure_store(scheme: str, store: ObjectStore | None) -> None:
    """Serve ``scheme://`` URIs with ``store`` (e.g. ``GCSStore(client)`` built from an Airflow
    connection) from now on. With None, forget the current store: the next use builds the default."""
    scheme = scheme.lower()
    with _lock:
        if scheme not in _factories:
            raise StorageError(f"unknown URI scheme {scheme!r}; register it with register_scheme first")
        if store is None:
            _stores.pop(scheme, None)
        else:
            _stores[scheme] = store


def _ftp_store() -> ObjectStore:
    from vam.storage.ftp import default_store  # one FTPStore for ftp:// and ftps://, every host

    return default_store()


register_scheme("ftp", _ftp_store)
register_scheme("ftps", _ftp_store)


def set_s3_defaults(endpoint_url: str | None, region: str | None) -> None:
    """Endpoint (None or empty: AWS) and region of the S3 client built when none was configured.
    A client built earlier from other defaults is dropped; a configured client is kept."""
    with _lock:
        new = {"endpoint_url": endpoint_url or None, "region": region or "us-east-1"}
        if new != _s3_defaults and getattr(_stores.get("s3"), "_vam_from_defaults", False):
            _stores.pop("s3", None)
        _s3_defaults.update(new)


def configure(*, s3_client: Any | None = None) -> None:
    """Use ``s3_client`` (a boto3 S3 client) for every ``s3://`` URI from now on. With None, forget
    the current S3 store: the next ``s3://`` use builds a client from the defaults again."""
    with _lock:
        if s3_client is None:
            _stores.pop("s3", None)
            return
        from vam.storage.s3 import S3Store

        _stores["s3"] = S3Store(s3_client)


def _scheme(uri: str) -> str:
    scheme, sep, _ = str(uri).partition("://")
    return scheme.lower() if sep else ""


def store_for(uri: str) -> ObjectStore:
    """The object store serving ``uri``'s scheme."""
    scheme = _scheme(uri)
    with _lock:
        store = _stores.get(scheme)
        if store is not None:
            return store
        factory = _factories.get(scheme)
        if factory is None:
            supported = ", ".join(f"{s}://" for s in sorted(_factories))
            if not scheme:
                raise StorageError(
                    f"{uri!r} is not a URI; supported schemes: {supported} "
                    "(vam.storage.to_uri turns a local path into one)"
                )
            raise StorageError(
                f"unsupported URI scheme {scheme!r} in {uri!r}; supported schemes: {supported}"
            )
        store = factory()
        _stores[scheme] = store
        return store


def parse_uri(uri: str) -> tuple[str, str, str]:
    """``(scheme, bucket_or_root, key)``: ``s3://b/k/x`` -> ``("s3", "b", "k/x")``;
    ``file:///data/a%20b`` -> ``("file", "/", "data/a b")`` (percent-escapes decoded)."""
    scheme = _scheme(uri)
    if not scheme:
        raise StorageError(
            f"{uri!r} is not a URI (expected scheme://...); vam.storage.to_uri turns a path into one"
        )
    rest = str(uri).partition("://")[2]
    if scheme == "file":
        from vam.storage.file import file_uri_to_path

        path = str(file_uri_to_path(uri))
        key = path.lstrip("/")
        if str(uri).endswith("/") and key and not key.endswith("/"):
            key += "/"
        return scheme, "/", key
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{uri!r} has no bucket or host; expected {scheme}://bucket/key")
    return scheme, bucket, key


def uri_join(base: str, *parts: str) -> str:
    """Append key segments to a URI: ``uri_join("s3://b/x/", "a", "v1/f.ts")`` -> ``"s3://b/x/a/v1/f.ts"``.

    Empty segments are dropped; a trailing ``/`` on the last part is kept (a prefix). ``.`` and
    ``..`` segments are refused. Segments of ``file://`` URIs are percent-escaped like
    ``Path.as_uri()`` does.
    """
    segments: list[str] = []
    for part in parts:
        for segment in str(part).split("/"):
            if segment in (".", ".."):
                raise StorageError(f"refusing relative segment {segment!r} in {part!r} joined to {base!r}")
            if segment:
                segments.append(quote(segment) if _scheme(base) == "file" else segment)
    if not segments:
        return base
    head = str(base)
    while head.endswith("/") and not head.endswith("://"):
        head = head[:-1]
    joined = head + ("" if head.endswith("://") and _scheme(base) != "file" else "/") + "/".join(segments)
    if str(parts[-1]).endswith("/"):
        joined += "/"
    return joined


def to_uri(path_or_uri: str | os.PathLike[str]) -> str:
    """A URI for ``path_or_uri``: URIs are returned unchanged, a local path becomes an absolute
    ``file://`` URI."""
    if isinstance(path_or_uri, str) and "://" in path_or_uri:
        return path_or_uri
    path = os.path.abspath(os.path.expanduser(os.fspath(path_or_uri)))
    return Path(path).as_uri()


def _hash_stream(stream: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    read = 0
    while chunk := stream.read(CHUNK_SIZE):
        digest.update(chunk)
        read += len(chunk)
    return digest.hexdigest(), read


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a local file, read in 1 MiB chunks."""
    try:
        with open(path, "rb") as stream:
            return _hash_stream(stream)[0]
    except FileNotFoundError:
        raise StorageError(f"no file at {path}") from None


def sha256_object(uri: str) -> str:
    """Hex SHA-256 of the object at ``uri``, streamed in 1 MiB chunks (read locally when it is a file)."""
    return hash_object(uri)[0]


def hash_object(uri: str) -> tuple[str, int]:
    """``(hex SHA-256, bytes read)`` of the object at ``uri``: the byte count tells whether the
    object still had the size listed while it was read."""
    store = store_for(uri)
    local = store.local_path(uri)
    if local is not None:
        if not local.is_file():
            raise StorageError(f"no object at {uri}")
        with open(local, "rb") as stream:
            return _hash_stream(stream)
    with store.open_read(uri) as stream:
        return _hash_stream(stream)


def _same_object(src_uri: str, dst_uri: str, src_store: ObjectStore, dst_store: ObjectStore) -> bool:
    src_local, dst_local = src_store.local_path(src_uri), dst_store.local_path(dst_uri)
    if src_local is not None and dst_local is not None:
        if src_local.exists() and dst_local.exists():
            return os.path.samefile(src_local, dst_local)
        return src_local.resolve() == dst_local.resolve()
    if src_local is not None or dst_local is not None or src_store is not dst_store:
        return False
    return parse_uri(src_uri) == parse_uri(dst_uri)


def transfer(src_uri: str, dst_uri: str, *, storage_class: str | None = None) -> None:
    """Copy an object from one store to another (or between a store and local files), unverified:
    straight to or from a local path where either side has one, else staged in a temp file."""
    src_store, dst_store = store_for(src_uri), store_for(dst_uri)
    src_local, dst_local = src_store.local_path(src_uri), dst_store.local_path(dst_uri)
    if dst_local is not None:
        src_store.get(src_uri, dst_local)
    elif src_local is not None:
        dst_store.put(src_local, dst_uri, storage_class=storage_class)
    else:
        with tempfile.TemporaryDirectory(prefix="vam-copy-") as tmp:
            staged = src_store.get(src_uri, Path(tmp) / (Path(parse_uri(src_uri)[2]).name or "object"))
            dst_store.put(staged, dst_uri, storage_class=storage_class)


def copy_verified(src_uri: str, dst_uri: str, *, storage_class: str | None = None) -> ObjectInfo:
    """Copy an object, within one store or across stores, then prove the copy by re-reading it.

    The destination's SHA-256 must equal the source's; on a mismatch the bad copy is deleted and
    ChecksumMismatch is raised. The source is never modified or deleted.
    """
    src_store, dst_store = store_for(src_uri), store_for(dst_uri)
    if _same_object(src_uri, dst_uri, src_store, dst_store):
        raise StorageError(f"cannot copy {src_uri} onto itself ({dst_uri}); give a different destination")
    expected = sha256_object(src_uri)
    if src_store is dst_store:
        dst_store.copy(src_uri, dst_uri, storage_class=storage_class)
    else:
        transfer(src_uri, dst_uri, storage_class=storage_class)
    actual = sha256_object(dst_uri)
    if actual != expected:
        dst_store.delete(dst_uri)
        log.error("checksum mismatch copying %s to %s; deleted the bad copy", src_uri, dst_uri)
        raise ChecksumMismatch(
            f"copy of {src_uri} (sha256 {expected}) to {dst_uri} read back as sha256 {actual}; "
            "the bad copy was deleted and the source is untouched: retry the copy"
        )
    log.info("copied %s to %s, sha256 %s verified", src_uri, dst_uri, expected)
    return dst_store.head(dst_uri)


def delete_prefix(prefix_uri: str) -> int:
    """Delete every object under ``prefix_uri`` (a "folder": give it a trailing ``/``); for local
    files, the directories left empty under it go too. Returns how many objects were deleted."""
    store = store_for(prefix_uri)
    deleted = 0
    for obj in list(store.list(prefix_uri)):
        store.delete(obj.uri)
        deleted += 1
    local = store.local_path(prefix_uri)
    if local is not None and local.is_dir():
        for dirpath, _dirnames, _files in sorted(os.walk(local), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):  # not empty (a file appeared), or already gone
                os.rmdir(dirpath)
    return deleted
