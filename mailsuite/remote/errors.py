"""Why a remote mailbox could not be read: one named reason per failure, whatever the network,
the TLS library, imaplib, poplib or the server did.

Every failure of `RemoteIMAP` and `RemotePOP3` is a `RemoteError` carrying

- `kind`, its family: "connect", "tls", "login" or "protocol". Callers act on it (the importer
  gives up on the first three, the fetcher records it);
- `reason`, the named error a user is shown: one of `REASONS`. The web site has a text per
  reason in each language (`ext.error.<reason>`) and fills it from `params`;
- `params`: host, port, protocol, found (what actually answered), seconds, command, …;
- `str(exc)`: one English sentence for the CLI and the log. It never contains the password.

`classify` is the one place that turns a library or socket exception into a RemoteError;
`identify` names a server from the first bytes it sent. Both are pure (no I/O), so they are
tested with tables of odd inputs; the clients add what only a second look at the port can
tell (mailsuite.remote.transport.diagnose).
"""

from __future__ import annotations

import imaplib
import poplib
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any

PROTOCOL_NAMES = {"imap": "IMAP", "pop3": "POP3"}
MAIL_PROTOCOLS = ("imap", "pop3")
OTHER_SERVICES = ("smtp", "http", "ssh", "ftp")
TLS_PORTS = {"imap": 993, "pop3": 995}
STARTTLS_PORTS = {"imap": 143, "pop3": 110}
SERVICE_NAMES = {"smtp": "an SMTP", "http": "a web (HTTP)", "ssh": "an SSH", "ftp": "an FTP"}


@dataclass(frozen=True)
class Peer:
    """The server a session talks to, as the user configured it."""

    host: str
    port: int
    protocol: str  # "imap" or "pop3"
    security: str  # "tls", "starttls" or "plain"
    timeout: float

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def params(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
            "security": self.security,
            "seconds": f"{self.timeout:g}",
            "tls_port": TLS_PORTS[self.protocol],
            "starttls_port": STARTTLS_PORTS[self.protocol],
        }


class RemoteError(Exception):
    """A remote mailbox could not be read; `str(exc)` is a sentence fit to show the user."""

    kind = "error"

    def __init__(self, message: str, *, reason: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.reason = reason or self.kind
        self.params = params


class ConnectError(RemoteError):
    """No usable session: unknown host, refused, unreachable, timed out, closed, or the port
    is served by something else than the chosen protocol."""

    kind = "connect"


class TLSError(RemoteError):
    """TLS failed: the certificate is not trusted or does not match, the port does not speak
    TLS as chosen, or the server offers no STARTTLS."""

    kind = "tls"


class LoginError(RemoteError):
    """The server refused the user name or password."""

    kind = "login"


class ProtocolError(RemoteError):
    """The server answered something we could not use, or refused a command."""

    kind = "protocol"


class MessageGone(ProtocolError):
    """The message was removed on the server after it was listed."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message, reason="message_gone", **params)


# reason -> (family, English sentence). The sentence is formatted with the peer's params and
# the reason's own (found, detail, command, verb).
REASONS: dict[str, tuple[type[RemoteError], str]] = {
    "unknown_host": (ConnectError, "the server name {host!r} is not known (check the host)"),
    "refused": (ConnectError, "{host}:{port} refused the connection (check the host and port)"),
    "timeout": (ConnectError, "{host}:{port} did not answer within {seconds} s"),
    "closed": (ConnectError, "{host}:{port} closed the connection unexpectedly"),
    "unreachable": (ConnectError, "cannot connect to {host}:{port}: {detail}"),
    "wrong_protocol": (
        ConnectError,
        "{host}:{port} speaks {found_name}, not {protocol_name}; choose {found_name} or the "
        "port of the {protocol_name} server",
    ),
    "other_service": (
        ConnectError,
        "{host}:{port} is {service} server, not {protocol_name}; check the port",
    ),
    "not_mail": (
        ConnectError,
        "{host}:{port} did not answer as {protocol_name} servers do; check the port",
    ),
    "server_busy": (ConnectError, "{host}:{port} turned the session away ({detail})"),
    "cert_self_signed": (
        TLSError,
        "the certificate of {host} is self-signed; if you trust the server, turn on "
        '"accept self-signed"',
    ),
    "cert_expired": (TLSError, "the certificate of {host} has expired"),
    "cert_hostname": (TLSError, "the certificate of {host}:{port} is not issued for {host}"),
    "cert_untrusted": (
        TLSError,
        "the certificate of {host}:{port} could not be verified ({detail}); if the server uses "
        'a self-signed certificate, turn on "accept self-signed"',
    ),
    "not_tls": (
        TLSError,
        "{host}:{port} does not speak TLS from the first byte; choose STARTTLS, or TLS on "
        "port {tls_port}",
    ),
    "tls_required": (
        TLSError,
        "{host}:{port} expects TLS from the first byte; choose TLS (usually port {tls_port})",
    ),
    "no_starttls": (
        TLSError,
        "{host}:{port} does not offer {verb}; choose TLS (usually port {tls_port}) or check "
        "the port",
    ),
    "login_needs_tls": (
        TLSError,
        "{host}:{port} takes passwords only over an encrypted connection; choose TLS or STARTTLS",
    ),
    "tls_failed": (TLSError, "TLS with {host}:{port} failed ({detail})"),
    "login": (LoginError, "the server refused the user name or password{detail_suffix}"),
    "refused_command": (ProtocolError, "the server refused {command}: {detail}"),
    "bad_answer": (ProtocolError, "the server sent an unreadable answer to {command}"),
}


def remote_error(reason: str, peer: Peer | None = None, **params: Any) -> RemoteError:
    """The RemoteError for `reason`, its English sentence filled from `peer` and `params`."""
    family, template = REASONS[reason]
    values: dict[str, Any] = peer.params() if peer is not None else {}
    values.update(params)
    values.setdefault("detail", "")
    protocol = values.get("protocol", "")
    found = values.get("found", "")
    values.setdefault("protocol_name", PROTOCOL_NAMES.get(protocol, protocol.upper()))
    values.setdefault("found_name", PROTOCOL_NAMES.get(found, found.upper()))
    values.setdefault("service", SERVICE_NAMES.get(found, "another"))
    values["detail_suffix"] = f" ({values['detail']})" if values["detail"] else ""
    return family(template.format_map(values), reason=reason, **values)


# -- what answered ---------------------------------------------------------------------------

_SMTP_LIKE = re.compile(rb"^[1-5]\d\d(?:[ -]|\r?$)")


def identify(first: bytes | None) -> str:
    """What kind of server sent `first`, the first bytes it sent: "imap", "pop3", "smtp",
    "ftp", "http", "ssh", "tls" (a TLS record: the port expects TLS), "" (nothing) or
    "unknown" (anything else)."""
    if not first:
        return ""
    head = first[:1024]
    # RFC 8446 5.1: a TLS record starts with its content type (21 alert, 22 handshake) and
    # the legacy version 3.x.
    if head[:1] in (b"\x15", b"\x16") and head[1:2] == b"\x03":
        return "tls"
    text = head.lstrip(b"\r\n").upper()
    # RFC 3501 7.1: greeting = "*" SP (resp-cond-auth / resp-cond-bye)
    if re.match(rb"^\* (OK|PREAUTH|BYE)\b", text):
        return "imap"
    # RFC 1939 3: status indicators "+OK" and "-ERR"
    if text.startswith((b"+OK", b"-ERR")):
        return "pop3"
    if text.startswith(b"HTTP/") or text.startswith((b"<!DOCTYPE HTML", b"<HTML")):
        return "http"
    if text.startswith(b"SSH-"):
        return "ssh"
    # RFC 5321 4.2 and RFC 959 4.2: a three-digit reply code; FTP servers say so.
    if _SMTP_LIKE.match(text):
        return "ftp" if b"FTP" in text.split(b"\n", 1)[0] else "smtp"
    return "unknown"


def is_refusal(first: bytes, protocol: str) -> bool:
    """The server of the right protocol turned the session away in its greeting (POP3
    "-ERR", IMAP "* BYE", RFC 3501 7.1.5)."""
    text = first.lstrip().upper()
    if protocol == "pop3":
        return text.startswith(b"-ERR")
    return text.startswith(b"* BYE")


def server_text(exc: BaseException | bytes | None) -> str:
    """The server's own words from a library exception, for the log and the CLI."""
    if exc is None:
        return ""
    arg: Any = exc
    if isinstance(exc, BaseException):
        arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        text = arg.decode("utf-8", "replace")
    else:
        text = str(arg)
        if text[:2] in ("b'", 'b"') and text[-1:] in ("'", '"'):
            text = text[2:-1]
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text[:200]


# -- one mapping from exceptions to reasons --------------------------------------------------

# OpenSSL X509_V_ERR_* codes (include/openssl/x509_vfy.h)
_SELF_SIGNED = {18, 19}
_EXPIRED = {9, 10}
_HOSTNAME = {62, 64}
# The peer answered the ClientHello with plain text: it does not speak TLS there.
_PLAIN_ANSWER = ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "RECORD_LAYER")

LIBRARY_ERRORS = (imaplib.IMAP4.error, poplib.error_proto)


def classify(
    exc: BaseException, peer: Peer, *, stage: str, command: str = "", heard: bytes | None = None
) -> RemoteError:
    """The RemoteError for `exc`, raised while `stage` ("greeting", "tls", "login" or
    "command") of a session with `peer`; `heard` is the server's first line when one came.

    Every exception maps to some reason, so nothing a server does reaches a user as a
    traceback; an exception seen nowhere before becomes "bad_answer" or "not_mail".
    """
    if isinstance(exc, RemoteError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        detail = getattr(exc, "verify_message", None) or getattr(exc, "reason", None)
        detail = detail or "not trusted"
        if code in _SELF_SIGNED:
            return remote_error("cert_self_signed", peer, detail=detail)
        if code in _EXPIRED:
            return remote_error("cert_expired", peer, detail=detail)
        if code in _HOSTNAME:
            return remote_error("cert_hostname", peer, detail=detail)
        return remote_error("cert_untrusted", peer, detail=detail)
    if isinstance(exc, ssl.SSLError):
        reason = str(getattr(exc, "reason", None) or exc)
        if any(marker in reason.upper() for marker in _PLAIN_ANSWER):
            return remote_error("not_tls", peer, detail=reason)
        if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return remote_error("closed", peer, detail=reason)
        return remote_error("tls_failed", peer, detail=reason)
    if isinstance(exc, socket.gaierror):
        return remote_error("unknown_host", peer)
    if isinstance(exc, TimeoutError):
        return remote_error("timeout", peer)
    if isinstance(exc, ConnectionRefusedError):
        return remote_error("refused", peer)
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError | EOFError):
        return remote_error("closed", peer)
    if isinstance(exc, OSError):
        return remote_error("unreachable", peer, detail=exc.strerror or str(exc) or "network error")
    if stage == "greeting":
        return _greeting_error(exc, peer, heard)
    detail = server_text(exc)
    if _is_eof(exc, detail):
        return remote_error("closed", peer, command=command)
    if stage == "login" and isinstance(exc, LIBRARY_ERRORS):
        if peer.protocol == "pop3" and _plaintext_refused(detail):
            return remote_error("login_needs_tls", peer, detail=detail)
        return remote_error("login", peer, detail=detail)
    if isinstance(exc, imaplib.IMAP4.abort):
        return remote_error("closed", peer, command=command, detail=detail)
    if isinstance(exc, LIBRARY_ERRORS):
        return remote_error("refused_command", peer, command=command or stage, detail=detail)
    return remote_error("bad_answer", peer, command=command or stage, detail=detail)


def _greeting_error(exc: BaseException, peer: Peer, heard: bytes | None) -> RemoteError:
    """The library could not use what the server said first: name what answered instead."""
    found = identify(heard)
    detail = server_text(heard) or server_text(exc)
    if found == "":
        return remote_error("closed", peer, detail=detail)
    if found == "tls":
        return remote_error("tls_required", peer)
    if found in MAIL_PROTOCOLS and found != peer.protocol:
        return remote_error("wrong_protocol", peer, found=found, detail=detail)
    if found in OTHER_SERVICES:
        return remote_error("other_service", peer, found=found, detail=detail)
    if found == peer.protocol and heard is not None and is_refusal(heard, peer.protocol):
        return remote_error("server_busy", peer, detail=detail)
    return remote_error("not_mail", peer, found=found, detail=detail)


def _is_eof(exc: BaseException, detail: str) -> bool:
    """poplib reports a dropped connection as an error reply; imaplib as "socket error"."""
    if isinstance(exc, poplib.error_proto) and detail.startswith("-ERR EOF"):
        return True
    return isinstance(exc, imaplib.IMAP4.abort) and "EOF" in detail


def _plaintext_refused(detail: str) -> bool:
    """A POP3 server that refuses USER/PASS before TLS says so in words (Dovecot:
    "Plaintext authentication disallowed on non-secure (SSL/TLS) connections")."""
    return bool(re.search(r"plaintext|non-secure|ssl/tls|requires? (tls|ssl|stls)", detail, re.I))
