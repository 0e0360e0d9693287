"""CATENATE (RFC 4469) against the real server: messages joined from TEXT literals and IMAP
URLs (RFC 5092) of the user's own messages."""

from __future__ import annotations

import re

import pytest

from tests.test_imap_server import Raw, deliver, reply, session, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

DRAFT = (
    b"From: a@example.test\r\nSubject: draft\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain\r\n\r\nold text\r\n"
    b"--B\r\nContent-Type: application/pdf\r\n\r\nPDFDATA\r\n"
    b"--B--\r\n"
)


def lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


def append(c: Raw, text: bytes) -> list[bytes]:
    c.send(b"c1 " + text + b"\r\n")
    return c.until(b"c1")


def setup(suite, user, store, **kw) -> tuple[Raw, int, int]:
    uid = deliver(store, user, DRAFT, folder="Drafts")[0]
    folder = store.mailbox(user).folder("Drafts")
    return session(suite, user, **kw), folder.uidvalidity, uid


def test_capability_offers_catenate(suite, user):
    c = session(suite, user, select=None)
    assert b"CATENATE" in c.ok("CAPABILITY")[0].split()


def test_text_and_url_parts_are_joined_in_order(suite, user, store):
    """RFC 4469 5: the new message is the TEXT parts and the octets each URL names, in the
    order given; a URL is read as BODY.PEEK[section] (RFC 4469 5, RFC 5092 5)."""
    c, uv, uid = setup(suite, user, store, select=None)
    base = b"/Drafts;UIDVALIDITY=%d/;UID=%d" % (uv, uid)
    lines = append(
        c,
        b'APPEND Drafts (\\Draft) CATENATE (URL "'
        + base
        + b'/;SECTION=HEADER" TEXT '
        + lit(b"--B\r\nContent-Type: text/plain\r\n\r\nnew text\r\n--B\r\n")
        + b' URL "'
        + base
        + b'/;SECTION=2.MIME" URL "'
        + base
        + b'/;SECTION=2" TEXT '
        + lit(b"\r\n--B--\r\n")
        + b")",
    )
    assert reply(lines).startswith(b"OK [APPENDUID"), lines
    new_uid = int(re.search(rb"APPENDUID \d+ (\d+)", lines[-1]).group(1))
    header = DRAFT[: DRAFT.index(b"\r\n\r\n") + 4]
    expected = (
        header
        + b"--B\r\nContent-Type: text/plain\r\n\r\nnew text\r\n--B\r\n"
        + b"Content-Type: application/pdf\r\n\r\n"
        + b"PDFDATA"
        + b"\r\n--B--\r\n"
    )
    folder = store.mailbox(user).folder("Drafts")
    assert folder.read(new_uid) == expected
    # the source was only peeked at
    assert "\\Seen" not in folder.get(uid).flags


def test_absolute_url_of_the_user_and_partial(suite, user, store):
    """RFC 5092 3: imap://user@host/mailbox/;UID=n/;PARTIAL=o.l names l octets from o."""
    c, _, uid = setup(suite, user, store, select=None)
    url = b"imap://%s@mail.example.test/Drafts/;UID=%d/;PARTIAL=0.4" % (
        user.replace("@", "%40").encode(),
        uid,
    )
    lines = append(c, b'APPEND INBOX CATENATE (URL "' + url + b'" TEXT ' + lit(b"!") + b")")
    assert reply(lines).startswith(b"OK"), lines
    inbox = store.mailbox(user).folder("INBOX")
    assert [inbox.read(m.uid) for m in inbox.messages()] == [DRAFT[:4] + b"!"]


def test_relative_url_is_in_the_selected_mailbox(suite, user, store):
    c, _, uid = setup(suite, user, store, select="Drafts")
    lines = append(c, b'APPEND INBOX CATENATE (URL ";UID=%d/;SECTION=1")' % uid)
    assert reply(lines).startswith(b"OK"), lines
    inbox = store.mailbox(user).folder("INBOX")
    assert [inbox.read(m.uid) for m in inbox.messages()] == [b"old text"]


def test_urls_that_name_nothing_of_the_user_are_badurl(suite, user, store):
    """RFC 4469 5: a URL that is invalid or names no message the user can read gets
    NO [BADURL url], and nothing is appended."""
    c, uv, uid = setup(suite, user, store, select=None)
    bad = [
        b"/Drafts;UIDVALIDITY=%d/;UID=%d" % (uv + 1, uid),  # stale UIDVALIDITY
        b"/Drafts/;UID=%d" % (uid + 100),  # no such message
        b"/Nowhere/;UID=1",  # no such mailbox
        b"/Drafts/;UID=%d/;SECTION=7" % uid,  # no such part
        b"imap://someone-else%%40example.test@mail.example.test/INBOX/;UID=%d" % uid,
        b"imap://mail.example.test/Drafts/;UID=%d/;URLAUTH=anonymous" % uid,
        b";UID=%d" % uid,  # relative, but nothing is selected
        b"http://example.test/x",
    ]
    for url in bad:
        lines = append(c, b'APPEND INBOX CATENATE (URL "' + url + b'")')
        assert reply(lines).startswith(b"NO [BADURL"), (url, lines)
    assert store.mailbox(user).folder("INBOX").messages() == []


def test_other_users_mailboxes_cannot_be_read(suite, user, store):
    """RFC 4469 5: URLs reach only the user's own mailboxes: another account's message
    with the same path is not found."""
    other = "catenate-other@example.test"
    suite.add_user(other)
    theirs = deliver(store, other, b"Subject: secret\r\n\r\nsecret\r\n")[0]
    c = session(suite, user, select=None)
    url = b"imap://%s@mail.example.test/INBOX/;UID=%d" % (
        other.replace("@", "%40").encode(),
        theirs,
    )
    lines = append(c, b'APPEND INBOX CATENATE (URL "' + url + b'")')
    assert reply(lines).startswith(b"NO [BADURL")
    lines = append(c, b'APPEND INBOX CATENATE (URL "/INBOX/;UID=%d")' % theirs)
    assert reply(lines).startswith(b"NO [BADURL")
    assert store.mailbox(user).folder("INBOX").messages() == []


def test_joined_message_over_the_limit_is_toobig(suite, user, store):
    """RFC 4469 5: a result larger than the server takes gets NO [TOOBIG]."""
    c = session(suite, user, select=None)
    limit = int(re.search(rb"APPENDLIMIT=(\d+)", c.ok("CAPABILITY")[0]).group(1))
    big = b"x" * (limit // 2 + 1)
    deliver(store, user, big, folder="Drafts")
    uid = store.mailbox(user).folder("Drafts").messages()[-1].uid
    url = b'URL "/Drafts/;UID=%d"' % uid
    lines = append(c, b"APPEND INBOX CATENATE (" + url + b" " + url + b")")
    assert reply(lines).startswith(b"NO [TOOBIG]"), lines[-1][:100]
    assert store.mailbox(user).folder("INBOX").messages() == []


def test_catenate_with_multiappend_is_all_or_none(suite, user, store):
    """RFC 4469 5 with RFC 3502 3: one bad URL among several messages appends none."""
    c, _, uid = setup(suite, user, store, select=None)
    lines = append(
        c,
        b"APPEND INBOX "
        + lit(b"Subject: plain\r\n\r\nx\r\n")
        + b' CATENATE (URL "/Drafts/;UID=%d")' % uid
        + b' CATENATE (URL "/Drafts/;UID=%d")' % (uid + 50),
    )
    assert reply(lines).startswith(b"NO [BADURL")
    assert store.mailbox(user).folder("INBOX").messages() == []


def test_bad_catenate_syntax_is_bad(suite, user):
    c = session(suite, user, select=None)
    for text in (b"CATENATE ()", b"CATENATE (FOO {1+}\r\nx)", b'CATENATE (TEXT "quoted")'):
        assert reply(append(c, b"APPEND INBOX " + text)).startswith(b"BAD"), text


def test_url_table():
    """RFC 5092 3: the URL forms CATENATE reads, and what each names."""
    from mailsuite.imap.catenate import BadUrl, parse_url
    from mailsuite.imap.parser import Section

    me = "me@example.test"
    good = {
        b"/INBOX/;UID=5": ("INBOX", None, 5, None, None),
        b"/inbox;UIDVALIDITY=7/;UID=5": ("INBOX", 7, 5, None, None),
        b"/A%20B/C/;UID=1/;SECTION=1.MIME": ("A B/C", None, 1, Section((1,), "MIME"), None),
        b"/Entw%C3%BCrfe/;UID=2/;PARTIAL=3": ("Entwürfe", None, 2, None, (3, None)),
        b"IMAP://me%40example.test@host:143/X/;uid=9/;section=HEADER.FIELDS%20(FROM)": (
            "X",
            None,
            9,
            Section((), "HEADER.FIELDS", ("FROM",)),
            None,
        ),
        b"imap://host/X/;UID=9/;PARTIAL=0.10": ("X", None, 9, None, (0, 10)),
        b";UID=4/;SECTION=TEXT": ("Sel", None, 4, Section((), "TEXT"), None),
    }
    for url, want in good.items():
        got = parse_url(url, me, "Sel")
        assert (got.mailbox, got.uidvalidity, got.uid, got.section, got.partial) == want, url
    for url in (
        b"/X",
        b"/X/;UID=0",
        b"/X/;UID=1/;SECTION=BOGUS",
        b"/%FF/;UID=1",
        b"imap://other%40example.test@host/X/;UID=1",
        b"imap://host",
        b"/X/;UID=1/;URLAUTH=anonymous",
    ):
        with pytest.raises(BadUrl):
            parse_url(url, me, "Sel")
    with pytest.raises(BadUrl):
        parse_url(b";UID=1", me, None)  # relative, nothing selected
