"""IMAP4rev2 (RFC 9051) beside IMAP4rev1 against the real server: what ``ENABLE IMAP4rev2``
changes for that session and only for it, and the IMAP4rev2 base extensions in such a session.
Also SEARCH FROM against SEARCH HEADER FROM (RFC 9051 6.4.4), which both revisions share."""

from __future__ import annotations

import re

from tests.test_imap_server import (
    MESSAGE,
    PASSWORD,
    Raw,
    deliver,
    reply,
    session,
    simple,
    store,
    user,
)

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here


def rev2(suite, user, select: str | None = "INBOX") -> Raw:
    c = session(suite, user, select=None)
    assert c.ok("ENABLE IMAP4rev2")[0] == b"* ENABLED IMAP4rev2\r\n"
    if select:
        c.ok(f"SELECT {select}")
    return c


def tag_of(lines: list[bytes]) -> bytes:
    return lines[-1].split(b" ", 1)[0]


def untagged(lines: list[bytes]) -> list[bytes]:
    return [ln for ln in lines[:-1] if ln.startswith(b"* ")]


# --- capability and ENABLE ------------------------------------------------------------------


def test_capability_offers_both_revisions(suite, user):
    """RFC 9051 7.2.2: the CAPABILITY list includes IMAP4rev2; a server that also speaks
    IMAP4rev1 lists both (RFC 9051 Appendix E), in the greeting and after login."""
    c = Raw(suite.port("imap"))
    greeting = c.greeting.split()
    assert b"[CAPABILITY" in greeting and b"IMAP4rev1" in greeting and b"IMAP4rev2" in greeting
    c.login(user, PASSWORD)
    caps = c.ok("CAPABILITY")[0].split()
    assert b"IMAP4rev1" in caps and b"IMAP4rev2" in caps


def test_enable_lists_imap4rev2_once(suite, user):
    """RFC 9051 6.3.1 / RFC 5161 3.1: ENABLED names what this command enabled, and only
    what it newly enabled."""
    c = rev2(suite, user, select=None)
    assert c.ok("ENABLE IMAP4rev2")[0] == b"* ENABLED\r\n"


# --- SELECT / EXAMINE -------------------------------------------------------------------------


def test_select_sends_list_and_no_recent(suite, user, store):
    """RFC 9051 6.3.2: SELECT MUST send FLAGS, EXISTS and the mailbox's LIST response, and
    the OK codes PERMANENTFLAGS, UIDNEXT and UIDVALIDITY; IMAP4rev2 has no RECENT response
    (RFC 9051 Appendix E), and UNSEEN is no longer sent."""
    deliver(store, user, simple(1), simple(2))
    c = rev2(suite, user, select=None)
    lines = c.ok("SELECT INBOX")
    text = b"".join(lines)
    assert b"* 2 EXISTS\r\n" in lines
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n' in lines
    assert any(ln.startswith(b"* FLAGS (") for ln in lines)
    for code in (b"PERMANENTFLAGS", b"UIDNEXT", b"UIDVALIDITY"):
        assert b"* OK [" + code + b" " in text
    assert b"RECENT" not in text and b"UNSEEN" not in text
    assert reply(lines).startswith(b"OK [READ-WRITE]")


def test_select_list_response_has_the_attributes_list_gives(suite, user, store):
    """RFC 9051 6.3.2: "The list of mailbox attributes MUST be accurate": children and the
    special use, as LIST shows them; EXAMINE sends it too."""
    c = rev2(suite, user, select=None)
    c.ok("CREATE Sent/old")
    listed = [ln for ln in c.ok('LIST "" Sent') if ln.startswith(b"* LIST")]
    lines = c.ok("EXAMINE Sent")
    assert [ln for ln in lines if ln.startswith(b"* LIST")] == listed
    assert listed == [b'* LIST (\\HasChildren \\Sent) "/" "Sent"\r\n']
    assert reply(lines).startswith(b"OK [READ-ONLY]")


def test_imap4rev1_session_keeps_recent_and_gets_no_list(suite, user, store):
    """RFC 3501 6.3.1: an IMAP4rev1 session still gets RECENT; the IMAP4rev2 session before
    it claimed no message as \\Recent (RFC 9051 has no such flag), so it still can."""
    deliver(store, user, simple(1))
    new = rev2(suite, user)
    assert b"\\Recent" not in b"".join(new.ok("FETCH 1 FLAGS"))
    old = session(suite, user, select=None)
    lines = old.ok("SELECT INBOX")
    assert b"* 1 RECENT\r\n" in lines
    assert not any(ln.startswith(b"* LIST") for ln in lines)
    assert b"\\Recent" in old.ok("FETCH 1 FLAGS")[0]


def test_new_mail_gives_exists_without_recent(suite, user, store):
    """RFC 9051 7.4.1: new messages are announced by EXISTS; there is no RECENT response
    and no \\Recent flag in IMAP4rev2."""
    c = rev2(suite, user)
    deliver(store, user, simple(1))
    lines = c.ok("NOOP")
    assert b"* 1 EXISTS\r\n" in lines
    assert b"RECENT" not in b"".join(lines)
    assert b"\\Recent" not in b"".join(c.ok("FETCH 1 FLAGS"))


def test_enable_while_selected_drops_recent(suite, user, store):
    """RFC 9051 2.3.2: once IMAP4rev2 is on, FETCH shows no \\Recent, even for messages this
    session saw as recent before enabling it."""
    deliver(store, user, simple(1))
    c = session(suite, user)
    assert b"\\Recent" in c.ok("FETCH 1 FLAGS")[0]
    c.ok("ENABLE IMAP4rev2")
    assert c.ok("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())\r\n"


def test_closed_only_when_a_mailbox_was_selected(suite, user):
    """RFC 9051 7.1 (and RFC 7162 3.2.11): [CLOSED] is sent when SELECT or EXAMINE closes
    the selected mailbox, before the new mailbox's responses; not for the first SELECT, not
    after UNSELECT, and not in an IMAP4rev1 session without QRESYNC."""
    c = rev2(suite, user, select=None)
    c.ok("CREATE Other")
    assert b"[CLOSED]" not in b"".join(c.ok("SELECT INBOX"))
    lines = c.ok("EXAMINE Other")
    assert lines[0].startswith(b"* OK [CLOSED]")
    assert sum(b"[CLOSED]" in ln for ln in lines) == 1
    c.ok("UNSELECT")
    assert b"[CLOSED]" not in b"".join(c.ok("SELECT INBOX"))
    plain = session(suite, user)
    assert b"[CLOSED]" not in b"".join(plain.ok("SELECT Other"))
    plain.ok("ENABLE QRESYNC")
    assert plain.ok("SELECT INBOX")[0].startswith(b"* OK [CLOSED]")


# --- SEARCH -----------------------------------------------------------------------------------


def test_search_answers_esearch(suite, user, store):
    """RFC 9051 6.4.4 / 7.3.4: SEARCH answers ESEARCH only, with ALL when no RETURN option
    is given; UID SEARCH marks the numbers as UIDs; no match gives no ALL."""
    uids = deliver(store, user, simple(1), simple(2), simple(3))
    c = rev2(suite, user)
    c.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    lines = c.ok("SEARCH UNSEEN")
    assert untagged(lines) == [b'* ESEARCH (TAG "%s") ALL 1,3\r\n' % tag_of(lines)]
    lines = c.ok("UID SEARCH ALL")
    expected = b'* ESEARCH (TAG "%s") UID ALL %d:%d\r\n' % (tag_of(lines), uids[0], uids[2])
    assert untagged(lines) == [expected]
    lines = c.ok("SEARCH SUBJECT nothing-like-this")
    assert untagged(lines) == [b'* ESEARCH (TAG "%s")\r\n' % tag_of(lines)]
    lines = c.ok("SEARCH RETURN (COUNT) ALL")
    assert untagged(lines) == [b'* ESEARCH (TAG "%s") COUNT 3\r\n' % tag_of(lines)]
    # RFC 9051 6.4.4: RECENT, NEW and OLD are IMAP4rev1 keys; with no \Recent they match none
    lines = c.ok("SEARCH RECENT")
    assert untagged(lines) == [b'* ESEARCH (TAG "%s")\r\n' % tag_of(lines)]
    plain = session(suite, user)
    assert plain.ok("SEARCH UNSEEN")[0] == b"* SEARCH 1 3\r\n"


def test_search_charset_stays_allowed(suite, user, store):
    """RFC 9051 6.4.4: US-ASCII and UTF-8 MUST be supported as SEARCH charsets (unlike after
    UTF8=ACCEPT, RFC 6855 3); another gets NO [BADCHARSET] with the list."""
    deliver(store, user, "Subject: zażółć\r\n\r\nx\r\n".encode())
    c = rev2(suite, user)
    lines = c.ok(b"SEARCH CHARSET UTF-8 SUBJECT {10+}\r\nza\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87")
    assert untagged(lines) == [b'* ESEARCH (TAG "%s") ALL 1\r\n' % tag_of(lines)]
    lines = c.ok("SEARCH CHARSET US-ASCII ALL")
    assert untagged(lines) == [b'* ESEARCH (TAG "%s") ALL 1\r\n' % tag_of(lines)]
    lines = c.cmd("SEARCH CHARSET KOI8-R ALL")
    assert reply(lines).startswith(b"NO [BADCHARSET (UTF-8 US-ASCII)]")


def test_search_from_matches_addresses_and_header_from_the_text(suite, user, store):
    """RFC 3501 / RFC 9051 6.4.4: FROM matches the envelope's FROM field, HEADER FROM the
    text of the field: a comment is only in the text, and a spelling with comments inside
    the address is found by FROM only."""
    deliver(
        store,
        user,
        b"From: <user-from (comment)@ (comment) domain.org>\r\nSubject: a\r\n\r\nx\r\n",
        b"From: Ala Kot <ala@example.org> (the cat)\r\nSubject: b\r\n\r\nx\r\n",
    )
    for c in (session(suite, user), rev2(suite, user)):

        def found(program: str, c: Raw = c) -> bytes:
            """The numbers found, from SEARCH (IMAP4rev1) or ESEARCH ALL (IMAP4rev2)."""
            (line,) = untagged(c.ok("SEARCH " + program))
            if line.startswith(b"* SEARCH"):
                return line[len(b"* SEARCH") : -2].strip()
            return line.split(b" ALL ")[1][:-2] if b" ALL " in line else b""

        assert found("FROM user-from@domain.org") == b"1"
        assert found("HEADER FROM user-from@domain.org") == b""
        assert found("HEADER FROM comment") == b"1"
        assert found("FROM comment") == b""
        assert found('FROM "ala kot"') == b"2"
        assert found('HEADER FROM "the cat"') == b"2"
        assert found('FROM "the cat"') == b""


# --- FETCH and STORE --------------------------------------------------------------------------


def test_unsolicited_fetch_carries_uid(suite, user, store):
    """RFC 9051 7.5.2 (Appendix E): every FETCH the server sends unasked includes UID: a
    flag change by another session, and the FETCH answers of STORE."""
    (uid,) = deliver(store, user, simple(1))
    c = rev2(suite, user)
    other = session(suite, user)
    other.ok("STORE 1 +FLAGS (\\Flagged)")
    lines = c.ok("NOOP")
    assert b"* 1 FETCH (FLAGS (\\Flagged) UID %d)\r\n" % uid in lines
    lines = c.ok("STORE 1 +FLAGS (\\Seen)")
    assert untagged(lines) == [b"* 1 FETCH (FLAGS (\\Flagged \\Seen) UID %d)\r\n" % uid]
    plain = session(suite, user)
    assert plain.ok("STORE 1 -FLAGS (\\Seen)")[0] == b"* 1 FETCH (FLAGS (\\Flagged))\r\n"


def test_binary_and_body_fetch(suite, user, store):
    """RFC 9051 6.4.5: BINARY, BINARY.PEEK and BINARY.SIZE are part of IMAP4rev2."""
    deliver(store, user, MESSAGE)
    c = rev2(suite, user)
    lines = c.ok("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert lines[0] == b"* 1 FETCH (BINARY.SIZE[1] 10 BINARY[1] {10}\r\nfirst part)\r\n"


# --- mailbox names and STATUS -----------------------------------------------------------------


def test_mailbox_names_are_utf8(suite, user, store):
    """RFC 9051 5.1: IMAP4rev2 mailbox names are UTF-8 (Net-Unicode), sent as they are
    (quoted UTF-8 is a valid string in IMAP4rev2, 4.3); an IMAP4rev1 session keeps modified
    UTF-7 for the same folder."""
    c = rev2(suite, user, select=None)
    c.ok('CREATE "Zażółć"'.encode())
    assert "Zażółć" in [f.name for f in store.mailbox(user).list_folders()]
    assert c.ok('LIST "" "Za*"')[0] == '* LIST (\\HasNoChildren) "/" "Zażółć"\r\n'.encode()
    lines = c.ok('SELECT "Zażółć"'.encode())
    assert '* LIST (\\HasNoChildren) "/" "Zażółć"\r\n'.encode() in lines
    plain = session(suite, user, select=None)
    assert plain.ok('LIST "" "Za*"')[0] == b'* LIST (\\HasNoChildren) "/" "Za&AXwA8wFCAQc-"\r\n'
    # "&" is a character like any other, not the start of modified UTF-7
    c.ok('CREATE "AT&T"')
    assert "AT&T" in [f.name for f in store.mailbox(user).list_folders()]


def test_new_names_must_be_in_nfc(suite, user, store):
    """RFC 9051 5.1: the server MUST refuse to create an 8-bit name that is not Net-Unicode,
    which is in NFC (RFC 5198 2); so CREATE and RENAME to "z" with a combining dot are NO,
    and the composed "ż" is fine. The same rule holds after UTF8=ACCEPT (RFC 6855 3)."""
    decomposed = "Zaz\u0307"
    utf8 = session(suite, user, select=None)
    utf8.ok("ENABLE UTF8=ACCEPT")
    for c in (rev2(suite, user, select=None), utf8):
        assert reply(c.cmd(f'CREATE "{decomposed}"'.encode())).startswith(b"NO [CANNOT]")
        c.ok('CREATE "Plain"')
        assert reply(c.cmd(f'RENAME Plain "{decomposed}"'.encode())).startswith(b"NO [CANNOT]")
        c.ok('DELETE "Plain"')
    assert decomposed not in [f.name for f in store.mailbox(user).list_folders()]
    c.ok('CREATE "Zaż"'.encode())
    assert "Zaż" in [f.name for f in store.mailbox(user).list_folders()]


def test_status_deleted_and_size(suite, user, store):
    """RFC 9051 6.3.11: STATUS DELETED is the number of messages with \\Deleted, SIZE the
    total of their RFC822.SIZE."""
    deliver(store, user, simple(1), simple(22))
    c = rev2(suite, user)
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    lines = c.ok("STATUS INBOX (MESSAGES DELETED SIZE UNSEEN)")
    size = len(simple(1)) + len(simple(22))
    assert lines[0] == b'* STATUS "INBOX" (MESSAGES 2 DELETED 1 SIZE %d UNSEEN 2)\r\n' % size


# --- extensions IMAP4rev2 folds in ---------------------------------------------------------


def test_folded_extensions_work_in_an_imap4rev2_session(suite, user, store):
    """RFC 9051 Appendix E item 1: NAMESPACE, UNSELECT, UIDPLUS, MOVE, ESEARCH, SEARCHRES,
    LIST-EXTENDED, LIST-STATUS, SPECIAL-USE and LITERAL- are base IMAP4rev2."""
    uids = deliver(store, user, simple(1), simple(2))
    c = rev2(suite, user)
    assert c.ok("NAMESPACE")[0] == b'* NAMESPACE (("" "/")) NIL NIL\r\n'  # RFC 9051 6.3.10
    # RFC 9051 6.4.4.1: SAVE keeps the result for "$"
    assert untagged(c.ok("SEARCH RETURN (SAVE) 2")) == []
    lines = c.ok("MOVE $ Trash")  # RFC 9051 6.4.8: COPYUID first, then the expunge
    assert lines[0].startswith(b"* OK [COPYUID ")
    assert b" %d " % uids[1] in lines[0]
    assert b"* 2 EXPUNGE\r\n" in lines
    # RFC 9051 6.3.12: APPEND says APPENDUID; a non-synchronizing literal (LITERAL-,
    # RFC 9051 4.3) of up to 4096 octets needs no continuation
    body = simple(3)
    lines = c.ok(b"APPEND INBOX {%d+}\r\n%s" % (len(body), body))
    assert re.match(rb"OK \[APPENDUID \d+ \d+\]", reply(lines))
    # RFC 9051 6.3.9: LIST-EXTENDED selection and return options, LIST-STATUS, SPECIAL-USE
    c.ok("SUBSCRIBE Trash")
    lines = c.ok('LIST (SUBSCRIBED) "" "Tr*" RETURN (CHILDREN STATUS (MESSAGES))')
    assert lines[0] == b'* LIST (\\HasNoChildren \\Trash \\Subscribed) "/" "Trash"\r\n'
    assert lines[1] == b'* STATUS "Trash" (MESSAGES 1)\r\n'
    lines = c.ok('LIST (SPECIAL-USE) "" "*"')
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n' in lines
    assert not any(b'"INBOX"' in ln for ln in lines)
    assert c.ok("UNSELECT")[-1].endswith(b"OK UNSELECT completed\r\n")  # RFC 9051 6.4.2
    assert c.cmd("FETCH 1 FLAGS")[-1].split()[1] == b"BAD"  # nothing selected now
