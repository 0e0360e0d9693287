"""SMTP against input meant to fool it: paths the parser chokes on, NUL, control
characters and non-ASCII addresses without SMTPUTF8.

Everything runs against the real server with smtplib or raw sockets.
"""

from __future__ import annotations

import re
import smtplib
import socket
import time
from typing import Any

import pytest

from tests.conftest import Suite
from tests.test_smtp import converse, messages, unverified

PASSWORD = "Secret123"
ALICE = "alice@example.test"
INBOX = "inbox@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One suite with a sender and a recipient."""
    suite = Suite(tmp_path_factory.mktemp("input"))
    suite.start()
    for address in (ALICE, INBOX):
        suite.add_user(address)
    yield suite
    suite.close()


def log_since(suite: Suite, offset: int) -> bytes:
    return suite.log_path.read_bytes()[offset:]


def log_size(suite: Suite) -> int:
    return suite.log_path.stat().st_size


# --- malformed input ------------------------------------------------------------------------


def codes(lines: list[bytes]) -> list[bytes]:
    return [line[:3] for line in lines if line[3:4] == b" "]


def test_paths_the_parser_chokes_on_get_501_or_553_and_no_traceback(server: Suite) -> None:
    """MAIL, RCPT and VRFY with paths that make the stdlib parser raise, or with bytes that
    are not UTF-8, get 501 or 553 (VRFY: 252 when it parses), never 451, and the log has no
    traceback."""
    offset = log_size(server)
    with socket.create_connection(("127.0.0.1", server.port("smtp"))) as sock:
        lines = converse(
            sock,
            [
                b"EHLO t\r\n",
                "MAIL FROM:‹\r\n".encode(),
                b'MAIL FROM:<">\r\n',
                b"MAIL FROM:<a@\r\n",
                b"VRFY a@\r\n",
                b"VRFY <\xff\r\n",
                b"VRFY \xed\xa0\x80@\xff\r\n",
                b"VRFY\r\n",
                b"VRFY <inbox@example.test>\r\n",
                b"MAIL FROM:<x@remote.test>\r\n",
                "RCPT TO:‹\r\n".encode(),
                b"RCPT TO:<a@>\r\n",
                b"RCPT TO:<\xff@\r\n",
                b"QUIT\r\n",
            ],
        )
    assert codes(lines) == [
        *(b"220", b"250", b"501", b"501", b"553", b"501", b"252", b"252", b"501", b"252"),
        *(b"250", b"501", b"553", b"553", b"221"),
    ], lines
    refusals = [line for line in lines if line[:1] in (b"4", b"5")]
    assert all(re.match(rb"^\d{3} [45]\.\d\.\d+ ", line) for line in refusals), lines
    assert b"Traceback" not in log_since(server, offset)


def test_nul_anywhere_in_a_command_is_refused_and_the_session_goes_on(server: Suite) -> None:
    """NUL in a path, a parameter or the verb gets 501 5.5.2; the session then serves as
    usual, and the bytes never reach the log raw."""
    offset = log_size(server)
    with socket.create_connection(("127.0.0.1", server.port("smtp"))) as sock:
        lines = converse(
            sock,
            [
                b"EHLO t\r\n",
                b"MAIL FROM:<a\0b@external.example>\r\n",
                b"MAIL FROM:<x@remote.test> SIZE=1\0\r\n",
                b"NO\0OP\r\n",
                b"MAIL FROM:<x@remote.test>\r\n",
                b"RCPT TO:<inbox\0@example.test>\r\n",
                b"RCPT TO:<inbox@example.test>\r\n",
                b"DATA\r\n",
                b"Subject: after nul\r\n\r\nfine\r\n.\r\n",
                b"QUIT\r\n",
            ],
        )
    assert codes(lines) == [
        *(b"220", b"250", b"501", b"501", b"501", b"250", b"501", b"250", b"354", b"250"),
        b"221",
    ], lines
    assert [line[:10] for line in lines if line.startswith(b"501")] == [b"501 5.5.2 "] * 4
    assert b"\0" not in log_since(server, offset)


def test_nul_in_data_is_refused_with_554(server: Suite) -> None:
    """A message with NUL is refused with 554 5.6.0 and stored nowhere: message text has
    no NUL (RFC 5322 3.5) and IMAP could not serve it (RFC 3501 9)."""
    before = len(messages(server, INBOX))
    offset = log_size(server)
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as client:
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("x@remote.test", [INBOX], b"Subject: nul\r\n\r\na\0b\r\n")
    assert (info.value.smtp_code, info.value.smtp_error[:6]) == (554, b"5.6.0 ")
    assert len(messages(server, INBOX)) == before
    assert b"\0" not in log_since(server, offset)


def test_control_characters_reach_replies_and_the_log_escaped(server: Suite) -> None:
    """An escape sequence in a recipient or a verb comes back, and is logged, as \\x1b."""
    offset = log_size(server)
    with socket.create_connection(("127.0.0.1", server.port("smtp"))) as sock:
        lines = converse(
            sock,
            [
                b"EHLO t\r\n",
                b"BO\x1b[2JGUS\r\n",
                b"MAIL FROM:<x@remote.test>\r\n",
                b'RCPT TO:<"no\x1b[31mbody"@example.test>\r\n',
                b"QUIT\r\n",
            ],
        )
    assert codes(lines) == [b"220", b"250", b"500", b"250", b"550", b"221"], lines
    assert not any(b"\x1b" in line for line in lines), lines
    logged = log_since(server, offset)
    assert b"\x1b" not in logged
    assert b"\\x1b[31m" in logged and b"\\x1b[2J" in logged


def test_a_header_field_the_stdlib_cannot_parse_does_not_fail_submission(server: Suite) -> None:
    """Date and Message-ID values that make Python's parser raise are the client's business:
    the message is accepted (the suite only checks whether the fields are present)."""
    offset = log_size(server)
    with smtplib.SMTP("127.0.0.1", server.port("submission")) as client:
        client.starttls(context=unverified())
        client.login(ALICE, PASSWORD)
        for value in (b"<)[>", b"<", b'"'):
            refused = client.sendmail(
                ALICE,
                [INBOX],
                b"From: %s\r\nMessage-ID: %s\r\nDate: %s\r\nSubject: odd\r\n\r\nx\r\n"
                % (ALICE.encode(), value, value),
            )
            assert refused == {}
    assert b"Traceback" not in log_since(server, offset)


# --- SMTPUTF8 -------------------------------------------------------------------------------


def test_non_ascii_address_without_smtputf8_gets_553_5_6_7(server: Suite) -> None:
    """RFC 6531 3.5: a non-ASCII MAIL FROM or RCPT TO without SMTPUTF8 is 553 5.6.7; with
    SMTPUTF8 the same sender is accepted."""
    with socket.create_connection(("127.0.0.1", server.port("smtp"))) as sock:
        lines = converse(
            sock,
            [
                b"EHLO t\r\n",
                "MAIL FROM:<łukasz@remote.test>\r\n".encode(),
                b"MAIL FROM:<x@remote.test>\r\n",
                "RCPT TO:<żółw@example.test>\r\n".encode(),
                b"RSET\r\n",
                "MAIL FROM:<łukasz@remote.test> SMTPUTF8\r\n".encode(),
                "RCPT TO:<żółw@example.test>\r\n".encode(),
                b"RCPT TO:<inbox@example.test>\r\n",
                b"QUIT\r\n",
            ],
        )
    assert codes(lines) == [
        *(b"220", b"250", b"553", b"250", b"553", b"250", b"250", b"550", b"250", b"221")
    ], lines
    assert [line[:10] for line in lines if line.startswith(b"553")] == [b"553 5.6.7 "] * 2


def _newest(suite: Suite, address: str, subject: bytes) -> bytes:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for path in messages(suite, address):
            data = path.read_bytes()
            if subject in data:
                return data
        time.sleep(0.05)
    raise AssertionError(f"{subject!r} never arrived")


def test_received_says_utf8smtp_for_smtputf8_sessions(server: Suite) -> None:
    """RFC 6531 4.3 and RFC 3848: UTF8SMTP on the MX, UTF8SMTPSA over TLS with AUTH, and
    still ESMTPSA for a submission without SMTPUTF8."""
    body = "Subject: {}\r\nFrom: alice@example.test\r\n\r\nżółw\r\n"
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as client:
        client.sendmail(
            "x@remote.test", [INBOX], body.format("utf8-mx").encode(), mail_options=["SMTPUTF8"]
        )
    with smtplib.SMTP("127.0.0.1", server.port("submission")) as client:
        client.starttls(context=unverified())
        client.login(ALICE, PASSWORD)
        client.sendmail(ALICE, [INBOX], body.format("utf8-sub").encode(), mail_options=["SMTPUTF8"])
        client.sendmail(ALICE, [INBOX], body.format("ascii-sub").encode("utf-8"))
    assert b" with UTF8SMTP id " in _newest(server, INBOX, b"utf8-mx")
    assert b" with UTF8SMTPSA id " in _newest(server, INBOX, b"utf8-sub")
    assert b" with ESMTPSA id " in _newest(server, INBOX, b"ascii-sub")
