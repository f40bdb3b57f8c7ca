"""``ftp://`` and ``ftps://`` URIs: partners' FTP drops, read mostly (ingest), over stdlib ftplib.

URIs are ``ftp://[user[:password]@]host[:port]/path`` and ``ftps://...`` (explicit TLS: ``AUTH TLS``
then ``PROT P``, so the data channel is encrypted too). The path is sent as it is written (no
percent-decoding; only the userinfo is percent-decoded): ``ftp://h/drop/a.mp4`` is ``drop/a.mp4``
relative to the login directory, as RFC 1738 says, and ``ftp://h//srv/drop/a.mp4`` is the absolute
``/srv/drop/a.mp4``. Paths with CR or LF are refused.

Credentials, first match wins: the URI's userinfo (user and password; a user alone takes the
password registered for that host and user, else ``VAM_FTP_PASSWORD`` when ``VAM_FTP_USER`` is that
user); then credentials registered for the host with ``add_credentials`` (host and port, else host
for any port); then ``VAM_FTP_USER`` / ``VAM_FTP_PASSWORD``; else anonymous. FTPS verifies the
server's certificate against the system CAs, or against the CA file given to ``add_credentials``,
``FTPStore(ca_file=)`` or ``VAM_FTP_CA_FILE``. A registration with ``tls=True`` upgrades
``ftp://`` URIs of that host to explicit TLS as well. Passwords never appear in log lines or
error messages: URIs are shown through ``redact_uri``.

One ``FTPStore`` serves every host: connections are pooled per (host, port, user, password, TLS)
and reused; a connection found broken is dropped and the operation retried on a new one
(``retries`` times), and a broken download resumes where it stopped (``REST``) when the file did
not change meanwhile. Transfers are binary and passive (data connections go to the control
connection's host, whatever PASV says, which suits servers behind NAT); FTPS data connections
reuse the control connection's TLS session, which vsftpd and FileZilla Server require. Implicit
FTPS (port 990) is not supported. Listings use MLSD (MLST for ``head``), else NLST with SIZE and
MDTM on servers without them. ``ObjectInfo.etag`` is ``"{size}-{modify}"``, so a file that changes
is a different object; ``last_modified`` is the server's modification time in UTC, usually to the
second.

Writes go to a hidden ``.{name}.{random}.vam-tmp`` file in the target directory, renamed over the
target when complete (missing directories are created); listings skip such files. FTP has no
server-side copy: ``copy`` streams the object from one connection to another.
"""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import io
import logging
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast
from urllib.parse import unquote

from vam.errors import StorageError
from vam.storage.base import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

ENV_USER = "VAM_FTP_USER"
ENV_PASSWORD = "VAM_FTP_PASSWORD"
ENV_CA_FILE = "VAM_FTP_CA_FILE"
DEFAULT_PORT = 21
ANONYMOUS = ("anonymous", "anonymous@")
BLOCK_SIZE = 256 * 1024
_TMP_SUFFIX = ".vam-tmp"

T = TypeVar("T")

# Errors after which a connection cannot be trusted any more: drop it, retry on a new one.
_BROKEN: tuple[type[BaseException], ...] = (
    OSError,  # includes socket.timeout, ConnectionError, ssl.SSLError
    EOFError,
    ftplib.error_temp,
    ftplib.error_reply,
    ftplib.error_proto,
)


# --------------------------------------------------------------------------- URIs


@dataclass(frozen=True)
class FTPLocation:
    """A parsed ``ftp://`` / ``ftps://`` URI. ``authority`` is the text between ``://`` and the
    path, as given (URIs built from this location keep it)."""

    scheme: str
    host: str
    port: int
    key: str
    authority: str = field(repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.authority}/{key}"


def parse_ftp_uri(uri: str) -> FTPLocation:
    """Split an ``ftp://`` or ``ftps://`` URI into its parts (userinfo percent-decoded)."""
    uri = str(uri)
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("ftp", "ftps"):
        raise StorageError(f"not an ftp:// or ftps:// URI: {redact_uri(uri)!r}")
    authority, _, key = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    user = password = None
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        user = unquote(raw_user) or None
        password = unquote(raw_password) if colon else None
    if hostport.startswith("["):  # [IPv6]:port
        host, _, port_text = hostport[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise StorageError(f"{redact_uri(uri)!r} has no host; expected {scheme}://[user@]host[:port]/path")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise StorageError(f"{redact_uri(uri)!r} has a bad port {port_text!r}") from None
    if not 0 < port < 65536:
        raise StorageError(f"{redact_uri(uri)!r} has a bad port {port}")
    if "\r" in key or "\n" in key:
        raise StorageError(f"{redact_uri(uri)!r}: an FTP path cannot contain CR or LF")
    return FTPLocation(scheme, host.lower(), port, key, authority, user, password)


def redact_uri(uri: str) -> str:
    """``uri`` with the password of its userinfo (if any) replaced by ``***``."""
    uri = str(uri)
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return uri
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{hostport}{slash}{path}"


def _parse_modify(value: str | None) -> datetime | None:
    """An MLSx ``modify`` fact or an MDTM reply (``YYYYMMDDHHMMSS[.sss]``, UTC) as a datetime."""
    if not value:
        return None
    whole, _, fraction = value.strip().partition(".")
    try:
        stamp = datetime.strptime(whole[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    if fraction.isdigit():
        stamp = stamp.replace(microsecond=int((fraction + "000000")[:6]))
    return stamp


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(_TMP_SUFFIX)


# --------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class FTPCredentials:
    """Credentials registered for a host (see ``FTPStore.add_credentials``)."""

    user: str
    password: str = field(repr=False)
    tls: bool | None = None
    ca_file: str | None = None


@dataclass(frozen=True)
class _Endpoint:
    """Everything a connection depends on; the pool key."""

    host: str
    port: int
    user: str
    password_digest: str
    tls: bool
    ca_file: str | None
    password: str = field(default="", repr=False, compare=False)  # the digest stands for it

    @property
    def label(self) -> str:
        return f"{'ftps' if self.tls else 'ftp'}://{self.user}@{self.host}:{self.port}"


class _SessionReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session, as vsftpd
    (``require_ssl_reuse``, on by default) and FileZilla Server demand ("522 session reuse
    required"); servers that do not ask for it are not affected."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            session = getattr(self.sock, "session", None)
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


@dataclass(eq=False)
class _Conn:
    ftp: ftplib.FTP
    endpoint: _Endpoint
    features: set[str]
    home: str
    last_used: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        try:
            self.ftp.quit()
        except Exception:
            self.ftp.close()


class _RetrStream(io.RawIOBase):
    """The data connection of one RETR as a raw binary stream. Closing it after the end of the
    data returns the control connection to the pool; closing it early drops the connection."""

    def __init__(self, store: FTPStore, conn: _Conn, sock: socket.socket, uri: str) -> None:
        super().__init__()
        self._store, self._conn, self._sock, self._uri = store, conn, sock, uri
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._eof:
            return 0
        try:
            n = self._sock.recv_into(buffer)
        except OSError as exc:
            raise StorageError(f"cannot read {self._uri}: {exc}") from exc
        if n == 0:
            self._eof = True
        return n

    def close(self) -> None:
        if self.closed:
            return
        conn, sock = self._conn, self._sock
        if not self._eof:
            sock.close()
            self._store._discard(conn)  # the server still has a transfer in flight: start afresh
        else:
            try:
                if isinstance(sock, ssl.SSLSocket):
                    sock.unwrap()
                sock.close()
                conn.ftp.voidresp()  # "226 Transfer complete"
            except Exception as exc:
                log.debug("end of transfer of %s failed (%s); dropping the connection", self._uri, exc)
                sock.close()
                self._store._discard(conn)
            else:
                self._store._release(conn)
        super().close()


# --------------------------------------------------------------------------- the store


class FTPStore(ObjectStore):
    """Objects on FTP and FTPS servers, any host, through a pool of ftplib connections.

    ``timeout`` (seconds) bounds connecting and every read or write on the control and data
    connections; ``retries`` is how many times an operation is retried on a new connection after
    a connection failure; ``ca_file`` is the CA bundle that FTPS certificates are verified with
    (default: ``VAM_FTP_CA_FILE``, else the system's CAs); ``max_idle`` connections per endpoint
    are kept open; one idle for more than ``check_idle_after`` seconds is tested with NOOP first.
    """

    scheme = "ftp"

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        ca_file: str | os.PathLike[str] | None = None,
        max_idle: int = 4,
        check_idle_after: float = 10.0,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.ca_file = os.fspath(ca_file) if ca_file is not None else None
        self.max_idle = max_idle
        self.check_idle_after = check_idle_after
        self.block_size = block_size
        self._lock = threading.Lock()
        self._idle: dict[_Endpoint, list[_Conn]] = {}
        self._credentials: dict[tuple[str, int | None], FTPCredentials] = {}
        self._contexts: dict[str | None, ssl.SSLContext] = {}

    # ------------------------------------------------------------------ credentials

    def add_credentials(
        self,
        host: str,
        port: int | None,
        user: str,
        password: str,
        *,
        tls: bool | None = None,
        ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        """Use ``user``/``password`` for ``host`` (on ``port``, or on any port when None) when a URI
        carries no password. ``tls=True`` also upgrades that host's ``ftp://`` URIs to explicit
        TLS; ``ca_file`` verifies that host's certificate."""
        key = (host.lower(), port)
        creds = FTPCredentials(user, password, tls, os.fspath(ca_file) if ca_file is not None else None)
        with self._lock:
            self._credentials[key] = creds
        log.debug("registered FTP credentials of %s for %s:%s", user, host, port or "*")

    def remove_credentials(self, host: str, port: int | None = None) -> None:
        """Forget the credentials registered for ``host`` and ``port``."""
        with self._lock:
            self._credentials.pop((host.lower(), port), None)

    def _registered(self, host: str, port: int) -> FTPCredentials | None:
        with self._lock:
            return self._credentials.get((host, port)) or self._credentials.get((host, None))

    def _endpoint(self, loc: FTPLocation) -> _Endpoint:
        reg = self._registered(loc.host, loc.port)
        env_user = os.environ.get(ENV_USER) or None
        env_password = os.environ.get(ENV_PASSWORD, "")
        if loc.user is not None:
            user = loc.user
            if loc.password is not None:
                password = loc.password
            elif reg is not None and reg.user == user:
                password = reg.password
            elif env_user == user:
                password = env_password
            else:
                password = ""
        elif reg is not None:
            user, password = reg.user, reg.password
        elif env_user:
            user, password = env_user, env_password
        else:
            user, password = ANONYMOUS
        tls = loc.scheme == "ftps" or bool(reg is not None and reg.tls)
        ca_file = (reg.ca_file if reg else None) or self.ca_file or os.environ.get(ENV_CA_FILE) or None
        digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
        return _Endpoint(loc.host, loc.port, user, digest, tls, ca_file if tls else None, password)

    # ------------------------------------------------------------------ pool

    def _context(self, ca_file: str | None) -> ssl.SSLContext:
        with self._lock:
            context = self._contexts.get(ca_file)
            if context is None:
                try:
                    context = ssl.create_default_context(cafile=ca_file)
                except (OSError, ssl.SSLError) as exc:
                    raise StorageError(f"cannot load the FTPS CA file {ca_file}: {exc}") from exc
                self._contexts[ca_file] = context
            return context

    def _connect(self, endpoint: _Endpoint) -> _Conn:
        label = endpoint.label
        ftp: ftplib.FTP
        if endpoint.tls:
            ftp = _SessionReusingFTP_TLS(context=self._context(endpoint.ca_file), timeout=self.timeout)
        else:
            ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(endpoint.host, endpoint.port, timeout=self.timeout)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.auth()
            ftp.login(endpoint.user, endpoint.password)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.voidcmd("TYPE I")
            home = ftp.pwd()
        except ssl.SSLCertVerificationError as exc:
            ftp.close()
            raise StorageError(
                f"the certificate of {label} failed verification ({exc.verify_message}); give the "
                f"CA file that signed it in {ENV_CA_FILE} or with add_credentials(ca_file=...)"
            ) from None
        except ftplib.error_perm as exc:
            ftp.close()
            reply = str(exc)
            if reply.startswith("530"):
                raise StorageError(
                    f"login refused by {label} for user {endpoint.user!r} ({reply}); check the "
                    f"credentials (URI userinfo, registered connection, {ENV_USER}/{ENV_PASSWORD})"
                ) from None
            if reply.startswith(("534", "504", "502", "500")) and endpoint.tls:
                raise StorageError(f"{label} does not offer explicit TLS ({reply})") from None
            raise StorageError(f"{label} refused the session: {reply}") from None
        except BaseException:
            ftp.close()
            raise
        features = self._features(ftp)
        log.debug("connected to %s (features: %s)", label, " ".join(sorted(features)))
        return _Conn(ftp, endpoint, features, home)

    @staticmethod
    def _features(ftp: ftplib.FTP) -> set[str]:
        try:
            reply = ftp.sendcmd("FEAT")
        except ftplib.error_perm:
            return set()
        features = set()
        for line in reply.splitlines()[1:-1]:
            word = line.strip().split(" ", 1)[0].upper()
            if word:
                features.add(word)
        if "MLST" in features:
            features.add("MLSD")  # RFC 3659: MLST in FEAT announces both
        return features

    def _acquire(self, endpoint: _Endpoint) -> _Conn:
        while True:
            with self._lock:
                idle = self._idle.get(endpoint)
                conn = idle.pop() if idle else None
            if conn is None:
                return self._connect(endpoint)
            if time.monotonic() - conn.last_used < self.check_idle_after:
                return conn
            try:
                conn.ftp.voidcmd("NOOP")
                return conn
            except Exception:
                log.debug("an idle connection to %s went away; reconnecting", endpoint.label)
                conn.ftp.close()

    def _release(self, conn: _Conn) -> None:
        conn.last_used = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(conn.endpoint, [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def _discard(self, conn: _Conn) -> None:
        with contextlib.suppress(Exception):
            conn.ftp.close()

    def close(self) -> None:
        """Close every idle connection (connections in use close when their operation ends)."""
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()

    def _run(
        self, loc: FTPLocation, uri: str, action: str, fn: Callable[[_Conn], T], *, release: bool = True
    ) -> T:
        """``fn(connection)`` with a pooled connection, retried on a new connection when the
        connection breaks; FTP errors become StorageErrors naming the (redacted) URI."""
        endpoint = self._endpoint(loc)
        for attempt in range(self.retries + 1):
            conn: _Conn | None = None
            try:
                try:
                    conn = self._acquire(endpoint)
                except StorageError as exc:  # login refused, untrusted certificate: no retry
                    raise StorageError(f"cannot {action} {redact_uri(uri)}: {exc}") from None
                result = fn(conn)
            except ftplib.error_perm as exc:  # a normal reply: the connection is fine
                if conn is not None:
                    self._release(conn)
                raise _error(exc, action, uri) from None
            except _BROKEN as exc:
                if conn is not None:
                    self._discard(conn)
                if attempt < self.retries and not isinstance(exc, ssl.SSLCertVerificationError):
                    log.debug("%s %s failed (%s); retrying on a new connection", action, redact_uri(uri), exc)
                    time.sleep(0.1 * (attempt + 1))
                    continue
                raise _error(exc, action, uri) from None
            except BaseException:
                if conn is not None:
                    self._discard(conn)
                raise
            if release:
                self._release(conn)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ facts

    def _stat(self, conn: _Conn, path: str) -> tuple[int, str | None] | None:
        """``(size, modify)`` of the file at ``path``, None when there is no file there."""
        ftp = conn.ftp
        if "MLST" in conn.features:
            try:
                reply = ftp.sendcmd(f"MLST {path}")
            except ftplib.error_perm as exc:
                if str(exc).startswith(("500", "502")):
                    conn.features.discard("MLST")  # announced but not understood
                    return self._stat(conn, path)
                return None
            facts = _mlst_facts(reply)
            if facts.get("type", "file").lower() != "file":
                return None
            if "size" in facts:
                return int(facts["size"]), facts.get("modify")
        ftp.voidcmd("TYPE I")  # SIZE is refused in ASCII mode by many servers
        try:
            size = ftp.size(path)
        except ftplib.error_perm:
            return None
        if size is None:
            return None
        try:
            modify: str | None = ftp.sendcmd(f"MDTM {path}").split(" ", 1)[1].strip()
        except (ftplib.error_perm, IndexError):
            modify = None
        return int(size), modify

    @staticmethod
    def _info(uri: str, size: int, modify: str | None) -> ObjectInfo:
        return ObjectInfo(
            uri=uri,
            size=size,
            etag=f"{size}-{modify}" if modify else str(size),
            last_modified=_parse_modify(modify),
        )

    # ------------------------------------------------------------------ ObjectStore

    def head(self, uri: str) -> ObjectInfo:
        loc = _object_location(uri)
        facts = self._run(loc, uri, "read", lambda c: self._stat(c, loc.key))
        if facts is None:
            raise StorageError(f"no object at {redact_uri(uri)}")
        return self._info(uri, *facts)

    def stat(self, uri: str) -> ObjectInfo | None:
        """``head`` without the exception: None when there is no file at ``uri``."""
        loc = _object_location(uri)
        facts = self._run(loc, uri, "read", lambda c: self._stat(c, loc.key))
        return None if facts is None else self._info(uri, *facts)

    def exists(self, uri: str) -> bool:
        """Whether a file exists at ``uri``. Unlike a missing file, a failure to connect or log in
        is an error (StorageError), not False."""
        key = parse_ftp_uri(uri).key
        if not key or key.endswith("/"):
            return False
        return self.stat(uri) is not None

    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        loc = parse_ftp_uri(prefix_uri)
        entries = self._run(loc, prefix_uri, "list", lambda c: self._walk(c, loc.key))
        for key, size, modify in sorted(entries):
            yield self._info(loc.uri(key), size, modify)

    def _walk(self, conn: _Conn, prefix: str) -> list[tuple[str, int, str | None]]:
        found: list[tuple[str, int, str | None]] = []
        start = prefix[: prefix.rfind("/") + 1]  # the directory part, with its trailing slash
        pending = [start]
        while pending:
            directory = pending.pop()
            for name, kind, size, modify in self._list_dir(conn, directory, top=directory == start):
                if name in (".", "..") or _is_temp(name):
                    continue
                key = directory + name
                if kind == "dir":
                    sub = key + "/"
                    if sub.startswith(prefix) or prefix.startswith(sub):
                        pending.append(sub)
                elif kind == "file" and key.startswith(prefix):
                    if size is None:
                        facts = self._stat(conn, key)
                        if facts is None:
                            continue
                        size, modify = facts
                    found.append((key, size, modify))
        return found

    def _list_dir(
        self, conn: _Conn, directory: str, *, top: bool
    ) -> list[tuple[str, str, int | None, str | None]]:
        """``(name, "file"|"dir"|other, size, modify)`` of a directory's entries; a missing
        directory has none."""
        path = directory.rstrip("/") or ("/" if directory.startswith("/") else "")
        ftp = conn.ftp
        if "MLSD" in conn.features:
            try:
                rows = list(ftp.mlsd(path))
            except ftplib.error_perm as exc:
                if not str(exc).startswith(("500", "502")):
                    return []  # no such directory (or not allowed to list it)
                conn.features.discard("MLSD")
            else:
                out = []
                for name, facts in rows:
                    kind = facts.get("type", "").lower()
                    kind = {"cdir": ".", "pdir": ".."}.get(kind, kind)
                    size = int(facts["size"]) if kind == "file" and "size" in facts else None
                    out.append((name.rsplit("/", 1)[-1], kind, size, facts.get("modify")))
                return out
        try:
            names = ftp.nlst(path) if path else ftp.nlst()
        except ftplib.error_perm:
            return []  # missing directory, or "550 No files found" for an empty one
        out = []
        for raw in names:
            name = raw.rstrip("/").rsplit("/", 1)[-1]
            if not name or name in (".", ".."):
                continue
            key = directory + name
            facts = self._stat(conn, key)
            if facts is not None:
                out.append((name, "file", facts[0], facts[1]))
            elif self._is_dir(conn, key):
                out.append((name, "dir", None, None))
        return out

    @staticmethod
    def _is_dir(conn: _Conn, path: str) -> bool:
        try:
            conn.ftp.cwd(path)
        except ftplib.error_perm:
            return False
        conn.ftp.cwd(conn.home)
        return True

    def get(self, uri: str, dest: Path) -> Path:
        """Download in ``block_size`` chunks to a temporary file beside ``dest``, renamed when
        complete. A broken connection resumes at the bytes already written (REST) when the
        file's size and modification time did not change, else starts over."""
        loc = _object_location(uri)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}{_TMP_SUFFIX}"
        expected = self.head(uri)
        shown = redact_uri(uri)

        def retrieve(conn: _Conn, out: BinaryIO) -> int:
            nonlocal expected
            offset = out.tell()
            if offset:
                facts = self._stat(conn, loc.key)
                if facts is None:
                    raise ftplib.error_perm("550 the file went away during the download")
                now = self._info(uri, *facts)
                if now.etag != expected.etag:
                    out.seek(0)
                    out.truncate()
                    offset, expected = 0, now
                log.info("resuming the download of %s at byte %d", shown, offset)
            conn.ftp.retrbinary(f"RETR {loc.key}", out.write, self.block_size, rest=offset or None)
            return out.tell()

        try:
            with open(tmp, "wb") as out:
                got = self._run(loc, uri, "download", lambda c: retrieve(c, out))
                out.flush()
                os.fsync(out.fileno())
            if got != expected.size:
                now = self.head(uri)
                if got != now.size:
                    raise StorageError(
                        f"{shown} changed while it was downloaded ({got} bytes read, now {now.size} "
                        "bytes); retry when the upload is complete"
                    )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def open_read(self, uri: str) -> BinaryIO:
        loc = _object_location(uri)
        shown = redact_uri(uri)

        def start(conn: _Conn) -> tuple[_Conn, socket.socket]:
            conn.ftp.voidcmd("TYPE I")
            return conn, conn.ftp.transfercmd(f"RETR {loc.key}")

        conn, sock = self._run(loc, uri, "read", start, release=False)
        return cast("BinaryIO", io.BufferedReader(_RetrStream(self, conn, sock, shown), self.block_size))

    def put(
        self, src: Path, uri: str, *, content_type: str | None = None, storage_class: str | None = None
    ) -> ObjectInfo:
        src = Path(src)
        if not src.is_file():
            raise StorageError(f"cannot upload {src} to {redact_uri(uri)}: {src} is not a file")

        def upload(conn: _Conn) -> None:
            with open(src, "rb") as stream:
                self._store(conn, _object_location(uri).key, stream)

        self._run(_object_location(uri), uri, "upload to", upload)
        return self.head(uri)

    def put_bytes(self, data: bytes, uri: str, *, content_type: str | None = None) -> ObjectInfo:
        loc = _object_location(uri)
        self._run(loc, uri, "write", lambda c: self._store(c, loc.key, io.BytesIO(data)))
        return self.head(uri)

    def _store(self, conn: _Conn, key: str, stream: BinaryIO) -> None:
        """Upload ``stream`` to a temporary name beside ``key``, then rename it over ``key``."""
        directory, _, name = key.rpartition("/")
        prefix = directory + "/" if directory or key.startswith("/") else ""
        tmp = f"{prefix}.{name}.{secrets.token_hex(6)}{_TMP_SUFFIX}"
        ftp = conn.ftp
        start = stream.tell() if stream.seekable() else None
        keep_tmp = False
        try:
            try:
                ftp.storbinary(f"STOR {tmp}", stream, self.block_size)
            except ftplib.error_perm as exc:
                # 550/553 before any data moved: the directory is missing. Create it, then again.
                if not str(exc).startswith(("550", "553")) or not directory:
                    raise
                self._makedirs(conn, prefix)
                if start is not None:
                    stream.seek(start)
                ftp.storbinary(f"STOR {tmp}", stream, self.block_size)
            try:
                ftp.rename(tmp, key)
            except ftplib.error_perm:
                if self._stat(conn, key) is None:
                    raise
                ftp.delete(key)  # some servers refuse to rename over a file: replace it in two steps
                keep_tmp = True  # from here the new content exists only in the temporary file
                try:
                    ftp.rename(tmp, key)
                except ftplib.error_perm as exc:
                    raise ftplib.error_perm(f"{exc} (the new content is kept in {tmp})") from None
                keep_tmp = False
        except BaseException:
            if not keep_tmp:
                with contextlib.suppress(Exception):
                    ftp.delete(tmp)
            raise

    @staticmethod
    def _makedirs(conn: _Conn, directory: str) -> None:
        parts = [p for p in directory.split("/") if p]
        path = "/" if directory.startswith("/") else ""
        for part in parts:
            path = f"{path}{part}"
            with contextlib.suppress(ftplib.error_perm):  # exists already
                conn.ftp.mkd(path)
            path += "/"

    def delete(self, uri: str) -> None:
        loc = _object_location(uri)

        def remove(conn: _Conn) -> None:
            try:
                conn.ftp.delete(loc.key)
            except ftplib.error_perm:
                if self._stat(conn, loc.key) is not None:
                    raise  # there is a file and the server refused: report it

        self._run(loc, uri, "delete", remove)

    def copy(self, src_uri: str, dst_uri: str, *, storage_class: str | None = None) -> ObjectInfo:
        src, dst = _object_location(src_uri), _object_location(dst_uri)
        if (src.host, src.port, src.key) == (dst.host, dst.port, dst.key) and self._endpoint(
            src
        ) == self._endpoint(dst):
            return self.head(src_uri)
        with self.open_read(src_uri) as stream:
            # One attempt: the source stream cannot be rewound (the connection-level retries
            # happen before the first byte: opening the source and connecting to the target).
            endpoint = self._endpoint(dst)
            conn = self._acquire_or_error(endpoint, dst_uri)
            try:
                self._store(conn, dst.key, stream)
            except ftplib.error_perm as exc:
                self._release(conn)
                raise _error(exc, "copy to", dst_uri) from None
            except _BROKEN as exc:
                self._discard(conn)
                raise _error(exc, "copy to", dst_uri) from None
            except BaseException:
                self._discard(conn)
                raise
            self._release(conn)
        log.debug("copied %s to %s", redact_uri(src_uri), redact_uri(dst_uri))
        return self.head(dst_uri)

    def _acquire_or_error(self, endpoint: _Endpoint, uri: str) -> _Conn:
        for attempt in range(self.retries + 1):
            try:
                return self._acquire(endpoint)
            except StorageError as exc:
                raise StorageError(f"cannot copy to {redact_uri(uri)}: {exc}") from None
            except _BROKEN as exc:
                if attempt >= self.retries:
                    raise _error(exc, "copy to", uri) from None
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def local_path(self, uri: str) -> Path | None:
        return None


def _object_location(uri: str) -> FTPLocation:
    loc = parse_ftp_uri(uri)
    if not loc.key or loc.key.endswith("/"):
        raise StorageError(
            f"no object at {redact_uri(uri)}: an object URI needs a path that does not end with '/'"
        )
    return loc


def _mlst_facts(reply: str) -> dict[str, str]:
    """The facts of an MLST reply (``250-...`` / `` type=file;size=5;modify=...; /path`` / ``250 End``)."""
    lines = reply.splitlines()
    line = next((ln for ln in lines[1:] if ln.startswith(" ")), lines[1] if len(lines) > 1 else "")
    facts_text = line.strip().split(" ", 1)[0]
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        name, eq, value = fact.partition("=")
        if eq:
            facts[name.strip().lower()] = value
    return facts


def _error(exc: BaseException, action: str, uri: str) -> StorageError:
    """A StorageError for an FTP failure, naming the URI without its password."""
    shown = redact_uri(uri)
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ftplib.error_perm):
        reply = str(exc).strip()
        if reply.startswith("550") and action in ("read", "download"):
            return StorageError(f"no object at {shown} (server: {reply})")
        return StorageError(f"cannot {action} {shown}: the server replied {reply}")
    if isinstance(exc, ftplib.error_temp):
        return StorageError(
            f"cannot {action} {shown}: the server replied {str(exc).strip()} (temporary; retry)"
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return StorageError(f"cannot {action} {shown}: timed out")
    if isinstance(exc, EOFError):
        return StorageError(f"cannot {action} {shown}: the server closed the connection")
    return StorageError(f"cannot {action} {shown}: {exc}")


_default_lock = threading.Lock()
_default: FTPStore | None = None


def default_store() -> FTPStore:
    """The process-wide FTPStore that ``vam.storage.store_for`` serves ftp:// and ftps:// with."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FTPStore()
        return _default


def add_credentials(
    host: str,
    port: int | None,
    user: str,
    password: str,
    *,
    tls: bool | None = None,
    ca_file: str | os.PathLike[str] | None = None,
) -> None:
    """Register credentials for ``host`` on the default store (see ``FTPStore.add_credentials``)."""
    default_store().add_credentials(host, port, user, password, tls=tls, ca_file=ca_file)
