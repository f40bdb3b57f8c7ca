"""Signed playback tokens: HMAC-SHA256 over a key id, an expiry and a path prefix.

A token authorises every path under its prefix until its expiry, like a CloudFront custom policy
with a wildcard resource. It is carried in the URL *path* (``/v/{token}/{asset_id}/...``), so the
relative URIs inside HLS and DASH manifests resolve to URLs that carry it too.

Token format (URL-safe, no padding)::

    v1.{kid}.{expires}.{b64url(prefix)}.{b64url(HMAC-SHA256(key, "v1\\n{kid}\\n{expires}\\n{prefix}"))}

``expires`` is a Unix time in seconds. Keys come from the ``signing_keys`` setting
(``kid:secret,kid:secret``; the first signs, every listed key verifies) or, when that is empty,
from ``{home}/keys/signing.json``, generated once (written atomically: the first writer wins, so
``vam url`` and ``vam serve`` always agree). :func:`rotate` puts a new key first and keeps the
previous one active, so URLs signed before a rotation keep working until they expire.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vam.errors import VamError

log = logging.getLogger(__name__)

VERSION = "v1"
KEYS_FILE = ("keys", "signing.json")
ACTIVE_KEYS = 2  # the signing key and the one before it
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_RELOAD_S = 5.0


class SigningError(VamError):
    """Signing keys that cannot be read or are malformed."""


class TokenError(VamError):
    """A token that does not authorise the request; ``reason`` says why (missing, malformed,
    unknown_key, bad_signature, expired, wrong_path)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Key:
    kid: str
    secret: bytes


@dataclass(frozen=True)
class Grant:
    """What a verified token allows: paths under ``prefix`` until ``expires``."""

    kid: str
    expires: int
    prefix: str


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _message(kid: str, expires: int, prefix: str) -> bytes:
    return f"{VERSION}\n{kid}\n{expires}\n{prefix}".encode()


def parse_keys(text: str) -> list[Key]:
    """Keys from the ``signing_keys`` setting: ``kid:secret[,kid:secret]`` (secret: >= 16 chars)."""
    keys = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kid, sep, secret = item.partition(":")
        if not sep or not _KID_RE.match(kid) or len(secret) < 16:
            raise SigningError(
                f"signing_keys entry {kid or item[:8]!r}: write kid:secret with a key id of letters, digits,"
                " - or _ and a secret of at least 16 characters (e.g. k2:$(openssl rand -hex 32))"
            )
        keys.append(Key(kid, secret.encode()))
    return keys


def keys_path(home: str | os.PathLike[str]) -> Path:
    return Path(home).joinpath(*KEYS_FILE)


def _new_key() -> dict[str, str | int]:
    return {"kid": secrets.token_hex(4), "secret": secrets.token_urlsafe(32), "created": int(time.time())}


def _read_file(path: Path) -> list[Key]:
    try:
        data = json.loads(path.read_text())
        return [Key(str(k["kid"]), str(k["secret"]).encode()) for k in data["keys"]][:ACTIVE_KEYS]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SigningError(
            f"cannot read the signing keys in {path}: {exc}; fix or delete the file (deleting it"
            " invalidates every signed URL)"
        ) from exc


def _write_atomically(path: Path, data: dict[str, object], *, replace: bool) -> bool:
    """Write ``data`` as JSON to ``path`` (mode 0600). Without ``replace`` an existing file wins
    (returns False). The file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    try:
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails when another process wrote the file first
            return True
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def load_file_keys(home: str | os.PathLike[str]) -> list[Key]:
    """The keys in the data directory, generated on first use."""
    path = keys_path(home)
    if not path.exists() and _write_atomically(path, {"keys": [_new_key()]}, replace=False):
        log.info("generated a playback signing key in %s", path)
    return _read_file(path)


def rotate(home: str | os.PathLike[str]) -> list[str]:
    """Put a new key first in the data directory's key file; the previous signing key stays active
    (verifies only), older ones are dropped. Returns the active key ids, signing key first. A
    running service picks the change up within a few seconds."""
    path = keys_path(home)
    current = json.loads(path.read_text())["keys"] if path.exists() else []
    keys = [_new_key(), *current][:ACTIVE_KEYS]
    _write_atomically(path, {"keys": keys}, replace=True)
    return [str(k["kid"]) for k in keys]


class KeyRing:
    """The active keys: the configured ones, or the data directory's file (re-read when it
    changes, at most every few seconds, so a rotation reaches a running service)."""

    def __init__(self, configured: str, home: str | os.PathLike[str]) -> None:
        self._configured = parse_keys(configured) if configured.strip() else None
        self._home = Path(home)
        self._lock = threading.Lock()
        self._keys: list[Key] = []
        self._stamp: float | None = None
        self._checked = 0.0
        self._load()

    def _load(self) -> None:
        if self._configured is not None:
            self._keys = self._configured
            return
        path = keys_path(self._home)
        keys = load_file_keys(self._home)
        self._keys, self._stamp, self._checked = keys, path.stat().st_mtime_ns, time.monotonic()

    def keys(self, *, recheck_s: float = _RELOAD_S) -> list[Key]:
        if self._configured is None and time.monotonic() - self._checked > recheck_s:
            with self._lock:
                self._checked = time.monotonic()
                try:
                    stamp = keys_path(self._home).stat().st_mtime_ns
                except FileNotFoundError:
                    stamp = None
                if stamp != self._stamp:
                    self._load()
        return self._keys

    def sign(self, prefix: str, ttl_seconds: int, *, now: float | None = None) -> tuple[str, int]:
        """A token for every path under ``prefix`` valid ``ttl_seconds`` from now: (token, expires)."""
        key = self.keys()[0]
        expires = int((time.time() if now is None else now) + ttl_seconds)
        return make_token(key, prefix, expires), expires

    def verify(self, token: str | None, path: str, *, now: float | None = None) -> Grant:
        """The grant of ``token`` when it authorises ``path``; TokenError otherwise. A token of an
        unknown key makes the key file be checked again at once (at most once a second): it may
        have been rotated by ``vam signing-key rotate`` a moment ago."""
        try:
            return verify_token(self.keys(), token, path, now=now)
        except TokenError as exc:
            if exc.reason != "unknown_key" or self._configured is not None:
                raise
            return verify_token(self.keys(recheck_s=1.0), token, path, now=now)


def make_token(key: Key, prefix: str, expires: int) -> str:
    sig = hmac.new(key.secret, _message(key.kid, expires, prefix), hashlib.sha256).digest()
    return ".".join((VERSION, key.kid, str(expires), _b64e(prefix.encode()), _b64e(sig)))


def verify_token(keys: list[Key], token: str | None, path: str, *, now: float | None = None) -> Grant:
    """Check ``token`` against ``keys`` for ``path`` (no leading slash, e.g. ``ASSET/hls/x.m4s``)."""
    if not token:
        raise TokenError("missing", "a signed URL is required: get one with `vam url ASSET_ID`")
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != VERSION or not parts[2].isdigit():
        raise TokenError("malformed", "the playback token is malformed: sign the URL again with `vam url`")
    _, kid, expires_text, prefix_b64, sig_b64 = parts
    try:
        prefix, sig = _b64d(prefix_b64).decode(), _b64d(sig_b64)
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed", "the playback token is malformed: sign the URL again") from None
    key = next((k for k in keys if k.kid == kid), None)
    if key is None:
        raise TokenError(
            "unknown_key", f"the token's signing key {kid!r} is not active (rotated out?): sign the URL again"
        )
    expected = hmac.new(key.secret, _message(kid, int(expires_text), prefix), hashlib.sha256).digest()
    if not hmac.compare_digest(sig, expected):
        raise TokenError("bad_signature", "the playback token's signature does not match: it was altered")
    if int(expires_text) < (time.time() if now is None else now):
        raise TokenError("expired", f"the playback token expired at {expires_text} (Unix time): sign again")
    if not path.startswith(prefix) or ".." in path.split("/"):
        raise TokenError("wrong_path", f"the playback token does not cover {path!r} (it covers {prefix!r}*)")
    return Grant(kid, int(expires_text), prefix)
