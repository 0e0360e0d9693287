"""Fuzzing IMAP, POP3 and SMTP from real sessions: whatever a client sends, the server answers
in its protocol and goes on.

Each test runs one real server and feeds it sessions made by mutating the lines of real
client transcripts (a Thunderbird-like IMAP start-up, a POP3 download, an SMTP delivery and
submission): bytes inserted, dropped or replaced, tokens swapped for odd ones (literals,
wildcards, NUL, bytes that are not UTF-8, very long words), lines split, joined or repeated.
For every session the server must answer the end of it, or close only after a reply; no
reply may carry an exception's name and the log may hold no traceback; and once the fuzzing
is over an ordinary client still gets its mail. Examples are derandomized, so a run is
repeatable, and bounded to well under a minute per protocol.
"""

from __future__ import annotations

import base64
import imaplib
import poplib
import re
import smtplib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from mailsuite.store import Store
from tests.test_imap_server import PASSWORD, Raw
from tests.test_pop3 import Raw as LineRaw

# --- transcripts ----------------------------------------------------------------------------

# What Thunderbird 115 sends on start-up and while reading, after LOGIN (tags as it numbers
# them), and what it sends before logging in. STARTTLS and credentials are left out: TLS
# would end the plaintext session, and the login throttle has tests of its own.
IMAP_AUTHED = [
    b"3 capability",
    b'4 ID ("name" "Thunderbird" "version" "115.10.1")',
    b"5 ENABLE UTF8=ACCEPT",
    b'6 list (subscribed) "" "*" return (special-use)',
    b'7 LIST "" "INBOX/%"',
    b"8 NAMESPACE",
    b'9 select "INBOX"',
    b"10 UID fetch 1:* (FLAGS)",
    b"11 UID fetch 1 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject"
    b" Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type"
    b" Reply-To)])",
    b"12 UID fetch 1 (UID RFC822.SIZE BODY.PEEK[]<0.2048>)",
    b"13 UID store 1 +Flags (\\Seen)",
    b"14 UID search UNDELETED SINCE 1-Jan-2026",
    b'15 STATUS "Sent" (UIDNEXT MESSAGES UNSEEN RECENT)',
    b'16 UID copy 1 "Trash"',
    b"17 UID store 2 +FLAGS (\\Deleted)",
    b"18 expunge",
    b'19 APPEND "Drafts" (\\Draft) {38+}',
    b"Subject: draft\r\n\r\nnot finished yet",
    b"20 IDLE",
    b"DONE",
    b"21 FETCH 1:* (ENVELOPE BODYSTRUCTURE INTERNALDATE)",
    b"22 FETCH 1 (BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS.NOT (Subject)]<0.10>)",
    b"23 SEARCH CHARSET UTF-8 OR SUBJECT {6+}",
    "żółw".encode()[:6] + b" FROM ala",
    b'24 UID MOVE 1 "Archive"',
    b'25 CREATE "Fuzz/Sub"',
    b'26 LSUB "" "*"',
    b"27 EXAMINE INBOX",
    b"28 UNSELECT",
    b"29 close",
    b"30 logout",
]
IMAP_PREAUTH = [
    b"1 capability",
    b'2 ID ("name" "Thunderbird" "version" "115.10.1")',
    b"3 NOOP",
    b"4 AUTHENTICATE PLAIN",
    b"*",
    b'5 LIST "" "*"',
    b"6 logout",
]
POP3_AUTHED = [
    b"CAPA",
    b"STAT",
    b"LIST",
    b"UIDL",
    b"LIST 1",
    b"UIDL 1",
    b"TOP 1 0",
    b"RETR 1",
    b"DELE 2",
    b"RSET",
    b"NOOP",
    b"QUIT",
]
POP3_PREAUTH = [b"CAPA", b"AUTH", b"AUTH PLAIN", b"*", b"NOOP", b"STAT", b"QUIT"]
SMTP_MX = [
    b"EHLO client.example.org",
    b"MAIL FROM:<sender@example.org> SIZE=160 BODY=8BITMIME",
    b"RCPT TO:<{rcpt}>",
    b"DATA",
    b"From: Sender <sender@example.org>",
    b"To: {rcpt}",
    b"Subject: fuzz",
    b"Message-ID: <fuzz@example.org>",
    b"",
    b"body line",
    b"..a line that starts with a dot",
    b".",
    b"RSET",
    b"VRFY {rcpt}",
    b"HELP MAIL",
    b"NOOP",
    b"QUIT",
]
SMTP_SUBMISSION = [
    b"MAIL FROM:<{user}> SMTPUTF8",
    b"RCPT TO:<{rcpt}>",
    b"DATA",
    b"From: {user}",
    b"To: {rcpt}",
    b"Subject: =?utf-8?q?za=C5=BC=C3=B3=C5=82=C4=87?=",
    b"",
    "zażółć gęślą jaźń".encode(),
    b".",
    b"QUIT",
]

# --- mutations ------------------------------------------------------------------------------

COMMON_TOKENS = [
    b"",
    b'"',
    b"\\",
    b"\x00",
    b"\xff\xfe",
    b"\xc3\x28",  # not UTF-8
    b"\xed\xa0\x80",  # an encoded surrogate
    "é".encode(),
    "‹".encode(),
    b"\r",
    b"\n",
    b"0",
    b"-1",
    b"4294967296",
    b"99999999999999999999",
    b"A" * 300,
    b"x" * 9000,  # past the line limit
]
IMAP_TOKENS = [
    *COMMON_TOKENS,
    b"{0}",
    b"{1}",
    b"{5}",
    b"{5+}",
    b"~{3}",
    b"{4294967296}",
    b"{99999999999999999999}",
    b"NIL",
    b'""',
    b"(",
    b")",
    b"((((((((((((((((",
    b"[",
    b"]",
    b"*",
    b"%",
    b"*" * 300 + b"x",
    b"%" * 300 + b"x",
    b"1:*",
    b"*:*",
    b"4294967295",
    b"&",
    b"&AGE-",
    b"&-",
    b"INBOX",
    b"BODY[",
    b"BODY[]<0.>",
    b"BODY[1.2.3.4.5.6.7.8.9]",
    b"BINARY[1]",
    b"UID",
    b"CHARSET",
]
POP3_TOKENS = [*COMMON_TOKENS, b"1", b"2", b"999", b"PLAIN", b"=", b"*", b"+OK", b"."]
SMTP_TOKENS = [
    *COMMON_TOKENS,
    b"<>",
    b"<",
    b">",
    b"<@a,@b:c@d>",
    b"<a\x00b@example.org>",
    b"a@",
    b"@",
    b"<postmaster>",
    b"postmaster",
    b"SIZE=99999999999",
    b"SMTPUTF8",
    b"AUTH=<>",
    b".",
    b"..",
    b"=",
    b"[127.0.0.1]",
    b"[IPv6:::1]",
]
_STRUCTURE = re.compile(rb'[:<>"()\[\]{}@.=,]')


@st.composite
def _mutated_line(draw: st.DrawFn, line: bytes, odd: Sequence[bytes]) -> list[bytes]:
    """One line of a transcript, changed in one way (the result may be several lines)."""
    kind = draw(
        st.sampled_from(
            ["insert", "delete", "replace", "token", "splice", "drop", "swap", "split", "repeat"]
        )
    )
    some = st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(odd))
    if kind in ("insert", "delete", "replace") or not line:
        at = draw(st.integers(0, len(line)))
        blob = draw(some)
        if kind == "delete":
            return [line[:at] + line[at + draw(st.integers(1, 12)) :]]
        if kind == "replace":
            return [line[:at] + blob + line[at + len(blob) :]]
        return [line[:at] + blob + line[at:]]
    tokens = line.split(b" ")
    i = draw(st.integers(0, len(tokens) - 1))
    if kind == "token":
        tokens[i] = draw(st.sampled_from(odd))
    elif kind == "splice":
        # inside a token, at its structure: FROM:<a@b> becomes FROM:‹ or FROM:<a@>
        cuts = [0, *(m.end() for m in _STRUCTURE.finditer(tokens[i])), len(tokens[i])]
        a = draw(st.sampled_from(cuts))
        b = draw(st.sampled_from([c for c in cuts if c >= a]))
        tokens[i] = tokens[i][:a] + draw(st.sampled_from(odd)) + tokens[i][b:]
    elif kind == "drop":
        del tokens[i]
    elif kind == "swap":
        j = draw(st.integers(0, len(tokens) - 1))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    elif kind == "split":
        return [b" ".join(tokens[:i]), b" ".join(tokens[i:])]
    else:
        return [line] * draw(st.integers(2, 4))
    return [b" ".join(tokens)]


@st.composite
def mutated_session(
    draw: st.DrawFn, transcript: Sequence[bytes], odd: Sequence[bytes]
) -> list[bytes]:
    """A window of a transcript with one to three of its lines mutated."""
    start = draw(st.integers(0, len(transcript) - 1))
    window = list(transcript[start : start + draw(st.integers(1, 8))])
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(window) - 1))
        window[i : i + 1] = draw(_mutated_line(window[i], odd))
        if not window:
            window = [b""]
    return window


# No shrinking: a failure is reported as found, so a run stays bounded even when the server
# it found hanging never recovers.
FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- what every answer must be ----------------------------------------------------------

_EXCEPTION = re.compile(rb"Traceback|\b\w+(Error|Exception)\b|SERVERBUG")


class ServerLog:
    """The server's log, read from where the last check stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def new_tracebacks(self) -> list[str]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        text = data.decode("utf-8", "replace")
        return [chunk[:2000] for chunk in text.split("\n") if "Traceback" in chunk]


def check_replies(replies: list[bytes], sent: list[bytes]) -> None:
    for reply in replies:
        assert not _EXCEPTION.search(reply), (reply, sent)


def timed(name: str, run: Callable[[], None], started: float) -> None:
    run()
    print(f"\n{name} fuzz: {time.monotonic() - started:.1f} s")


# --- IMAP -----------------------------------------------------------------------------------


def _imap_finish(c: Raw, replies: list[bytes]) -> bool:
    """Send tagged NOOPs until one is answered (feeding a literal the server may be
    reading); True when answered, False when the server closed the connection."""
    for attempt in range(30):
        tag = b"zz%d" % attempt
        filler = b"x" * 65536 if replies and replies[-1].startswith(b"+") else b""
        try:
            c.send(filler + b"\r\n" + tag + b" NOOP\r\n")
        except OSError:
            return False
        c.sock.settimeout(0.4)
        try:
            while True:
                line = c.line()
                replies.append(line)
                if re.match(rb"zz\d+ ", line):
                    return True
        except TimeoutError:
            continue
        except (ConnectionError, OSError):
            return False
    raise AssertionError(f"no answer to a NOOP after the session: {replies[-5:]!r}")


def test_imap_answers_every_mutated_session_and_still_serves(suite_factory) -> None:
    """Mutated Thunderbird sessions, before and after login, each get their answers or a BYE
    before the server closes; no reply names an exception; the log has no traceback; and
    imaplib reads the INBOX afterwards."""
    s = suite_factory()
    users = [f"imapfuzz{i}@example.test" for i in range(4)]
    store = Store(s.config["paths"]["maildirs"])
    for user in users:
        s.add_user(user, PASSWORD)
    log = ServerLog(s.log_path)
    turn = iter(range(10**9))

    @settings(FUZZ, max_examples=600)
    @given(
        st.one_of(
            st.tuples(st.just("preauth"), mutated_session(IMAP_PREAUTH, IMAP_TOKENS)),
            st.tuples(
                st.sampled_from(["authed", "selected"]), mutated_session(IMAP_AUTHED, IMAP_TOKENS)
            ),
        )
    )
    # what the review's fuzzer found: backtracking LIST patterns that held every protocol
    @example(("authed", [b'1 LIST "" "' + b"*" * 3000 + b'x"']))
    @example(("selected", [b'1 LSUB "' + b"%" * 3000 + b'" "x"', b"2 NOOP"]))
    def session(case: tuple[str, list[bytes]]) -> None:
        state, lines = case
        user = users[next(turn) % len(users)]
        inbox = store.mailbox(user).folder("INBOX")
        if inbox.status().messages < 3:
            for n in range(3):
                store.deliver([user], b"From: a@example.org\r\nSubject: %d\r\n\r\nbody\r\n" % n)
        c = Raw(s.port("imap"))
        try:
            if state != "preauth":
                c.login(user, PASSWORD)
                if state == "selected":
                    c.ok("SELECT INBOX")
            replies: list[bytes] = []
            try:
                c.send(b"".join(line + b"\r\n" for line in lines))
            except OSError:
                pass
            if not _imap_finish(c, replies):
                # RFC 3501 7.1.5: the server says BYE before it closes
                assert any(r.startswith(b"* BYE") for r in replies), (lines, replies)
            check_replies(replies, lines)
        finally:
            c.close()
        assert not log.new_tracebacks(), lines

    def after() -> None:
        session()
        m = imaplib.IMAP4("127.0.0.1", s.port("imap"))
        m.login(users[0], PASSWORD)
        assert m.select("INBOX")[0] == "OK"
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK" and b"From: " in data[0][1]
        m.logout()
        assert "Traceback" not in s.log()

    timed("IMAP", after, time.monotonic())


# --- POP3 and SMTP: line protocols without tags --------------------------------------------


def _drain(c: LineRaw, quiet: float = 0.15, limit: float = 5.0) -> tuple[list[bytes], bool]:
    """Every line until the server is quiet for `quiet` seconds; and whether it closed."""
    lines: list[bytes] = []
    deadline = time.monotonic() + limit
    c.sock.settimeout(quiet)
    while time.monotonic() < deadline:
        try:
            lines.append(c.line())
        except TimeoutError:
            return lines, False
        except (ConnectionError, OSError):
            return lines, True
    raise AssertionError(f"the server kept talking: {lines[-5:]!r}")


def _answers_after(c: LineRaw, sent: list[bytes], ending: bytes, reply: re.Pattern[bytes]) -> None:
    """Send `sent` then `ending`; the server must answer, or close only after a reply, and
    then answer one more NOOP."""
    try:
        c.send(b"".join(line + b"\r\n" for line in sent) + ending)
    except OSError:
        pass
    replies, closed = _drain(c)
    check_replies(replies, sent)
    if closed:
        assert replies and reply.match(replies[-1]), (sent, replies)
        return
    c.sock.settimeout(3)
    c.send(b"NOOP\r\n")
    line = c.line()
    while not reply.match(line):  # the rest of a reply that was slow to come
        line = c.line()
    check_replies([line], sent)


_POP3_REPLY = re.compile(rb"(\+OK|-ERR)( |\r\n)")
_SMTP_REPLY = re.compile(rb"\d{3}( |\r\n)")


def test_pop3_answers_every_mutated_session_and_still_serves(suite_factory) -> None:
    """Mutated POP3 sessions, before and after login, are answered +OK or -ERR to their
    end, or closed only after a reply; no traceback anywhere; poplib downloads afterwards."""
    s = suite_factory()
    users = [f"popfuzz{i}@example.test" for i in range(4)]
    store = Store(s.config["paths"]["maildirs"])
    for user in users:
        s.add_user(user, PASSWORD)
    log = ServerLog(s.log_path)
    turn = iter(range(10**9))

    @settings(FUZZ, max_examples=250)
    @given(
        st.one_of(
            st.tuples(st.just(False), mutated_session(POP3_PREAUTH, POP3_TOKENS)),
            st.tuples(st.just(True), mutated_session(POP3_AUTHED, POP3_TOKENS)),
        )
    )
    def session(case: tuple[bool, list[bytes]]) -> None:
        authed, lines = case
        user = users[next(turn) % len(users)]
        if store.mailbox(user).folder("INBOX").status().messages < 3:
            for n in range(3):
                store.deliver([user], b"From: a@example.org\r\nSubject: %d\r\n\r\nbody\r\n" % n)
        c = LineRaw(s.port("pop3"))
        try:
            c.sock.settimeout(5)
            if authed:
                assert c.cmd(f"USER {user}").startswith(b"+OK")
                assert c.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
            _answers_after(c, lines, b"\r\n", _POP3_REPLY)
        finally:
            c.close()
        assert not log.new_tracebacks(), lines

    def after() -> None:
        session()
        client = poplib.POP3("127.0.0.1", s.port("pop3"), timeout=10)
        client.user(users[0])
        client.pass_(PASSWORD)
        count, _ = client.stat()
        assert count >= 1
        assert b"body" in b"\n".join(client.retr(1)[1])
        client.quit()
        assert "Traceback" not in s.log()

    timed("POP3", after, time.monotonic())


def test_smtp_answers_every_mutated_session_and_still_serves(suite_factory) -> None:
    """Mutated deliveries on the MX port and submissions after AUTH are answered with SMTP
    reply codes to their end, or closed only after a reply; no reply or log line carries a
    traceback; smtplib delivers a message afterwards."""
    s = suite_factory()
    user, rcpt = "smtpfuzz@example.test", "smtpfuzzrcpt@example.test"
    s.add_user(user, PASSWORD)
    s.add_user(rcpt, PASSWORD)
    log = ServerLog(s.log_path)

    def fill(lines: Sequence[bytes]) -> list[bytes]:
        return [
            line.replace(b"{user}", user.encode()).replace(b"{rcpt}", rcpt.encode())
            for line in lines
        ]

    plain = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()

    @settings(FUZZ, max_examples=250)
    @given(
        st.one_of(
            st.tuples(st.just("smtp"), mutated_session(fill(SMTP_MX), SMTP_TOKENS)),
            st.tuples(st.just("submission"), mutated_session(fill(SMTP_SUBMISSION), SMTP_TOKENS)),
        )
    )
    # what the review's fuzzer found: aiosmtpd's parser raising on these paths (451 and a
    # traceback), and a reply echoing bytes that were not UTF-8
    @example(("smtp", [b"EHLO client.example.org", "MAIL FROM:‹".encode()]))
    @example(("smtp", [b"EHLO client.example.org", b"VRFY a@"]))
    @example(("smtp", [b"EHLO client.example.org", b"VRFY \xed\xa0\x80@example.org"]))
    @example(("submission", [b"MAIL FROM:<a\x00b@external.example>", b"RCPT TO:<a@>"]))
    def session(case: tuple[str, list[bytes]]) -> None:
        port, lines = case
        c = LineRaw(s.port(port))
        try:
            c.sock.settimeout(5)
            if port == "submission":
                c.send(b"EHLO client.example.org\r\n")
                while not c.line().startswith(b"250 "):
                    pass
                assert c.cmd(f"AUTH PLAIN {plain}").startswith(b"235"), "AUTH failed"
            # a lone "." ends a DATA the mutations may have left open (RFC 5321 4.1.1.4)
            _answers_after(c, lines, b"\r\n.\r\n", _SMTP_REPLY)
        finally:
            c.close()
        assert not log.new_tracebacks(), lines

    def after() -> None:
        session()
        with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as client:
            refused = client.sendmail(
                "sender@example.org",
                [rcpt],
                b"From: sender@example.org\r\nSubject: after the fuzz\r\n\r\nstill here\r\n",
            )
        assert refused == {}
        deadline = time.monotonic() + 10
        found = False
        while not found and time.monotonic() < deadline:
            found = any(
                b"after the fuzz" in p.read_bytes()
                for sub in ("new", "cur")
                for p in (s.maildir(rcpt) / sub).iterdir()
            )
            time.sleep(0.05)
        assert found
        assert "Traceback" not in s.log()

    timed("SMTP", after, time.monotonic())
