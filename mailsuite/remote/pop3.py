"""A read-only POP3 client over stdlib poplib.

It lists (UIDL) and retrieves (RETR) and nothing else: the class has no method that sends
DELE, so messages stay on the server whatever happens to the session (QUIT commits nothing
when nothing was deleted, RFC 1939 6).
"""

from __future__ import annotations

import poplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from mailsuite.remote.errors import ProtocolError, remote_error
from mailsuite.remote.transport import RemoteSession, mapped, tls_context

MAX_LINE = 1024 * 1024
"""Longest line accepted. poplib's own limit (2048) fails on real mail with long HTML or
base64 lines; RFC 5322's 998 is widely ignored by senders."""


class _Lines:
    """poplib reads lines through `_getline`; this raises its limit and keeps the first line
    (the greeting) in `heard`, so a greeting poplib cannot use can still be named."""

    heard: list[bytes]

    def _getline(self) -> tuple[bytes, int]:  # same contract as poplib.POP3._getline
        line = self.file.readline(MAX_LINE + 1)  # type: ignore[attr-defined]
        if not self.heard:
            self.heard.append(line)
        if len(line) > MAX_LINE:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


class _POP3(_Lines, poplib.POP3):
    def __init__(self, host: str, port: int, timeout: float, heard: list[bytes]) -> None:
        self.heard = heard
        super().__init__(host, port, timeout=timeout)


class _POP3_SSL(_Lines, poplib.POP3_SSL):
    def __init__(
        self, host: str, port: int, timeout: float, heard: list[bytes], context: ssl.SSLContext
    ) -> None:
        self.heard = heard
        super().__init__(host, port, context=context, timeout=timeout)


class RemotePOP3(RemoteSession):
    """One read-only session with a remote POP3 server.

    Connects and logs in on first use (or `open()`); use as a context manager so the session
    ends with QUIT. Every call is bounded by `timeout` seconds of silence from the server.
    Raises ConnectError, TLSError, LoginError or ProtocolError (see mailsuite.remote.errors).
    """

    protocol = "pop3"
    _conn: poplib.POP3 | None = None

    # -- session ---------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, secure the connection as configured, and log in (USER/PASS). Whatever
        the port answers, a RemoteError names it (see mailsuite.remote.errors)."""
        if self._conn is not None:
            return
        context = tls_context(self.verify)
        heard: list[bytes] = []
        with mapped(self.peer, "greeting", heard=heard):
            if self.security == "tls":
                conn: poplib.POP3 = _POP3_SSL(self.host, self.port, self.timeout, heard, context)
            else:
                conn = _POP3(self.host, self.port, self.timeout, heard)
        try:
            if self.security == "starttls":
                with mapped(self.peer, "tls", "STLS"):
                    try:
                        conn.stls(context=context)  # RFC 2595 4
                    except poplib.error_proto as exc:
                        if "EOF" in str(exc):
                            raise  # hung up: "closed", not a missing STLS
                        raise remote_error("no_starttls", self.peer, verb="STLS") from None
            with mapped(self.peer, "login", "USER"):
                conn.user(self.user)
                conn.pass_(self._password)
        except BaseException:
            _shutdown(conn)
            raise
        self._conn = conn

    def close(self) -> None:
        """QUIT (best effort) and drop the connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except Exception:  # the session is over either way
            pass
        _shutdown(conn)

    # -- reading ---------------------------------------------------------------------------

    def uidl(self) -> list[tuple[int, str]]:
        """(message number, unique id) of every message (RFC 1939 7: UIDL)."""
        conn = self._session()
        with self._errors("UIDL"):
            _, lines, _ = conn.uidl()
        out: list[tuple[int, str]] = []
        for line in lines:
            number, _, uid = line.decode("ascii", "replace").strip().partition(" ")
            if not number.isdigit() or not uid:
                raise remote_error("bad_answer", self.peer, command="UIDL", detail=repr(line[:100]))
            out.append((int(number), uid.strip()))
        return out

    def sizes(self) -> dict[int, int]:
        """Message number -> size in octets (RFC 1939 5: LIST)."""
        conn = self._session()
        with self._errors("LIST"):
            _, lines, _ = conn.list()
        out: dict[int, int] = {}
        for line in lines:
            parts = line.split()
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                out[int(parts[0])] = int(parts[1])
        return out

    def retr(self, msgno: int) -> bytes:
        """The whole message `msgno` with CRLF line ends, dot-stuffing removed."""
        conn = self._session()
        with self._errors("RETR"):
            _, lines, _ = conn.retr(int(msgno))
        return b"\r\n".join(lines) + b"\r\n" if lines else b""

    # -- plumbing --------------------------------------------------------------------------

    def _session(self) -> poplib.POP3:
        self.open()
        assert self._conn is not None
        return self._conn

    @contextmanager
    def _errors(self, command: str) -> Iterator[None]:
        """Map library errors of one command; a broken connection is dropped."""
        try:
            with mapped(self.peer, "command", command):
                yield
        except ProtocolError:
            raise
        except Exception:
            self._drop()
            raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            _shutdown(conn)


def _shutdown(conn: poplib.POP3) -> None:
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.close()
        except OSError:
            pass
