"""The read-only remote clients against Dovecot, a server we did not write."""

from __future__ import annotations

import imaplib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsuite.remote import (
    ConnectError,
    LoginError,
    MessageGone,
    RemoteIMAP,
    RemotePOP3,
    TLSError,
    decode_mutf7,
    encode_mutf7,
)
from tests.dovecot import PASSWORD, Dovecot, message

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
