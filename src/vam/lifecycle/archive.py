"""Archive classes that need a restore request before a GET works.

S3 Glacier Flexible Retrieval (``GLACIER``) and Deep Archive (``DEEP_ARCHIVE``) and Azure's
``ARCHIVE`` tier answer a read with an error (S3: ``InvalidObjectState``) until a restore request
has been served, which takes hours. Glacier Instant Retrieval and every GCS class are readable at
once. A store may implement ``request_restore(uri, days)`` and ``restore_ready(uri) -> bool``
itself; for :class:`vam.storage.s3.S3Store` they are S3's ``RestoreObject`` and the ``Restore``
header of ``HeadObject``.
"""

from __future__ import annotations

import logging

from vam import storage
from vam.errors import StorageError

log = logging.getLogger(__name__)

ASYNC_CLASSES = {"s3": {"GLACIER", "DEEP_ARCHIVE"}, "az": {"ARCHIVE"}}


def needs_restore(uri: str, storage_class: str | None) -> bool:
    """Whether an object of this class must be restored before it can be read."""
    provider = uri.partition("://")[0].lower()
    return (storage_class or "").upper() in ASYNC_CLASSES.get(provider, set())


def request_restore(uri: str, days: int, tier: str = "Standard") -> None:
    """Ask the store to make the archived object readable for ``days`` (idempotent)."""
    store = storage.store_for(uri)
    custom = getattr(store, "request_restore", None)
    if custom is not None:
        custom(uri, days)
        return
    client = getattr(store, "client", None)
    if store.scheme != "s3" or client is None:
        raise StorageError(f"{uri}: the {store.scheme}:// store cannot restore archived objects")
    from botocore.exceptions import ClientError

    from vam.storage.s3 import split_s3_uri

    bucket, key = split_s3_uri(uri)
    try:
        client.restore_object(
            Bucket=bucket, Key=key, RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier}}
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "RestoreAlreadyInProgress":
            raise StorageError(f"restore request for {uri} failed: {exc}") from exc
    log.info("requested the restore of %s for %d days", uri, days)


def restore_ready(uri: str) -> bool:
    """Whether an archived object's restore has completed (it can be read now)."""
    store = storage.store_for(uri)
    custom = getattr(store, "restore_ready", None)
    if custom is not None:
        return bool(custom(uri))
    client = getattr(store, "client", None)
    if store.scheme != "s3" or client is None:
        return True
    from vam.storage.s3 import split_s3_uri

    bucket, key = split_s3_uri(uri)
    head = client.head_object(Bucket=bucket, Key=key)
    restore = head.get("Restore")
    if restore is None:
        return head.get("StorageClass") not in ASYNC_CLASSES["s3"]
    return 'ongoing-request="false"' in restore
