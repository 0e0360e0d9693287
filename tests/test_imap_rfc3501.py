"""RFC 3501 details a compliance suite checks and Dovecot gets right, one group of tests per
behaviour, each against the real server (the `suite` fixture) with the raw client of
tests/test_imap_server.py. Where the RFC says MUST, the test names the section.
"""

from __future__ import annotations

import base64
import re

import pytest

from tests.test_imap_server import PASSWORD, Raw, deliver, reply, session, simple, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

SYSTEM = b"\\Answered \\Flagged \\Deleted \\Seen \\Draft"


def append_lines(c: Raw, folder: str, flags: str, data: bytes) -> list[bytes]:
    """APPEND with a non-synchronising literal; every line up to the tagged reply."""
    head = b"APPEND %s (%s) {%d+}\r\n" % (folder.encode(), flags.encode(), len(data))
    return c.cmd(head + data)


def append(c: Raw, folder: str, flags: str, data: bytes) -> bytes:
    """The tagged reply to `append_lines`, without its tag."""
    return reply(append_lines(c, folder, flags, data))


def recent_count(lines: list[bytes]) -> int:
    found = [int(m.group(1)) for ln in lines if (m := re.match(rb"\* (\d+) RECENT\r\n", ln))]
    assert len(found) == 1, lines
    return found[0]


# --- \Recent ------------------------------------------------------------------------------


def test_append_with_flags_is_recent_in_the_target(suite, user):
    """RFC 3501 6.3.11 and 2.3.2: an appended message is new to the folder, so the first
    session to select it sees it \\Recent whatever flags it was appended with."""
    c = session(suite, user, select=None)
    assert append(c, "Archive", "\\Seen", simple(1)).startswith(b"OK")
    assert append(c, "Archive", "\\Flagged $Label1", simple(2)).startswith(b"OK")
    assert b"RECENT 2" in c.cmd("STATUS Archive (RECENT)")[0]
    assert recent_count(c.cmd("SELECT Archive")) == 2
    assert c.cmd("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Recent \\Seen))\r\n"
    # \Recent belongs to one session: the next one to select the folder does not get it
    other = session(suite, user, select=None)
    assert recent_count(other.cmd("SELECT Archive")) == 0
    assert other.cmd("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Seen))\r\n"


def test_append_with_flags_to_the_selected_folder_is_announced_recent(suite, user):
    """RFC 3501 7.3.2: the RECENT count that follows the EXISTS includes the new message."""
    c = session(suite, user)
    lines = append_lines(c, "INBOX", "\\Seen", simple(1))
    assert lines[:-1] == [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n"], lines
    assert c.cmd("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Recent \\Seen))\r\n"


def test_copy_and_move_targets_are_recent(suite, user, store):
    """RFC 3501 6.4.7: "the \\Recent flag SHOULD be set" on a copy, with the source's
    other flags kept; MOVE (RFC 6851 3.3) copies the same way."""
    deliver(store, user, simple(1), simple(2), simple(3))
    c = session(suite, user)
    c.ok("STORE 1 +FLAGS (\\Seen)")
    c.ok("STORE 2 +FLAGS (\\Flagged $Work)")
    c.ok("COPY 1:2 Trash")
    c.ok("MOVE 3 Trash")
    c.ok("STORE 1 +FLAGS.SILENT (\\Answered)")
    lines = c.ok("COPY 1 INBOX")  # into the folder this session has selected
    assert lines[:-1] == [b"* 3 EXISTS\r\n", b"* 3 RECENT\r\n"], lines
    assert c.cmd("FETCH 3 FLAGS")[0] == b"* 3 FETCH (FLAGS (\\Answered \\Recent \\Seen))\r\n"
    lines = c.cmd("SELECT Trash")
    assert recent_count(lines) == 3
    assert c.cmd("FETCH 1:3 FLAGS")[:-1] == [
        b"* 1 FETCH (FLAGS (\\Recent \\Seen))\r\n",
        b"* 2 FETCH (FLAGS ($Work \\Flagged \\Recent))\r\n",
        b"* 3 FETCH (FLAGS (\\Recent))\r\n",
    ]


# --- FLAGS after a new keyword ----------------------------------------------------------


def test_a_new_keyword_is_announced_by_flags_before_the_fetch(suite, user, store):
    """RFC 3501 7.2.6: the FLAGS response tells the client which flags the mailbox has; a
    keyword used for the first time comes in an updated FLAGS (and PERMANENTFLAGS) before
    the FETCH that shows it, here and in other sessions with the folder selected."""
    deliver(store, user, simple(1), simple(2))
    a = session(suite, user)
    b = session(suite, user)
    ro = session(suite, user, select=None)
    ro.ok("EXAMINE INBOX")
    lines = a.cmd("STORE 2 +FLAGS ($newkw)")
    assert lines[:-1] == [
        b"* FLAGS (" + SYSTEM + b" $newkw)\r\n",
        b"* OK [PERMANENTFLAGS (" + SYSTEM + b" $newkw \\*)] Flags permitted\r\n",
        b"* 2 FETCH (FLAGS ($newkw \\Recent))\r\n",
    ]
    # known now: using it again, or on another message, announces nothing more
    assert a.cmd("STORE 1 +FLAGS ($newkw)")[:-1] == [b"* 1 FETCH (FLAGS ($newkw \\Recent))\r\n"]
    assert b.cmd("NOOP")[:-1] == [
        b"* FLAGS (" + SYSTEM + b" $newkw)\r\n",
        b"* OK [PERMANENTFLAGS (" + SYSTEM + b" $newkw \\*)] Flags permitted\r\n",
        b"* 1 FETCH (FLAGS ($newkw))\r\n",
        b"* 2 FETCH (FLAGS ($newkw))\r\n",
    ]
    # a read-only session learns the flag too; its PERMANENTFLAGS stay empty
    assert ro.cmd("NOOP")[:-1] == [
        b"* FLAGS (" + SYSTEM + b" $newkw)\r\n",
        b"* 1 FETCH (FLAGS ($newkw))\r\n",
        b"* 2 FETCH (FLAGS ($newkw))\r\n",
    ]
    # .SILENT leaves out the FETCH, not the FLAGS; a new message brings its keyword too
    assert a.cmd("STORE 1 +FLAGS.SILENT (other)")[:-1] == [
        b"* FLAGS (" + SYSTEM + b" $newkw other)\r\n",
        b"* OK [PERMANENTFLAGS (" + SYSTEM + b" $newkw other \\*)] Flags permitted\r\n",
    ]
    assert append(b, "INBOX", "$fresh", simple(3)).startswith(b"OK")
    lines = a.cmd("NOOP")
    assert lines[0] == b"* FLAGS (" + SYSTEM + b" $fresh $newkw other)\r\n", lines
    assert b"* 3 EXISTS\r\n" in lines[2:]


# --- LSUB and subscriptions -------------------------------------------------------------


def test_lsub_percent_returns_an_unsubscribed_parent_as_noselect(suite, user):
    """RFC 3501 6.3.9: with "foo/bar" subscribed and "foo" not, LSUB with "%" returns
    "foo", flagged \\Noselect, and not "foo/bar"."""
    c = session(suite, user, select=None)
    c.ok("CREATE Lists/Work")
    c.ok("SUBSCRIBE Lists/Work")
    c.ok("SUBSCRIBE Plans/2027")  # neither it nor its parent exists
    assert c.cmd('LSUB "" "L%"')[:-1] == [b'* LSUB (\\Noselect \\HasChildren) "/" "Lists"\r\n']
    assert c.cmd('LSUB "" "P%"')[:-1] == [b'* LSUB (\\Noselect) "/" "Plans"\r\n']
    assert c.cmd('LSUB "" "L*"')[:-1] == [b'* LSUB (\\HasNoChildren) "/" "Lists/Work"\r\n']
    assert c.cmd('LSUB "" "Lists/%"')[:-1] == [b'* LSUB (\\HasNoChildren) "/" "Lists/Work"\r\n']
    c.ok("CREATE Lists")  # a folder now, but not subscribed: still \Noselect in LSUB
    assert c.cmd('LSUB "" "L%"')[:-1] == [b'* LSUB (\\Noselect \\HasChildren) "/" "Lists"\r\n']
    c.ok("SUBSCRIBE Lists")
    assert c.cmd('LSUB "" "L%"')[:-1] == [b'* LSUB (\\HasChildren) "/" "Lists"\r\n']


def test_delete_keeps_the_subscription(suite, user):
    """RFC 3501 6.3.6 and 6.3.9: the server MUST NOT unilaterally remove a name from the
    subscription list because the mailbox no longer exists."""
    c = session(suite, user, select=None)
    c.ok("CREATE Old")
    c.ok("SUBSCRIBE Old")
    c.ok("DELETE Old")
    assert c.cmd('LSUB "" "Old"')[:-1] == [b'* LSUB (\\Noselect) "/" "Old"\r\n']
    assert c.cmd('LIST "" "Old"')[:-1] == []
    c.ok("CREATE Old")  # it comes back subscribed
    assert c.cmd('LSUB "" "Old"')[:-1] == [b'* LSUB (\\HasNoChildren) "/" "Old"\r\n']
    c.ok("UNSUBSCRIBE Old")
    assert c.cmd('LSUB "" "Old"')[:-1] == []


# --- mailbox names ----------------------------------------------------------------------

NOT_UTF7 = ["a&Jjo", '"a&Jjo"', "&AGE-", "{5+}\r\na&Jjo", "Zo&AUI", '"&-&"']


@pytest.mark.parametrize("name", NOT_UTF7)
def test_a_name_that_is_not_modified_utf7_gets_no(suite, user, store, name):
    """A syntactically valid astring that is not modified UTF-7 (RFC 3501 5.1.3) names no
    mailbox: NO, never BAD, for every command taking a mailbox; nothing is created."""
    deliver(store, user, simple(1))
    c = session(suite, user)
    for command in (
        "SELECT {}",
        "EXAMINE {}",
        "CREATE {}",
        "DELETE {}",
        "RENAME INBOX {}",
        "RENAME {} Foo",
        "SUBSCRIBE {}",
        "UNSUBSCRIBE {}",
        "STATUS {} (MESSAGES)",
        "APPEND {} {{1+}}\r\nx",
    ):
        answer = reply(c.cmd(command.format(name)))
        assert answer.startswith(b"NO "), (command, answer)
    assert reply(c.cmd("FETCH 1 FLAGS")).startswith(b"BAD")  # the failed SELECT deselected
    c.ok("SELECT INBOX")
    for command in ("COPY 1 {}", "MOVE 1 {}", "UID COPY 1 {}"):
        assert reply(c.cmd(command.format(name))).startswith(b"NO "), command
    assert c.cmd("FETCH 1 UID")[:-1] == [b"* 1 FETCH (UID 1)\r\n"]
    assert not any(b"Jjo" in ln or b"AGE" in ln for ln in c.cmd('LIST "" "*"'))


@pytest.mark.parametrize("pattern", ['"a&Jjo"', "a&Jjo*", '"&Jjo%"', '"Zo&AUI"'])
def test_list_with_a_pattern_that_is_not_modified_utf7_matches_nothing(suite, user, pattern):
    """LIST and LSUB with such a pattern or reference are OK with no match, never BAD."""
    c = session(suite, user, select=None)
    c.ok("CREATE Zo&AUI-w")
    assert c.cmd(f'LIST "" {pattern}')[:-1] == []
    assert c.cmd(f'LSUB "" {pattern}')[:-1] == []
    assert c.cmd('LIST "a&Jjo" "*"')[:-1] == []  # the reference is not valid either
    assert c.cmd(f'LIST "" ({pattern} "Zo*")')[:-1] == [
        b'* LIST (\\HasNoChildren) "/" "Zo&AUI-w"\r\n'
    ]
    assert reply(c.cmd(f'LIST "" {pattern}')).startswith(b"OK")


def test_reply_texts_stay_7bit_for_unicode_names(suite, user):
    """RFC 3501 9: resp-text is TEXT-CHAR, 7-bit: a decoded UTF-8 folder name is never
    echoed in a NO."""
    c = session(suite, user, select=None)
    zazolc = "Za&AXwA8wFCAQc-"  # "Zażółć" in modified UTF-7
    c.ok(f"CREATE {zazolc}")
    c.ok("CREATE Y")
    answers = [
        reply(c.cmd(f"CREATE {zazolc}")),
        reply(c.cmd(f"SELECT {zazolc}/Nie")),
        reply(c.cmd(f"STATUS {zazolc}/Nie (MESSAGES)")),
        reply(c.cmd(f"DELETE {zazolc}/Nie")),
        reply(c.cmd(f"RENAME {zazolc}/Nie X")),
        reply(c.cmd(f"RENAME Y {zazolc}")),
    ]
    for answer in answers:
        assert answer.startswith(b"NO ["), answers
        assert answer.isascii() and "Zażółć".encode() not in answer, answers
        assert all(32 <= b < 127 for b in answer.rstrip(b"\r\n")), answers


# --- AUTHENTICATE before TLS --------------------------------------------------------------


def test_authenticate_before_tls_is_refused_like_login(suite_factory):
    """RFC 3501 6.2.2/6.2.3 and RFC 5530 3: with plaintext logins off, every AUTHENTICATE
    before TLS gets what LOGIN gets, NO [PRIVACYREQUIRED], whatever the mechanism; after
    STARTTLS an unknown mechanism is NO [CANNOT] and PLAIN works."""
    s = suite_factory({"tls": {"allow_plaintext_auth_on_loopback": False}})
    s.add_user("tls@example.test", PASSWORD)
    c = Raw(s.port("imap"))
    login = reply(c.cmd(f'LOGIN tls@example.test "{PASSWORD}"'))
    assert login.startswith(b"NO [PRIVACYREQUIRED]")
    token = base64.b64encode(f"\0tls@example.test\0{PASSWORD}".encode()).decode()
    for command in (
        "AUTHENTICATE LOGIN",
        "AUTHENTICATE PLAIN",
        f"AUTHENTICATE PLAIN {token}",
        "AUTHENTICATE CRAM-MD5",
        "AUTHENTICATE login",
    ):
        assert reply(c.cmd(command)) == login, command
    c.starttls()
    assert reply(c.cmd("AUTHENTICATE CRAM-MD5")).startswith(b"NO [CANNOT]")
    assert reply(c.cmd(f"AUTHENTICATE PLAIN {token}")).startswith(b"OK")


# --- ID and the line limit --------------------------------------------------------------


def test_id_with_thirty_one_kilobyte_values_is_answered(suite, user):
    """RFC 2971 3.3: up to 30 field-value pairs, values up to 1024 octets, so an ID line
    of about 31 KB is valid, before and after login; the default line limit admits it."""
    pairs = " ".join(f'"field{n:02d}" "{chr(97 + n % 26) * 1024}"' for n in range(30))
    line = f"ID ({pairs})"
    assert len(line) > 31_000
    c = Raw(suite.port("imap"))
    lines = c.cmd(line)
    assert lines[0].startswith(b"* ID (") and reply(lines).startswith(b"OK"), lines[-1]
    c.login(user, PASSWORD)
    assert reply(c.cmd(line)).startswith(b"OK")
