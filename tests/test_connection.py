"""The connection layer IMAP and POP3 share: what any client gets, whatever the protocol."""

from __future__ import annotations

import socket
import time

from tests.test_imap_server import Raw as IMAPRaw
from tests.test_pop3 import Raw as POP3Raw


def test_imap_refuses_a_big_literal_before_login_without_asking_for_it(suite) -> None:  # type: ignore[no-untyped-def]
    """An anonymous client never gets `+ Ready` for a large literal: it could make the
    server hold megabytes for nobody."""
    raw = IMAPRaw(suite.port("imap"))
    raw.send(b"a1 APPEND INBOX {1000000}\r\n")
    line = raw.line()
    assert line.startswith(b"a1 BAD [LIMIT]"), line
    assert raw.cmd("NOOP")[-1].split(b" ")[1] == b"OK"


def test_imap_skips_a_big_non_synchronising_literal_before_login(suite) -> None:  # type: ignore[no-untyped-def]
    """RFC 7888 4: the data of a refused LITERAL+ is read and thrown away, then answered,
    and the connection goes on."""
    raw = IMAPRaw(suite.port("imap"))
    raw.send(b"a1 APPEND INBOX {200000+}\r\n" + b"x" * 200_000 + b"\r\n")
    assert raw.line().startswith(b"a1 BAD [LIMIT]")
    assert raw.cmd("CAPABILITY")[-1].split(b" ")[1] == b"OK"


def test_imap_login_literal_still_works(suite) -> None:  # type: ignore[no-untyped-def]
    """The small literals LOGIN needs (a password with quotes or non-ASCII) are accepted."""
    raw = IMAPRaw(suite.port("imap"))
    raw.send(b"a1 LOGIN {8}\r\n")
    assert raw.line().startswith(b"+ ")
    raw.send(b"nobody@x {5}\r\n")
    assert raw.line().startswith(b"+ ")
    raw.send(b"wrong\r\n")
    assert raw.until(b"a1")[-1].startswith(b"a1 NO")


def test_imap_id_with_literal_values_before_login(suite) -> None:  # type: ignore[no-untyped-def]
    """RFC 2971 3.3 allows 30 field-value pairs of up to 1024 octets, as literals too, and
    clients send ID before login: the pre-login literal limits admit that."""
    raw = IMAPRaw(suite.port("imap"))
    value = b"v" * 1024
    pairs = [b'"f%d" {%d}' % (i, len(value)) for i in range(30)]
    raw.send(b"a1 ID (" + pairs[0] + b"\r\n")
    for pair in pairs[1:]:
        assert raw.line().startswith(b"+ ")
        raw.send(value + b" " + pair + b"\r\n")
    assert raw.line().startswith(b"+ ")
    raw.send(value + b")\r\n")
    assert raw.until(b"a1")[-1].startswith(b"a1 OK")


def test_over_long_lines_are_answered_in_their_turn(suite) -> None:  # type: ignore[no-untyped-def]
    """Pipelined commands keep their order when one of them is over the line limit."""
    imap = IMAPRaw(suite.port("imap"))
    imap.send(b"a1 NOOP\r\nb2 " + b"x" * 70_000 + b"\r\nc3 NOOP\r\n")
    replies = [imap.line() for _ in range(3)]
    assert [r.split(b" ")[:2] for r in replies] == [[b"a1", b"OK"], [b"b2", b"BAD"], [b"c3", b"OK"]]
    assert b"[LIMIT]" in replies[1]
    pop = POP3Raw(suite.port("pop3"))
    pop.sock.sendall(b"NOOP\r\n" + b"x" * 70_000 + b"\r\nCAPA\r\n")
    first, second = pop.line(), pop.line()
    assert first.startswith(b"-ERR")  # NOOP before login
    assert second.startswith(b"-ERR") and b"too long" in second.lower()
    assert pop.line().startswith(b"+OK")


def test_reading_stops_when_a_client_pipelines_without_reading(suite) -> None:  # type: ignore[no-untyped-def]
    """A client that pipelines commands and never reads the answers is not read from for
    ever (its answers would pile up), even when its bytes arrive cut in the middle of lines."""
    raw = IMAPRaw(suite.port("imap"))
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.sock.settimeout(1.0)
    chunk = b"x CAPABILITY\r\n" * 64  # each answer is about 20 times the command
    sent = 0
    deadline = time.monotonic() + 30
    stopped = False
    try:
        while time.monotonic() < deadline:
            raw.sock.sendall(chunk[:-3])  # ends mid-line
            raw.sock.sendall(chunk[-3:])
            sent += len(chunk)
    except TimeoutError:
        stopped = True
    assert stopped, f"the server kept reading ({sent} bytes) from a client that does not read"
    assert sent < 20_000_000
