"""``file://`` URIs: objects are plain files under absolute paths.

Writes go to a hidden temporary file in the target's directory, are fsync'ed, then renamed over
the target with ``os.replace``, so a reader never sees a partial object. Temporary files are
skipped by ``list``. Content types and storage classes do not apply and are ignored.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from vam.errors import StorageError
from vam.storage.base import ObjectInfo, ObjectStore

_CHUNK = 1024 * 1024
_TMP_SUFFIX = ".vam-tmp"


def file_uri_to_path(uri: str) -> Path:
    """The absolute local path of a ``file://`` URI (percent-escapes decoded)."""
    if not uri.startswith("file://"):
        raise StorageError(f"not a file:// URI: {uri!r}")
    rest = uri[len("file://") :]
    host, sep, path = rest.partition("/")
    if host not in ("", "localhost"):
        raise StorageError(
            f"file URI {uri!r} names host {host!r}; only local files (file:///path) are supported"
        )
    if not sep:
        raise StorageError(f"file URI {uri!r} has no path; expected file:///absolute/path")
    return Path("/" + unquote(path))


def _may_match(directory: str, prefix: str) -> bool:
    return directory.startswith(prefix) or prefix.startswith(directory)


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(_TMP_SUFFIX)


def _atomic_write(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``target`` through a temporary file in its directory, fsync, then ``os.replace``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}{_TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_file_atomic(src: Path, target: Path) -> None:
    with src.open("rb") as source:
        _atomic_write(target, lambda out: shutil.copyfileobj(source, out, _CHUNK))


class FileStore(ObjectStore):
    """Objects as files on the local filesystem, addressed by ``file:///absolute/path``."""

    scheme = "file"

    def _path(self, uri: str) -> Path:
        return file_uri_to_path(uri)

    def _info(self, uri: str, path: Path) -> ObjectInfo:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise StorageError(f"no object at {uri}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {uri}: {exc}") from exc
        if not path.is_file():
            raise StorageError(f"no object at {uri}: {path} is not a regular file")
        modified = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        return ObjectInfo(uri=uri, size=st.st_size, etag=None, last_modified=modified, storage_class=None)

    def head(self, uri: str) -> ObjectInfo:
        return self._info(uri, self._path(uri))

    def exists(self, uri: str) -> bool:
        return self._path(uri).is_file()

    def get(self, uri: str, dest: Path) -> Path:
        src = self._path(uri)
        dest = Path(dest)
        if not src.is_file():
            raise StorageError(f"no object at {uri}")
        if dest.exists() and dest.samefile(src):
            return dest
        try:
            _copy_file_atomic(src, dest)
        except FileNotFoundError:
            raise StorageError(f"no object at {uri}") from None
        except OSError as exc:
            raise StorageError(f"cannot copy {uri} to {dest}: {exc}") from exc
        return dest

    def put(
        self, src: Path, uri: str, *, content_type: str | None = None, storage_class: str | None = None
    ) -> ObjectInfo:
        target = self._path(uri)
        src = Path(src)
        if not src.is_file():
            raise StorageError(f"cannot upload {src} to {uri}: {src} is not a file")
        if target.exists() and target.samefile(src):
            return self.head(uri)
        try:
            _copy_file_atomic(src, target)
        except OSError as exc:
            raise StorageError(f"cannot write {uri}: {exc}") from exc
        return self.head(uri)

    def put_bytes(self, data: bytes, uri: str, *, content_type: str | None = None) -> ObjectInfo:
        target = self._path(uri)
        try:
            _atomic_write(target, lambda out: out.write(data))
        except OSError as exc:
            raise StorageError(f"cannot write {uri}: {exc}") from exc
        return self.head(uri)

    def read_bytes(self, uri: str) -> bytes:
        path = self._path(uri)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise StorageError(f"no object at {uri}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {uri}: {exc}") from exc

    def open_read(self, uri: str) -> BinaryIO:
        path = self._path(uri)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise StorageError(f"no object at {uri}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {uri}: {exc}") from exc

    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        prefix = str(self._path(prefix_uri))
        if prefix_uri.endswith("/") and not prefix.endswith("/"):
            prefix += "/"
        base = prefix if prefix.endswith("/") else os.path.dirname(prefix)
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base or "/"):
            # descend only into directories that can hold matching files
            dirnames[:] = [d for d in dirnames if _may_match(os.path.join(dirpath, d) + "/", prefix)]
            for name in filenames:
                full = os.path.join(dirpath, name)
                if not _is_temp(name) and full.startswith(prefix):
                    found.append(full)
        for full in sorted(found):
            path = Path(full)
            try:
                yield self._info(path.as_uri(), path)
            except StorageError:
                continue  # deleted or replaced by a directory since the walk

    def delete(self, uri: str) -> None:
        path = self._path(uri)
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError:
            raise StorageError(f"cannot delete {uri}: it is a directory, not an object") from None
        except OSError as exc:
            raise StorageError(f"cannot delete {uri}: {exc}") from exc

    def copy(self, src_uri: str, dst_uri: str, *, storage_class: str | None = None) -> ObjectInfo:
        src = self._path(src_uri)
        if not src.is_file():
            raise StorageError(f"no object at {src_uri}")
        self.put(src, dst_uri)
        return self.head(dst_uri)

    def local_path(self, uri: str) -> Path:
        return self._path(uri)
