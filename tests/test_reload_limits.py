"""A SIGHUP's new limits reach every protocol: connections made after the reload obey them.

Each test starts `mailsuite serve` from a config file, shows the old limit in force on a
connection, rewrites the file, sends SIGHUP, waits for the reload to be logged, and then
shows the new limit on a new connection with the protocol's own refusal: IMAP `BAD [LIMIT]`,
`NO [LIMIT]`, `NO [TOOBIG]` and `* BYE`, POP3 `-ERR`, SMTP 421, 452 and 552.
"""

from __future__ import annotations

import signal
import smtplib
import socket
import time
from typing import Any

import pytest
import yaml

from .conftest import Suite, merge
from .test_imap_server import PASSWORD, Raw, reply
from .test_pop3 import Raw as Pop3Raw

GREETING = {"imap": b"* OK", "pop3": b"+OK", "smtp": b"220 "}
PER_IP_REFUSAL = {
    "imap": b"* BYE Too many connections from your address\r\n",
    "pop3": b"-ERR [SYS/TEMP] Too many connections from your address\r\n",
    "smtp": b"421 4.7.0 Too many connections from your address",
}
GOODBYE = {"imap": b"z LOGOUT\r\n", "pop3": b"QUIT\r\n", "smtp": b"QUIT\r\n"}
IMAP_TOO_LONG = b"BAD [LIMIT] Command line too long"
IMAP_OVER_USER_LIMIT = b"NO [LIMIT]"
IMAP_TOOBIG = b"NO [TOOBIG]"
IMAP_AUTOLOGOUT = b"* BYE Autologout"
POP3_TOO_LONG = b"-ERR Line too long\r\n"
POP3_IDLE = b"-ERR Idle for too long"
SMTP_TOO_MANY_RECIPIENTS = 452
SMTP_TOO_BIG = 552

LONG = 1500  # bytes: under the default line_length (64 KB), over the reloaded one
SHORT_LINES = 1024


def reload_with(suite: Suite, changes: dict[str, Any]) -> None:
    """Merge `changes` into the suite's config file, send SIGHUP and wait (10 s at most)
    until the server has logged that it reloaded."""
    done = f"reloaded {suite.config_path}"
    before = suite.log().count(done)
    config = merge(yaml.safe_load(suite.config_path.read_text()), changes)
    suite.config_path.write_text(yaml.safe_dump(config))
    assert suite.proc is not None
    suite.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while suite.log().count(done) == before:
        assert "reload refused" not in suite.log(), suite.log()
        assert time.monotonic() < deadline, f"no reload logged:\n{suite.log()}"
        time.sleep(0.05)


def first_line(suite: Suite, protocol: str) -> tuple[socket.socket, bytes]:
    """Connect to the plaintext listener of `protocol`; the socket and the server's first
    line (the greeting, or the refusal)."""
    sock = socket.create_connection(("127.0.0.1", suite.port(protocol)), timeout=10)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return sock, data.partition(b"\r\n")[0] + b"\r\n"


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server ends the connection within 10 s (whatever it sent first)."""
    sock.settimeout(10)
    try:
        while sock.recv(4096):
            pass
    except ConnectionError:
        pass
    except TimeoutError:
        return False
    return True


def say_goodbye(sock: socket.socket, protocol: str) -> None:
    """LOGOUT or QUIT, then wait for the server to close, so it counts the connection no more."""
    sock.sendall(GOODBYE[protocol])
    assert closed_by_server(sock)
    sock.close()


# -- limits every protocol has ---------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_connections_per_ip_follows_a_reload(suite_factory, protocol: str) -> None:  # type: ignore[no-untyped-def]
    """Lowered from 50 to 2 by a reload: the third connection from one address is refused
    with the protocol's reply and closed."""
    s = suite_factory({"limits": {"connections_per_ip": 50}})
    opened = [first_line(s, protocol) for _ in range(3)]
    for sock, greeting in opened:
        assert greeting.startswith(GREETING[protocol]), greeting
        say_goodbye(sock, protocol)

    reload_with(s, {"limits": {"connections_per_ip": 2}})
    kept = [first_line(s, protocol) for _ in range(2)]
    for _, greeting in kept:
        assert greeting.startswith(GREETING[protocol]), greeting
    third, refusal = first_line(s, protocol)
    assert refusal.startswith(PER_IP_REFUSAL[protocol]), refusal
    assert closed_by_server(third)
    for sock, _ in kept:
        sock.close()


def test_imap_line_length_follows_a_reload(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """A 1500-byte SEARCH is answered under the default line_length; after a reload to 1024
    a new session gets BAD [LIMIT] for it and goes on."""
    s = suite_factory()
    s.add_user("lines@example.test", PASSWORD)
    search = 'SEARCH SUBJECT "' + "x" * LONG + '"'

    def new_session() -> Raw:
        c = Raw(s.port("imap"))
        c.login("lines@example.test", PASSWORD)
        c.ok("SELECT INBOX")
        return c

    before = new_session()
    assert reply(before.cmd(search)).startswith(b"OK")
    before.close()

    reload_with(s, {"limits": {"line_length": SHORT_LINES}})
    after = new_session()
    assert reply(after.cmd(search)).startswith(IMAP_TOO_LONG)
    assert reply(after.cmd("NOOP")).startswith(b"OK")
    after.close()


def test_pop3_line_length_follows_a_reload(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """A 1500-byte CAPA line is answered under the default line_length; after a reload to
    1024 a new session gets -ERR for it and goes on."""
    s = suite_factory()
    padded = "CAPA" + " " * LONG

    before = Pop3Raw(s.port("pop3"))
    assert before.cmd(padded).startswith(b"+OK")
    before.multi()
    before.close()

    reload_with(s, {"limits": {"line_length": SHORT_LINES}})
    after = Pop3Raw(s.port("pop3"))
    assert after.cmd(padded) == POP3_TOO_LONG
    assert after.cmd("CAPA").startswith(b"+OK")
    after.close()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_idle_timeout_follows_a_reload(suite_factory, protocol: str) -> None:  # type: ignore[no-untyped-def]
    """With the idle timeout reloaded down to 1 s, a new connection that sends nothing is
    told so and closed within a few seconds (the old timeouts are 30 and 10 minutes)."""
    s = suite_factory()
    reload_with(s, {protocol: {"idle_timeout": 1}})
    c = Raw(s.port("imap")) if protocol == "imap" else Pop3Raw(s.port("pop3"))
    c.sock.settimeout(5)
    try:
        line = c.line()
    except TimeoutError:
        pytest.fail("still open and silent 5 s into an idle timeout of 1 s")
    assert line.startswith(IMAP_AUTOLOGOUT if protocol == "imap" else POP3_IDLE), line
    assert closed_by_server(c.sock)
    c.close()


# -- IMAP's own ----------------------------------------------------------------------------


def test_imap_connections_per_user_follow_a_reload(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """Two sessions of one account log in under the default (20); after a reload to 1 the
    second session of a new pair is refused with NO [LIMIT]."""
    s = suite_factory()
    s.add_user("twice@example.test", PASSWORD)
    login = f'LOGIN "twice@example.test" "{PASSWORD}"'
    first, second = Raw(s.port("imap")), Raw(s.port("imap"))
    first.ok(login)
    second.ok(login)
    for c in (first, second):
        c.ok("LOGOUT")
        c.close()

    reload_with(s, {"imap": {"max_connections_per_user": 1}})
    first, second = Raw(s.port("imap")), Raw(s.port("imaps"), tls=True)
    first.ok(login)
    assert reply(second.cmd(login)).startswith(IMAP_OVER_USER_LIMIT)
    first.close()
    second.close()


def test_imap_append_limit_follows_a_reload(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """A 4096-byte APPEND literal is invited under the default message_size; after a reload
    to 2048 a new session advertises APPENDLIMIT=2048 and refuses the literal with
    NO [TOOBIG] before the data is sent (RFC 7889)."""
    s = suite_factory()
    s.add_user("append@example.test", PASSWORD)
    data = b"Subject: big\r\n\r\n" + b"x" * (4096 - 16)

    before = Raw(s.port("imap"))
    before.login("append@example.test", PASSWORD)
    before.send(b"a APPEND INBOX {4096}\r\n")
    assert before.line().startswith(b"+ ")
    before.send(data + b"\r\n")
    assert reply(before.until(b"a")).startswith(b"OK")
    before.close()

    reload_with(s, {"limits": {"message_size": 2048}})
    after = Raw(s.port("imap"))
    after.login("append@example.test", PASSWORD)
    assert b"APPENDLIMIT=2048" in after.cmd("CAPABILITY")[0]
    after.send(b"b APPEND INBOX {4096}\r\n")
    assert after.line().startswith(b"b " + IMAP_TOOBIG)
    after.close()


# -- SMTP's own ----------------------------------------------------------------------------


def test_smtp_recipient_limit_follows_a_reload(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """Three recipients are accepted under the default (100); after a reload to 2 the third
    RCPT of a new session gets 452."""
    s = suite_factory()
    rcpts = [f"rcpt{i}@example.test" for i in range(3)]
    for address in rcpts:
        s.add_user(address)

    def rcpt_codes() -> list[int]:
        with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as client:
            client.ehlo("client.example.org")
            assert client.mail("sender@example.org")[0] == 250
            codes = [client.rcpt(address)[0] for address in rcpts]
            client.rset()
            return codes

    assert rcpt_codes() == [250, 250, 250]
    reload_with(s, {"limits": {"recipients": 2}})
    assert rcpt_codes() == [250, 250, SMTP_TOO_MANY_RECIPIENTS]


def test_smtp_message_size_follows_a_reload(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """After a reload to message_size 2048 a new session advertises SIZE 2048 and refuses a
    MAIL FROM that declares 4096 bytes with 552 (RFC 1870)."""
    s = suite_factory()

    def session() -> tuple[str, int]:
        with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as client:
            client.ehlo("client.example.org")
            size = client.esmtp_features.get("size", "")
            code = client.mail("sender@example.org", ["SIZE=4096"])[0]
            client.rset()
            return size, code

    assert session() == (str(25 * 1024**2), 250)
    reload_with(s, {"limits": {"message_size": 2048}})
    assert session() == ("2048", SMTP_TOO_BIG)
