"""``vam upload FILE``: a resumable tus upload to ``vam serve`` (or any tus 1.0 server).

The upload URL(s) are kept in a small JSON state file, keyed by the server, the file's absolute
path, size and modification time: started again after a kill, the upload asks the server for its
offset (HEAD) and sends only what is missing. With ``parallel > 1`` the file is cut into that many
ranges uploaded at once as partial uploads, then concatenated by a final upload (tus
concatenation). Chunks carry an ``Upload-Checksum`` (sha1) so a damaged chunk is refused and sent
again. The single-stream path is tuspy's Uploader; the ranges are tuspy Uploaders over a window of
the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from vam.errors import VamError

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART = 5 * MIB


class UploadError(VamError):
    """The upload could not be made (the message says what the server answered)."""


# -- local state ----------------------------------------------------------------------------------


class StateFile:
    """``{key: {"url": ..., "parts": [...]}}`` in one JSON file, replaced atomically on each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, key: str) -> dict[str, Any]:
        return dict(self._read().get(key) or {})

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        with self._lock:
            data = self._read()
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)


def state_key(server: str, path: Path, chunk_size: int, parallel: int) -> str:
    st = path.stat()
    return f"{server.rstrip('/')}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{chunk_size}|{parallel}"


# -- a window of a file ---------------------------------------------------------------------------


class FileRange:
    """A read-only file-like view of bytes ``[start, start + size)`` of a file (for tuspy)."""

    def __init__(self, path: Path, start: int, size: int) -> None:
        self.f = path.open("rb")
        self.start, self.size, self.pos = start, size, 0

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, min(self.size, base + pos))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n is None or n < 0 else min(n, self.size - self.pos)
        self.f.seek(self.start + self.pos)
        data = self.f.read(n)
        self.pos += len(data)
        return data

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> FileRange:
        return self

    def __exit__(self, *exc: Any) -> None:  # tuspy uses `with uploader.get_file_stream()`
        pass


# -- the upload -----------------------------------------------------------------------------------


class _Sent:
    def __init__(self, progress: Callable[[int, int], None] | None, total: int) -> None:
        self.bytes, self.total, self.progress, self.lock = 0, total, progress, threading.Lock()
        self.done = 0

    def add(self, sent: int, done: int | None = None) -> None:
        with self.lock:
            self.bytes += sent
            if done is not None:
                self.done += done
            if self.progress:
                self.progress(self.done, self.total)


def _uploader(
    endpoint: str,
    headers: dict[str, str],
    *,
    url: str | None,
    chunk_size: int,
    metadata: dict[str, str],
    path: Path | None = None,
    stream: Any = None,
):
    client = tus_client.TusClient(endpoint, headers=headers)
    kwargs = {"chunk_size": chunk_size, "metadata": metadata, "upload_checksum": True, "retries": 3}
    kwargs["retry_delay"] = 1
    source = {"file_path": str(path)} if path is not None else {"file_stream": stream}
    if url:
        try:
            return client.uploader(url=url, **source, **kwargs), True
        except TusCommunicationError as exc:
            if exc.status_code not in (404, 410):
                raise
            log.info("upload %s is gone (%s): starting again", url, exc.status_code)
    return client.uploader(**source, **kwargs), False


def _run(uploader, sent: _Sent, save_url: Callable[[str], None]) -> dict[str, str]:
    """Drive a tuspy uploader chunk by chunk; returns the last answer's headers."""
    if not uploader.url:
        uploader.set_url(uploader.create_url())
        uploader.offset = 0
        save_url(uploader.url)
    size = uploader.get_file_size()
    start = uploader.offset
    sent.add(0, start)
    headers: dict[str, str] = {}
    while uploader.offset < size:
        before = uploader.offset
        length = uploader.get_request_length()
        uploader.upload_chunk()
        sent.add(length, uploader.offset - before)
        headers = uploader.request.response_headers
    return headers


def _head(url: str, headers: dict[str, str]) -> dict[str, str]:
    resp = requests.head(url, headers={**headers, "Tus-Resumable": "1.0.0"}, timeout=60)
    if resp.status_code != 200:
        raise UploadError(f"HEAD {url} answered {resp.status_code}")
    return {k.lower(): v for k, v in resp.headers.items()}


def upload(
    path: str | os.PathLike[str],
    server: str,
    *,
    chunk_size_mib: float = 8,
    parallel: int = 1,
    title: str | None = None,
    tags: str | None = None,
    profile: str | None = None,
    api_key: str | None = None,
    state_path: str | os.PathLike[str],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Upload ``path`` to the tus endpoint ``<server>/files/``, resuming a previous attempt.

    Returns ``{"asset_id", "source_uri", "run", "upload_url", "size_bytes", "resumed_from",
    "sent_bytes", "seconds"}``.
    """
    path = Path(path)
    if not path.is_file():
        raise UploadError(f"{path} is not a file")
    endpoint = server.rstrip("/") + "/files/"
    chunk_size = max(1, int(chunk_size_mib * MIB))
    size = path.stat().st_size
    headers = {"X-Api-Key": api_key} if api_key else {}
    metadata = {"filename": path.name}
    if title:
        metadata["title"] = title
    if tags:
        metadata["tags"] = tags
    if profile:
        metadata["profile"] = profile
    states = StateFile(Path(state_path))
    key = state_key(server, path, chunk_size, parallel)
    state = states.get(key)
    sent = _Sent(progress, size)
    t0 = time.monotonic()
    try:
        if parallel <= 1 or size < 2 * MIN_PART:
            url, answer, resumed = _single(
                endpoint, headers, path, chunk_size, metadata, state, states, key, sent
            )
        else:
            url, answer, resumed = _parallel(
                endpoint, headers, path, chunk_size, parallel, metadata, state, states, key, sent
            )
    except (TusCommunicationError, TusUploadFailed) as exc:
        body = (getattr(exc, "response_content", None) or b"").decode("utf-8", "replace")
        raise UploadError(
            f"the upload to {endpoint} failed ({getattr(exc, 'status_code', None)}): {body or exc}; "
            "run the same command again to resume"
        ) from None
    except requests.RequestException as exc:
        raise UploadError(f"cannot reach {endpoint}: {exc}; run the same command again to resume") from None
    if not answer.get("vam-asset-id"):
        answer = _head(url, headers)
    states.put(key, None)
    return {
        "asset_id": answer.get("vam-asset-id"),
        "source_uri": answer.get("vam-source-uri"),
        "run": answer.get("vam-run") or None,
        "upload_url": url,
        "size_bytes": size,
        "resumed_from": resumed,
        "sent_bytes": sent.bytes,
        "seconds": round(time.monotonic() - t0, 3),
    }


def _single(endpoint, headers, path, chunk_size, metadata, state, states, key, sent):
    uploader, resumed = _uploader(
        endpoint, headers, url=state.get("url"), chunk_size=chunk_size, metadata=metadata, path=path
    )
    offset = uploader.offset if resumed else 0
    answer = _run(uploader, sent, lambda url: states.put(key, {"url": url}))
    return uploader.url, answer, offset


def _ranges(size: int, parallel: int, chunk_size: int) -> list[tuple[int, int]]:
    """``parallel`` ranges, each a multiple of the chunk size and at least 5 MiB (but the last)."""
    unit = max(chunk_size, MIN_PART)
    share = -(-size // parallel)  # ceil
    per = max(unit, -(-share // unit) * unit)  # rounded up to whole chunks: at most `parallel` ranges
    out, start = [], 0
    while start < size:
        n = min(per, size - start)
        out.append((start, n))
        start += n
    return out


def _parallel(endpoint, headers, path, chunk_size, parallel, metadata, state, states, key, sent):
    ranges = _ranges(path.stat().st_size, parallel, chunk_size)
    if state.get("final"):  # concatenated already: only the answer is missing
        return state["final"], {}, path.stat().st_size
    urls: list[str | None] = list(state.get("parts") or [None] * len(ranges))
    if len(urls) != len(ranges):
        urls = [None] * len(ranges)
    lock = threading.Lock()
    resumed = 0

    def one(i: int) -> None:
        nonlocal resumed
        start, n = ranges[i]
        stream = FileRange(path, start, n)
        try:
            uploader, was = _uploader(
                endpoint,
                {**headers, "Upload-Concat": "partial"},
                url=urls[i],
                chunk_size=chunk_size,
                metadata={},
                stream=stream,
            )
            with lock:
                resumed += uploader.offset if was else 0

            def save(url: str) -> None:
                with lock:
                    urls[i] = url
                    states.put(key, {"parts": list(urls)})

            _run(uploader, sent, save)
        finally:
            stream.close()

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for fut in [pool.submit(one, i) for i in range(len(ranges))]:
            fut.result()
    encoded = tus_client.TusClient(endpoint).uploader(file_stream=FileRange(path, 0, 0), metadata=metadata)
    resp = requests.post(
        endpoint,
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Concat": "final;" + " ".join(str(u) for u in urls),
            "Upload-Metadata": ",".join(encoded.encode_metadata()),
        },
        timeout=3600,
    )
    if resp.status_code != 201:
        with contextlib.suppress(ValueError):
            raise UploadError(f"the final concatenation failed ({resp.status_code}): {resp.json()['error']}")
        raise UploadError(f"the final concatenation failed ({resp.status_code}): {resp.text[:300]}")
    answer = {k.lower(): v for k, v in resp.headers.items()}
    url = requests.compat.urljoin(endpoint, answer["location"])
    states.put(key, {"parts": list(urls), "final": url})
    return url, answer, resumed
