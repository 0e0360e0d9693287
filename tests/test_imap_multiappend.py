"""MULTIAPPEND (RFC 3502) against the real server: several messages in one APPEND, all or
none."""

from __future__ import annotations

import re

from tests.test_imap_server import Raw, reply, session, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

A = b"Subject: a\r\n\r\nfirst\r\n"
B = b"Subject: b\r\n\r\nsecond message\r\n"
C = b"Subject: c\r\n\r\nthird\r\n"


def send_append(c: Raw, text: bytes) -> list[bytes]:
    """Send a whole APPEND with non-synchronising literals (RFC 7888) and read the reply."""
    c.send(b"m1 " + text + b"\r\n")
    return c.until(b"m1")


def lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


def test_capability_offers_multiappend(suite, user):
    c = session(suite, user, select=None)
    assert b"MULTIAPPEND" in c.ok("CAPABILITY")[0].split()


def test_several_messages_arrive_in_order_with_their_flags_and_dates(suite, user, store):
    """RFC 3502 3: each message gets its own flags and date, in the order sent; RFC 4315 3
    with RFC 3502 6: APPENDUID names every new UID."""
    c = session(suite, user, select=None)
    lines = send_append(
        c,
        b"APPEND INBOX (\\Seen) "
        + lit(A)
        + b' (\\Flagged $Work) "05-Mar-2024 10:11:12 +0100" '
        + lit(B)
        + b" "
        + lit(C),
    )
    m = re.match(rb"m1 OK \[APPENDUID (\d+) (\S+)\]", lines[-1])
    assert m, lines
    folder = store.mailbox(user).folder("INBOX")
    msgs = folder.messages()
    assert [folder.read(x.uid) for x in msgs] == [A, B, C]
    uids = [x.uid for x in msgs]
    assert m.group(1) == str(folder.uidvalidity).encode()
    assert m.group(2) == b"%d:%d" % (uids[0], uids[-1])
    assert [x.flags for x in msgs] == [
        frozenset({"\\Seen"}),
        frozenset({"\\Flagged", "$Work"}),
        frozenset(),
    ]
    c.ok("SELECT INBOX")
    dates = c.ok("FETCH 2 INTERNALDATE")[0]
    assert b'"05-Mar-2024 09:11:12 +0000"' in dates or b'"05-Mar-2024 10:11:12 +0100"' in dates


def test_synchronising_literals_work_too(suite, user, store):
    """RFC 3502 3: each message literal may be a synchronising one, each answered with a
    continuation request."""
    c = session(suite, user, select=None)
    c.send(b"s1 APPEND INBOX {%d}\r\n" % len(A))
    assert c.line().startswith(b"+")
    c.send(A + b" {%d}\r\n" % len(B))
    assert c.line().startswith(b"+")
    c.send(B + b"\r\n")
    assert b"s1 OK" in c.until(b"s1")[-1]
    folder = store.mailbox(user).folder("INBOX")
    assert [folder.read(x.uid) for x in folder.messages()] == [A, B]


def test_one_message_refused_by_the_store_appends_none(suite, user, store):
    """RFC 3502 3: if the server cannot append any one message, it MUST NOT append any."""
    c = session(suite, user, select=None)
    bad = "k" * 150  # a keyword longer than the store keeps
    lines = send_append(
        c, b"APPEND INBOX " + lit(A) + b" (" + bad.encode() + b") " + lit(B) + b" " + lit(C)
    )
    assert reply(lines).startswith(b"NO"), lines
    assert store.mailbox(user).folder("INBOX").messages() == []
    c.ok("SELECT INBOX")
    assert b"* 0 EXISTS\r\n" in c.ok("NOOP") + c.ok("SELECT INBOX")


def test_a_message_over_the_limit_refuses_the_whole_command(suite, user, store):
    """RFC 3502 3 with RFC 7889 4: a literal over APPENDLIMIT ends the command with NO
    [TOOBIG] and none of its messages is appended."""
    c = session(suite, user, select=None)
    limit = int(re.search(rb"APPENDLIMIT=(\d+)", c.ok("CAPABILITY")[0]).group(1))
    c.send(b"m1 APPEND INBOX " + lit(A) + b" {%d}\r\n" % (limit + 1))
    assert c.line().startswith(b"m1 NO [TOOBIG]")
    c.ok("NOOP")
    assert store.mailbox(user).folder("INBOX").messages() == []


def test_multiappend_to_a_missing_folder_asks_to_create_it(suite, user):
    """RFC 3502 3 with RFC 3501 6.3.11: NO [TRYCREATE] when the mailbox does not exist."""
    c = session(suite, user, select=None)
    lines = send_append(c, b"APPEND Nowhere " + lit(A) + b" " + lit(B))
    assert reply(lines).startswith(b"NO [TRYCREATE]")


def test_selected_folder_announces_every_new_message(suite, user):
    c = session(suite, user)
    lines = send_append(c, b"APPEND INBOX " + lit(A) + b" " + lit(B) + b" " + lit(C))
    assert b"* 3 EXISTS\r\n" in lines + c.ok("NOOP")


def test_a_trailing_garbage_after_the_last_message_is_bad(suite, user, store):
    c = session(suite, user, select=None)
    lines = send_append(c, b"APPEND INBOX " + lit(A) + b" junk")
    assert reply(lines).startswith(b"BAD")
    assert store.mailbox(user).folder("INBOX").messages() == []


def test_big_messages_in_one_multiappend(suite, user, store):
    """The messages before the last are not held against the command-line limit: three
    1 MB messages arrive in one APPEND (RFC 3502 3), each within APPENDLIMIT."""
    big = [b"Subject: big %d\r\n\r\n" % i + b"y" * 1_000_000 + b"\r\n" for i in range(3)]
    c = session(suite, user, select=None)
    lines = send_append(c, b"APPEND INBOX " + b" ".join(lit(m) for m in big))
    assert lines[-1].startswith(b"m1 OK"), lines[-1][:200]
    folder = store.mailbox(user).folder("INBOX")
    assert [folder.read(x.uid) for x in folder.messages()] == big
