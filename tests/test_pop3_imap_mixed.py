"""POP3 and IMAP on one INBOX at the same time, through the real servers (poplib, imaplib).

IMAP changes flags and expunges while a POP3 session lists and retrieves; neither view may
break, UIDLs never change, and what POP3 removes at QUIT disappears for IMAP sessions.
"""

from __future__ import annotations

import imaplib
import poplib
import socket
import threading
from itertools import count

import pytest

from mailsuite.store import Store

PASSWORD = "Secret123"
_users = count(1)


def setup(suite, messages: int) -> tuple[str, list[bytes]]:  # type: ignore[no-untyped-def]
    address = f"mixed{next(_users)}@example.test"
    suite.add_user(address, PASSWORD)
    store = Store(suite.config["paths"]["maildirs"])
    bodies = [b"Subject: mixed %d\r\n\r\nbody %d\r\n" % (i, i) for i in range(messages)]
    for body in bodies:
        store.deliver([address], body)
    return address, bodies


def pop(suite, address: str) -> poplib.POP3:  # type: ignore[no-untyped-def]
    client = poplib.POP3("127.0.0.1", suite.port("pop3"), timeout=10)
    client.user(address)
    client.pass_(PASSWORD)
    return client


def imap(suite, address: str) -> imaplib.IMAP4:  # type: ignore[no-untyped-def]
    client = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
    client.login(address, PASSWORD)
    client.select("INBOX")
    return client


def lines(body: bytes) -> list[bytes]:
    return body.rstrip(b"\r\n").split(b"\r\n")


def test_imap_flags_and_expunge_while_pop3_lists(suite) -> None:  # type: ignore[no-untyped-def]
    address, bodies = setup(suite, 5)
    im = imap(suite, address)
    p = pop(suite, address)
    uidls = p.uidl()[1]
    listing = p.list()[1]

    assert im.store("1:*", "+FLAGS", "(\\Seen \\Flagged $Label1)")[0] == "OK"
    assert im.store("2", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert im.expunge()[0] == "OK"

    assert p.uidl()[1] == uidls  # flags and renames change nothing for POP3
    assert p.list()[1] == listing  # the login snapshot keeps its numbers
    with pytest.raises(poplib.error_proto, match="-ERR"):
        p.retr(2)  # expunged by IMAP since login
    for number in (1, 3, 4, 5):
        assert p.retr(number)[1] == lines(bodies[number - 1])
    p.dele(1)
    p.dele(2)  # already gone: marking it is harmless
    assert p.quit().startswith(b"+OK")

    # RFC 3501 7.4.1: the IMAP session is told about the message POP3 removed.
    im.noop()
    assert im.search(None, "ALL")[1][0].split() == [b"1", b"2", b"3"]
    typ, data = im.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == bodies[2]
    im.logout()

    again = pop(suite, address)
    assert again.uidl()[1] == [b"%d %s" % (i + 1, u.split()[1]) for i, u in enumerate(uidls[2:])]
    again.quit()


def test_concurrent_imap_flag_changes_and_pop3_reads(suite) -> None:  # type: ignore[no-untyped-def]
    address, bodies = setup(suite, 40)
    im = imap(suite, address)
    stop = threading.Event()
    errors: list[BaseException] = []

    def flip() -> None:
        try:
            while not stop.is_set():
                im.store("1:*", "+FLAGS", "(\\Seen)")
                im.store("1:*", "-FLAGS", "(\\Seen)")
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=flip)
    first = pop(suite, address)
    uidls = first.uidl()[1]
    first.quit()
    worker.start()
    try:
        for _ in range(3):
            p = pop(suite, address)
            assert p.uidl()[1] == uidls
            for number in range(1, 41):
                assert p.retr(number)[1] == lines(bodies[number - 1])
            assert p.uidl()[1] == uidls
            p.quit()
    finally:
        stop.set()
        worker.join(30)
    assert not errors
    im.logout()


def test_pop3_deletion_reaches_an_idling_imap_session(suite) -> None:  # type: ignore[no-untyped-def]
    address, _ = setup(suite, 3)
    sock = socket.create_connection(("127.0.0.1", suite.port("imap")), timeout=10)
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(f"a LOGIN {address} {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
    while not reader.readline().startswith(b"+"):
        pass  # up to the IDLE continuation
    p = pop(suite, address)
    p.dele(2)
    assert p.quit().startswith(b"+OK")
    # The store's change notice reaches the IDLE session (RFC 2177) while it idles.
    assert reader.readline() == b"* 2 EXPUNGE\r\n"
    sock.sendall(b"DONE\r\nd LOGOUT\r\n")
    sock.close()
