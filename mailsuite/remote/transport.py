"""What the IMAP and POP3 clients share: connection security, TLS contexts, and turning
whatever goes wrong into a named RemoteError (mailsuite.remote.errors).

When the first exchange fails without saying why (silence, a dropped connection, a failed TLS
handshake), `diagnose` takes one short second look at the port to name what is there: a port
that expects TLS, a plain-text server where TLS was chosen, a web server. It connects afresh,
sends no credentials, and gives up after `PROBE_TIMEOUT` seconds.
"""

from __future__ import annotations

import logging
import socket
import ssl
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from mailsuite.remote.errors import (
    MAIL_PROTOCOLS,
    OTHER_SERVICES,
    Peer,
    RemoteError,
    classify,
    identify,
    remote_error,
)

log = logging.getLogger("mailsuite.remote")

SECURITIES = ("tls", "starttls", "plain")
"""`tls`: TLS from the first byte (993, 995); `starttls`: plain, then STARTTLS / STLS before
login (143, 110); `plain`: no TLS at all (only for servers on a trusted network)."""

PROBE_TIMEOUT = 3.0
"""Seconds each look of `diagnose` may take; a real server answers these at once."""

_HTTP_PROBE = b"HEAD / HTTP/1.0\r\n\r\n"


def check_security(security: str) -> str:
    if security not in SECURITIES:
        raise ValueError(f"security must be one of {', '.join(SECURITIES)}, not {security!r}")
    return security


def tls_context(verify: bool) -> ssl.SSLContext:
    """The system's trusted CAs with host name checks; `verify=False` accepts any certificate
    (the per-account "accept self-signed" switch)."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@contextmanager
def mapped(
    peer: Peer, stage: str, command: str = "", heard: list[bytes] | None = None
) -> Iterator[None]:
    """Whatever is raised inside becomes the RemoteError that names it (errors.classify);
    at the greeting, a failure that names nothing is looked at again (`diagnose`).
    `heard` collects the server's first line as the library reads it."""
    try:
        yield
    except RemoteError:
        raise
    except Exception as exc:
        first = heard[0] if heard else None
        error = classify(exc, peer, stage=stage, command=command, heard=first)
        if stage == "greeting":
            error = diagnose(peer, error, first)
        if error.reason in ("bad_answer", "not_mail"):
            log.info("%s: %s (%s: %s)", peer.where, error, type(exc).__name__, exc)
        raise error from None


def diagnose(peer: Peer, error: RemoteError, heard: bytes | None = None) -> RemoteError:
    """A better name for a greeting that failed without one (silence, a hang-up, a failed
    TLS handshake), from a fresh look at the port; `error` itself when the look tells
    nothing more. Never raises."""
    if heard:
        return error
    try:
        if error.reason == "not_tls":
            return _plain_port(peer, error)
        if error.reason in ("timeout", "closed"):
            if peer.security == "tls":
                better = _plain_port(peer, error)
                if better is not error:
                    return better
            return _silent(peer, error)
    except Exception:  # a second look must never hide the first answer
        log.debug("probe of %s failed", peer.where, exc_info=True)
    return error


def _silent(peer: Peer, error: RemoteError) -> RemoteError:
    """The server sent no greeting: a TLS port reached without TLS, or a web server."""
    if peer.security != "tls":
        if _speaks_tls(peer):
            return remote_error("tls_required", peer)
        found = identify(_answer(peer, tls=False))
    else:
        found = identify(_answer(peer, tls=True))
    return _named(peer, found, error)


def _plain_port(peer: Peer, error: RemoteError) -> RemoteError:
    """TLS was chosen and the port answered in plain text (or hung up): what is there?"""
    heard = _first_bytes(peer)
    found = identify(heard) if heard else identify(_answer(peer, tls=False))
    if found == peer.protocol:
        return remote_error("not_tls", peer, found=found)
    return _named(peer, found, error)


def _named(peer: Peer, found: str, error: RemoteError) -> RemoteError:
    if found in MAIL_PROTOCOLS and found != peer.protocol:
        return remote_error("wrong_protocol", peer, found=found)
    if found in OTHER_SERVICES:
        return remote_error("other_service", peer, found=found)
    if found == "unknown":
        return remote_error("not_mail", peer, found=found)
    return error


def _connect(peer: Peer) -> socket.socket:
    return socket.create_connection(
        (peer.host, peer.port), timeout=min(peer.timeout, PROBE_TIMEOUT)
    )


def _speaks_tls(peer: Peer) -> bool:
    """Whether a TLS handshake succeeds on the port (any certificate: we only ask)."""
    context = tls_context(verify=False)
    try:
        with _connect(peer) as raw, context.wrap_socket(raw, server_hostname=peer.host):
            return True
    except (OSError, ValueError):
        return False


def _first_bytes(peer: Peer) -> bytes:
    """What the server sends unasked on a plain connection within the probe time."""
    try:
        with _connect(peer) as sock:
            return sock.recv(512)
    except OSError:
        return b""


def _answer(peer: Peer, *, tls: bool) -> bytes:
    """The first bytes sent back to an HTTP request (a mail server sends its greeting, or
    an error, or nothing)."""
    try:
        with _connect(peer) as raw:
            sock: socket.socket = raw
            if tls:
                sock = tls_context(verify=False).wrap_socket(raw, server_hostname=peer.host)
            sock.sendall(_HTTP_PROBE)
            return sock.recv(512)
    except OSError:
        return b""


class RemoteSession(ABC):
    """What every read-only remote session shares: its settings, and use as a context
    manager so the session always ends (logout or QUIT). Subclasses provide open/close."""

    protocol = ""

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        user: str,
        password: str,
        timeout: float,
        verify: bool = True,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.security = check_security(security)
        self.user = user
        self._password = password
        self.timeout = float(timeout)
        self.verify = verify
        self.peer = Peer(host, self.port, self.protocol, self.security, self.timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host}:{self.port}, {self.security}, {self.user!r})"

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def open(self) -> None:
        """Connect and log in (done on first use when not called)."""

    @abstractmethod
    def close(self) -> None:
        """End the session politely; never raises."""
