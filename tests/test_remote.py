"""The read-only remote clients against Dovecot, a server we did not write."""

from __future__ import annotations

import imaplib
import poplib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsuite.remote import (
    REASONS,
    ConnectError,
    LoginError,
    MessageGone,
    ProtocolError,
    RemoteError,
    RemoteIMAP,
    RemotePOP3,
    TLSError,
    decode_mutf7,
    encode_mutf7,
)
from mailsuite.remote.errors import Peer, classify, identify
from tests.dovecot import PASSWORD, Dovecot, message
from tests.peers import Peers

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    server = Dovecot(tmp_path_factory.mktemp("dovecot")).start()
    yield server
    server.stop()


def imap(server: Dovecot, user: str = "alice", **kw: object) -> RemoteIMAP:
    args: dict = {"security": "starttls", "password": PASSWORD, "timeout": 10, "verify": False}
    args.update(kw)
    port = server.ports["imaps" if args["security"] == "tls" else "imap"]
    return RemoteIMAP("127.0.0.1", port, user=user, **args)


def pop3(server: Dovecot, user: str = "alice", **kw: object) -> RemotePOP3:
    args: dict = {"security": "starttls", "password": PASSWORD, "timeout": 10, "verify": False}
    args.update(kw)
    port = server.ports["pop3s" if args["security"] == "tls" else "pop3"]
    return RemotePOP3("127.0.0.1", port, user=user, **args)


@pytest.mark.parametrize(
    "name", ["INBOX", "Zażółć gęślą jaźń", "a&b", "日本語", "Sent & Received", "x/y"]
)
def test_modified_utf7_round_trips(name: str) -> None:
    """Folder names survive the wire encoding both ways (RFC 3501 5.1.3)."""
    assert decode_mutf7(encode_mutf7(name).encode()) == name


def test_known_modified_utf7_names() -> None:
    assert decode_mutf7(b"&AQUBGQFC-") == "ąęł"
    assert encode_mutf7("Entw&APw-rfe") == "Entw&-APw-rfe"
    assert decode_mutf7(b"Entw&APw-rfe") == "Entwürfe"


def test_imap_reads_folders_messages_and_leaves_them_unread(dovecot: Dovecot) -> None:
    """EXAMINE and BODY.PEEK[]: after reading, the server still shows the message unseen."""
    first = message(1, "pierwsza")
    dovecot.put("alice", first)
    dovecot.put("alice", message(2), folder="Praca.2026")
    dovecot.put("alice", message(3), folder="Zażółć")
    for security in ("starttls", "tls"):
        with imap(dovecot, security=security) as client:
            folders = {name: (delim, flags) for name, delim, flags in client.folders()}
            assert {"INBOX", "Praca", "Praca.2026", "Zażółć"} <= set(folders)
            assert folders["Praca.2026"][0] == "."
            assert "\\Noselect" in folders["Praca"][1]
            validity, uidnext, count = client.examine("INBOX")
            assert validity > 0 and count == 1 and uidnext == 2
            assert client.uids("INBOX") == [1]
            assert client.sizes("INBOX") == [(1, len(first))]
            data, flags, when = client.fetch("INBOX", 1)
            assert data == first
            assert "\\Seen" not in flags and when is not None
            assert client.message_ids("INBOX", [1])[1][1] == len(first)
            assert client.uids("Zażółć") == [1]
    with imap(dovecot) as client:
        _, flags, _ = client.fetch("INBOX", 1)
        assert "\\Seen" not in flags
    check = imaplib.IMAP4("127.0.0.1", dovecot.ports["imap"])
    check.login("alice", PASSWORD)
    check.select("INBOX")
    assert check.search(None, "UNSEEN")[1] == [b"1"]
    check.logout()


def test_imap_fetch_of_a_vanished_uid_is_a_protocol_error(dovecot: Dovecot) -> None:
    with imap(dovecot, user="bob") as client, pytest.raises(MessageGone):
        client.fetch("INBOX", 999)


def test_pop3_lists_and_retrieves_without_deleting(dovecot: Dovecot) -> None:
    """UIDL and RETR over TLS and STLS; the messages are still there afterwards."""
    big = message(7, size=300_000) + b"y" * 5000 + b"\r\n.dot line\r\n"
    dovecot.put("bob", big)
    dovecot.put("bob", message(8))
    for security in ("tls", "starttls"):
        with pop3(dovecot, user="bob", security=security) as client:
            listing = client.uidl()
            assert [n for n, _ in listing] == [1, 2]
            sizes = client.sizes()
            assert client.retr(1) == big
            assert sizes[1] == len(big)
    with pop3(dovecot, user="bob") as client:
        assert len(client.uidl()) == 2


def test_certificates_are_verified_by_default(dovecot: Dovecot) -> None:
    """A self-signed certificate is refused unless the account accepts self-signed."""
    for make, security in ((imap, "tls"), (imap, "starttls"), (pop3, "tls"), (pop3, "starttls")):
        with pytest.raises(TLSError, match="accept self-signed"):
            make(dovecot, security=security, verify=True).open()


def test_wrong_password_is_a_login_error(dovecot: Dovecot) -> None:
    with pytest.raises(LoginError, match="user name or password"):
        imap(dovecot, password="wrong").open()
    with pytest.raises(LoginError, match="user name or password"):
        pop3(dovecot, password="wrong", security="plain").open()


def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectError, match="refused"):
        RemoteIMAP("127.0.0.1", port, "tls", "a", "b", 5).open()
    with pytest.raises(ConnectError, match="refused"):
        RemotePOP3("127.0.0.1", port, "plain", "a", "b", 5).open()


def test_silent_server_times_out() -> None:
    """A server that accepts and never speaks is given up on after the timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    thread = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        with pytest.raises(ConnectError, match="did not answer within 1 s"):
            RemotePOP3("127.0.0.1", listener.getsockname()[1], "plain", "a", "b", 1).open()
    finally:
        for sock in held:
            sock.close()
        listener.close()


def test_starttls_not_offered_is_a_tls_error(tmp_path: Path) -> None:
    """A POP3 server without STLS: the password is never sent in the clear."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"+OK ready\r\n")
            file = conn.makefile("rb")
            for line in file:
                seen.append(line)
                if line.upper().startswith(b"QUIT"):
                    conn.sendall(b"+OK bye\r\n")
                    return
                conn.sendall(b"-ERR unknown command\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(TLSError, match="does not offer STLS"):
            RemotePOP3("127.0.0.1", listener.getsockname()[1], "starttls", "u", "pw", 5).open()
    finally:
        listener.close()
        thread.join(5)
    assert seen
    assert not any(line.upper().startswith((b"USER", b"PASS")) for line in seen)


# -- every answer, however wrong, is a named error ----------------------------------------------


@pytest.mark.parametrize(
    ("first", "found"),
    [
        (b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", "imap"),
        (b"* ok hello\r\n", "imap"),
        (b"* PREAUTH logged in\r\n", "imap"),
        (b"* BYE too busy\r\n", "imap"),
        (b"\r\n* OK late\r\n", "imap"),
        (b"+OK POP3 ready\r\n", "pop3"),
        (b"+ok\r\n", "pop3"),
        (b"-ERR [SYS/TEMP] busy\r\n", "pop3"),
        (b"220 mx.example.test ESMTP Postfix\r\n", "smtp"),
        (b"220-mx.example.test ESMTP\r\n", "smtp"),
        (b"421 4.3.2 shutting down\r\n", "smtp"),
        (b"220 ProFTPD Server (FTP)\r\n", "ftp"),
        (b"HTTP/1.1 400 Bad Request\r\n", "http"),
        (b"<!DOCTYPE html><html>", "http"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "ssh"),
        (b"\x15\x03\x03\x00\x02\x02\x46", "tls"),
        (b"\x16\x03\x01\x00\xa5", "tls"),
        (b"\x00\xff\xfe garbage\r\n", "unknown"),
        (b"OK\r\n", "unknown"),
        (b"*OK no space\r\n", "unknown"),
        (b"2200 not a code\r\n", "unknown"),
        (b"", ""),
        (None, ""),
    ],
)
def test_what_answered_is_named_from_its_first_bytes(first: bytes | None, found: str) -> None:
    assert identify(first) == found


PEER = Peer("mail.example.test", 995, "pop3", "tls", 5)


def _cert_error(code: int) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = code
    exc.verify_message = "some OpenSSL words"
    return exc


IMAP_HI = b"* OK [CAPABILITY IMAP4rev1] hi\r\n"
PLAINTEXT = b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
Err = poplib.error_proto
C, T, L, P = ConnectError, TLSError, LoginError, ProtocolError

EXCEPTION_CASES = [
    # (exception, stage, first line heard, reason, family)
    (socket.gaierror(-2, "Name or service not known"), "greeting", None, "unknown_host", C),
    (ConnectionRefusedError(111, "refused"), "greeting", None, "refused", C),
    (TimeoutError("timed out"), "greeting", None, "timeout", C),
    (TimeoutError("timed out"), "command", None, "timeout", C),
    (ConnectionResetError(104, "reset"), "login", None, "closed", C),
    (BrokenPipeError(32, "pipe"), "command", None, "closed", C),
    (EOFError(), "command", None, "closed", C),
    (OSError(113, "No route to host"), "greeting", None, "unreachable", C),
    (_cert_error(18), "greeting", None, "cert_self_signed", T),
    (_cert_error(19), "tls", None, "cert_self_signed", T),
    (_cert_error(10), "greeting", None, "cert_expired", T),
    (_cert_error(62), "greeting", None, "cert_hostname", T),
    (_cert_error(20), "greeting", None, "cert_untrusted", T),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version"), "greeting", None, "not_tls", T),
    (ssl.SSLEOFError(8, "EOF in violation of protocol"), "greeting", None, "closed", C),
    (ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE]"), "tls", None, "tls_failed", T),
    (Err(IMAP_HI.strip()), "greeting", IMAP_HI, "wrong_protocol", C),
    (Err(b"220 mx ESMTP"), "greeting", b"220 mx ESMTP\r\n", "other_service", C),
    (Err(b"-ERR busy"), "greeting", b"-ERR busy\r\n", "server_busy", C),
    (Err(b"\x00\x01"), "greeting", b"\x00\x01\r\n", "not_mail", C),
    (Err(b"\x16\x03"), "greeting", b"\x16\x03\x01\x00", "tls_required", T),
    (Err("-ERR EOF"), "greeting", b"", "closed", C),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), "greeting", b"\xff\r\n", "not_mail", C),
    (Err(b"-ERR [AUTH] Authentication failed."), "login", None, "login", L),
    (Err(PLAINTEXT), "login", None, "login_needs_tls", T),
    (Err("-ERR EOF"), "login", None, "closed", C),
    (Err(b"-ERR no such message"), "command", None, "refused_command", P),
    (imaplib.IMAP4.error("LOGIN failed"), "login", None, "login", L),
    (imaplib.IMAP4.abort("socket error: EOF"), "command", None, "closed", C),
    (imaplib.IMAP4.error("EXAMINE failed"), "command", None, "refused_command", P),
    (ValueError("invalid literal for int()"), "command", None, "bad_answer", P),
    (IndexError("list index out of range"), "command", None, "bad_answer", P),
]


@pytest.mark.parametrize(("exc", "stage", "heard", "reason", "family"), EXCEPTION_CASES)
def test_every_exception_maps_to_one_named_reason(
    exc: BaseException, stage: str, heard: bytes | None, reason: str, family: type
) -> None:
    error = classify(exc, PEER, stage=stage, command="UIDL", heard=heard)
    assert (error.reason, type(error)) == (reason, family)
    assert error.reason in REASONS and str(error)


def test_a_refused_login_names_the_server_words_but_never_the_password(dovecot: Dovecot) -> None:
    secret = "Wrong-Pass-4711"
    with pytest.raises(LoginError) as caught:
        pop3(dovecot, password=secret, security="tls").open()
    assert str(caught.value).startswith("the server refused the user name or password (-ERR")
    assert secret not in str(caught.value) and secret not in repr(caught.value.params)


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    with Peers(tmp_path_factory.mktemp("peers")) as running:
        yield running


PEER_CASES = [
    # (behaviour, served over TLS, client protocol, client security, reason, found)
    ("smtp", False, "pop3", "plain", "other_service", "smtp"),
    ("smtp", False, "imap", "starttls", "other_service", "smtp"),
    ("smtp", True, "imap", "tls", "other_service", "smtp"),
    ("http", False, "pop3", "plain", "other_service", "http"),
    ("http", False, "imap", "tls", "other_service", "http"),
    ("http", True, "imap", "tls", "other_service", "http"),
    ("http", True, "pop3", "starttls", "tls_required", None),
    ("ssh", False, "imap", "starttls", "other_service", "ssh"),
    ("garbage", False, "pop3", "plain", "not_mail", None),
    ("garbage", False, "imap", "plain", "not_mail", None),
    ("garbage", True, "imap", "tls", "not_mail", None),
    ("noise", False, "imap", "starttls", "not_mail", None),
    ("silent", False, "pop3", "starttls", "timeout", None),
    ("silent", True, "imap", "tls", "timeout", None),
    ("hangup", False, "imap", "plain", "closed", None),
    ("hangup", True, "pop3", "tls", "closed", None),
    ("pop3_busy", False, "pop3", "plain", "server_busy", None),
    ("pop3_busy", False, "imap", "plain", "wrong_protocol", "pop3"),
    ("imap_bye", False, "imap", "starttls", "server_busy", None),
    ("imap", False, "imap", "tls", "not_tls", "imap"),
    ("imap", False, "pop3", "tls", "wrong_protocol", "imap"),
    ("imap", True, "imap", "plain", "tls_required", None),
    ("imap", False, "imap", "starttls", "no_starttls", None),
    ("imap_logindisabled", False, "imap", "plain", "login_needs_tls", None),
]


@pytest.mark.parametrize(
    ("behaviour", "tls", "protocol", "security", "reason", "found"), PEER_CASES
)
def test_misbehaving_servers_are_named(
    peers: Peers,
    behaviour: str,
    tls: bool,
    protocol: str,
    security: str,
    reason: str,
    found: str | None,
) -> None:
    """Whatever listens on the port, opening a session raises a RemoteError naming it."""
    port = peers.start(behaviour, tls=tls)
    cls = RemoteIMAP if protocol == "imap" else RemotePOP3
    with pytest.raises(RemoteError) as caught:
        cls("127.0.0.1", port, security, "u", "pw", 1, verify=False).open()
    assert caught.value.reason == reason, str(caught.value)
    if found:
        assert caught.value.params["found"] == found


DOVECOT_CASES = [
    # (client protocol, client security, Dovecot listener, reason, found)
    ("pop3", "tls", "imaps", "wrong_protocol", "imap"),
    ("pop3", "plain", "imap", "wrong_protocol", "imap"),
    ("pop3", "starttls", "imap", "wrong_protocol", "imap"),
    ("imap", "tls", "pop3s", "wrong_protocol", "pop3"),
    ("imap", "plain", "pop3", "wrong_protocol", "pop3"),
    ("imap", "starttls", "pop3", "wrong_protocol", "pop3"),
    ("imap", "tls", "imap", "not_tls", "imap"),
    ("pop3", "tls", "pop3", "not_tls", "pop3"),
    ("pop3", "tls", "imap", "wrong_protocol", "imap"),
    ("imap", "plain", "imaps", "tls_required", None),
    ("imap", "starttls", "imaps", "tls_required", None),
    ("pop3", "plain", "pop3s", "tls_required", None),
    ("pop3", "starttls", "pop3s", "tls_required", None),
]


@pytest.mark.parametrize(("protocol", "security", "listener", "reason", "found"), DOVECOT_CASES)
def test_a_real_server_on_the_wrong_port_is_named(
    dovecot: Dovecot, protocol: str, security: str, listener: str, reason: str, found: str | None
) -> None:
    """The wizard's classic mistakes against Dovecot: POP3 on the IMAP port, TLS on a plain
    port, plain on a TLS port."""
    cls = RemoteIMAP if protocol == "imap" else RemotePOP3
    remote = cls("127.0.0.1", dovecot.ports[listener], security, "alice", PASSWORD, 2, verify=False)
    with pytest.raises(RemoteError) as caught:
        remote.open()
    assert caught.value.reason == reason, str(caught.value)
    if found:
        assert caught.value.params["found"] == found


def test_unknown_host_closed_port_and_wrong_password_are_named(dovecot: Dovecot) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    attempts = {
        "unknown_host": RemotePOP3("nowhere.invalid", 995, "tls", "a", "b", 2),
        "refused": RemoteIMAP("127.0.0.1", closed, "starttls", "a", "b", 2),
        "login": RemotePOP3(
            "127.0.0.1", dovecot.ports["pop3s"], "tls", "alice", "wrong", 5, verify=False
        ),
    }
    for reason, remote in attempts.items():
        with pytest.raises(RemoteError) as caught:
            remote.open()
        assert caught.value.reason == reason
