"""A read-only IMAP client over stdlib imaplib.

It only ever EXAMINEs folders and fetches with BODY.PEEK[], so reading never sets \\Seen and
never changes, moves or deletes anything on the server: the class has no method that sends
STORE, EXPUNGE, COPY, MOVE, APPEND, CREATE or DELETE.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mailsuite import mutf7
from mailsuite.remote.errors import MessageGone, ProtocolError, remote_error, server_text
from mailsuite.remote.transport import RemoteSession, mapped, tls_context

# RFC 3501 7.2.2: mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil)
# SP mailbox
_LIST = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>NIL|"(?:[^"\\]|\\.)*") (?P<name>.*)$', re.I)
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")
_UID = re.compile(rb"\bUID (\d+)", re.I)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.I)
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)", re.I)
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
_BATCH = 500  # UIDs per FETCH command, so command lines stay short
_MAXLINE = 1_000_000  # imaplib's own limit on one response line


class _Heard:
    """imaplib reads every line through `readline`; this keeps the first one (the greeting)
    in `heard`, so a greeting imaplib cannot use can still be named (errors.identify)."""

    heard: list[bytes]
    file: Any

    def readline(self) -> bytes:
        line: bytes = self.file.readline(_MAXLINE + 1)
        if not self.heard:
            self.heard.append(line)
        if len(line) > _MAXLINE:
            raise imaplib.IMAP4.error(f"got more than {_MAXLINE} bytes")
        return line


class _IMAP(_Heard, imaplib.IMAP4):
    def __init__(self, host: str, port: int, timeout: float, heard: list[bytes]) -> None:
        self.heard = heard
        super().__init__(host, port, timeout=timeout)


class _IMAP_SSL(_Heard, imaplib.IMAP4_SSL):
    def __init__(
        self, host: str, port: int, timeout: float, heard: list[bytes], context: ssl.SSLContext
    ) -> None:
        self.heard = heard
        super().__init__(host, port, ssl_context=context, timeout=timeout)


def decode_mutf7(raw: bytes) -> str:
    """A folder name from a remote listing (lenient: runs that are not valid stay as-is)."""
    return mutf7.decode_lenient(raw)


def encode_mutf7(name: str) -> str:
    """A folder name as the remote server expects it on the wire."""
    return mutf7.encode(name).decode("ascii")


def _quote(name: str) -> str:
    encoded = encode_mutf7(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(raw: bytes) -> bytes:
    if raw.startswith(b'"') and raw.endswith(b'"') and len(raw) >= 2:
        return re.sub(rb"\\(.)", rb"\1", raw[1:-1])
    return raw


def _message_id(header: bytes) -> str:
    match = _MESSAGE_ID.search(header)
    if not match:
        return ""
    return re.sub(rb"\s+", b"", match.group(1)).decode("ascii", "replace")[:998]


class RemoteIMAP(RemoteSession):
    """One read-only session with a remote IMAP server.

    Connects and logs in on first use (or `open()`); use as a context manager so the session
    is logged out. Every call is bounded by `timeout` seconds of silence from the server.
    Raises ConnectError, TLSError, LoginError or ProtocolError (see mailsuite.remote.errors).
    """

    protocol = "imap"
    _conn: imaplib.IMAP4 | None = None
    _examined: str | None = None

    # -- session ---------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, secure the connection as configured, and log in. Whatever the port
        answers, a RemoteError names it (see mailsuite.remote.errors)."""
        if self._conn is not None:
            return
        context = tls_context(self.verify)
        heard: list[bytes] = []
        with mapped(self.peer, "greeting", heard=heard):
            if self.security == "tls":
                conn: imaplib.IMAP4 = _IMAP_SSL(self.host, self.port, self.timeout, heard, context)
            else:
                conn = _IMAP(self.host, self.port, self.timeout, heard)
        conn._mesg = lambda *args: None  # type: ignore[method-assign]  # never echo commands
        try:
            if self.security == "starttls":
                # RFC 3501 6.2.1: STARTTLS only when the server advertises it.
                if "STARTTLS" not in conn.capabilities:
                    raise remote_error("no_starttls", self.peer, verb="STARTTLS")
                with mapped(self.peer, "tls", "STARTTLS"):
                    conn.starttls(ssl_context=context)
            if "LOGINDISABLED" in conn.capabilities:
                # RFC 3501 6.2.3: the server takes no password on this connection.
                raise remote_error("login_needs_tls", self.peer)
            with mapped(self.peer, "login", "LOGIN"):
                if (self.user + self._password).isascii():
                    conn.login(self.user, self._password)
                else:
                    # RFC 4616: SASL PLAIN carries UTF-8, which LOGIN's atoms cannot.
                    secret = f"\0{self.user}\0{self._password}".encode()
                    conn.authenticate("PLAIN", lambda _: secret)
        except BaseException:
            _shutdown(conn)
            raise
        self._conn = conn

    def close(self) -> None:
        """Log out (best effort) and drop the connection."""
        conn, self._conn, self._examined = self._conn, None, None
        if conn is None:
            return
        try:
            if conn.state == "SELECTED":
                conn.close()  # RFC 3501 6.4.2: after EXAMINE, CLOSE expunges nothing
            conn.logout()
        except Exception:  # the session is over either way
            pass
        _shutdown(conn)

    # -- reading ---------------------------------------------------------------------------

    def folders(self) -> list[tuple[str, str | None, tuple[str, ...]]]:
        """Every folder as (name, hierarchy delimiter or None, flags); names are Unicode."""
        conn = self._session()
        with self._errors("LIST"):
            typ, data = conn.list('""', "*")
        self._check(typ, data, "LIST")
        out: list[tuple[str, str | None, tuple[str, ...]]] = []
        items = iter(data)
        for item in items:
            if item is None:
                continue
            if isinstance(item, tuple):
                line, name = item[0], item[1]
                line = _LITERAL.sub(b"", line).rstrip()
                match = _LIST.match(line + b" x")
            else:
                match = _LIST.match(item)
                name = _unquote(match.group("name")) if match else b""
            if not match:
                raise remote_error("bad_answer", self.peer, command="LIST", detail=repr(item)[:100])
            delim_raw = match.group("delim")
            delim = None if delim_raw.upper() == b"NIL" else _unquote(delim_raw).decode()
            flags = tuple(f.decode("ascii", "replace") for f in match.group("flags").split())
            out.append((decode_mutf7(name), delim, flags))
        return out

    def examine(self, folder: str) -> tuple[int, int | None, int]:
        """EXAMINE `folder` (read-only select); returns (uidvalidity, uidnext or None, count)."""
        conn = self._session()
        with self._errors("EXAMINE"):
            typ, data = conn.select(_quote(folder), readonly=True)  # RFC 3501 6.3.2
        self._check(typ, data, f"EXAMINE {folder}")
        self._examined = folder
        try:
            count = int(data[0] or 0)
            validity = conn.response("UIDVALIDITY")[1][0]
            uidnext = conn.response("UIDNEXT")[1][0]
            return int(validity), (int(uidnext) if uidnext else None), count
        except (TypeError, ValueError, IndexError):
            raise remote_error("bad_answer", self.peer, command=f"EXAMINE {folder}") from None

    def uids(self, folder: str) -> list[int]:
        """Every UID in `folder`, ascending."""
        conn = self._select(folder)
        with self._errors("UID SEARCH"):
            typ, data = conn.uid("SEARCH", "ALL")
        self._check(typ, data, "UID SEARCH")
        return sorted(int(u) for chunk in data if chunk for u in chunk.split())

    def sizes(self, folder: str) -> list[tuple[int, int]]:
        """(uid, size) of every message in `folder`, ascending by UID."""
        _, _, count = self.examine(folder)
        if count == 0:
            return []
        conn = self._session()
        with self._errors("UID FETCH"):
            typ, data = conn.uid("FETCH", "1:*", "(UID RFC822.SIZE)")
        self._check(typ, data, "UID FETCH")
        out: dict[int, int] = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not line:
                continue
            uid, size = _UID.search(line), _SIZE.search(line)
            if uid and size:
                out[int(uid.group(1))] = int(size.group(1))
        return sorted(out.items())

    def message_ids(self, folder: str, uids: list[int]) -> dict[int, tuple[str, int]]:
        """(Message-ID, size) for each of `uids`; the ID is "" when the message has none."""
        conn = self._select(folder)
        out: dict[int, tuple[str, int]] = {}
        for start in range(0, len(uids), _BATCH):
            batch = ",".join(str(u) for u in uids[start : start + _BATCH])
            with self._errors("UID FETCH"):
                typ, data = conn.uid(
                    "FETCH", batch, "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
                )
            self._check(typ, data, "UID FETCH")
            for item in data:
                if not isinstance(item, tuple):
                    continue
                uid, size = _UID.search(item[0]), _SIZE.search(item[0])
                if uid and size:
                    out[int(uid.group(1))] = (_message_id(item[1]), int(size.group(1)))
        return out

    def fetch(self, folder: str, uid: int) -> tuple[bytes, tuple[str, ...], float | None]:
        """One message as (bytes, flags, internal date as a Unix time or None).

        BODY.PEEK[] leaves \\Seen alone (RFC 3501 6.4.5). ProtocolError when the UID is gone.
        """
        conn = self._select(folder)
        with self._errors("UID FETCH"):
            typ, data = conn.uid("FETCH", str(int(uid)), "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        self._check(typ, data, "UID FETCH")
        body: bytes | None = None
        meta = b""
        for item in data:
            if isinstance(item, tuple):
                meta += item[0] + b" "
                if body is None:
                    body = item[1]
            elif item:
                meta += item + b" "
        found = _UID.search(meta)
        if body is None or not found or int(found.group(1)) != int(uid):
            raise MessageGone(f"message {uid} is no longer in {folder!r} on the server")
        flags_match = _FLAGS.search(meta)
        flags = (
            tuple(flags_match.group(1).decode("ascii", "replace").split()) if flags_match else ()
        )
        stamp = imaplib.Internaldate2tuple(meta)
        return body, flags, (time.mktime(stamp) if stamp else None)

    # -- plumbing --------------------------------------------------------------------------

    def _session(self) -> imaplib.IMAP4:
        self.open()
        assert self._conn is not None
        return self._conn

    def _select(self, folder: str) -> imaplib.IMAP4:
        if self._examined != folder:
            self.examine(folder)
        return self._session()

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

    def _check(self, typ: str, data: list, what: str) -> None:
        if typ != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise remote_error(
                "refused_command", self.peer, command=what, detail=server_text(detail or typ)
            )

    def _drop(self) -> None:
        conn, self._conn, self._examined = self._conn, None, None
        if conn is not None:
            _shutdown(conn)


def _shutdown(conn: imaplib.IMAP4) -> None:
    try:
        conn.shutdown()
    except (OSError, AttributeError):
        pass
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.close()
        except OSError:
            pass
