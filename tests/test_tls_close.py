"""The server ends every IMAP and POP3 session after its final reply, over TLS as in plaintext.

RFC 3501 6.1.3 and RFC 1939 6: after the reply to LOGOUT or QUIT the server closes the
connection. Over STARTTLS, STLS and implicit TLS (RFC 8314) it may send a TLS close_notify
first, but the TCP connection must end too: a client that reads until the server hangs up
would otherwise wait forever. Real clients (mbsync, curl, fetchmail, getmail6) must run to
their end on every TLS mode, and a raw client watches the socket itself: a second after the
final reply the stream has ended.

Certificates are verified: the clients trust the suite's self-signed certificate (issued for
mail.example.test, localhost and 127.0.0.1) and nothing else. Every socket goes to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from itertools import count
from pathlib import Path

import pytest

from mailsuite.store import Store
from tests.test_pop3_clients import _deliver_script

from .conftest import Suite

PASSWORD = "Secret123"
HOST = "mail.example.test"  # a name in the certificate; clients are sent to 127.0.0.1
CLOSE_WITHIN = 1.0  # seconds from the final reply to the end of the TCP stream
CLIENT_WITHIN = 30  # seconds a client may take for a two-message mailbox
CLOSED = "closed"

IMAP_GREETING = b"* OK"
IMAP_BYE = b"* BYE "
POP3_OK = b"+OK"

_users = count(1)


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (scripts/test.sh installs it)")
    return path


def verifying(suite: Suite) -> ssl.SSLContext:
    """A client context that trusts the suite's certificate alone and checks the name."""
    context = ssl.create_default_context(cafile=suite.config["paths"]["tls_cert"])
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    return context


def message(n: int, address: str) -> bytes:
    return (
        f"From: sender@example.org\r\nTo: {address}\r\nSubject: close {n}\r\n"
        f"Message-ID: <close{n}.{address}>\r\n\r\nbody {n}\r\n"
    ).encode()


@pytest.fixture
def mailbox(suite: Suite) -> tuple[str, list[bytes]]:
    """A fresh account with two messages in its INBOX."""
    address = f"close{next(_users)}-{time.monotonic_ns()}@example.test"
    suite.add_user(address, PASSWORD)
    bodies = [message(n, address) for n in (1, 2)]
    store = Store(suite.config["paths"]["maildirs"])
    for body in bodies:
        store.deliver([address], body)
    return address, bodies


# -- a client that sees the TLS close and the TCP close apart ------------------------------


class Wire:
    """One client connection whose TLS runs over memory buffers.

    The TCP socket is read directly, so the test can tell the server's TLS close_notify from
    the end of the TCP stream. The client never sends a close_notify of its own: it waits,
    as a client that reads until the server hangs up does.
    """

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.context = context
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls: ssl.SSLObject | None = None
        self.buf = b""
        self.close_notify = False  # the server's TLS close_notify has arrived
        self.eof = False  # the TCP stream has ended

    def start_tls(self) -> None:
        self.tls = self.context.wrap_bio(self.incoming, self.outgoing, server_hostname=HOST)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._push()
                if not self._receive():
                    raise ConnectionError("closed during the TLS handshake") from None
        self._push()

    def _push(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def send(self, data: bytes) -> None:
        if self.tls is None:
            self.sock.sendall(data)
        else:
            self.tls.write(data)
            self._push()

    def _receive(self) -> bool:
        """Take one read from the socket into `buf`; False once the TCP stream has ended."""
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            return False
        if self.tls is None:
            self.buf += chunk
            return True
        if self.close_notify:
            return True  # nothing may follow a close_notify; the stream's end is awaited
        self.incoming.write(chunk)
        while True:
            try:
                data = self.tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.close_notify = True
                break
            if not data:  # how SSLObject.read reports a received close_notify
                self.close_notify = True
                break
            self.buf += data
        self._push()
        return True

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if self.close_notify or not self._receive():
                raise ConnectionError(f"closed; buffered {self.buf!r}")
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def ending(self, within: float) -> str:
        """Wait up to `within` seconds for the TCP stream to end; CLOSED when it did, else
        what the socket looked like when the time was up."""
        deadline = time.monotonic() + within
        try:
            while not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                self._receive()
        except TimeoutError:
            pass
        except ConnectionResetError:
            return "reset by the server instead of closed"
        if self.eof:
            return CLOSED
        tls = "after a TLS close_notify" if self.close_notify else "no TLS close_notify sent"
        return f"still open {within} s after the final reply ({tls})"

    def close(self) -> None:
        self.sock.close()


def imap_session(suite: Suite, mode: str, address: str | None) -> Wire:
    """Greeting, TLS as `mode` says, LOGIN and SELECT when `address` is given."""
    wire = Wire(suite.port("imaps" if mode == "imaps" else "imap"), verifying(suite))
    if mode == "imaps":
        wire.start_tls()
    assert wire.line().startswith(IMAP_GREETING)
    if mode == "starttls":
        wire.send(b"s STARTTLS\r\n")
        assert wire.line().startswith(b"s OK")
        wire.start_tls()
    if address is not None:
        wire.send(f'l LOGIN "{address}" "{PASSWORD}"\r\nx SELECT INBOX\r\n'.encode())
        while not (line := wire.line()).startswith(b"l "):
            pass
        assert line.startswith(b"l OK"), line
        while not (line := wire.line()).startswith(b"x "):
            pass
        assert line.startswith(b"x OK"), line
    return wire


def pop3_session(suite: Suite, mode: str, address: str | None) -> Wire:
    """Greeting, TLS as `mode` says, USER and PASS when `address` is given."""
    wire = Wire(suite.port("pop3s" if mode == "pop3s" else "pop3"), verifying(suite))
    if mode == "pop3s":
        wire.start_tls()
    assert wire.line().startswith(POP3_OK)
    if mode == "stls":
        wire.send(b"STLS\r\n")
        assert wire.line().startswith(POP3_OK)
        wire.start_tls()
    if address is not None:
        wire.send(f"USER {address}\r\n".encode())
        assert wire.line().startswith(POP3_OK)
        wire.send(f"PASS {PASSWORD}\r\n".encode())
        assert wire.line().startswith(POP3_OK)
    return wire


@pytest.mark.parametrize("logged_in", [True, False], ids=["logged-in", "not-logged-in"])
@pytest.mark.parametrize("mode", ["starttls", "imaps", "plain"])
def test_imap_logout_ends_the_connection(
    suite: Suite, mailbox: tuple[str, list[bytes]], mode: str, logged_in: bool
) -> None:
    """After `* BYE` and the tagged OK to LOGOUT, the server ends the TCP connection within
    a second: over STARTTLS and IMAPS as over plaintext."""
    wire = imap_session(suite, mode, mailbox[0] if logged_in else None)
    try:
        wire.send(b"z LOGOUT\r\n")
        assert wire.line().startswith(IMAP_BYE)
        assert wire.line().startswith(b"z OK")
        outcome = wire.ending(CLOSE_WITHIN)
        assert outcome == CLOSED, outcome
    finally:
        wire.close()


@pytest.mark.parametrize("logged_in", [True, False], ids=["logged-in", "not-logged-in"])
@pytest.mark.parametrize("mode", ["stls", "pop3s", "plain"])
def test_pop3_quit_ends_the_connection(
    suite: Suite, mailbox: tuple[str, list[bytes]], mode: str, logged_in: bool
) -> None:
    """After the +OK to QUIT, the server ends the TCP connection within a second: over STLS
    and POP3S as over plaintext."""
    wire = pop3_session(suite, mode, mailbox[0] if logged_in else None)
    try:
        wire.send(b"QUIT\r\n")
        assert wire.line().startswith(POP3_OK)
        outcome = wire.ending(CLOSE_WITHIN)
        assert outcome == CLOSED, outcome
    finally:
        wire.close()


# -- real clients --------------------------------------------------------------------------


def run_client(args: list[str], **kwargs) -> subprocess.CompletedProcess[bytes]:  # type: ignore[no-untyped-def]
    """Run a client to its end; one still running after CLIENT_WITHIN seconds (waiting for
    the server to hang up) fails the test and is killed."""
    try:
        return subprocess.run(args, capture_output=True, timeout=CLIENT_WITHIN, **kwargs)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{Path(args[0]).name} still running after {CLIENT_WITHIN} s\n"
            f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}"
        )


def _count(folder: Path) -> int:
    return sum(len(os.listdir(folder / sub)) for sub in ("cur", "new"))


@pytest.mark.parametrize("mode", ["starttls", "imaps"])
def test_mbsync_finishes_over_tls(
    suite: Suite, mailbox: tuple[str, list[bytes]], tmp_path: Path, mode: str
) -> None:
    """mbsync pulls the INBOX over STARTTLS and over IMAPS and exits on its own. When it
    does not, its protocol trace (-Dn) shows the last exchange it waited after."""
    address, bodies = mailbox
    local = tmp_path / "local"
    local.mkdir()
    port = suite.port("imaps" if mode == "imaps" else "imap")
    cfg = tmp_path / "mbsyncrc"
    # mbsync checks the certificate against the name it dialled; localhost is in it.
    cfg.write_text(
        f"IMAPAccount t\nHost localhost\nPort {port}\nUser {address}\nPass {PASSWORD}\n"
        f"SSLType {'IMAPS' if mode == 'imaps' else 'STARTTLS'}\n"
        f"CertificateFile {suite.config['paths']['tls_cert']}\n\n"
        "IMAPStore remote\nAccount t\n\n"
        f"MaildirStore local\nPath {local}/\nInbox {local}/INBOX\n\n"
        "Channel c\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSyncState *\n"
    )
    result = run_client(
        [_require("mbsync"), "-V", "-Dn", "-c", str(cfg), "-a"],
        env={**os.environ, "HOME": str(tmp_path)},
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    assert "Connection is now encrypted" in output
    assert _count(local / "INBOX") == len(bodies)


CURL_MODES = {
    # mode: (listener, URL scheme, path of message 1, STARTTLS/STLS required)
    "imap-starttls": ("imap", "imap", "INBOX;UID=1", True),
    "imaps": ("imaps", "imaps", "INBOX;UID=1", False),
    "pop3-stls": ("pop3", "pop3", "1", True),
    "pop3s": ("pop3s", "pop3s", "1", False),
}


@pytest.mark.parametrize("mode", list(CURL_MODES))
def test_curl_finishes_over_tls(suite: Suite, mailbox: tuple[str, list[bytes]], mode: str) -> None:
    """curl fetches message 1 over each TLS mode, verifying the certificate, and exits."""
    address, bodies = mailbox
    listener, scheme, path, upgrade = CURL_MODES[mode]
    port = suite.port(listener)
    args = [
        _require("curl"),
        "--silent",
        "--show-error",
        "--noproxy",
        "*",
        "--cacert",
        suite.config["paths"]["tls_cert"],
        "--resolve",
        f"{HOST}:{port}:127.0.0.1",
        "-u",
        f"{address}:{PASSWORD}",
        f"{scheme}://{HOST}:{port}/{path}",
    ]
    if upgrade:
        args.append("--ssl-reqd")
    result = run_client(args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == bodies[0]


@pytest.mark.parametrize("mode", ["stls", "pop3s"])
def test_fetchmail_finishes_over_tls(
    suite: Suite, mailbox: tuple[str, list[bytes]], tmp_path: Path, mode: str
) -> None:
    """fetchmail fetches the INBOX over STLS and over POP3S, checking the certificate, and
    exits."""
    address, bodies = mailbox
    script = _deliver_script(tmp_path)
    out = tmp_path / "out"
    port = suite.port("pop3s" if mode == "pop3s" else "pop3")
    tls = "ssl" if mode == "pop3s" else "sslproto 'tls1.2+'"  # without `ssl`: STLS, required
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll {HOST} via 127.0.0.1 with proto POP3 port {port} uidl\n"
        f'  user "{address}" there with password "{PASSWORD}" is "root" here\n'
        f"  options keep {tls} sslcertck"
        f' sslcertfile "{suite.config["paths"]["tls_cert"]}" sslcommonname "{HOST}"\n'
        f'  mda "{script}"\n'
    )
    rc.chmod(0o600)
    env = {**os.environ, "FETCHMAILHOME": str(tmp_path), "HOME": str(tmp_path)}
    result = run_client([_require("fetchmail"), "-f", str(rc), "-N", "--nosyslog", "-v"], env=env)
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    if mode == "stls":
        assert "POP3> STLS" in output, output
    assert len(list(out.iterdir())) == len(bodies)


def test_getmail_finishes_over_pop3s(
    suite: Suite, mailbox: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    """getmail6 fetches the INBOX over POP3S, checking the certificate, and exits. (getmail6
    speaks POP3 in plaintext or over implicit TLS only; it has no STLS.)"""
    address, bodies = mailbox
    script = _deliver_script(tmp_path)
    out = tmp_path / "out"
    rc = tmp_path / "getmailrc"
    rc.write_text(
        "[retriever]\n"
        "type = SimplePOP3SSLRetriever\n"
        "server = 127.0.0.1\n"
        f"port = {suite.port('pop3s')}\n"
        f"ca_certs = {suite.config['paths']['tls_cert']}\n"
        f"ssl_cert_hostname = {HOST}\n"
        f"username = {address}\n"
        f"password = {PASSWORD}\n"
        "[destination]\n"
        "type = MDA_external\n"
        f"path = {script}\n"
        "allow_root_commands = true\n"  # CI may run as root; the script only writes files
        "[options]\n"
        "delete = false\n"
        "read_all = false\n"
        "verbose = 2\n"
    )
    result = run_client([_require("getmail"), "--getmaildir", str(tmp_path), "--rcfile", str(rc)])
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    assert len(list(out.iterdir())) == len(bodies)
