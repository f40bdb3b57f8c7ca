"""A storage wrapper that answers like S3 does for an archived object (SeaweedFS does not emulate it).

Objects whose storage class (as the real store underneath reports it) is GLACIER or DEEP_ARCHIVE
cannot be read or copied until a restore request has been served: reads fail with S3's
``InvalidObjectState``; ``request_restore`` starts a restore that completes after ``delay`` seconds
(hours on AWS), after which ``restore_ready`` is true and reads work. Everything else goes to the
real store (SeaweedFS), so bytes, classes and listings are real."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, BinaryIO

from vam.errors import StorageError
from vam.storage.base import ObjectStore

ARCHIVED = {"GLACIER", "DEEP_ARCHIVE"}


class GlacierLikeStore(ObjectStore):
    scheme = "s3"

    def __init__(self, inner: ObjectStore, delay: float = 1.0) -> None:
        self.inner = inner
        self.delay = delay
        self.requests: dict[str, float] = {}  # uri -> when the restore completes

    def _readable(self, uri: str) -> None:
        info = self.inner.head(uri)
        if (info.storage_class or "").upper() in ARCHIVED and not self.restore_ready(uri):
            raise StorageError(
                f"InvalidObjectState: {uri} is in {info.storage_class}; request a restore first"
            )

    def request_restore(self, uri: str, days: int) -> None:
        self.inner.head(uri)
        self.requests.setdefault(uri, time.monotonic() + self.delay)

    def restore_ready(self, uri: str) -> bool:
        done = self.requests.get(uri)
        return done is not None and time.monotonic() >= done

    def head(self, uri: str):
        return self.inner.head(uri)

    def get(self, uri: str, dest: Path) -> Path:
        self._readable(uri)
        return self.inner.get(uri, dest)

    def open_read(self, uri: str) -> BinaryIO:
        self._readable(uri)
        return self.inner.open_read(uri)

    def read_bytes(self, uri: str) -> bytes:
        self._readable(uri)
        return self.inner.read_bytes(uri)

    def put(self, src: Path, uri: str, **kw: Any):
        return self.inner.put(src, uri, **kw)

    def put_bytes(self, data: bytes, uri: str, **kw: Any):
        return self.inner.put_bytes(data, uri, **kw)

    def list(self, prefix_uri: str):
        return self.inner.list(prefix_uri)

    def delete(self, uri: str) -> None:
        self.requests.pop(uri, None)
        self.inner.delete(uri)

    def copy(self, src_uri: str, dst_uri: str, *, storage_class: str | None = None):
        self._readable(src_uri)
        return self.inner.copy(src_uri, dst_uri, storage_class=storage_class)
