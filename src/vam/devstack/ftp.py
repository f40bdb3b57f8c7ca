"""FTP and FTPS (explicit TLS) servers on 127.0.0.1 for development and tests (pyftpdlib).
Development servers only: nothing in production imports this package.

``start_ftp_server(root)`` serves ``root`` as the home directory of one user on a free loopback
port, from a background thread with its own pyftpdlib IO loop, until ``stop()``. Passive data
connections are opened on 127.0.0.1 too. With ``tls=True`` the server is an explicit-TLS FTPS
server (``AUTH TLS``; control and data channels must be protected) whose certificate is a
self-signed one made at start with the ``cryptography`` package; ``server.ca_file`` is the file a
client trusts to verify it (``VAM_FTP_CA_FILE`` or ``vam.storage.ftp.add_credentials(ca_file=)``).

CLI, for a server in the foreground until Ctrl-C::

    python -m vam.devstack.ftp ROOT [--port P] [--user U] [--password PW] [--tls]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import logging
import secrets
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vam.devstack._files import write_private
from vam.errors import StorageError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CERT_FILE = "ftps-cert.pem"
KEY_FILE = "ftps-key.pem"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def make_self_signed_cert(
    directory: Path, hosts: Iterable[str] = (LOOPBACK, "localhost"), *, days: int = 7
) -> tuple[Path, Path]:
    """A self-signed certificate (also usable as its own CA file) for ``hosts`` (IP addresses or
    DNS names) and its private key, written to ``directory``; returns ``(cert_path, key_path)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hosts = list(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"vam dev FTPS {hosts[0]}")])
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(key_path, key_pem.decode("ascii"))
    return cert_path, key_path


@dataclass
class FTPDevServer:
    """A running development FTP(S) server; ``stop()`` (or leaving a ``with`` block) ends it."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    root: Path
    tls: bool = False
    ca_file: Path | None = None
    received: list[str] = field(default_factory=list)  # local paths of completed uploads, in order
    connections: int = 0  # control connections accepted so far
    _server: Any = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def scheme(self) -> str:
        return "ftps" if self.tls else "ftp"

    def uri(self, key: str = "", *, credentials: bool = False) -> str:
        """``ftp[s]://host:port/key``; with ``credentials=True`` the user and password are in it."""
        userinfo = f"{self.user}:{self.password}@" if credentials else ""
        return f"{self.scheme}://{userinfo}{self.host}:{self.port}/{key.lstrip('/')}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and close every connection (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise StorageError(
                    f"the FTP server on {self.host}:{self.port} did not stop in {timeout:.0f} s"
                )
            self._thread = None

    def __enter__(self) -> FTPDevServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_class(
    *,
    tls: bool,
    cert: Path | None,
    key: Path | None,
    mlsd: bool,
    passive_ports: Iterable[int] | None,
    on_file_received: Callable[[str], None],
    on_connect: Callable[[], None],
    auth_failed_delay: float,
    send_limit: int,
) -> type:
    """A handler class of its own for one server (pyftpdlib keeps settings in class attributes)."""
    from pyftpdlib import handlers

    if tls:
        if not hasattr(handlers, "TLS_FTPHandler"):
            raise StorageError("pyftpdlib's FTPS handler needs pyOpenSSL: pip install pyopenssl")
        base: type = handlers.TLS_FTPHandler
    else:
        base = handlers.FTPHandler
    commands = dict(base.proto_cmds)
    if not mlsd:  # imitate an old server: listing by NLST, facts by SIZE and MDTM
        commands.pop("MLSD", None)
        commands.pop("MLST", None)

    def _received(self: Any, file: str) -> None:
        on_file_received(file)

    def _connected(self: Any) -> None:
        on_connect()

    attrs: dict[str, Any] = {
        "proto_cmds": commands,
        "passive_ports": list(passive_ports) if passive_ports is not None else None,
        "permit_foreign_addresses": False,
        "timeout": 300,
        "banner": "vam development FTP server ready.",
        "on_file_received": _received,
        "on_connect": _connected,
        "auth_failed_timeout": auth_failed_delay,
    }
    if send_limit:
        if tls:
            raise StorageError("send_limit (throttled downloads) is for the plain FTP server only")
        attrs["dtp_handler"] = type(
            "VamDevThrottledDTP", (handlers.ThrottledDTPHandler,), {"write_limit": send_limit}
        )
    if tls:
        attrs.update(
            certfile=str(cert),
            keyfile=str(key),
            ssl_context=None,  # built from this class's files on first use
            tls_control_required=True,
            tls_data_required=True,
        )
    return type("VamDevTLSHandler" if tls else "VamDevHandler", (base,), attrs)


def start_ftp_server(
    root: str | Path,
    *,
    user: str = "vam",
    password: str | None = None,
    tls: bool = False,
    port: int = 0,
    cert_dir: str | Path | None = None,
    passive_ports: Iterable[int] | None = None,
    mlsd: bool = True,
    perm: str = "elradfmwMT",
    quiet: bool = True,
    auth_failed_delay: float = 0.1,
    send_limit: int = 0,
) -> FTPDevServer:
    """Serve ``root`` (created if missing) on 127.0.0.1 as the home of ``user`` from a background
    thread. ``port=0`` picks a free port; ``password`` None makes a random one. With ``tls=True``
    the server requires explicit TLS on control and data channels, with a self-signed certificate
    written to ``cert_dir`` (default: a new temporary directory). ``mlsd=False`` drops MLSD/MLST, as
    old servers do. ``passive_ports`` limits passive data ports (default: any free port). ``quiet``
    keeps pyftpdlib's per-command log lines out (its logger at WARNING). A failed login is answered
    after ``auth_failed_delay`` seconds (pyftpdlib's default is 3). ``send_limit`` (bytes/s, plain
    FTP only) throttles downloads, e.g. to interrupt one in a test."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

    ftpd_log = logging.getLogger("pyftpdlib")
    if not ftpd_log.handlers:
        # pyftpdlib's IO loop "configures logging" when the pyftpdlib logger has no handler: its own
        # stderr handler, and process-wide changes (no thread names or line numbers in any record).
        ftpd_log.addHandler(logging.NullHandler())
    ftpd_log.setLevel(logging.WARNING if quiet else logging.INFO)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    password = password if password is not None else secrets.token_urlsafe(16)
    cert = key = None
    if tls:
        cert, key = make_self_signed_cert(
            Path(cert_dir) if cert_dir else Path(tempfile.mkdtemp(prefix="vam-ftps-"))
        )
    handle = FTPDevServer(
        host=LOOPBACK, port=0, user=user, password=password, root=root, tls=tls, ca_file=cert
    )
    handler = _handler_class(
        tls=tls,
        cert=cert,
        key=key,
        mlsd=mlsd,
        passive_ports=passive_ports,
        on_file_received=handle.received.append,
        on_connect=lambda: setattr(handle, "connections", handle.connections + 1),
        auth_failed_delay=auth_failed_delay,
        send_limit=send_limit,
    )
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm=perm)
    handler.authorizer = authorizer
    ioloop = IOLoop()
    try:
        server = FTPServer((LOOPBACK, port), handler, ioloop=ioloop)
    except OSError as exc:
        ioloop.close()
        raise StorageError(f"cannot listen on {LOOPBACK}:{port} for the FTP server: {exc}") from exc
    handle.port = int(server.address[1])
    handle._server = server

    def serve() -> None:
        try:
            while not handle._stop.is_set():
                ioloop.loop(0.05, blocking=False)  # one poll: the stop flag is seen within 50 ms
        except Exception:  # pragma: no cover - logged for the developer, the loop is over anyway
            log.exception("the development FTP server on %s:%s failed", LOOPBACK, handle.port)
        finally:
            server.close_all()

    handle._thread = threading.Thread(target=serve, name=f"vam-ftp-{handle.port}", daemon=True)
    handle._thread.start()
    _wait_listening(LOOPBACK, handle.port)
    log.info("%s server on %s:%s serving %s", handle.scheme.upper(), LOOPBACK, handle.port, root)
    return handle


def _wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0) as sock:
                sock.recv(64)  # the banner: the IO loop is serving
                return
        except OSError:
            if time.monotonic() > deadline:
                raise StorageError(
                    f"the FTP server on {host}:{port} did not answer in {timeout:.0f} s"
                ) from None
            time.sleep(0.02)


@contextlib.contextmanager
def ftp_server(root: str | Path, **kwargs: Any) -> Iterator[FTPDevServer]:
    """``start_ftp_server`` as a context manager: the server stops when the block ends."""
    server = start_ftp_server(root, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vam.devstack.ftp", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="directory served as the user's home")
    parser.add_argument("--port", type=int, default=2121)
    parser.add_argument("--user", default="vam")
    parser.add_argument("--password", default=None, help="default: a random one, printed")
    parser.add_argument("--tls", action="store_true", help="explicit FTPS with a self-signed certificate")
    parser.add_argument("--cert-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    server = start_ftp_server(
        args.root,
        user=args.user,
        password=args.password,
        tls=args.tls,
        port=args.port,
        cert_dir=args.cert_dir,
        quiet=False,
    )
    print(f"{server.scheme.upper()} on {server.host}:{server.port}, user {server.user}, root {server.root}")
    print(f"export VAM_FTP_USER={server.user} VAM_FTP_PASSWORD={server.password}")
    if server.ca_file:
        print(f"export VAM_FTP_CA_FILE={server.ca_file}")
    signal.signal(signal.SIGTERM, lambda *_: server._stop.set())  # stop cleanly on SIGTERM too
    try:
        while server.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
