"""The object-store interface every storage backend implements.

Objects are addressed by URI (``file:///abs/path``, ``s3://bucket/key``). A store works on the
URIs of its own scheme; ``vam.storage.store_for(uri)`` picks the right one.
"""

from __future__ import annotations

import abc
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from vam.errors import StorageError


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object. ``etag`` and ``storage_class`` are None where the
    backend has no such notion (local files)."""

    uri: str
    size: int
    etag: str | None = None
    last_modified: datetime | None = None
    storage_class: str | None = None


class ObjectStore(abc.ABC):
    """A flat namespace of immutable-by-convention objects addressed by URI.

    Writes are atomic: a reader sees the old object or the new one, never a partial one.
    """

    scheme: str = ""

    @abc.abstractmethod
    def head(self, uri: str) -> ObjectInfo:
        """Metadata of the object at ``uri``; StorageError ("no object at URI") when missing."""

    def exists(self, uri: str) -> bool:
        """Whether an object exists at ``uri``."""
        try:
            self.head(uri)
        except StorageError:
            return False
        return True

    @abc.abstractmethod
    def get(self, uri: str, dest: Path) -> Path:
        """Download the object to the local file ``dest`` (atomically: temp file + rename)."""

    @abc.abstractmethod
    def put(
        self, src: Path, uri: str, *, content_type: str | None = None, storage_class: str | None = None
    ) -> ObjectInfo:
        """Upload the local file ``src`` to ``uri``, replacing any object there."""

    @abc.abstractmethod
    def put_bytes(self, data: bytes, uri: str, *, content_type: str | None = None) -> ObjectInfo:
        """Write ``data`` as the object at ``uri``, replacing any object there."""

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of the object at ``uri`` (for small objects: manifests, JSON)."""
        with self.open_read(uri) as stream:
            return stream.read()

    @abc.abstractmethod
    def open_read(self, uri: str) -> BinaryIO:
        """A binary stream over the object's content; the caller closes it."""

    @abc.abstractmethod
    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        """Every object whose URI starts with ``prefix_uri`` (recursive), sorted by key."""

    @abc.abstractmethod
    def delete(self, uri: str) -> None:
        """Delete the object at ``uri``; deleting a missing object is not an error."""

    @abc.abstractmethod
    def copy(self, src_uri: str, dst_uri: str, *, storage_class: str | None = None) -> ObjectInfo:
        """Copy an object within this store (server-side where the backend can)."""

    def local_path(self, uri: str) -> Path | None:
        """The local file behind ``uri`` when there is one (callers may then skip a download)."""
        return None


READ_CHUNK_SIZE = 8 * 1024 * 1024


class RangeReader(io.RawIOBase):
    """A read-only raw stream over an object of known ``size`` that fetches ranges on demand
    (``fetch(offset, length) -> bytes``); wrap it in io.BufferedReader. For backends whose reads
    are ranged requests (gs, az)."""

    def __init__(self, size: int, fetch: Callable[[int, int], bytes], chunk_size: int = READ_CHUNK_SIZE):
        self.size = size
        self._fetch = fetch
        self._pos = 0
        self._chunk = chunk_size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def _next(self, length: int) -> bytes:
        data = self._fetch(self._pos, length)
        if not data:
            raise StorageError(f"short read at offset {self._pos} of {self.size}: the object changed?")
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        length = min(len(view), self.size - self._pos)
        if length <= 0:
            return 0
        data = self._next(length)
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        parts = []
        while self._pos < self.size:
            parts.append(self._next(min(self._chunk, self.size - self._pos)))
        return b"".join(parts)
