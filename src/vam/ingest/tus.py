"""The tus 1.0 upload store: resumable uploads kept beside their state, on file:// or s3://.

Each upload has an id and a state object ``<upload_uri>/<id>.info`` (JSON) next to its data, so
any server process can resume it (tusd's layout):

- ``file://``: the data is one part file ``<id>.part``, appended in place; a write starts by
  truncating the file to the recorded offset (bytes of a request that died are dropped).
- ``s3://``: the data is an S3 multipart upload. The body of each PATCH is spooled to a local file
  as it arrives (never held whole in memory); when the bytes not yet in a part reach 5 MiB (S3's
  minimum part size) they are sent as one part (read into memory for the call when at most
  16 MiB, else streamed from the spool), else they are kept as a small ``<id>.tail`` object
  beside the state until the next PATCH. Non-partial uploads write their multipart upload
  straight at the landing key when the landing place is in S3 too (completing it *is* the
  landing, no copy).

While one process sees every byte of an upload in order it keeps the upload's SHA-256 running
(:meth:`TusStore.sha256`), so finishing needs no second read of the object (on S3 the new bytes
are hashed on another thread while their part uploads).

The recorded state is the truth: data past the recorded offset (a part file grown by a request that
died, a tail object written before its state) is ignored and overwritten. One request at a time per
upload: :meth:`TusStore.lock` is an exclusive ``flock`` on a file in a local lock directory
(processes of one host; several hosts need requests of one upload routed to one host).

Errors are :class:`TusError` with the protocol's HTTP status (404, 409, 410, 413, 460...).
This module knows nothing of HTTP frameworks or the catalog.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vam import storage
from vam.errors import StorageError, VamError

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "checksum",
    "expiration",
    "concatenation",
)
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
MIB = 1024 * 1024
MIN_PART = 5 * MIB  # S3's smallest part (but the last)
MAX_PART = 5 * 1024 * MIB
MEMORY_PART = 16 * MIB  # parts up to this size are sent from memory
METADATA_KEYS = ("filename", "title", "profile", "tags", "filetype")
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


class TusError(VamError):
    """A request the tus protocol answers with an error ``status``; ``code`` names it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(upload_id: str) -> TusError:
    return TusError(404, "not_found", f"no upload {upload_id} (never created, or expired and cleaned up)")


# -- state ------------------------------------------------------------------------------------------


@dataclass
class Upload:
    """The recorded state of one upload (the ``.info`` JSON)."""

    id: str
    length: int | None  # None: deferred (creation-defer-length)
    offset: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    expires_at: float = 0.0
    concat: str | None = None  # "partial" | "final" | None
    parts: list[str] = field(default_factory=list)  # a final upload's partial upload ids
    state: str = "open"  # open | complete | landed | terminated
    landed_uri: str | None = None
    result: dict[str, Any] = field(default_factory=dict)  # what finishing returned (asset id...)
    # s3 backend
    key_uri: str | None = None  # the multipart upload's object (s3) or the part file (file)
    s3_upload_id: str | None = None
    s3_parts: list[dict[str, Any]] = field(default_factory=list)  # [{"n", "etag", "size"}]
    tail: int = 0  # bytes kept in the tail object (s3), not yet in a part

    @property
    def complete(self) -> bool:
        return self.length is not None and self.offset >= self.length

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Upload:
        return cls(**json.loads(data))


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be absent)."""
    result: dict[str, str] = {}
    if not header:
        return result
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        if not key or key in result:
            raise TusError(400, "bad_metadata", f"Upload-Metadata: empty or repeated key {key!r}")
        try:
            result[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value else ""
        except (ValueError, UnicodeDecodeError):
            raise TusError(
                400, "bad_metadata", f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text"
            ) from None
    return result


def parse_checksum(header: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: <algorithm> <base64 digest>`` -> (algorithm, digest)."""
    if not header:
        return None
    alg, _, value = header.strip().partition(" ")
    alg = alg.lower()
    if alg not in CHECKSUMS:
        raise TusError(
            400,
            "bad_checksum_algorithm",
            f"Upload-Checksum algorithm {alg!r} is not one of {', '.join(CHECKSUMS)}",
        )
    try:
        return alg, base64.b64decode(value.strip(), validate=True)
    except ValueError:
        raise TusError(400, "bad_checksum", "Upload-Checksum: the digest is not base64") from None


def safe_filename(name: str | None, default: str) -> str:
    """The last path segment of a client-given file name, with unusual characters replaced."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _SAFE_NAME.sub("_", base).strip(". ")
    return base[:200] or default


# -- the writer of one request ----------------------------------------------------------------------


class Writer:
    """Takes the body of one PATCH (or creation-with-upload) in pieces; ``commit`` records it."""

    def __init__(self, store: TusStore, upload: Upload, checksum: tuple[str, bytes] | None) -> None:
        self.store, self.upload, self.checksum = store, upload, checksum
        self.hasher = CHECKSUMS[checksum[0]]() if checksum else None
        self.received = 0
        self.limit = store.limit_for(upload)
        # the SHA-256 of the whole upload, kept while this process sees every byte of it in order
        running = store._sha256.get(upload.id)
        if running is not None and running[0] == upload.offset:
            self.sha256: Any = running[1].copy()
        else:
            self.sha256 = hashlib.sha256() if upload.offset == 0 else None
        self._file, self._path = store._backend.open_writer(store, upload)

    def write(self, data: bytes) -> None:
        if self.limit is not None and self.received + len(data) > self.limit:
            raise TusError(
                413,
                "too_large",
                f"the request carries more than the {self.limit} bytes left in upload {self.upload.id}",
            )
        if self.hasher is not None:
            self.hasher.update(data)
        if self.sha256 is not None and self.store.local_dir is not None:
            self.sha256.update(data)  # on s3 the spool is hashed while its part uploads (commit)
        self._file.write(data)
        self.received += len(data)

    def abort(self) -> None:
        """Drop what this request wrote (nothing is recorded)."""
        with contextlib.suppress(OSError):
            self._file.close()
        self.store._backend.discard(self.store, self.upload, self._path)

    def commit(self, *, interrupted: bool = False) -> Upload:
        """Record the bytes received. A checksum mismatch (or an interrupted request that carried a
        checksum) discards them all: 460 on a mismatch."""
        if self.hasher is not None:
            if interrupted:
                self.abort()
                return self.upload
            if self.hasher.digest() != self.checksum[1]:  # type: ignore[index]
                self.abort()
                raise TusError(
                    460,
                    "checksum_mismatch",
                    f"the {self.checksum[0]} of the {self.received} bytes received does not match"  # type: ignore[index]
                    " Upload-Checksum; the chunk was discarded, send it again",
                )
        self._file.flush()
        if self.store.local_dir is not None:  # the part file is the upload (an S3 spool is not)
            os.fsync(self._file.fileno())
        self._file.close()
        later = self.sha256 if self.store.local_dir is None else None
        upload = self.store._backend.commit(self.store, self.upload, self._path, self.received, later)
        if self.sha256 is not None:
            self.store._sha256[upload.id] = (upload.offset, self.sha256)
        return upload


# -- backends ---------------------------------------------------------------------------------------


class _FileBackend:
    """Data in a local part file beside the state."""

    def data_path(self, store: TusStore, upload: Upload) -> Path:
        return store.local_dir / f"{upload.id}.part"  # type: ignore[operator]

    def init(self, store: TusStore, upload: Upload) -> None:
        path = self.data_path(store, upload)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        upload.key_uri = path.as_uri()

    def open_writer(self, store: TusStore, upload: Upload):
        path = self.data_path(store, upload)
        if not path.exists():
            raise TusError(410, "gone", f"the data of upload {upload.id} is gone")
        f = path.open("r+b")
        f.truncate(upload.offset)  # bytes past the recorded offset belong to no request
        f.seek(upload.offset)
        return f, path

    def discard(self, store: TusStore, upload: Upload, path: Path) -> None:
        with contextlib.suppress(OSError), path.open("r+b") as f:
            f.truncate(upload.offset)

    def commit(
        self, store: TusStore, upload: Upload, path: Path, received: int, sha256: Any = None
    ) -> Upload:
        upload.offset += received
        store.save(upload)
        return upload

    def finish(self, store: TusStore, upload: Upload, target: str) -> str:
        path = self.data_path(store, upload)
        dest_store = storage.store_for(target)
        local = dest_store.local_path(target)
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.parent / f".{local.name}.{secrets.token_hex(4)}.vam-tmp"
            shutil.move(path, tmp)  # a rename on one filesystem
            os.replace(tmp, local)
        else:
            dest_store.put(path, target)
            path.unlink(missing_ok=True)
        return target

    def concat(self, store: TusStore, final: Upload, partials: list[Upload]) -> None:
        path = self.data_path(store, final)
        with path.open("wb") as out:
            for part in partials:
                with self.data_path(store, part).open("rb") as src:
                    shutil.copyfileobj(src, out, MIB)
            out.flush()
            os.fsync(out.fileno())

    def delete(self, store: TusStore, upload: Upload) -> None:
        self.data_path(store, upload).unlink(missing_ok=True)

    def orphans(self, store: TusStore, older_than: float) -> int:
        return 0


class _S3Backend:
    """Data in an S3 multipart upload; the bytes short of a part in a tail object beside the state."""

    def client(self):
        return storage.store_for("s3://x/y").client  # type: ignore[attr-defined]

    def tail_uri(self, store: TusStore, upload: Upload) -> str:
        return store.uri(f"{upload.id}.tail")

    def init(self, store: TusStore, upload: Upload) -> None:
        target = store.target_uri(upload) if upload.concat != "partial" and store.landing_is_s3 else None
        upload.key_uri = target or store.uri(f"{upload.id}.bin")
        bucket, key = storage.parse_uri(upload.key_uri)[1:]
        upload.s3_upload_id = self.client().create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def open_writer(self, store: TusStore, upload: Upload):
        spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the Writer
            prefix=f"vam-tus-{upload.id}-", dir=store.spool_dir, delete=False
        )
        if upload.tail:
            tail = storage.store_for(self.tail_uri(store, upload))
            with tail.open_read(self.tail_uri(store, upload)) as src:
                left = upload.tail
                while left > 0:
                    data = src.read(min(MIB, left))
                    if not data:
                        raise TusError(
                            500, "state_broken", f"upload {upload.id}: the tail object is short; terminate it"
                        )
                    spool.write(data)
                    left -= len(data)
        return spool, Path(spool.name)

    def discard(self, store: TusStore, upload: Upload, path: Path) -> None:
        path.unlink(missing_ok=True)

    def commit(
        self, store: TusStore, upload: Upload, path: Path, received: int, sha256: Any = None
    ) -> Upload:
        hashing = None
        if sha256 is not None and received:  # hash the new bytes while the part uploads (another core)
            hashing = threading.Thread(target=_hash_end, args=(path, received, sha256), daemon=True)
            hashing.start()
        try:
            size = path.stat().st_size  # tail + received
            done = upload.length is not None and upload.offset + received >= upload.length
            if size >= MIN_PART or (done and size > 0):
                with path.open("rb") as f:
                    start = 0
                    while start < size:
                        n = min(MAX_PART, size - start)
                        if size - start - n and size - start - n < MIN_PART:
                            n = size - start - MIN_PART  # never leave a short part behind
                        self._upload_part(store, upload, f, start, n)
                        start += n
                upload.tail = 0
            elif size:
                storage.store_for(self.tail_uri(store, upload)).put(path, self.tail_uri(store, upload))
                upload.tail = size
            if hashing is not None:
                hashing.join()
                hashing = None
            upload.offset += received
            store.save(upload)
        finally:
            if hashing is not None:
                hashing.join()
            path.unlink(missing_ok=True)
        return upload

    def _upload_part(self, store: TusStore, upload: Upload, f, start: int, n: int) -> None:
        bucket, key = storage.parse_uri(upload.key_uri)[1:]  # type: ignore[arg-type]
        number = len(upload.s3_parts) + 1
        f.seek(start)
        # a part up to 16 MiB is read whole (one chunk of one request): boto3 hashes and sends
        # bytes much faster than a file window; larger parts stream from the spool file
        body: Any = f.read(n) if n <= MEMORY_PART else _Slice(f, n)
        resp = self.client().upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload.s3_upload_id,
            PartNumber=number,
            Body=body,
            ContentLength=n,
        )
        upload.s3_parts.append({"n": number, "etag": resp["ETag"], "size": n})

    def _complete(self, upload: Upload) -> None:
        bucket, key = storage.parse_uri(upload.key_uri)[1:]  # type: ignore[arg-type]
        client = self.client()
        if not upload.s3_parts:  # an empty upload: S3 wants at least one part
            resp = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload.s3_upload_id, PartNumber=1, Body=b""
            )
            upload.s3_parts.append({"n": 1, "etag": resp["ETag"], "size": 0})
        client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload.s3_upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p["n"], "ETag": p["etag"]} for p in upload.s3_parts]},
        )
        upload.s3_upload_id = None

    def finish(self, store: TusStore, upload: Upload, target: str) -> str:
        if upload.s3_upload_id:
            self._complete(upload)
            store.save(upload)
        if upload.key_uri == target:
            return target
        storage.copy_verified(upload.key_uri, target)  # type: ignore[arg-type]
        storage.store_for(upload.key_uri).delete(upload.key_uri)  # type: ignore[arg-type]
        return target

    def concat(self, store: TusStore, final: Upload, partials: list[Upload]) -> None:
        for part in partials:
            if part.s3_upload_id:
                self._complete(part)
                store.save(part)
        short = [p.id for p in partials[:-1] if (p.length or 0) < MIN_PART]
        if short:
            raise TusError(
                400,
                "partial_too_small",
                f"partial uploads {', '.join(short)} are under 5 MiB: on S3 every partial upload but the"
                " last must be at least 5 MiB",
            )
        bucket, key = storage.parse_uri(final.key_uri)[1:]  # type: ignore[arg-type]
        client = self.client()
        for part in partials:
            if not part.length:
                continue
            src_bucket, src_key = storage.parse_uri(part.key_uri)[1:]  # type: ignore[arg-type]
            number = len(final.s3_parts) + 1
            resp = client.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=final.s3_upload_id,
                PartNumber=number,
                CopySource={"Bucket": src_bucket, "Key": src_key},
            )
            final.s3_parts.append({"n": number, "etag": resp["CopyPartResult"]["ETag"], "size": part.length})

    def delete(self, store: TusStore, upload: Upload) -> None:
        client = self.client()
        if upload.key_uri:
            bucket, key = storage.parse_uri(upload.key_uri)[1:]
            if upload.s3_upload_id:
                with contextlib.suppress(Exception):
                    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload.s3_upload_id)
            elif upload.state != "landed":
                storage.store_for(upload.key_uri).delete(upload.key_uri)
        storage.store_for(self.tail_uri(store, upload)).delete(self.tail_uri(store, upload))

    def orphans(self, store: TusStore, older_than: float) -> int:
        """Abort multipart uploads under the upload prefix that no state names (older than given)."""
        bucket, prefix = storage.parse_uri(store.upload_uri.rstrip("/") + "/")[1:]
        client = self.client()
        aborted = 0
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for mp in page.get("Uploads", []):
                name = mp["Key"][len(prefix) :].split(".", 1)[0]
                initiated = mp["Initiated"].timestamp()
                if initiated < older_than and not store.exists(name):
                    client.abort_multipart_upload(Bucket=bucket, Key=mp["Key"], UploadId=mp["UploadId"])
                    aborted += 1
        return aborted


def _hash_end(path: Path, n: int, sha256: Any) -> None:
    """Feed the last ``n`` bytes of the file at ``path`` to ``sha256``."""
    with path.open("rb") as f:
        f.seek(-n, os.SEEK_END)
        while data := f.read(MIB):
            sha256.update(data)


class _Slice:
    """A read-only window of ``n`` bytes of an open file from its current position (a part body)."""

    def __init__(self, f, n: int) -> None:
        self.f, self.left, self.start = f, n, f.tell()
        self.n = n

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 0:
            target = pos
        elif whence == 1:
            target = self.tell() + pos
        else:
            target = self.n + pos
        self.f.seek(self.start + target)
        self.left = self.n - target
        return target

    def tell(self) -> int:
        return self.n - self.left

    def __len__(self) -> int:
        return self.n


# -- the store --------------------------------------------------------------------------------------


class TusStore:
    """Uploads under ``upload_uri`` (file:// or s3://), landing under ``landing_uri`` when done."""

    def __init__(
        self,
        upload_uri: str,
        landing_uri: str,
        *,
        expiration_seconds: int = 86400,
        max_bytes: int = 0,
        lock_dir: str | os.PathLike[str] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.upload_uri = upload_uri.rstrip("/")
        self.landing_uri = landing_uri.rstrip("/")
        self.expiration_seconds = expiration_seconds
        self.max_bytes = max_bytes
        scheme = storage.parse_uri(self.upload_uri + "/")[0]
        if scheme == "file":
            self.local_dir: Path | None = storage.store_for(self.upload_uri).local_path(self.upload_uri)
            self.local_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
            self._backend: Any = _FileBackend()
        elif scheme == "s3":
            self.local_dir = None
            self._backend = _S3Backend()
        else:
            raise VamError(f"upload_uri {upload_uri!r}: uploads are kept on file:// or s3:// only")
        self.landing_is_s3 = self.landing_uri.startswith("s3://")
        base = Path(tempfile.gettempdir()) / "vam-tus"
        self.lock_dir = Path(lock_dir) if lock_dir else (self.local_dir or base) / ".locks"
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        self.spool_dir = Path(spool_dir) if spool_dir else base / "spool"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._sha256: dict[str, tuple[int, Any]] = {}  # upload id -> (offset, running SHA-256)

    def sha256(self, upload: Upload) -> str | None:
        """The hex SHA-256 of a complete upload when this process received all of it, else None
        (the caller then reads the landed object back)."""
        running = self._sha256.get(upload.id)
        if running is None or upload.length is None or running[0] != upload.length:
            return None
        return running[1].hexdigest()

    def forget(self, upload_id: str) -> None:
        self._sha256.pop(upload_id, None)

    # -- addressing ----------------------------------------------------------------------------

    def uri(self, name: str) -> str:
        return storage.uri_join(self.upload_uri, name)

    def info_uri(self, upload_id: str) -> str:
        return self.uri(f"{upload_id}.info")

    def target_uri(self, upload: Upload) -> str:
        """Where a finished upload lands: ``<landing>/<id>/<filename>``."""
        name = safe_filename(upload.metadata.get("filename"), f"{upload.id}.bin")
        return storage.uri_join(self.landing_uri, upload.id, name)

    # -- state ---------------------------------------------------------------------------------

    def save(self, upload: Upload) -> None:
        storage.store_for(self.upload_uri).put_bytes(
            upload.to_json(), self.info_uri(upload.id), content_type="application/json"
        )

    def exists(self, upload_id: str) -> bool:
        return storage.store_for(self.upload_uri).exists(self.info_uri(upload_id))

    def load(self, upload_id: str) -> Upload:
        """The upload's state; 404 when unknown; 410 when terminated or expired."""
        if not _ID_RE.match(upload_id):
            raise not_found(upload_id)
        try:
            upload = Upload.from_json(storage.store_for(self.upload_uri).read_bytes(self.info_uri(upload_id)))
        except StorageError:
            raise not_found(upload_id) from None
        if upload.state == "terminated":
            raise TusError(410, "terminated", f"upload {upload_id} was terminated")
        if upload.state == "open" and upload.expires_at and upload.expires_at < time.time():
            raise TusError(410, "expired", f"upload {upload_id} expired; start a new upload")
        return upload

    @contextlib.contextmanager
    def lock(self, upload_id: str, timeout: float = 10.0) -> Iterator[None]:
        """Exclusive hold on one upload (an flock; waits up to ``timeout`` s, then 423)."""
        if not _ID_RE.match(upload_id):
            raise not_found(upload_id)
        fd = os.open(self.lock_dir / f"{upload_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TusError(
                            423, "locked", f"upload {upload_id} is busy with another request; retry"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- operations ----------------------------------------------------------------------------

    def limit_for(self, upload: Upload) -> int | None:
        """How many more bytes the upload takes (None: no limit)."""
        if upload.length is not None:
            return upload.length - upload.offset
        if self.max_bytes:
            return self.max_bytes - upload.offset
        return None

    def check_length(self, length: int) -> None:
        if length < 0:
            raise TusError(400, "bad_length", "Upload-Length must be a non-negative integer")
        if self.max_bytes and length > self.max_bytes:
            raise TusError(
                413,
                "too_large",
                f"Upload-Length {length} is over this server's limit of {self.max_bytes} bytes",
            )

    def create(
        self,
        length: int | None,
        metadata: dict[str, str] | None = None,
        *,
        concat: str | None = None,
        parts: list[str] | None = None,
    ) -> Upload:
        """A new upload (``length`` None: deferred). A final concatenation is built at once from
        its finished partial uploads (``parts``, ids)."""
        now = time.time()
        upload = Upload(
            id=secrets.token_hex(16),
            length=length,
            metadata=dict(metadata or {}),
            created_at=now,
            expires_at=now + self.expiration_seconds if self.expiration_seconds else 0.0,
            concat=concat,
        )
        if length is not None:
            self.check_length(length)
        if concat == "final":
            partials = [self.load(p) for p in parts or []]
            if not partials:
                raise TusError(400, "bad_concat", "Upload-Concat: final needs at least one partial upload")
            for p in partials:
                if p.concat != "partial":
                    raise TusError(400, "bad_concat", f"upload {p.id} is not a partial upload")
                if not p.complete:
                    raise TusError(400, "bad_concat", f"partial upload {p.id} is not finished")
            upload.length = sum(p.length or 0 for p in partials)
            self.check_length(upload.length)
            upload.parts = [p.id for p in partials]
            self._backend.init(self, upload)
            self._backend.concat(self, upload, partials)
            upload.offset = upload.length
            upload.state = "complete"
            self.save(upload)
            for p in partials:
                self._backend.delete(self, p)
                p.state = "terminated"
                self.save(p)
            return upload
        self._backend.init(self, upload)
        self.save(upload)
        log.info("upload %s created (%s bytes)", upload.id, length if length is not None else "deferred")
        return upload

    def writer(self, upload: Upload, offset: int, checksum: tuple[str, bytes] | None = None) -> Writer:
        """Start writing at ``offset`` (must be the recorded offset: 409 otherwise)."""
        self.check_write(upload, offset)
        return Writer(self, upload, checksum)

    def check_write(self, upload: Upload, offset: int) -> None:
        """403 when the upload takes no more bytes, 409 when ``offset`` is not its offset."""
        if upload.state != "open" or upload.concat == "final":
            raise TusError(403, "finished", f"upload {upload.id} is finished; it takes no more bytes")
        if offset != upload.offset:
            raise TusError(
                409,
                "offset_mismatch",
                f"Upload-Offset {offset} is not the upload's offset {upload.offset}: HEAD it and resume",
            )

    def set_length(self, upload: Upload, length: int) -> None:
        """Set a deferred length (once)."""
        if upload.length is not None:
            if upload.length != length:
                raise TusError(400, "length_set", f"upload {upload.id} already has length {upload.length}")
            return
        self.check_length(length)
        if length < upload.offset:
            raise TusError(400, "bad_length", f"Upload-Length {length} is below the offset {upload.offset}")
        upload.length = length
        self.save(upload)

    def touch(self, upload: Upload) -> None:
        if self.expiration_seconds and upload.state == "open":
            upload.expires_at = time.time() + self.expiration_seconds

    def land(self, upload: Upload) -> str:
        """Move a complete upload's data to its landing URI (completing the multipart upload)."""
        target = self.target_uri(upload)
        landed = self._backend.finish(self, upload, target)
        upload.landed_uri = landed
        upload.state = "landed"
        upload.expires_at = time.time() + self.expiration_seconds  # the state is kept this long
        self.save(upload)
        return landed

    def terminate(self, upload: Upload) -> None:
        """Delete the upload's data; its state stays as a tombstone (410) until cleanup."""
        self._backend.delete(self, upload)
        self.forget(upload.id)
        upload.state = "terminated"
        upload.expires_at = time.time() + self.expiration_seconds
        self.save(upload)

    def cleanup(self, now: float | None = None) -> dict[str, int]:
        """Delete expired unfinished uploads (data, multipart parts, state), tombstones past their
        time and S3 multipart uploads no state names. Returns counts."""
        now = time.time() if now is None else now
        counts = {"expired": 0, "tombstones": 0, "orphans": 0}
        st = storage.store_for(self.upload_uri)
        for obj in list(st.list(self.upload_uri + "/")):
            name = obj.uri.rsplit("/", 1)[-1]
            if not name.endswith(".info"):
                continue
            try:
                upload = Upload.from_json(st.read_bytes(obj.uri))
            except (StorageError, ValueError, TypeError):
                continue
            if not upload.expires_at or upload.expires_at > now:
                continue
            if upload.state == "complete" and upload.concat != "partial":
                continue  # finished but not landed yet (a retry of its last request lands it)
            with contextlib.suppress(TusError), self.lock(upload.id, timeout=1.0):
                if upload.state in ("open", "complete"):
                    self._backend.delete(self, upload)
                    counts["expired"] += 1
                else:  # terminated or landed: only the state is left
                    counts["tombstones"] += 1
                st.delete(obj.uri)
                (self.lock_dir / f"{upload.id}.lock").unlink(missing_ok=True)
                log.info("upload %s %s: cleaned up", upload.id, upload.state)
        counts["orphans"] = self._backend.orphans(self, now - self.expiration_seconds)
        return counts
