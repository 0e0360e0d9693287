"""The IMAP command grammar: tables of odd inputs and property tests from real commands."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsuite import mutf7
from mailsuite.imap.parser import (
    FetchItem,
    ParseError,
    Section,
    SequenceSet,
    literal_at_end,
    parse_command,
    parse_tag,
)


def test_tag_and_verb_are_case_insensitive_and_tolerate_extra_spaces():
    cmd = parse_command(b"a001   noop  ")
    assert (cmd.tag, cmd.name) == ("a001", "NOOP")


@pytest.mark.parametrize(
    "raw, user, password",
    [
        (b"a LOGIN joe secret", b"joe", b"secret"),
        (b'a LOGIN "joe@example.org" "se cr\\"et\\\\"', b"joe@example.org", b'se cr"et\\'),
        (b"a LOGIN {3}\r\njoe {6}\r\nsecret", b"joe", b"secret"),
        (b"a LOGIN {3+}\r\njoe {0}\r\n", b"joe", b""),
        (b"a login joe ]pw]", b"joe", b"]pw]"),
    ],
)
def test_login_arguments_are_astrings(raw, user, password):
    cmd = parse_command(raw)
    assert (cmd.user, cmd.password) == (user, password)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"a",
        b"a FOO",
        b"a LOGIN joe",
        b'a LOGIN "joe secret',
        b'a LOGIN "jo\\e" x',
        b"a LOGIN {10}\r\nshort",
        b"a SELECT",
        b"a FETCH 0 FLAGS",
        b"a FETCH 1:x FLAGS",
        b"a FETCH 1 (FLAGS",
        b"a FETCH 1 ()",
        b"a FETCH 1 BODY[HEADER.FIELDS ()]",
        b"a FETCH 1 BODY[MIME]",
        b"a FETCH 1 BODY[1.]",
        b"a FETCH 1 BODY[TEXTX]",
        b"a FETCH 1 RFC822.SIZE[]",
        b"a FETCH 1 BODY[]<0.0>",
        b"a FETCH 99999999999 FLAGS",
        b"a STORE 1 FLAGZ (\\Seen)",
        b"a STORE 1 +FLAGS (\\Recent)",
        b"a STORE 1 +FLAGS (\\Bogus)",
        b"a SEARCH",
        b"a SEARCH FROB",
        b"a SEARCH BEFORE 31-Feb-2026",
        b"a SEARCH OR SEEN",
        b"a SEARCH (SEEN",
        b"a SEARCH " + b"NOT " * 60 + b"SEEN",
        b"a UID FOO 1",
        b"a APPEND INBOX (\\Seen) abc",
        b'a APPEND INBOX "bad date" {1}\r\nx',
        b"a STATUS INBOX (MESSAGES BOGUS)",
        b"a ENABLE",
        b'a ID ("a")',
        b"a NOOP extra",
    ],
)
def test_bad_input_raises_parse_error(raw):
    with pytest.raises(ParseError):
        parse_command(raw)


def test_parse_error_carries_the_tag_for_the_bad_reply():
    with pytest.raises(ParseError) as info:
        parse_command(b"x17 FETCH 1 (BOGUS)")
    assert info.value.tag == "x17"
    assert parse_tag(b"x17 FETCH 1 (BOGUS)") == "x17"
    assert parse_tag(b"(bad") is None


@pytest.mark.parametrize(
    "text, largest, expected",
    [
        (b"1:*", 5, [1, 2, 3, 4, 5]),
        (b"*:4", 6, [4, 5, 6]),
        (b"1,3:5", 9, [1, 3, 4, 5]),
        (b"5:3,4,*", 7, [3, 4, 5, 7]),
        (b"8:*", 5, [5]),  # RFC 3501 6.4.8: n:* always includes the largest
        (b"*", 3, [3]),
    ],
)
def test_sequence_sets_select_from_existing_values(text, largest, expected):
    cmd = parse_command(b"a FETCH " + text + b" UID")
    values = list(range(1, largest + 1))
    assert cmd.sequence.select(values) == expected


def test_sequence_set_select_ignores_missing_uids():
    seq = SequenceSet(((2, 10),))
    assert seq.select([1, 4, 9, 12]) == [4, 9]
    assert seq.select([]) == []
    assert str(SequenceSet(((1, None), (3, 3)))) == "1:*,3"


def test_fetch_macros_expand():
    names = [i.name for i in parse_command(b"a FETCH 1 fast").fetch]
    assert names == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    names = [i.name for i in parse_command(b"a FETCH 1 FULL").fetch]
    assert names == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]


def test_fetch_body_peek_header_fields_partial():
    cmd = parse_command(b'a UID fetch 1:* (uid BODY.PEEK[HEADER.FIELDS (From "To")]<0.100>)')
    assert cmd.uid and cmd.name == "FETCH"
    uid, body = cmd.fetch
    assert uid == FetchItem("UID")
    assert body.section == Section((), "HEADER.FIELDS", ("FROM", "TO"))
    assert body.peek and body.partial == (0, 100)
    assert body.label() == "BODY[HEADER.FIELDS (FROM TO)]<0>"
    assert not body.sets_seen


@pytest.mark.parametrize(
    "spec, section",
    [
        (b"BODY[]", Section()),
        (b"BODY[1.2.3]", Section((1, 2, 3))),
        (b"BODY[2.MIME]", Section((2,), "MIME")),
        (b"BODY[3.HEADER]", Section((3,), "HEADER")),
        (b"body[text]", Section((), "TEXT")),
        (
            b"BODY[1.HEADER.FIELDS.NOT (Received)]",
            Section((1,), "HEADER.FIELDS.NOT", ("RECEIVED",)),
        ),
    ],
)
def test_sections(spec, section):
    (item,) = parse_command(b"a FETCH 1 " + spec).fetch
    assert item.section == section
    assert item.sets_seen


def test_rfc822_text_sets_seen_but_header_does_not():
    items = parse_command(b"a FETCH 1 (RFC822.TEXT RFC822.HEADER RFC822.SIZE)").fetch
    assert [i.sets_seen for i in items] == [True, False, False]


def test_search_program_normalises_keys():
    cmd = parse_command(
        b'a UID SEARCH CHARSET utf-8 OR seen NOT (FROM "x" 1,3:5) SINCE 1-Feb-2026 NEW'
    )
    assert cmd.charset == "UTF-8"
    assert cmd.search == (
        "AND",
        (
            (
                "OR",
                ("FLAG", "\\Seen"),
                (
                    "NOT",
                    ("AND", (("ADDRESS", "FROM", "x"), ("SEQ", SequenceSet(((1, 1), (3, 5)))))),
                ),
            ),
            ("SINCE", dt.date(2026, 2, 1)),
            ("AND", (("FLAG", "\\Recent"), ("NOFLAG", "\\Seen"))),
        ),
    )


@pytest.mark.parametrize(
    "raw, key",
    [
        (b"ALL", ("ALL",)),
        (b"ANSWERED", ("FLAG", "\\Answered")),
        (b"UNDELETED", ("NOFLAG", "\\Deleted")),
        (b"DRAFT", ("FLAG", "\\Draft")),
        (b"UNFLAGGED", ("NOFLAG", "\\Flagged")),
        (b"OLD", ("NOFLAG", "\\Recent")),
        (b"RECENT", ("FLAG", "\\Recent")),
        (b"UNSEEN", ("NOFLAG", "\\Seen")),
        (b"UNDRAFT", ("NOFLAG", "\\Draft")),
        (b"UNANSWERED", ("NOFLAG", "\\Answered")),
        (b"KEYWORD $Junk", ("FLAG", "$Junk")),
        (b"UNKEYWORD work", ("NOFLAG", "work")),
        (b"BCC b", ("ADDRESS", "BCC", "b")),
        (b"CC c", ("ADDRESS", "CC", "c")),
        (b"TO t", ("ADDRESS", "TO", "t")),
        (b"SUBJECT {4}\r\nh\xc3\xa9j", ("HEADER", "SUBJECT", "h\u00e9j")),
        (b'HEADER x-spam "yes"', ("HEADER", "X-SPAM", "yes")),
        (b"HEADER from x", ("HEADER", "FROM", "x")),  # the field's text, not FROM's addresses
        (b"BODY word", ("BODY", "word")),
        (b"TEXT word", ("TEXT", "word")),
        (b"LARGER 100", ("LARGER", 100)),
        (b"SMALLER 5", ("SMALLER", 5)),
        (b"BEFORE 2-Jan-2025", ("BEFORE", dt.date(2025, 1, 2))),
        (b'ON "2-jan-2025"', ("ON", dt.date(2025, 1, 2))),
        (b"SENTBEFORE 2-Jan-2025", ("SENTBEFORE", dt.date(2025, 1, 2))),
        (b"SENTON 2-Jan-2025", ("SENTON", dt.date(2025, 1, 2))),
        (b"SENTSINCE 2-Jan-2025", ("SENTSINCE", dt.date(2025, 1, 2))),
        (b"UID 1:*", ("UID", SequenceSet(((1, None),)))),
        (b"NOT NOT SEEN", ("NOT", ("NOT", ("FLAG", "\\Seen")))),
        (b"(SEEN)", ("FLAG", "\\Seen")),
    ],
)
def test_every_search_key(raw, key):
    assert parse_command(b"a SEARCH " + raw).search == key


def test_search_with_unknown_charset_is_badcharset():
    with pytest.raises(ParseError) as info:
        parse_command(b"a SEARCH CHARSET KOI8-R FROM x")
    assert info.value.code == "BADCHARSET"


def test_store_forms():
    cmd = parse_command(b"a STORE 1:2 +FLAGS.SILENT (\\seen $Label1)")
    assert (cmd.store_mode, cmd.silent, cmd.flags) == ("add", True, ("\\Seen", "$Label1"))
    cmd = parse_command(b"a UID STORE 7 -flags \\Deleted \\Flagged")
    assert (cmd.uid, cmd.store_mode, cmd.flags) == (True, "remove", ("\\Deleted", "\\Flagged"))
    cmd = parse_command(b"a STORE 1 FLAGS ()")
    assert (cmd.store_mode, cmd.flags) == ("replace", ())


def test_append_with_flags_date_and_literal():
    cmd = parse_command(
        b'a APPEND "Sent" (\\Seen \\Draft) " 1-Feb-2026 10:00:00 -0130" {5+}\r\nhello'
    )
    assert cmd.mailbox == "Sent"
    assert cmd.flags == ("\\Seen", "\\Draft")
    assert cmd.date == dt.datetime(2026, 2, 1, 10, 0, tzinfo=dt.timezone(-dt.timedelta(minutes=90)))
    assert cmd.data == b"hello"
    assert parse_command(b"a APPEND inbox {0}\r\n").mailbox == "INBOX"


def test_list_forms():
    cmd = parse_command(b'a LIST (SPECIAL-USE) "" "*" RETURN (CHILDREN SPECIAL-USE)')
    assert cmd.select_opts == ("SPECIAL-USE",)
    assert cmd.return_opts == ("CHILDREN", "SPECIAL-USE")
    cmd = parse_command(b'a LIST "" %/Arch*')
    assert (cmd.reference, cmd.patterns, cmd.extended) == ("", ("%/Arch*",), False)
    cmd = parse_command(b'a LSUB "" "*"')
    assert (cmd.name, cmd.patterns) == ("LSUB", ("*",))


@pytest.mark.parametrize(
    "raw, reference, patterns, extended",
    [
        (b'a LIST "" *', "", ("*",), False),
        (b"a LIST Work/ %", "Work/", ("%",), False),
        (b'a LIST () "" *', "", ("*",), True),
        (b'a LIST "" * RETURN ()', "", ("*",), True),
        (b'a LIST "" ("INBOX" Sent/% {3}\r\nA*Z)', "", ("INBOX", "Sent/%", "A*Z"), True),
        (b'a LIST "" ("Zo&AUI-w")', "", ("Zo\u0142w",), True),
        # RFC 3501 5.1.3: not modified UTF-7, so the pattern can match nothing (not BAD)
        (b'a LIST "" a&Jjo', "", (None,), False),
        (b'a LIST "" ("a&Jjo*" "b")', "", (None, "b"), True),
        (b'a LIST "&Jjo" ("x" "y")', "", (None, None), True),
        (b'a LSUB "" "&AGE-"', "", (None,), False),
    ],
)
def test_list_patterns(raw, reference, patterns, extended):
    """RFC 5258 6 mbox-or-pat: one pattern or a parenthesised list; `extended` is set by
    any of the RFC 5258 forms."""
    cmd = parse_command(raw)
    assert (cmd.reference, cmd.patterns, cmd.extended) == (reference, patterns, extended)


@pytest.mark.parametrize(
    "raw",
    [
        b'a LIST "" ()',
        b'a LIST "" ("x"',
        b'a LIST "" * RETURN',
        b'a LIST "" * RETURNS ()',
        b'a LIST (SUBSCRIBED "" *',
        b'a LSUB () "" *',
        b'a LSUB "" ("x")',
    ],
)
def test_list_grammar_errors(raw):
    with pytest.raises(ParseError):
        parse_command(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"a SELECT &Jjo",
        b'a SELECT "a&Jjo"',
        b"a SELECT &AGE-",
        b"a CREATE {3}\r\n\xc5\xbcx",
        b"a RENAME INBOX Zo&AUI",
        b"a COPY 1 &Jjo",
        b'a STATUS "&-&" (MESSAGES)',
    ],
)
def test_a_name_that_is_not_modified_utf7_is_parsed_and_marked(raw):
    """A valid astring that is not modified UTF-7 is no grammar error (the session answers
    NO); the name it yields is empty, so no folder can be reached with it."""
    cmd = parse_command(raw)
    assert cmd.bad_name
    assert "" in (cmd.mailbox, cmd.mailbox2)
    assert not parse_command(b"a SELECT Zo&AUI-w").bad_name


def test_other_verbs():
    assert parse_command(b"a RENAME a b").mailbox2 == "b"
    assert parse_command(b"a STATUS x (UIDNEXT messages)").status_items == ("UIDNEXT", "MESSAGES")
    assert parse_command(b"a ENABLE CONDSTORE utf8=accept").words == ("CONDSTORE", "UTF8=ACCEPT")
    assert parse_command(b'a ID ("name" "Thunderbird" "os" NIL)').params == (
        ("name", "Thunderbird"),
        ("os", None),
    )
    assert parse_command(b"a ID NIL").params is None
    assert parse_command(b"a AUTHENTICATE plain AGpvZQBz").initial == b"AGpvZQBz"
    assert parse_command(b"a UID EXPUNGE 3:5").sequence == SequenceSet(((3, 5),))
    assert parse_command(b"a UID MOVE 1 Trash").mailbox == "Trash"
    assert parse_command(b"a SELECT INBOX (CONDSTORE)").condstore  # RFC 7162 3.1.8


@pytest.mark.parametrize(
    "wire, name",
    [
        (b"INBOX", "INBOX"),
        (b"inBox", "INBOX"),
        (b"&AOk-t&AOk-", "\u00e9t\u00e9"),
        (b"a&-b", "a&b"),
        (b"&ZeVnLIqe-", "\u65e5\u672c\u8a9e"),
        (b"Archive/2026", "Archive/2026"),
    ],
)
def test_modified_utf7_mailbox_names(wire, name):
    assert parse_command(b"a SELECT " + wire).mailbox == name
    if name != "INBOX":
        assert mutf7.encode(name) == wire


def test_literal_announcement_at_end_of_line():
    assert literal_at_end(b"a LOGIN {3}") == (3, False)
    assert literal_at_end(b"a APPEND x {12+}") == (12, True)
    assert literal_at_end(b"a LOGIN x") is None


# --- property tests -------------------------------------------------------------------------

REAL_COMMANDS = [
    b"a1 CAPABILITY",
    b"a2 LOGIN user@example.org secret",
    b'a3 LIST (SPECIAL-USE) "" "*"',
    b"a4 SELECT INBOX",
    b"a5 UID FETCH 1:* (FLAGS)",
    b"a6 FETCH 1:10 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])",
    b"a7 UID SEARCH UNSEEN",
    b"a8 UID STORE 4 +FLAGS.SILENT (\\Seen)",
    b"a9 APPEND Sent (\\Seen) {5}\r\nhello",
    b'b1 SEARCH CHARSET UTF-8 OR FROM "a" SUBJECT "b"',
]


@settings(max_examples=300, deadline=None)
@given(
    cmd=st.sampled_from(REAL_COMMANDS),
    pos=st.integers(min_value=0, max_value=200),
    junk=st.binary(max_size=8),
)
def test_mutated_real_commands_parse_or_raise_parse_error(cmd, pos, junk):
    """Any byte edit of a real command either parses or raises ParseError, never anything else."""
    pos = min(pos, len(cmd))
    mutated = cmd[:pos] + junk + cmd[pos + len(junk) // 2 :]
    try:
        parse_command(mutated)
    except ParseError:
        pass


@given(st.text(max_size=20))
def test_mailbox_names_round_trip_through_modified_utf7(name):
    assert mutf7.decode(mutf7.encode(name)) == name


@given(
    st.lists(st.tuples(st.integers(1, 50), st.integers(1, 50)), min_size=1, max_size=5),
    st.lists(st.integers(1, 60), unique=True, max_size=40),
)
def test_sequence_set_select_agrees_with_membership(ranges, values):
    values = sorted(values)
    seq = SequenceSet(tuple(ranges))
    largest = values[-1] if values else 0
    assert seq.select(values) == [v for v in values if seq.contains(v, largest)]


@given(st.binary(max_size=40))
def test_quoted_strings_round_trip(value):
    from mailsuite.imap.render import string

    wire = string(value)
    cmd = parse_command(b"a LOGIN " + wire + b" x")
    assert cmd.user == value


@pytest.mark.parametrize(
    ("raw", "shown"),
    [(b"Bad&AAA", "Bad&AAA"), (b"Odd&Jjo!-x", "Odd&Jjo!-x"), (b"&AQUBGQFC-", "ąęł")],
)
def test_lenient_decoding_keeps_what_another_server_got_wrong(raw: bytes, shown: str) -> None:
    """Remote listings are shown, never refused: an invalid run stays as it was."""
    assert mutf7.decode_lenient(raw) == shown
