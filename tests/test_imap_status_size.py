"""STATUS=SIZE (RFC 8438) and LIST-STATUS (RFC 5819) against the real server."""

from __future__ import annotations

import re

from tests.test_imap_server import deliver, reply, session, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

ONE = b"Subject: one\r\n\r\nfirst body\r\n"
TWO = b"Subject: two\r\n\r\nthe second, longer body\r\n"


def test_capabilities_offer_status_size_and_list_status(suite, user):
    c = session(suite, user, select=None)
    caps = c.ok("CAPABILITY")[0].split()
    assert b"STATUS=SIZE" in caps and b"LIST-STATUS" in caps


def test_status_size_is_the_sum_of_rfc822_sizes(suite, user, store):
    """RFC 8438 2: SIZE is the total of the RFC822.SIZE of every message in the mailbox."""
    deliver(store, user, ONE, TWO)
    c = session(suite, user, select=None)
    lines = c.ok("STATUS INBOX (MESSAGES SIZE)")
    assert lines[0] == b'* STATUS "INBOX" (MESSAGES 2 SIZE %d)\r\n' % (len(ONE) + len(TWO))
    c.ok("SELECT INBOX")
    sizes = [
        int(n) for n in re.findall(rb"RFC822\.SIZE (\d+)", b"".join(c.ok("FETCH 1:* RFC822.SIZE")))
    ]
    assert sum(sizes) == len(ONE) + len(TWO)


def test_status_size_of_an_empty_folder_is_zero(suite, user):
    c = session(suite, user, select=None)
    c.ok("CREATE Empty")
    assert c.ok("STATUS Empty (SIZE)")[0] == b'* STATUS "Empty" (SIZE 0)\r\n'


def test_status_with_an_unknown_item_is_bad(suite, user):
    c = session(suite, user, select=None)
    assert reply(c.cmd("STATUS INBOX (SIZE BOGUS)")).startswith(b"BAD")


def test_list_status_follows_each_selectable_list_line(suite, user, store):
    """RFC 5819 2: with RETURN (STATUS (...)) each selectable listed mailbox gets a STATUS
    reply with the items asked, after its LIST reply."""
    deliver(store, user, ONE, TWO)
    deliver(store, user, ONE, folder="Sent")
    c = session(suite, user, select=None)
    lines = c.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN SIZE))')[:-1]
    inbox = lines.index(b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n')
    assert lines[inbox + 1] == b'* STATUS "INBOX" (MESSAGES 2 UNSEEN 2 SIZE %d)\r\n' % (
        len(ONE) + len(TWO)
    )
    sent = next(i for i, ln in enumerate(lines) if ln.startswith(b"* LIST") and b'"Sent"' in ln)
    assert lines[sent + 1] == b'* STATUS "Sent" (MESSAGES 1 UNSEEN 1 SIZE %d)\r\n' % len(ONE)
    listed = [ln for ln in lines if ln.startswith(b"* LIST")]
    statuses = [ln for ln in lines if ln.startswith(b"* STATUS")]
    assert len(listed) == len(statuses)


def test_list_status_skips_nonexistent_and_noselect_names(suite, user):
    """RFC 5819 2: no STATUS for a name that is \\NonExistent or \\NoSelect."""
    c = session(suite, user, select=None)
    c.ok("SUBSCRIBE Gone")
    lines = c.ok('LIST (SUBSCRIBED) "" "Gone" RETURN (STATUS (MESSAGES))')[:-1]
    assert lines == [b'* LIST (\\NonExistent \\Subscribed) "/" "Gone"\r\n']


def test_list_status_with_a_bad_item_is_bad(suite, user):
    c = session(suite, user, select=None)
    assert reply(c.cmd('LIST "" "*" RETURN (STATUS (FOO))')).startswith(b"BAD")
    assert reply(c.cmd('LIST "" "*" RETURN (STATUS)')).startswith(b"BAD")


def test_list_without_status_has_no_status_lines(suite, user):
    c = session(suite, user, select=None)
    lines = c.ok('LIST "" "*"')
    assert not any(ln.startswith(b"* STATUS") for ln in lines)
