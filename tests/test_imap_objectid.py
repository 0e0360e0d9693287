"""OBJECTID (RFC 8474) against the real server: MAILBOXID, EMAILID and THREADID."""

from __future__ import annotations

import re

from tests.test_imap_server import deliver, reply, session, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

ONE = b"Subject: one\r\n\r\nfirst\r\n"
TWO = b"Subject: two\r\n\r\nsecond\r\n"
_ID = rb"([A-Za-z0-9_-]{1,255})"  # RFC 8474 7: objectid


def mailbox_id(lines: list[bytes]) -> bytes:
    m = re.search(rb"\[MAILBOXID \(" + _ID + rb"\)\]", b"".join(lines))
    assert m, lines
    return m.group(1)


def email_ids(lines: list[bytes]) -> list[bytes]:
    return re.findall(rb"EMAILID \(" + _ID + rb"\)", b"".join(lines))


def test_capability_offers_objectid(suite, user):
    c = session(suite, user, select=None)
    assert b"OBJECTID" in c.ok("CAPABILITY")[0].split()


def test_create_select_and_status_tell_the_same_mailboxid(suite, user):
    """RFC 8474 4: CREATE answers with MAILBOXID, SELECT and EXAMINE report it, and STATUS
    MAILBOXID gives it: the same id each time."""
    c = session(suite, user, select=None)
    created = mailbox_id(c.ok("CREATE Projects"))
    assert mailbox_id(c.ok("SELECT Projects")) == created
    assert mailbox_id(c.ok("EXAMINE Projects")) == created
    status = c.ok("STATUS Projects (MAILBOXID MESSAGES)")[0]
    assert status == b'* STATUS "Projects" (MAILBOXID (%s) MESSAGES 0)\r\n' % created


def test_mailboxid_survives_rename_and_sessions_but_not_delete(suite, user):
    """RFC 8474 4: the id stays when the mailbox is renamed and in later sessions; a new
    mailbox with an old name gets a new id, and every mailbox has its own."""
    c = session(suite, user, select=None)
    first = mailbox_id(c.ok("CREATE Work"))
    c.ok("RENAME Work Old/Work")
    again = session(suite, user, select=None)
    assert mailbox_id(again.ok("SELECT Old/Work")) == first
    again.ok("UNSELECT")
    again.ok("DELETE Old/Work")
    assert mailbox_id(again.ok("CREATE Old/Work")) != first
    inbox = mailbox_id(again.ok("SELECT INBOX"))
    assert inbox != first and mailbox_id(again.ok("SELECT INBOX")) == inbox


def test_list_status_can_give_mailboxid(suite, user):
    c = session(suite, user, select=None)
    created = mailbox_id(c.ok("CREATE Listed"))
    lines = c.ok('LIST "" "Listed" RETURN (STATUS (MAILBOXID))')
    assert b'* STATUS "Listed" (MAILBOXID (%s))\r\n' % created in lines


def test_emailid_is_stable_and_follows_copy_and_move(suite, user, store):
    """RFC 8474 5.1: EMAILID names the message in every session and stays the same when the
    message is copied or moved; different messages have different ids. THREADID may be
    NIL (RFC 8474 5.2)."""
    deliver(store, user, ONE, TWO)
    c = session(suite, user)
    lines = c.ok("FETCH 1:2 (EMAILID THREADID)")
    ids = email_ids(lines)
    assert len(ids) == 2 and ids[0] != ids[1]
    assert all(b"THREADID NIL" in ln for ln in lines[:-1])
    again = session(suite, user)
    assert email_ids(again.ok("UID FETCH 1:* EMAILID")) == ids
    c.ok("COPY 1 Archive")
    c.ok("MOVE 2 Archive")
    c.ok("SELECT Archive")
    assert email_ids(c.ok("FETCH 1:* EMAILID")) == ids


def test_search_by_emailid_and_threadid(suite, user, store):
    """RFC 8474 6: SEARCH EMAILID finds the message with that id; SEARCH THREADID finds
    none here, since no message belongs to a thread."""
    deliver(store, user, ONE, TWO)
    c = session(suite, user)
    ids = email_ids(c.ok("FETCH 1:2 EMAILID"))
    assert c.ok(b"SEARCH EMAILID " + ids[1])[0] == b"* SEARCH 2\r\n"
    assert c.ok(b"SEARCH EMAILID Mnothing")[0] == b"* SEARCH\r\n"
    assert c.ok(b"SEARCH THREADID T1")[0] == b"* SEARCH\r\n"
    assert reply(c.cmd('SEARCH EMAILID "not an id"')).startswith(b"BAD")
