"""IMAP server protocol tests: the real `mailsuite serve`, imaplib and raw sockets."""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import ssl
import threading
import time
from itertools import count

import pytest

from mailsuite.store import Store

PASSWORD = "Secret123"

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class Raw:
    """One connection; `cmd` sends a tagged command and returns every line up to the tag."""

    def __init__(self, port: int, *, tls: bool = False, host: str = "127.0.0.1") -> None:
        sock = socket.create_connection((host, port), timeout=10)
        if tls:
            sock = _client_tls().wrap_socket(sock, server_hostname="mail.example.test")
        self.sock = sock
        self.buf = b""
        self.tags = count(1)
        self.greeting = self.line()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        """One response line including CRLF, with any literal it announces appended."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self.buf!r}")
            self.buf += chunk
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        m = _LITERAL.search(out)
        if m:
            need = int(m.group(1))
            while len(self.buf) < need:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a literal")
                self.buf += chunk
            out += self.buf[:need]
            self.buf = self.buf[need:]
            out += self.line()
        return out

    def until(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln.startswith(tag + b" "):
                return lines

    def cmd(self, text: bytes | str) -> list[bytes]:
        if isinstance(text, str):
            text = text.encode()
        tag = b"t%d" % next(self.tags)
        self.send(tag + b" " + text + b"\r\n")
        return self.until(tag)

    def ok(self, text: bytes | str) -> list[bytes]:
        lines = self.cmd(text)
        assert b" OK " in lines[-1], lines
        return lines

    def login(self, user: str, password: str) -> None:
        self.ok(f'LOGIN "{user}" "{password}"')

    def starttls(self) -> None:
        self.ok("STARTTLS")
        self.sock = _client_tls().wrap_socket(self.sock, server_hostname="mail.example.test")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _client_tls() -> ssl.SSLContext:
    # the test server's certificate is self-signed for mail.example.test
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_tls() -> ssl.SSLContext:
    return _client_tls()


# --- fixtures -------------------------------------------------------------------------------

_users = count(1)

MESSAGE = (
    b"From: Ala Kot <ala@example.org>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: Hello\r\n"
    b"X-Folded: one\r\n two\r\n"
    b"Date: Mon, 5 Jan 2026 10:00:00 +0000\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"first part\r\n"
    b"--b1\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>second</p>\r\n"
    b"--b1--\r\n"
)


def simple(n: int, subject: str = "msg") -> bytes:
    return f"From: x@example.org\r\nSubject: {subject} {n}\r\n\r\nbody {n}\r\n".encode()


@pytest.fixture
def user(suite) -> str:
    address = f"imap{next(_users)}@example.test"
    suite.add_user(address, PASSWORD)
    return address


@pytest.fixture
def store(suite) -> Store:
    return Store(suite.config["paths"]["maildirs"])


def deliver(store: Store, address: str, *messages: bytes, folder: str = "INBOX") -> list[int]:
    return [store.deliver([address], m, folder=folder)[address] for m in messages]


def reply(lines: list[bytes]) -> bytes:
    """The tagged reply without its tag."""
    return lines[-1].split(b" ", 1)[1]


def session(suite, address: str, *, select: str | None = "INBOX") -> Raw:
    c = Raw(suite.port("imap"))
    c.login(address, PASSWORD)
    if select:
        c.ok(f"SELECT {select}")
    return c


def imaplib_session(suite, address: str) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", suite.port("imap"))
    c.login(address, PASSWORD)
    return c


# --- connection, capabilities, login --------------------------------------------------------


def test_greeting_and_capabilities_before_and_after_login(suite, user):
    c = Raw(suite.port("imap"))
    assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    caps = c.cmd("CAPABILITY")[0]
    assert b"STARTTLS" in caps and b"AUTH=PLAIN" in caps  # loopback plaintext is allowed here
    c.login(user, PASSWORD)
    caps = c.cmd("CAPABILITY")[0].split()
    for cap in (
        b"IDLE",
        b"UIDPLUS",
        b"MOVE",
        b"SPECIAL-USE",
        b"NAMESPACE",
        b"ENABLE",
        b"UNSELECT",
        b"ID",
        b"LITERAL+",
        b"CHILDREN",
    ):
        assert cap in caps
    assert b"STARTTLS" not in caps


def test_logindisabled_before_tls_when_plaintext_is_not_allowed(suite_factory):
    s = suite_factory({"tls": {"allow_plaintext_auth_on_loopback": False}})
    s.add_user("tls@example.test", PASSWORD)
    c = Raw(s.port("imap"))
    caps = c.cmd("CAPABILITY")[0]
    assert b"LOGINDISABLED" in caps and b"AUTH=PLAIN" not in caps
    assert reply(c.cmd(f'LOGIN tls@example.test "{PASSWORD}"')).startswith(b"NO [PRIVACYREQUIRED]")
    c.starttls()
    caps = c.cmd("CAPABILITY")[0]
    assert b"LOGINDISABLED" not in caps and b"AUTH=PLAIN" in caps and b"STARTTLS" not in caps
    c.login("tls@example.test", PASSWORD)
    # implicit TLS on imaps
    m = imaplib.IMAP4_SSL("127.0.0.1", s.port("imaps"), ssl_context=client_tls())
    assert m.login("tls@example.test", PASSWORD)[0] == "OK"
    m.logout()


def test_starttls_with_imaplib(suite, user):
    m = imaplib.IMAP4("127.0.0.1", suite.port("imap"))
    assert m.starttls(ssl_context=client_tls())[0] == "OK"
    assert m.login(user, PASSWORD)[0] == "OK"
    assert m.logout()[0] == "BYE"


def test_starttls_drops_pipelined_commands(suite):
    c = Raw(suite.port("imap"))
    c.send(b"a STARTTLS\r\nb CAPABILITY\r\n")
    assert c.line().startswith(b"a OK")
    c.sock = client_tls().wrap_socket(c.sock, server_hostname="mail.example.test")
    assert reply(c.cmd("NOOP")).startswith(b"OK")  # nothing answers the injected "b"


def test_wrong_password_and_unknown_user_get_the_same_answer(suite, user):
    c = Raw(suite.port("imap"))
    a = c.cmd(f'LOGIN {user} "wrong"')[-1]
    b = c.cmd('LOGIN nobody@example.test "wrong"')[-1]
    assert a.startswith(b"t1 NO [AUTHENTICATIONFAILED]")
    assert a[3:] == b[3:]
    c.login(user, PASSWORD)  # the connection is still usable


def test_temporary_password_is_refused_with_the_change_page(suite):
    suite.add_user("temp1@example.test", PASSWORD, temporary=True)
    c = Raw(suite.port("imap"))
    answer = c.cmd(f"LOGIN temp1@example.test {PASSWORD}")[-1]
    assert answer.startswith(b"t1 NO [ALERT]")
    assert b"http" in answer


def test_authenticate_plain_with_continuation_and_initial_response(suite, user):
    m = imaplib.IMAP4("127.0.0.1", suite.port("imap"))
    typ, _ = m.authenticate("PLAIN", lambda _: f"\0{user}\0{PASSWORD}".encode())
    assert typ == "OK"
    c = Raw(suite.port("imap"))
    token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
    assert reply(c.cmd(f"AUTHENTICATE PLAIN {token}")).startswith(b"OK")
    c2 = Raw(suite.port("imap"))
    c2.send(b"x AUTHENTICATE PLAIN\r\n")
    assert c2.line() == b"+ \r\n"
    c2.send(b"*\r\n")
    assert c2.line().startswith(b"x BAD")
    c2.send(b"y AUTHENTICATE PLAIN\r\n")
    c2.line()
    c2.send(b"!!notbase64\r\n")
    assert c2.line().startswith(b"y BAD")
    bad = base64.b64encode(f"other@example.test\0{user}\0{PASSWORD}".encode()).decode()
    assert reply(c2.cmd(f"AUTHENTICATE PLAIN {bad}")).startswith(b"NO")
    assert reply(c2.cmd("AUTHENTICATE CRAM-MD5")).startswith(b"NO")


def test_commands_in_the_wrong_state_are_bad(suite, user):
    c = Raw(suite.port("imap"))
    assert reply(c.cmd("SELECT INBOX")).startswith(b"BAD")
    assert reply(c.cmd("FETCH 1 FLAGS")).startswith(b"BAD")
    c.login(user, PASSWORD)
    assert reply(c.cmd("FETCH 1 FLAGS")).startswith(b"BAD")
    assert reply(c.cmd(f"LOGIN {user} x")).startswith(b"BAD")


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"   ",
        b"nospace",
        b"a BOGUS",
        b"a FETCH",
        b'a LOGIN "unterminated',
        b"a SEARCH (",
        b"\x00\xff\xfe garbage",
        b"a UID FROB 1",
    ],
)
def test_malformed_input_gets_bad_and_the_session_goes_on(suite, user, line):
    c = session(suite, user, select=None)
    c.send(line + b"\r\n")
    answer = c.line()
    assert b" BAD " in answer or answer.startswith(b"* BAD")
    assert reply(c.cmd("NOOP")).startswith(b"OK")


def test_over_long_line_is_bad_and_connection_kept(suite, user):
    c = session(suite, user, select=None)
    c.send(b"a NOOP " + b"x" * 70000 + b"\r\n")  # over the 64 KB default
    assert c.line().startswith(b"a BAD [LIMIT]")
    assert reply(c.cmd("NOOP")).startswith(b"OK")


def test_big_literal_outside_append_is_refused_without_reading_it(suite, user):
    c = Raw(suite.port("imap"))
    c.send(b"a LOGIN {100000000}\r\n")
    assert c.line().startswith(b"a BAD [LIMIT]")
    assert reply(c.cmd("NOOP")).startswith(b"OK")


def test_logout(suite, user):
    c = session(suite, user, select=None)
    lines = c.cmd("LOGOUT")
    assert lines[0].startswith(b"* BYE") and lines[-1].split(b" ", 1)[1].startswith(b"OK")


def test_id_namespace_enable(suite, user):
    c = session(suite, user, select=None)
    assert c.cmd('ID ("name" "test")')[0] == b'* ID ("name" "mailsuite" "vendor" "mailsuite")\r\n'
    assert c.cmd("NAMESPACE")[0] == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
    assert c.cmd("ENABLE X-UNKNOWN")[0] == b"* ENABLED\r\n"  # RFC 5161 3.1: nothing enabled


# --- folders ----------------------------------------------------------------------------


def test_select_reports_every_required_item(suite, user, store):
    deliver(store, user, simple(1), simple(2), simple(3))
    c = session(suite, user, select=None)
    lines = c.cmd("SELECT INBOX")
    text = b"".join(lines)
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n" in text
    assert b"* 3 EXISTS\r\n" in text
    assert b"* 3 RECENT\r\n" in text
    assert b"* OK [UNSEEN 1]" in text
    assert re.search(rb"\* OK \[UIDVALIDITY \d+\]", text)
    assert b"* OK [UIDNEXT 4]" in text
    assert b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]" in text
    assert lines[-1].split(b" ", 1)[1].startswith(b"OK [READ-WRITE]")
    # a second session does not see them as recent; EXAMINE is read-only
    c2 = session(suite, user, select=None)
    lines = c2.cmd("EXAMINE INBOX")
    assert b"* 0 RECENT\r\n" in lines and lines[-1].split(b" ", 1)[1].startswith(b"OK [READ-ONLY]")
    assert reply(c2.cmd("STORE 1 +FLAGS (\\Seen)")).startswith(b"NO")
    assert reply(c.cmd("SELECT Nowhere")).startswith(b"NO [NONEXISTENT]")
    assert reply(c.cmd("FETCH 1 FLAGS")).startswith(b"BAD")  # failed SELECT deselects


def test_create_list_rename_delete_subscribe(suite, user):
    m = imaplib_session(suite, user)
    assert m.create("Projects/2026")[0] == "OK"
    assert m.create("Zo&AUI-w")[0] == "OK"  # "Zołw" in modified UTF-7
    _, data = m.list()
    names = [d.decode() for d in data]
    assert '(\\HasNoChildren) "/" "INBOX"' in names
    assert '(\\Noselect \\HasChildren) "/" "Projects"' in names
    assert '(\\HasNoChildren) "/" "Projects/2026"' in names
    assert '(\\HasNoChildren \\Sent) "/" "Sent"' in names
    assert '(\\HasNoChildren) "/" "Zo&AUI-w"' in names
    assert m.create("INBOX")[0] == "NO"
    assert m.create("Projects/2026")[0] == "NO"
    _, data = m.list('""', "%")
    assert b'(\\Noselect \\HasChildren) "/" "Projects"' in data
    assert not any(b"2026" in d for d in data)
    _, data = m.list("Projects/", "%")
    assert data == [b'(\\HasNoChildren) "/" "Projects/2026"']
    _, data = m.list('""', "inbox")
    assert data == [b'(\\HasNoChildren) "/" "INBOX"']
    _, data = m.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']
    assert m.rename("Projects", "Work")[0] == "NO"  # only implied by its child
    assert m.create("Projects")[0] == "OK"
    assert m.rename("Projects", "Work")[0] == "OK"  # children move along
    _, data = m.list('""', "Work*")
    assert b'(\\HasNoChildren) "/" "Work/2026"' in data
    assert m.rename("Work/2026", "INBOX")[0] == "NO"
    assert m.subscribe("Work/2026")[0] == "OK"
    _, data = m.lsub('""', "*")
    assert b'(\\HasNoChildren) "/" "Work/2026"' in data
    assert m.unsubscribe("Work/2026")[0] == "OK"
    assert not any(b"Work/2026" in d for d in m.lsub('""', "*")[1] if d)
    assert m.delete("Work/2026")[0] == "OK"
    assert m.delete("Work/2026")[0] == "NO"
    assert m.delete("INBOX")[0] == "NO"


def test_list_special_use_selection_and_return(suite, user):
    c = session(suite, user, select=None)
    lines = c.cmd('LIST (SPECIAL-USE) "" "*"')
    assert lines[:-1] == [
        b'* LIST (\\HasNoChildren \\Archive) "/" "Archive"\r\n',
        b'* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"\r\n',
        b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"\r\n',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n',
        b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"\r\n',
    ]
    assert reply(c.cmd('LIST "" "*" RETURN (SPECIAL-USE CHILDREN)')).startswith(b"OK")


def test_rename_inbox_moves_its_messages(suite, user, store):
    deliver(store, user, simple(1), simple(2))
    c = session(suite, user, select=None)
    c.ok("RENAME INBOX Old")
    assert b"(MESSAGES 0)" in c.cmd("STATUS INBOX (MESSAGES)")[0]
    assert b"(MESSAGES 2)" in c.cmd("STATUS Old (MESSAGES)")[0]


def test_status(suite, user, store):
    deliver(store, user, simple(1), simple(2))
    c = session(suite, user, select=None)
    line = c.cmd("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")[0]
    assert re.match(
        rb'\* STATUS "INBOX" \(MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 2\)\r\n', line
    )
    assert reply(c.cmd("STATUS Nowhere (MESSAGES)")).startswith(b"NO")


def test_append_with_flags_and_date_returns_appenduid(suite, user):
    c = session(suite, user, select=None)
    data = simple(1)
    c.send(b'a APPEND Sent (\\Seen $Label1) " 5-Jan-2026 10:00:00 +0100" {%d}\r\n' % len(data))
    assert c.line().startswith(b"+ ")
    c.send(data + b"\r\n")
    answer = c.line()
    m = re.match(rb"a OK \[APPENDUID (\d+) 1\]", answer)
    assert m, answer
    c.ok("SELECT Sent")
    lines = c.cmd("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    assert lines[0] == (
        b'* 1 FETCH (FLAGS ($Label1 \\Recent \\Seen) INTERNALDATE "05-Jan-2026 09:00:00 +0000" '
        b"RFC822.SIZE %d BODY[] {%d}\r\n%s)\r\n" % (len(data), len(data), data)
    )
    # LITERAL+ sends without waiting
    c.send(b"b APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
    assert c.line().startswith(b"b OK [APPENDUID")
    assert reply(c.cmd("APPEND Nowhere {1+}\r\nx")).startswith(b"NO [TRYCREATE]")


def test_append_over_the_limit_is_refused_before_the_data(suite_factory):
    s = suite_factory({"limits": {"message_size": 2048}})
    s.add_user("big@example.test", PASSWORD)
    c = Raw(s.port("imap"))
    c.login("big@example.test", PASSWORD)
    assert b"APPENDLIMIT=2048" in c.cmd("CAPABILITY")[0]
    c.send(b"a APPEND INBOX {4096}\r\n")
    assert c.line().startswith(b"a NO [TOOBIG]")
    # non-synchronising: the data comes anyway and is skipped
    c.send(b"b APPEND INBOX {4096+}\r\n" + b"x" * 4096 + b"\r\n")
    assert c.line().startswith(b"b NO [TOOBIG]")
    assert reply(c.cmd("NOOP")).startswith(b"OK")
    m = imaplib.IMAP4("127.0.0.1", s.port("imap"))
    m.login("big@example.test", PASSWORD)
    assert m.append("INBOX", None, None, b"x" * 5000)[0] == "NO"


# --- fetch ------------------------------------------------------------------------------


def test_fetch_sections_are_byte_exact(suite, user, store):
    deliver(store, user, MESSAGE)
    c = session(suite, user)
    header = MESSAGE.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    cases = {
        b"BODY.PEEK[]": (b"BODY[]", MESSAGE),
        b"BODY.PEEK[HEADER]": (b"BODY[HEADER]", header),
        b"BODY.PEEK[TEXT]": (b"BODY[TEXT]", MESSAGE[len(header) :]),
        b"BODY.PEEK[1]": (b"BODY[1]", b"first part"),
        b"BODY.PEEK[2]": (b"BODY[2]", b"<p>second</p>"),
        b"BODY.PEEK[2.MIME]": (b"BODY[2.MIME]", b"Content-Type: text/html\r\n\r\n"),
        b"BODY.PEEK[HEADER.FIELDS (x-folded SUBJECT)]": (
            b"BODY[HEADER.FIELDS (X-FOLDED SUBJECT)]",
            b"Subject: Hello\r\nX-Folded: one\r\n two\r\n\r\n",
        ),
        b"BODY.PEEK[HEADER.FIELDS.NOT (Content-Type MIME-Version Date Message-ID To)]": (
            b"BODY[HEADER.FIELDS.NOT (CONTENT-TYPE MIME-VERSION DATE MESSAGE-ID TO)]",
            b"From: Ala Kot <ala@example.org>\r\nSubject: Hello\r\nX-Folded: one\r\n two\r\n\r\n",
        ),
        b"BODY.PEEK[]<5.10>": (b"BODY[]<5>", MESSAGE[5:15]),
        b"BODY.PEEK[1]<100.5>": (b"BODY[1]<100>", b""),
        b"RFC822.HEADER": (b"RFC822.HEADER", header),
        b"BODY.PEEK[3]": (b"BODY[3]", b""),
    }
    for spec, (label, data) in cases.items():
        lines = c.cmd(b"FETCH 1 (" + spec + b")")
        assert lines[0] == b"* 1 FETCH (" + label + b" {%d}\r\n" % len(data) + data + b")\r\n", spec
    # none of those set \Seen
    assert c.cmd("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Recent))\r\n"


def test_fetch_body_sets_seen_and_reports_flags(suite, user, store):
    deliver(store, user, MESSAGE, simple(2))
    c = session(suite, user)
    lines = c.cmd("FETCH 1 BODY[1]")
    assert lines[0] == b"* 1 FETCH (BODY[1] {10}\r\nfirst part FLAGS (\\Recent \\Seen))\r\n"
    lines = c.cmd("UID FETCH 2 RFC822.TEXT")
    assert (
        lines[0] == b"* 2 FETCH (UID 2 RFC822.TEXT {8}\r\nbody 2\r\n FLAGS (\\Recent \\Seen))\r\n"
    )
    lines = c.cmd("FETCH 1:2 RFC822")  # already seen: no extra FLAGS
    assert b"FLAGS" not in lines[0]


def test_fetch_envelope_bodystructure_and_macros(suite, user, store):
    deliver(store, user, MESSAGE)
    c = session(suite, user)
    lines = c.cmd("FETCH 1 (ENVELOPE BODYSTRUCTURE BODY)")
    assert lines[0] == (
        b'* 1 FETCH (ENVELOPE ("Mon, 5 Jan 2026 10:00:00 +0000" "Hello" '
        b'(("Ala Kot" NIL "ala" "example.org")) (("Ala Kot" NIL "ala" "example.org")) '
        b'(("Ala Kot" NIL "ala" "example.org")) ((NIL NIL "bob" "example.test")) NIL NIL NIL '
        b'"<m1@example.org>") '
        # body-fld-lines counts line breaks; the one before a delimiter is the delimiter's
        b'BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 13 0 NIL NIL NIL NIL) "MIXED" '
        b'("BOUNDARY" "b1") NIL NIL NIL) '
        b'BODY (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 0)'
        b'("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 13 0) "MIXED"))\r\n'
    )
    all_ = c.cmd("FETCH 1 ALL")[0]
    assert re.match(
        rb'\* 1 FETCH \(FLAGS \(\\Recent\) INTERNALDATE "[^"]+" RFC822.SIZE %d ENVELOPE \('
        % len(MESSAGE),
        all_,
    )
    assert re.match(
        rb'\* 1 FETCH \(FLAGS \(\\Recent\) INTERNALDATE "[^"]+" RFC822.SIZE \d+\)\r\n$',
        c.cmd("FETCH 1 FAST")[0],
    )
    assert b" BODY (" in c.cmd("FETCH 1 FULL")[0]


def test_fetch_ranges_and_uid_fetch(suite, user, store):
    deliver(store, user, *(simple(i) for i in range(1, 6)))
    c = session(suite, user)
    lines = c.cmd("FETCH 2:* (UID)")
    assert lines[:-1] == [b"* %d FETCH (UID %d)\r\n" % (i, i) for i in range(2, 6)]
    lines = c.cmd("UID FETCH 4:* (FLAGS)")
    assert lines[:-1] == [
        b"* 4 FETCH (UID 4 FLAGS (\\Recent))\r\n",
        b"* 5 FETCH (UID 5 FLAGS (\\Recent))\r\n",
    ]
    assert c.cmd("UID FETCH 100:* (FLAGS)")[:-1] == [b"* 5 FETCH (UID 5 FLAGS (\\Recent))\r\n"]
    assert c.cmd("UID FETCH 50:60 (FLAGS)")[:-1] == []
    assert c.cmd("FETCH 1,3 (RFC822.SIZE)")[:-1] == [
        b"* 1 FETCH (RFC822.SIZE %d)\r\n" % len(simple(1)),
        b"* 3 FETCH (RFC822.SIZE %d)\r\n" % len(simple(3)),
    ]


# --- store, search, expunge, copy, move --------------------------------------------------


def test_store_flag_forms(suite, user, store):
    deliver(store, user, simple(1), simple(2))
    c = session(suite, user)
    # after the FLAGS that announce $Work (RFC 3501 7.2.6)
    assert c.cmd("STORE 1 +FLAGS (\\Flagged $Work)")[-2] == (
        b"* 1 FETCH (FLAGS ($Work \\Flagged \\Recent))\r\n"
    )
    assert c.cmd("STORE 1 -FLAGS ($Work)")[0] == b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"
    assert c.cmd("UID STORE 2 FLAGS (\\Answered)")[0] == (
        b"* 2 FETCH (FLAGS (\\Answered \\Recent) UID 2)\r\n"
    )
    assert c.cmd("STORE 1:2 +FLAGS.SILENT (\\Seen)")[:-1] == []
    assert c.cmd("FETCH 1:2 FLAGS")[:-1] == [
        b"* 1 FETCH (FLAGS (\\Flagged \\Recent \\Seen))\r\n",
        b"* 2 FETCH (FLAGS (\\Answered \\Recent \\Seen))\r\n",
    ]
    assert c.cmd("STORE 1 +FLAGS (\\Recent)")[-1].startswith(b"t")
    assert b" BAD " in c.cmd("STORE 1 +FLAGS (\\Recent)")[-1]


def test_search_keys_end_to_end(suite, user, store):
    deliver(store, user, MESSAGE, simple(2, "Zażółć"), simple(3))
    c = session(suite, user)
    c.ok("STORE 1 +FLAGS (\\Seen)")
    c.ok("STORE 3 +FLAGS (\\Deleted)")
    assert c.cmd("SEARCH UNSEEN")[0] == b"* SEARCH 2 3\r\n"
    assert c.cmd("UID SEARCH SEEN")[0] == b"* SEARCH 1\r\n"
    assert c.cmd("SEARCH OR DELETED SEEN")[0] == b"* SEARCH 1 3\r\n"
    assert c.cmd('SEARCH FROM "ala kot"')[0] == b"* SEARCH 1\r\n"
    assert c.cmd("SEARCH BODY second")[0] == b"* SEARCH 1\r\n"
    assert c.cmd("SEARCH HEADER X-Folded two")[0] == b"* SEARCH 1\r\n"
    assert c.cmd("SEARCH NOT TEXT hello")[0] == b"* SEARCH 2 3\r\n"
    assert c.cmd("SEARCH LARGER 100")[0] == b"* SEARCH 1\r\n"
    assert c.cmd("SEARCH SENTSINCE 1-Jan-2026")[0] == b"* SEARCH 1\r\n"
    assert c.cmd("SEARCH SINCE 1-Jan-2000 2:*")[0] == b"* SEARCH 2 3\r\n"
    word = "Zażółć".encode()
    lines = c.cmd(b"SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(word) + word)
    assert lines[0] == b"* SEARCH 2\r\n"
    assert reply(c.cmd("SEARCH CHARSET KOI8-R ALL")).startswith(b"NO [BADCHARSET")
    assert reply(c.cmd("SEARCH NOSUCHKEY")).startswith(b"BAD")


def test_expunge_close_unselect_and_uid_expunge(suite, user, store):
    deliver(store, user, *(simple(i) for i in range(1, 7)))
    c = session(suite, user)
    c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    assert c.cmd("EXPUNGE")[:-1] == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"]
    c.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
    # RFC 4315: only the named UIDs go
    assert c.cmd("UID EXPUNGE 5:6")[:-1] == [b"* 4 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]
    c.ok("UNSELECT")
    c.ok("SELECT INBOX")
    assert b"* 2 EXISTS\r\n" in c.cmd("SELECT INBOX")
    c.ok("CLOSE")  # silently expunges the \Deleted ones
    assert b"* 0 EXISTS\r\n" in c.cmd("SELECT INBOX")


def test_copy_and_move_report_copyuid(suite, user, store):
    deliver(store, user, simple(1), simple(2), simple(3))
    c = session(suite, user)
    c.ok("STORE 1 +FLAGS (\\Flagged)")
    answer = c.cmd("COPY 1:2 Archive")[-1]
    m = re.match(rb"t\d+ OK \[COPYUID (\d+) 1,2 1,2\]", answer)
    assert m, answer
    lines = c.cmd("UID MOVE 3 Archive")
    assert re.match(rb"\* OK \[COPYUID \d+ 3 3\]", lines[0])
    assert lines[1] == b"* 3 EXPUNGE\r\n"
    assert lines[-1].split(b" ", 1)[1].startswith(b"OK")
    assert reply(c.cmd("COPY 1 Nowhere")).startswith(b"NO [TRYCREATE]")
    c.ok("SELECT Archive")
    assert c.cmd("FETCH 1:* FLAGS")[0].startswith(b"* 1 FETCH (FLAGS (\\Flagged")


# --- several sessions ---------------------------------------------------------------------


def test_other_sessions_changes_are_announced(suite, user, store):
    deliver(store, user, simple(1), simple(2))
    a = session(suite, user)
    b = session(suite, user)
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    assert a.cmd("NOOP")[:-1] == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"]
    b.ok("APPEND INBOX {5+}\r\nx: y\r\n")
    lines = a.cmd("NOOP")
    assert b"* 3 EXISTS\r\n" in lines
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    # FETCH must not announce the expunge (RFC 3501 7.4.1); NOOP does
    lines = a.cmd("FETCH 1 UID")
    assert b"EXPUNGE" not in b"".join(lines)
    lines = a.cmd("NOOP")
    assert b"* 2 EXPUNGE\r\n" in lines
    assert a.cmd("FETCH 1:* UID")[:-1] == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n"]


def test_idle_gets_live_updates_from_sessions_and_from_outside(suite, user, store):
    deliver(store, user, simple(1))
    a = session(suite, user)
    b = session(suite, user)
    a.send(b"i IDLE\r\n")
    assert a.line().startswith(b"+ ")
    b.ok("APPEND INBOX {5+}\r\nx: y\r\n")
    assert a.line() == b"* 2 EXISTS\r\n"
    assert a.line().startswith(b"* ")  # RECENT
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    assert a.line().startswith(b"* 1 FETCH (FLAGS (\\Flagged")
    b.ok("STORE 1 +FLAGS (\\Deleted)")
    assert a.line().startswith(b"* 1 FETCH (FLAGS (")
    b.ok("EXPUNGE")
    assert a.line() == b"* 1 EXPUNGE\r\n"
    # a delivery by another process reaches the IDLE session through the poller
    started = time.monotonic()
    deliver(store, user, simple(9))
    assert a.line() == b"* 2 EXISTS\r\n"
    assert time.monotonic() - started < 10
    a.line()
    a.send(b"DONE\r\n")
    assert a.line().startswith(b"i OK")
    a.send(b"j IDLE\r\n")
    a.line()
    a.send(b"NOTDONE\r\n")
    assert a.line().startswith(b"j BAD")


def test_concurrent_sessions_do_not_corrupt_the_store(suite, user, store):
    deliver(store, user, *(simple(i) for i in range(1, 41)))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            m = imaplib_session(suite, user)
            m.select("INBOX")
            for i in range(10):
                m.store(str(1 + (n * 7 + i) % 40), "+FLAGS", "(\\Seen)")
                m.append("INBOX", None, None, simple(100 + n * 10 + i))
                m.fetch("1:*", "(FLAGS)")
            m.logout()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    c = session(suite, user)
    lines = c.cmd("UID FETCH 1:* (UID RFC822.SIZE)")
    assert len(lines) - 1 == 80
    uids = [int(re.search(rb"UID (\d+)", ln).group(1)) for ln in lines[:-1]]
    assert uids == sorted(set(uids))


# --- limits ------------------------------------------------------------------------------


def test_connection_limits_per_ip_and_per_user(suite_factory):
    s = suite_factory(
        {"limits": {"connections_per_ip": 3}, "imap": {"max_connections_per_user": 1}}
    )
    s.add_user("lim@example.test", PASSWORD)
    a, b, _c = Raw(s.port("imap")), Raw(s.port("imap")), Raw(s.port("imap"))
    d = socket.create_connection(("127.0.0.1", s.port("imap")), timeout=5)
    assert d.recv(1000).startswith(b"* BYE")
    a.login("lim@example.test", PASSWORD)
    assert reply(b.cmd(f"LOGIN lim@example.test {PASSWORD}")).startswith(b"NO [LIMIT]")
    a.close()
    deadline = time.monotonic() + 5
    while reply(b.cmd(f"LOGIN lim@example.test {PASSWORD}")).startswith(b"NO [LIMIT]"):
        assert time.monotonic() < deadline  # the closed connection stops counting
        time.sleep(0.1)


def test_autologout_after_the_idle_timeout(suite_factory):
    s = suite_factory({"imap": {"idle_timeout": 1}})
    c = Raw(s.port("imap"))
    started = time.monotonic()
    assert c.line().startswith(b"* BYE Autologout")
    assert time.monotonic() - started >= 0.5
    with pytest.raises(ConnectionError):
        c.line()


def test_idle_hears_of_mail_delivered_over_smtp(suite, user):
    """SMTP delivery in the same server reaches an IDLE session through the store's notices."""
    import smtplib

    a = session(suite, user)
    a.send(b"i IDLE\r\n")
    assert a.line().startswith(b"+ ")
    with smtplib.SMTP("127.0.0.1", suite.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("someone@example.org", [user], simple(1, "over smtp"))
    assert a.line() == b"* 1 EXISTS\r\n"
    a.line()
    a.send(b"DONE\r\n")
    assert a.line().startswith(b"i OK")
    lines = a.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert b"Subject: over smtp 1\r\n" in lines[0]


REAL_LINES = [
    b"FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)]<0.10>)",
    b"UID SEARCH CHARSET UTF-8 OR FROM a NOT SEEN",
    b'LIST (SPECIAL-USE) "" "*"',
    b"STORE 1 +FLAGS.SILENT (\\Seen)",
    b"STATUS INBOX (MESSAGES UIDNEXT)",
    b"UID FETCH 1:2 (UID RFC822.SIZE BODY.PEEK[1.MIME])",
    b"SELECT INBOX",
    b"EXAMINE INBOX",
    b"COPY 1 Archive",
]


def test_mutated_commands_always_get_a_tagged_answer(suite, user, store):
    """Random byte edits of real commands: every one is answered, and the session lives on."""
    import random

    deliver(store, user, MESSAGE, simple(2))
    c = session(suite, user)
    rnd = random.Random(3501)
    for n in range(300):
        line = bytearray(rnd.choice(REAL_LINES))
        for _ in range(rnd.randint(1, 3)):
            pos = rnd.randrange(len(line) + 1)
            junk = bytes(
                rnd.choice(b'()[]<>{}"\\*%:,. 0123456789AZaz+-\x00\x7f\xc3')
                for _ in range(rnd.randint(0, 3))
            )
            line[pos : pos + rnd.randint(0, 2)] = junk
        line = bytes(line).replace(b"\r", b"").replace(b"\n", b"")
        line = re.sub(rb"\{\d+\+?\}$", b"", line)  # no literal announcements at the end
        tag = b"m%d" % n
        c.send(tag + b" " + line + b"\r\n")
        got = c.until(tag)
        assert re.match(tag + rb" (OK|NO|BAD) ", got[-1]), (line, got[-1])
    assert reply(c.cmd("NOOP")).startswith(b"OK")


def test_check_and_noop_find_changes_made_by_another_process(suite, user, store):
    """The CLI or a second server changing the Maildir is seen at the next poll."""
    deliver(store, user, simple(1), simple(2), simple(3))
    c = session(suite, user)
    outside = store.mailbox(user).folder("INBOX")
    outside.store_flags([2], ["\\Answered"], "add")
    assert c.cmd("CHECK")[:-1] == [b"* 2 FETCH (FLAGS (\\Answered \\Recent))\r\n"]
    outside.expunge([1])
    deliver(store, user, simple(4))
    lines = c.cmd("NOOP")
    assert lines[:-1] == [b"* 1 EXPUNGE\r\n", b"* 3 EXISTS\r\n", b"* 3 RECENT\r\n"]
    assert c.cmd("FETCH 1:* UID")[:-1] == [
        b"* 1 FETCH (UID 2)\r\n",
        b"* 2 FETCH (UID 3)\r\n",
        b"* 3 FETCH (UID 4)\r\n",
    ]
