"""Read a byte range of an object from any store, as bounded chunks (memory flat whatever the size).

file:// objects are read with ``os.pread`` from one descriptor; s3:// objects with one ranged GET
(``Range: bytes=a-b``) streamed in chunks; gs:// and az:// through their seekable ranged readers;
any other store (ftp) by reading from the start and skipping to the range.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from vam import storage
from vam.errors import StorageError

CHUNK_SIZE = 1024 * 1024


def read_range(uri: str, start: int, length: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Chunks of at most ``chunk_size`` bytes holding ``length`` bytes of the object from ``start``.
    Raises StorageError when the object ends early (it changed while being read)."""
    if length <= 0:
        return
    store = storage.store_for(uri)
    path = store.local_path(uri)
    if path is not None:
        yield from _read_file(str(path), uri, start, length, chunk_size)
        return
    client = getattr(store, "client", None)
    if store.scheme == "s3" and client is not None:
        yield from _read_s3(client, uri, start, length, chunk_size)
        return
    stream = store.open_read(uri)
    try:
        if start:
            if stream.seekable():
                stream.seek(start)
            else:
                _skip(stream, start, chunk_size)
        left = length
        while left > 0:
            data = stream.read(min(chunk_size, left))
            if not data:
                raise StorageError(f"{uri} ended {left} bytes early: it changed while being read")
            left -= len(data)
            yield data
    finally:
        stream.close()


def _skip(stream, count: int, chunk_size: int) -> None:  # type: ignore[no-untyped-def]
    while count > 0:
        data = stream.read(min(chunk_size, count))
        if not data:
            raise StorageError("the object is shorter than the requested range")
        count -= len(data)


def _read_file(path: str, uri: str, start: int, length: int, chunk_size: int) -> Iterator[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise StorageError(f"no object at {uri}") from None
    try:
        offset, end = start, start + length
        while offset < end:
            data = os.pread(fd, min(chunk_size, end - offset), offset)
            if not data:
                raise StorageError(f"{uri} ended {end - offset} bytes early: it changed while being read")
            offset += len(data)
            yield data
    finally:
        os.close(fd)


def _read_s3(client, uri: str, start: int, length: int, chunk_size: int) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri[len("s3://") :].partition("/")
    try:
        resp = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot read {uri}: {exc}") from exc
    body = resp["Body"]
    try:
        left = length
        for data in body.iter_chunks(chunk_size):
            left -= len(data)
            yield data
        if left > 0:
            raise StorageError(f"{uri} ended {left} bytes early: it changed while being read")
    finally:
        body.close()
