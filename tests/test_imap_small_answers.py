"""Small answers made from the folder's copy in memory (session.ON_LOOP): another session's
flag change announced at the next command, FETCH of index items of a few messages, SEARCH
confined by a UID or sequence range; each agrees with the same question asked of more
messages than that (answered in the I/O pool), and with the store."""

from __future__ import annotations

import re
from itertools import count

import pytest

from mailsuite.imap.session import ON_LOOP
from mailsuite.store import Store
from tests.test_imap_server import PASSWORD, Raw, deliver, simple

_users = count(1)
MESSAGES = ON_LOOP * 2 + 10  # enough that 1:* is answered in the pool


@pytest.fixture
def store(suite) -> Store:
    return Store(suite.config["paths"]["maildirs"])


@pytest.fixture
def user(suite, store) -> str:
    address = f"small{next(_users)}@example.test"
    suite.add_user(address, PASSWORD)
    deliver(store, address, *(simple(i) for i in range(1, MESSAGES + 1)))
    return address


def _selected(suite, user: str) -> Raw:
    c = Raw(suite.port("imap"))
    c.login(user, PASSWORD)
    c.ok("SELECT INBOX")
    return c


def _found(lines: list[bytes]) -> list[int]:
    (line,) = [ln for ln in lines if ln.startswith(b"* SEARCH")]
    return [int(n) for n in line.split()[2:]]


def test_another_sessions_store_is_announced_at_the_next_command(suite, user):
    """RFC 3501 7.4.1: the flag change of another session comes as an untagged FETCH with
    the message's new flags, at this session's next command."""
    a, b = _selected(suite, user), _selected(suite, user)
    try:
        b.ok("STORE 5 +FLAGS (\\Flagged $Later)")
        b.ok("STORE 7 +FLAGS (\\Seen)")
        lines = a.ok("NOOP")
        fetches = {
            int(m.group(1)): set(m.group(2).decode().split()) - {"\\Recent"}  # a's, 2.3.2
            for m in (re.match(rb"\* (\d+) FETCH \(FLAGS \(([^)]*)\)", ln) for ln in lines)
            if m
        }
        assert fetches[5] == {"\\Flagged", "$Later"}
        assert "\\Seen" in fetches[7]
        assert set(fetches) == {5, 7}
        assert not [ln for ln in a.ok("NOOP") if ln.startswith(b"* ")]  # announced once
    finally:
        a.close()
        b.close()


def test_fetch_of_a_few_messages_index_items_agrees_with_the_whole_folder(suite, user):
    c = _selected(suite, user)
    try:
        c.ok("STORE 3 +FLAGS (\\Answered)")
        few = [ln for ln in c.ok("FETCH 2:4 (UID FLAGS RFC822.SIZE)") if ln.startswith(b"* ")]
        every = [ln for ln in c.ok("FETCH 1:* (UID FLAGS RFC822.SIZE)") if ln.startswith(b"* ")]
        assert len(few) == 3 and len(every) == MESSAGES
        assert few == every[1:4]
        assert b"\\Answered" in few[1]
        size = len(simple(2))
        assert b"RFC822.SIZE %d" % size in few[0]
    finally:
        c.close()


def test_search_in_a_small_uid_range_agrees_with_the_same_search_of_every_message(suite, user):
    c = _selected(suite, user)
    try:
        c.ok("STORE 4,6 +FLAGS (\\Seen)")
        c.ok("STORE 6,9 +FLAGS (\\Flagged)")
        small = _found(c.ok("UID SEARCH UID 3:10 UNSEEN"))
        assert small == [3, 5, 7, 8, 9, 10]
        assert _found(c.ok("UID SEARCH UID 3:10 FLAGGED SEEN")) == [6]
        assert _found(c.ok("SEARCH 3:10 NOT FLAGGED")) == [3, 4, 5, 7, 8, 10]
        every = _found(c.ok("UID SEARCH UID 1:* UNSEEN"))  # more than ON_LOOP: the pool
        assert [u for u in every if 3 <= u <= 10] == small
        assert len(every) == MESSAGES - 2
    finally:
        c.close()
