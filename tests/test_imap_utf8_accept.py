"""UTF8=ACCEPT (RFC 6855) against the real server: ENABLE, UTF-8 mailbox names both ways,
and APPEND of UTF-8 messages with ``UTF8 (~{n})``."""

from __future__ import annotations

from tests.test_imap_server import Raw, reply, session, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

NAME = "Zażółć"
MUTF7 = b"Za&AXwA8wFCAQc-"
MESSAGE = "From: Łukasz <l@example.test>\r\nSubject: gęślą\r\n\r\njaźń\r\n".encode()


def enabled(suite, user) -> Raw:
    c = session(suite, user, select=None)
    assert c.ok("ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT\r\n"
    return c


def test_capability_offers_utf8_accept(suite, user):
    c = session(suite, user, select=None)
    assert b"UTF8=ACCEPT" in c.ok("CAPABILITY")[0].split()


def test_enable_lists_it_once(suite, user):
    """RFC 5161 3.1 with RFC 6855 3: ENABLED lists UTF8=ACCEPT when this command enabled
    it, and not again."""
    c = enabled(suite, user)
    assert c.ok("ENABLE UTF8=ACCEPT")[0] == b"* ENABLED\r\n"


def test_utf8_names_are_read_and_sent_as_utf8_once_enabled(suite, user, store):
    """RFC 6855 3: once enabled, the server accepts UTF-8 mailbox names in quoted strings
    and sends names in UTF-8, not modified UTF-7; a session that did not enable it keeps
    seeing modified UTF-7."""
    c = enabled(suite, user)
    c.ok(f'CREATE "{NAME}"'.encode())
    assert NAME in [f.name for f in store.mailbox(user).list_folders()]
    lines = c.ok(b'LIST "" "Za*"')
    assert lines[0] == f'* LIST (\\HasNoChildren) "/" "{NAME}"\r\n'.encode()
    assert c.ok(f'STATUS "{NAME}" (MESSAGES)'.encode())[0] == (
        f'* STATUS "{NAME}" (MESSAGES 0)\r\n'.encode()
    )
    c.ok(f'SELECT "{NAME}"'.encode())
    plain = session(suite, user, select=None)
    assert plain.ok('LIST "" "Za*"')[0] == b'* LIST (\\HasNoChildren) "/" "' + MUTF7 + b'"\r\n'


def test_ampersand_is_just_a_character_once_enabled(suite, user, store):
    """RFC 6855 3: names are UTF-8, so "&" is not the start of a modified UTF-7 run."""
    c = enabled(suite, user)
    c.ok('CREATE "AT&T"')
    assert "AT&T" in [f.name for f in store.mailbox(user).list_folders()]
    assert c.ok('LIST "" "AT*"')[0] == b'* LIST (\\HasNoChildren) "/" "AT&T"\r\n'
    plain = session(suite, user, select=None)
    assert plain.ok('LIST "" "AT*"')[0] == b'* LIST (\\HasNoChildren) "/" "AT&-T"\r\n'


def test_utf8_name_without_enable_is_refused(suite, user):
    """RFC 3501 5.1.3: before UTF8=ACCEPT a name is modified UTF-7; raw 8-bit gets NO."""
    c = session(suite, user, select=None)
    assert reply(c.cmd(f'CREATE "{NAME}"'.encode())).startswith(b"NO")


def test_append_utf8_literal8(suite, user, store):
    """RFC 6855 4: APPEND takes a UTF-8 message as UTF8 (literal8) once enabled; it is
    stored as sent."""
    c = enabled(suite, user)
    c.send(b"u1 APPEND INBOX UTF8 (~{%d+}\r\n" % len(MESSAGE) + MESSAGE + b")\r\n")
    assert b"u1 OK" in c.until(b"u1")[-1]
    c.send(b"u2 APPEND INBOX (\\Seen) UTF8 (~{%d}\r\n" % len(MESSAGE))
    assert c.line().startswith(b"+")
    c.send(MESSAGE + b")\r\n")
    assert b"u2 OK" in c.until(b"u2")[-1]
    folder = store.mailbox(user).folder("INBOX")
    assert [folder.read(m.uid) for m in folder.messages()] == [MESSAGE, MESSAGE]


def test_append_utf8_without_enable_is_bad(suite, user, store):
    """RFC 6855 4: an APPEND with the UTF8 data item from a client that did not enable
    UTF8=ACCEPT MUST be rejected with BAD."""
    c = session(suite, user, select=None)
    c.send(b"u1 APPEND INBOX UTF8 (~{%d+}\r\n" % len(MESSAGE) + MESSAGE + b")\r\n")
    assert c.until(b"u1")[-1].startswith(b"u1 BAD")
    assert store.mailbox(user).folder("INBOX").messages() == []


def test_utf8_append_needs_literal8(suite, user):
    c = enabled(suite, user)
    c.send(b"u1 APPEND INBOX UTF8 ({%d+}\r\n" % len(MESSAGE) + MESSAGE + b")\r\n")
    assert c.until(b"u1")[-1].startswith(b"u1 BAD")


def test_search_with_charset_after_enable_is_bad(suite, user):
    """RFC 6855 3 (erratum 4029): once UTF8=ACCEPT is enabled a SEARCH with a CHARSET
    SHOULD get BAD; without one the search strings are UTF-8."""
    c = enabled(suite, user)
    c.ok("SELECT INBOX")
    assert reply(c.cmd("SEARCH CHARSET UTF-8 SUBJECT x")).startswith(b"BAD")
    assert c.ok('SEARCH SUBJECT "gęślą"'.encode())[0] == b"* SEARCH\r\n"
    plain = session(suite, user)
    assert plain.ok("SEARCH CHARSET UTF-8 SUBJECT x")[0] == b"* SEARCH\r\n"


def test_sort_and_thread_keep_their_charset_after_enable(suite, user, store):
    """RFC 6855 3 forbids CHARSET only in SEARCH: SORT and THREAD must name one (RFC 5256 3),
    and UTF-8 and US-ASCII both work once UTF8=ACCEPT is enabled, search strings read as
    UTF-8; another charset gets NO [BADCHARSET] with the list of those (RFC 5256 3, RFC 3501
    7.1), not BAD."""
    store.deliver([user], MESSAGE)
    store.deliver([user], b"From: b@example.test\r\nSubject: plain\r\n\r\nx\r\n")
    c = enabled(suite, user)
    c.ok("SELECT INBOX")
    assert c.ok("SORT (SUBJECT) UTF-8 ALL")[0] == b"* SORT 1 2\r\n"
    assert c.ok("SORT (REVERSE SUBJECT) US-ASCII ALL")[0] == b"* SORT 2 1\r\n"
    assert c.ok('SORT (ARRIVAL) UTF-8 SUBJECT "gęślą"'.encode())[0] == b"* SORT 1\r\n"
    assert c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == b"* THREAD (1)(2)\r\n"
    assert c.ok("THREAD REFERENCES US-ASCII ALL")[0] == b"* THREAD (1)(2)\r\n"
    assert c.ok('UID THREAD REFERENCES UTF-8 SUBJECT "gęślą"'.encode())[0].startswith(b"* THREAD (")
    for command in ("SORT (SUBJECT) KOI8-R ALL", "THREAD REFERENCES ISO-8859-2 ALL"):
        assert reply(c.cmd(command)).startswith(b"NO [BADCHARSET (UTF-8 US-ASCII)]")
