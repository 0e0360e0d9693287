"""SEARCH evaluation: every key, and index-only keys never read a message file."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from mailsuite.imap.parser import parse_command
from mailsuite.imap.search import needs_file, search


@dataclass
class Entry:
    uid: int
    size: int
    internal_date: dt.datetime
    flags: frozenset[str]


def _msg(subject: str, body: str, date: str, extra: str = "") -> bytes:
    return (
        f"From: Ala <ala@example.org>\r\nTo: bob@example.org\r\nCc: cec@example.org\r\n"
        f"Subject: {subject}\r\nDate: {date}\r\n{extra}\r\n{body}\r\n"
    ).encode()


FILES = {
    10: _msg("Hello", "first body", "Mon, 5 Jan 2026 10:00:00 +0000"),
    11: _msg("=?utf-8?q?Za=C5=BC=C3=B3=C5=82=C4=87?=", "druga", "Tue, 6 Jan 2026 23:30:00 -0500"),
    12: _msg(
        "Re: hello",
        "PGJvZHk+ZW5jb2RlZDwvYm9keT4=",
        "Wed, 7 Jan 2026 10:00:00 +0000",
        "X-Spam: yes\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n",
    ),
}
ENTRIES = [
    Entry(10, 100, dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC), frozenset({"\\Seen"})),
    Entry(11, 2000, dt.datetime(2026, 1, 6, 12, tzinfo=dt.UTC), frozenset({"\\Flagged", "$Work"})),
    Entry(12, 500, dt.datetime(2026, 1, 7, 12, tzinfo=dt.UTC), frozenset({"\\Deleted", "\\Seen"})),
]


class Loader:
    def __init__(self) -> None:
        self.reads: list[int] = []

    def __call__(self, uid: int) -> bytes:
        self.reads.append(uid)
        return FILES[uid]


def run(program: str) -> tuple[list[int], Loader]:
    cmd = parse_command(b"a UID SEARCH " + program.encode())
    loader = Loader()
    return search(cmd.search, ENTRIES, {12}, loader).uids, loader


@pytest.mark.parametrize(
    "program, uids",
    [
        ("ALL", [10, 11, 12]),
        ("SEEN", [10, 12]),
        ("UNSEEN", [11]),
        ("FLAGGED", [11]),
        ("DELETED", [12]),
        ("UNDELETED", [10, 11]),
        ("ANSWERED", []),
        ("UNANSWERED", [10, 11, 12]),
        ("DRAFT", []),
        ("UNDRAFT", [10, 11, 12]),
        ("RECENT", [12]),
        ("OLD", [10, 11]),
        ("NEW", []),
        ("KEYWORD $work", [11]),
        ("UNKEYWORD $Work", [10, 12]),
        ("LARGER 100", [11, 12]),
        ("SMALLER 500", [10]),
        ("BEFORE 6-Jan-2026", [10]),
        ("ON 6-Jan-2026", [11]),
        ("SINCE 6-Jan-2026", [11, 12]),
        ("UID 11:*", [11, 12]),
        ("UID *", [12]),
        ("2:3", [11, 12]),
        ("*", [12]),
        ("NOT SEEN", [11]),
        ("OR DELETED FLAGGED", [11, 12]),
        ("(SEEN LARGER 200)", [12]),
        ("SEEN NOT (UID 12)", [10]),
    ],
)
def test_index_keys_do_not_read_files(program, uids):
    got, loader = run(program)
    assert got == uids
    assert loader.reads == []


@pytest.mark.parametrize(
    "program, uids",
    [
        ('SUBJECT "hello"', [10, 12]),
        ("SUBJECT {10}\r\nzażółć", [11]),
        ("FROM ala", [10, 11, 12]),
        ("TO BOB@example.org", [10, 11, 12]),
        ("CC cec", [10, 11, 12]),
        ("BCC x", []),
        ('HEADER X-Spam ""', [12]),
        ("HEADER x-spam yes", [12]),
        ("BODY FIRST", [10]),
        ("BODY encoded", [12]),
        ("TEXT hello", [10, 12]),
        ("TEXT druga", [11]),
        ("SENTBEFORE 6-Jan-2026", [10]),
        ("SENTON 6-Jan-2026", [11]),
        ("SENTSINCE 7-Jan-2026", [12]),
    ],
)
def test_file_keys(program, uids):
    got, _ = run(program)
    assert got == uids


def test_file_keys_run_only_on_messages_that_pass_the_index_keys():
    got, loader = run("SEEN BODY first")
    assert got == [10]
    assert loader.reads == [10, 12]
    assert needs_file(parse_command(b"a SEARCH OR SEEN NOT BODY x").search)
    assert not needs_file(parse_command(b"a SEARCH OR SEEN NOT UID 3").search)


def test_search_on_an_empty_folder():
    cmd = parse_command(b"a SEARCH 1:* UNSEEN")
    assert search(cmd.search, [], set(), Loader()).seqs == []


@pytest.mark.parametrize(
    "program",
    ["UID 11:12 SEEN", "2:3 NOT SEEN", "UID 11 BODY druga", "OR UID 10 UID 12", "UID 12:* ALL"],
)
def test_narrowed_searches_agree_with_full_evaluation(program):
    """A top-level UID or sequence range only limits where to look, never the answer."""
    cmd = parse_command(b"a UID SEARCH " + program.encode())
    got = search(cmd.search, ENTRIES, {12}, Loader()).uids
    wide = ("AND", (("ALL",), cmd.search, ("NOT", ("NOT", ("ALL",)))))
    from mailsuite.imap.search import Candidate, compile_key

    pred = compile_key(wide, len(ENTRIES), ENTRIES[-1].uid)
    expected = [
        e.uid for i, e in enumerate(ENTRIES, 1) if pred(Candidate(i, e, e.uid == 12, Loader()))
    ]
    assert got == expected


ADDRESS_FILES = {
    20: (
        b"From: <user-from (comment)@ (comment) domain.org>\r\n"
        b"To: Friends: a@x.example, =?utf-8?q?=C5=81ukasz?= <lz@example.pl>;\r\n"
        b"Cc: <@route.example:routed@example.net>\r\nSubject: addresses\r\n\r\nbody\r\n"
    ),
    21: b"From: Other <other@example.org>\r\nTo: z@example.org\r\nSubject: other\r\n\r\nbody\r\n",
}
ADDRESS_ENTRIES = [
    Entry(20, 100, dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC), frozenset()),
    Entry(21, 100, dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC), frozenset()),
]


@pytest.mark.parametrize(
    "program, uids",
    [
        # RFC 3501 6.4.4: FROM/TO/CC/BCC search the envelope's address structures
        ("FROM user-from@domain.org", [20]),
        ("FROM USER-FROM@DOMAIN.ORG", [20]),
        ("FROM from@domain", [20]),
        ("TO friends", [20]),
        ("TO a@x.example", [20]),
        ("TO {7}\r\nłukasz", [20]),  # the display name, RFC 2047 decoded
        ('TO "ukasz <lz@"', [20]),
        ("CC routed@example.net", [20]),
        ("FROM other", [21]),
        ("FROM nobody@example.org", []),
    ],
)
def test_address_keys_match_the_addresses_as_envelope_parses_them(program, uids):
    cmd = parse_command(b"a UID SEARCH " + program.encode())
    found = search(cmd.search, ADDRESS_ENTRIES, set(), ADDRESS_FILES.__getitem__).uids
    assert found == uids


@pytest.mark.parametrize(
    "program, uids",
    [
        # RFC 3501 / RFC 9051 6.4.4: FROM matches the envelope's FROM, HEADER FROM the text
        # after the colon; a comment is in the text and in no address structure
        ("FROM comment", []),
        ("HEADER FROM comment", [20]),
        ("HEADER FROM user-from@domain.org", []),
        ("FROM user-from@domain.org", [20]),
        ('HEADER FROM "(comment)@ (comment)"', [20]),
        ('TO "friends: a@x"', []),
        ('HEADER TO "friends: a@x"', [20]),
        ('HEADER TO "=?utf-8?q?"', []),  # HEADER text is RFC 2047 decoded
        ("HEADER TO {7}\r\nłukasz", [20]),
        ('HEADER CC ""', [20]),  # an empty string matches every message with the field
        ('CC ""', [20]),
        ('BCC ""', []),
    ],
)
def test_address_keys_and_header_keys_differ(program, uids):
    cmd = parse_command(b"a UID SEARCH " + program.encode())
    found = search(cmd.search, ADDRESS_ENTRIES, set(), ADDRESS_FILES.__getitem__).uids
    assert found == uids
