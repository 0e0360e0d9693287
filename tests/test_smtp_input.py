"""SMTP against input meant to fool or wear it down: forged authors, paths the parser chokes
on, NUL, non-ASCII without SMTPUTF8, recipient guessing, and the postmaster mailbox.

Everything runs against the real server with smtplib or raw sockets; what a submitted message
says about its author is checked again the way a mail client sees it, over IMAP ENVELOPE.
"""

from __future__ import annotations

import re
import smtplib
import socket
import threading
import time
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from mailsuite.config import load_config
from mailsuite.config.loader import parse_config
from mailsuite.directory import Directory
from mailsuite.directory.external import add_external
from mailsuite.smtp.postmaster import explain
from tests.conftest import Suite
from tests.test_imap_server import Raw
from tests.test_smtp import converse, messages, unverified

PASSWORD = "Secret123"
ALICE = "alice@example.test"
ALLY = "ally@example.org"  # alice's alias
EXTERNAL = "alice@external.example"  # alice's external account
BOB = "bob@example.test"
INBOX = "inbox@example.test"
ADMIN = "admin@example.test"
OWNED = {ALICE, ALLY, EXTERNAL}
DELAY, DELAY_MAX, FREE, LIMIT = 0.1, 0.2, 3, 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One suite: alice with an alias and an external address, bob, a recipient, and a
    postmaster; refused recipients slow down fast enough for a test."""
    suite = Suite(
        tmp_path_factory.mktemp("input"),
        {
            "smtp": {
                "postmaster": ADMIN,
                "refused_recipients_before_delay": FREE,
                "refused_recipient_delay": DELAY,
                "refused_recipient_delay_max": DELAY_MAX,
                "refused_recipients_limit": LIMIT,
            }
        },
    )
    suite.start()
    for address in (ALICE, BOB, INBOX, ADMIN):
        suite.add_user(address)
    suite.directory.add_alias(ALLY, ALICE)
    add_external(
        suite.directory,
        ALICE,
        label="elsewhere",
        display_name="Alice Elsewhere",
        email=EXTERNAL,
        login=EXTERNAL,
        secret=b"not used",
        protocol="imap",
        host="imap.external.example",
        port=993,
        security="tls",
        limit=4,
    )
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


# --- what IMAP shows ------------------------------------------------------------------------


def _value(data: bytes, pos: int) -> tuple[Any, int]:
    """One IMAP value at `pos` (list, NIL, quoted string, literal or atom) and where it ends."""
    while data[pos : pos + 1] == b" ":
        pos += 1
    char = data[pos : pos + 1]
    if char == b"(":
        items, pos = [], pos + 1
        while True:
            while data[pos : pos + 1] == b" ":
                pos += 1
            if data[pos : pos + 1] == b")":
                return items, pos + 1
            item, pos = _value(data, pos)
            items.append(item)
    if char == b'"':
        out, pos = bytearray(), pos + 1
        while data[pos : pos + 1] != b'"':
            if data[pos : pos + 1] == b"\\":
                pos += 1
            out += data[pos : pos + 1]
            pos += 1
        return bytes(out), pos + 1
    if char == b"{":
        end = data.index(b"}", pos)
        start = end + 3
        size = int(data[pos + 1 : end])
        return data[start : start + size], start + size
    match = re.compile(rb"[^ ()\r\n]+").match(data, pos)
    assert match is not None, data[pos:]
    atom = match.group()
    return (None if atom.upper() == b"NIL" else atom), match.end()


def envelopes(suite: Suite, address: str) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """Subject -> {"from": [(name, address)], "sender": [...]} as IMAP ENVELOPE shows them,
    names decoded as a mail client decodes them."""
    client = Raw(suite.port("imap"))
    try:
        client.login(address, PASSWORD)
        client.ok("EXAMINE INBOX")
        lines = client.cmd("FETCH 1:* (ENVELOPE)")
    finally:
        client.close()
    found = {}
    for line in lines[:-1]:
        start = line.index(b"(")
        items, _ = _value(line, start)
        envelope = items[1]
        subject = envelope[1].decode()

        def boxes(field: Any) -> list[tuple[str, str]]:
            out = []
            for name, _adl, mailbox, host in field or []:
                shown = str(make_header(decode_header(name.decode()))) if name else ""
                out.append((shown, f"{mailbox.decode()}@{host.decode()}".lower()))
            return out

        found[subject] = {"from": boxes(envelope[2]), "sender": boxes(envelope[3])}
    return found


# --- the From table -------------------------------------------------------------------------

# (id, header lines, accepted). Subject comes first, so these lines follow a valid field.
FORMS: list[tuple[str, bytes, bool]] = [
    ("plain", b"From: alice@example.test", True),
    ("name-addr", b"From: Alice <alice@example.test>", True),
    ("quoted-name", b'From: "Alice Smith" <alice@example.test>', True),
    ("quoted-comma", b'From: "Smith, Alice" <alice@example.test>', True),
    ("encoded-name", b"From: =?utf-8?q?Al=C3=ADce?= <alice@example.test>", True),
    ("utf8-name", "From: Żaneta Ąę <alice@example.test>".encode(), True),
    ("obs-phrase-dot", b"From: A. Smith <alice@example.test>", True),
    ("angle-only", b"From: <alice@example.test>", True),
    ("no-space", b"From:alice@example.test", True),
    ("upper-name", b"FROM: alice@example.test", True),
    ("mixed-case-address", b"From: Alice <ALICE@Example.TEST>", True),
    ("folded", b"From: Alice\r\n <alice@example.test>", True),
    ("comment", b"From: alice@example.test (Alice)", True),
    ("own-address-as-name", b'From: "alice@example.test" <alice@example.test>', True),
    ("alias", b"From: Ally <ally@example.org>", True),
    ("external", b"From: Alice Elsewhere <alice@external.example>", True),
    ("sender-too", b"From: alice@example.test\r\nSender: ally@example.org", True),
    (
        "two-authors-with-sender",
        b"From: alice@example.test, ally@example.org\r\nSender: alice@example.test",
        True,
    ),
    ("space-before-colon", b"From : bob@example.test", False),
    ("tab-before-colon", b"From\t: bob@example.test", False),
    ("colonless-line-before", b"X-Junk\r\nFrom: bob@example.test", False),
    ("colonless-line-own-from", b"X-Junk\r\nFrom: alice@example.test", False),
    ("mbox-from-line", b"From bob@example.test Sat Jan  3 00:00:00 2026", False),
    ("white-space-only-line", b"From: alice@example.test\r\n \r\nX-After: 1", False),
    ("paren-then-angle", b"From: alice@example.test)<bob@example.test>", False),
    ("addr-then-angle", b"From: alice@example.test <bob@example.test>", False),
    ("nested-angle", b"From: <alice@example.test<bob@example.test>>", False),
    ("foreign", b"From: Bob <bob@example.test>", False),
    ("foreign-remote", b"From: ceo@bank.example", False),
    ("repeated", b"From: alice@example.test\r\nFrom: bob@example.test", False),
    ("repeated-same", b"From: alice@example.test\r\nfrom: alice@example.test", False),
    ("two-authors-no-sender", b"From: alice@example.test, ally@example.org", False),
    (
        "two-authors-one-foreign",
        b"From: alice@example.test, bob@example.test\r\nSender: alice@example.test",
        False,
    ),
    ("foreign-sender", b"From: alice@example.test\r\nSender: bob@example.test", False),
    (
        "repeated-sender",
        b"From: alice@example.test\r\nSender: alice@example.test\r\nSender: alice@example.test",
        False,
    ),
    (
        "two-senders",
        b"From: alice@example.test\r\nSender: alice@example.test, ally@example.org",
        False,
    ),
    ("sender-only-foreign", b"Sender: bob@example.test", False),
    ("foreign-address-as-name", b'From: "bob@example.test" <alice@example.test>', False),
    (
        "foreign-name-in-sender",
        b'From: alice@example.test\r\nSender: "bob@example.test" <alice@example.test>',
        False,
    ),
    ("encoded-foreign-name", b"From: =?utf-8?q?bob=40example.test?= <alice@example.test>", False),
    ("foreign-in-comment", b"From: alice@example.test (bob@example.test)", False),
    ("own-in-comment-of-foreign", b"From: bob@example.test (alice@example.test)", False),
    ("group", b"From: Friends: alice@example.test;", False),
    ("route", b"From: <@relay.example:bob@example.test>", False),
    ("unclosed-comment", b"From: alice(@example.test", False),
    ("unclosed-quote", b'From: "alice@example.test', False),
    ("empty", b"From:", False),
    ("null-path", b"From: <>", False),
    ("spaces-in-address", b"From: alice @ example.test", False),
    ("fold-into-second", b"From: alice@example.test\r\n\tbob@example.test", False),
    ("name-without-angle", b'From: "Alice" alice@example.test', False),
    ("semicolon-list", b"From: alice@example.test;bob@example.test", False),
    ("control-character", b"From: alice@example.test\x0b", False),
    ("not-utf8", b"From: \xff <alice@example.test>", False),
    ("quoted-local-part", b'From: "alice"@example.test', False),
    ("trailing-dot", b"From: alice@example.test.", False),
    ("domain-literal", b"From: alice@[127.0.0.1]", False),
    ("undecodable-word", b"From: =?x-unknown?q?bob?= <alice@example.test>", False),
]


@pytest.mark.parametrize(("header", "accepted"), [pytest.param(h, a, id=i) for i, h, a in FORMS])
def test_submitted_author_is_one_of_the_accounts_own_as_imap_shows_it(
    server: Suite, header: bytes, accepted: bool, request: pytest.FixtureRequest
) -> None:
    """Each From/Sender form is refused with 553 5.7.1, or accepted and then shown by IMAP's
    ENVELOPE with only the account's own addresses, in the addresses and the names alike."""
    subject = f"form-{request.node.callspec.id}"
    message = f"Subject: {subject}\r\n".encode() + header + b"\r\n\r\nbody\r\n"
    options = ["SMTPUTF8"] if not message.isascii() else []
    offset = log_size(server)
    with smtplib.SMTP("127.0.0.1", server.port("submission")) as client:
        client.starttls(context=unverified())
        client.login(ALICE, PASSWORD)
        try:
            client.sendmail(ALICE, [INBOX], message, mail_options=options)
            code, reply = 250, b""
        except smtplib.SMTPDataError as error:
            code, reply = error.smtp_code, error.smtp_error
    assert b"Traceback" not in log_since(server, offset)
    if not accepted:
        assert (code, reply[:6]) == (553, b"5.7.1 "), reply
        assert not any(subject.encode() in p.read_bytes() for p in messages(server, INBOX))
        return
    assert code == 250, reply
    deadline = time.monotonic() + 10
    while subject not in (shown := envelopes(server, INBOX)) and time.monotonic() < deadline:
        time.sleep(0.1)
    envelope = shown[subject]
    assert envelope["from"] or envelope["sender"]
    for name, address in envelope["from"] + envelope["sender"]:
        assert address in OWNED, (address, envelope)
        assert set(re.findall(r"[^\s<>()\"]+@[^\s<>()\"]+", name.lower())) <= OWNED, envelope


def test_the_from_table_is_large_and_mixed() -> None:
    """The table covers at least twenty forms, with accepted and refused ones."""
    assert len(FORMS) >= 20
    assert {accepted for _, _, accepted in FORMS} == {True, False}


# --- recipient guessing ---------------------------------------------------------------------


def test_guessing_recipients_slows_down_then_gets_421_while_others_are_served(
    server: Suite,
) -> None:
    """After a few refused recipients each further refusal waits, longer each time up to a
    cap; past the limit the session gets 421 4.7.0 and is closed. Known recipients do not
    count, and another session is answered at once the whole time (the loop never waits)."""
    stop = threading.Event()
    lags: list[float] = []

    def other_session() -> None:
        with smtplib.SMTP("127.0.0.1", server.port("smtp")) as client:
            while not stop.is_set():
                started = time.monotonic()
                assert client.noop()[0] == 250
                lags.append(time.monotonic() - started)
                time.sleep(0.02)

    watcher = threading.Thread(target=other_session)
    watcher.start()
    timings: list[tuple[bytes, float]] = []
    try:
        with socket.create_connection(("127.0.0.1", server.port("smtp"))) as sock:
            converse(sock, [b"EHLO t\r\n", b"MAIL FROM:<x@remote.test>\r\n"])
            reader = sock.makefile("rb")
            for n in range(LIMIT + 3):
                if n == 2:
                    sock.sendall(b"RCPT TO:<inbox@example.test>\r\n")
                    assert reader.readline().startswith(b"250 ")
                started = time.monotonic()
                sock.sendall(f"RCPT TO:<guess{n}@example.test>\r\n".encode())
                line = reader.readline()
                timings.append((line, time.monotonic() - started))
                if not line or line.startswith(b"421"):
                    break
            closed = reader.read() == b""
    finally:
        stop.set()
        watcher.join(10)
    replies = [line[:10] for line, _ in timings]
    assert replies == [b"550 5.1.1 "] * LIMIT + [b"421 4.7.0 "], timings
    assert closed
    waits = [took for _, took in timings]
    assert max(waits[:FREE]) < DELAY * 0.8, waits
    assert DELAY * 0.9 <= waits[FREE] < DELAY_MAX, waits
    assert all(DELAY_MAX * 0.9 <= w < DELAY_MAX * 2.5 for w in waits[FREE + 1 : LIMIT]), waits
    assert lags and max(lags) < 0.1, max(lags)


def test_relay_refusals_count_too(server: Suite) -> None:
    """Refused relaying counts like unknown recipients: the session cannot probe for ever."""
    with socket.create_connection(("127.0.0.1", server.port("smtp"))) as sock:
        converse(sock, [b"EHLO t\r\n", b"MAIL FROM:<x@remote.test>\r\n"])
        reader = sock.makefile("rb")
        got = []
        for n in range(LIMIT + 1):
            sock.sendall(f"RCPT TO:<victim{n}@elsewhere.example>\r\n".encode())
            got.append(reader.readline()[:10])
    assert got == [b"554 5.7.1 "] * LIMIT + [b"421 4.7.0 "]


# --- postmaster -----------------------------------------------------------------------------


def test_postmaster_is_accepted_bare_and_at_every_domain(server: Suite) -> None:
    """RFC 5321 4.5.1: <postmaster> in any case and postmaster@ each local domain are
    accepted and delivered to smtp.postmaster."""
    forms = ["postmaster", "POSTMASTER", "Postmaster@example.test", "postmaster@EXAMPLE.ORG"]
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as client:
        client.ehlo()
        for n, form in enumerate(forms):
            client.mail("x@remote.test")
            code, reply = client.rcpt(f"<{form}>")
            assert (code, reply[:5]) == (250, b"2.1.5"), (form, reply)
            assert client.data(f"Subject: to-postmaster-{n}\r\n\r\nhi\r\n".encode())[0] == 250
    for n in range(len(forms)):
        _newest(server, ADMIN, f"to-postmaster-{n}".encode())


def test_postmaster_without_a_setting_goes_to_its_account_else_the_oldest(
    suite_factory: Any,
) -> None:
    """With smtp.postmaster unset, postmaster@ the first domain gets the mail when it
    exists; until then the oldest account does; check-config says which."""
    suite = suite_factory()
    suite.add_user("first@example.test")
    time.sleep(0.01)
    suite.add_user("second@example.test")
    with smtplib.SMTP("127.0.0.1", suite.port("smtp")) as client:
        client.sendmail("x@remote.test", ["<postmaster>"], b"Subject: pm-oldest\r\n\r\nhi\r\n")
    _newest(suite, "first@example.test", b"pm-oldest")
    report = explain(load_config(suite.config_path), suite.directory)
    assert "postmaster@example.test" in report and "first@example.test" in report
    assert report.startswith("warning:")
    suite.add_user("postmaster@example.test")
    with smtplib.SMTP("127.0.0.1", suite.port("smtp")) as client:
        client.sendmail(
            "x@remote.test", ["postmaster@example.org"], b"Subject: pm-own\r\n\r\nhi\r\n"
        )
    _newest(suite, "postmaster@example.test", b"pm-own")
    checked = suite.cli("check-config")
    assert checked.returncode == 0, checked.stderr
    assert "postmaster mail goes to postmaster@example.test" in checked.stdout


def test_postmaster_with_no_account_at_all_is_deferred(suite_factory: Any) -> None:
    """With no account to deliver to, postmaster gets 450 4.2.1, not a refusal."""
    suite = suite_factory()
    with smtplib.SMTP("127.0.0.1", suite.port("smtp")) as client:
        client.ehlo()
        client.mail("x@remote.test")
        code, reply = client.rcpt("<postmaster>")
    assert (code, reply[:6]) == (450, b"4.2.1 ")


def test_postmaster_setting_must_be_in_our_domains(tmp_path: Path) -> None:
    """smtp.postmaster outside `domains` is a config error with its path."""
    path = tmp_path / "m.yaml"
    path.write_text(
        "hostname: mail.example.test\ndomains: [example.test]\n"
        "smtp: {postmaster: admin@elsewhere.example}\n"
    )
    with pytest.raises(Exception) as info:
        load_config(path)
    assert "smtp.postmaster: 'admin@elsewhere.example' is not an address in one of" in str(
        info.value.report()  # type: ignore[attr-defined]
    )


def test_explain_without_accounts_says_postmaster_mail_waits(tmp_path: Path) -> None:
    """What check-config prints when there is no account at all: mail to postmaster waits."""
    directory = Directory(tmp_path / "d.sqlite", ["example.test"])
    try:
        settings = parse_config(
            "hostname: mail.example.test\ndomains: [example.test]\n", tmp_path / "m.yaml"
        )
        assert "refused for now" in explain(settings, directory)
    finally:
        directory.close()
