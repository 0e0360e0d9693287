"""LIST/LSUB pattern matching (RFC 3501 6.3.8): tables of patterns, a comparison with a plain
backtracking reference on small inputs, and hostile patterns that must cost no more than
ordinary ones."""

from __future__ import annotations

import time
from functools import cache

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsuite.imap import mailboxes
from mailsuite.imap.mailboxes import MAX_PATTERN, Matcher, Pattern, PatternTooLong
from mailsuite.store.model import FolderInfo


def reference_match(pattern: str, name: str) -> bool:
    """RFC 3501 6.3.8 read literally: try every split (memoised, so long table rows finish)."""

    @cache
    def go(p: int, n: int) -> bool:
        if p == len(pattern):
            return n == len(name)
        c = pattern[p]
        if c == "*":
            return any(go(p + 1, k) for k in range(n, len(name) + 1))
        if c == "%":
            k = n
            while True:
                if go(p + 1, k):
                    return True
                if k == len(name) or name[k] == "/":
                    return False
                k += 1
        return n < len(name) and name[n] == c and go(p + 1, n + 1)

    return go(0, 0)


MATCHES = [
    # (pattern, name, matches)
    ("*", "INBOX", True),
    ("*", "Archive/2026/Q1", True),
    ("%", "Archive", True),
    ("%", "Archive/2026", False),  # % stops at the hierarchy delimiter
    ("%/%", "Archive/2026", True),
    ("%/%", "Archive/2026/Q1", False),
    ("Archive/*", "Archive/2026/Q1", True),
    ("Archive/*", "Archive", False),
    ("Archive*", "Archive", True),  # a wildcard may match nothing
    ("Arch%", "Archive", True),
    ("A%e", "Archive", True),
    ("A%e", "Archive/Rue", False),
    ("A*e", "Archive/Rue", True),
    ("*/Q1", "Archive/2026/Q1", True),
    ("%/Q1", "Archive/2026/Q1", False),
    ("Sent", "Sent", True),
    ("Sent", "sent", False),  # names other than INBOX are case-sensitive
    ("Sent", "Sent2", False),
    ("", "", True),
    ("", "INBOX", False),
    ("**%%**x", "abcx", True),
    ("%%%%x", "a/x", False),
    ("*" * 50 + "x", "a" * 200, False),
    ("%" * 50 + "x", "a" * 199 + "x", True),
    ("Été/%", "Été/Zdjęcia", True),  # Unicode names, after modified UTF-7 decoding
]


@pytest.mark.parametrize(("pattern", "name", "expected"), MATCHES)
def test_pattern_table(pattern: str, name: str, expected: bool) -> None:
    """Each pattern matches exactly the names RFC 3501 6.3.8 says it does."""
    assert Pattern(pattern).match(name) is expected
    assert reference_match(pattern, name) is expected


INBOX_CASES = [
    # (reference, pattern, name, matches) - RFC 3501 5.1: INBOX is case-insensitive
    ("", "inbox", "INBOX", True),
    ("", "InBoX", "INBOX", True),
    ("", "inbox/%", "INBOX/Work", True),
    ("", "inbox/work", "INBOX/Work", False),  # only INBOX itself ignores case
    ("", "inbox*", "INBOX", True),
    ("", "inbox*", "inboxes", True),
    ("", "INBOXes", "inboxes", False),
    ("", "inboxes", "inboxes", True),
    ("inbox/", "%", "INBOX/Work", True),  # RFC 3501 6.3.8: the reference comes first
    ("Archive/", "%", "Archive/2026", True),
    ("Archive/", "%", "Archive", False),
    ("Arch", "ive", "Archive", True),
]


@pytest.mark.parametrize(("reference", "pattern", "name", "expected"), INBOX_CASES)
def test_reference_and_inbox_case(reference: str, pattern: str, name: str, expected: bool) -> None:
    """The reference is prefixed to the pattern, and a pattern naming INBOX in any case
    matches INBOX and the folders under it."""
    assert Matcher(reference, pattern).match(name) is expected


PATTERN_TEXT = st.text(alphabet="ab/*%", max_size=9)
NAMES = st.text(alphabet="ab/", max_size=9)


@settings(max_examples=3000, derandomize=True, deadline=None)
@given(PATTERN_TEXT, NAMES)
@example("*%*", "a/b")
@example("%*%", "a/b")
@example("%/%%", "a//")
def test_matcher_agrees_with_the_backtracking_reference(pattern: str, name: str) -> None:
    """On every small input the linear matcher answers as the literal reading does."""
    assert Pattern(pattern).match(name) is reference_match(pattern, name)


HOSTILE = [
    "*" * 3000 + "x",
    "%" * 3000 + "x",
    "*%" * 1500 + "x",
    ("*a" * 400) + "x",
    ("%/" * 400) + "x",
    ("a%" * 400) + "*b",
]


@pytest.mark.parametrize("pattern", HOSTILE, ids=lambda p: f"{p[:6]}…{len(p)}")
def test_hostile_patterns_cost_what_ordinary_ones_do(pattern: str) -> None:
    """A pattern built to make a backtracking matcher take years is answered over 500
    long names in well under a second (about 0.1 ms a name at worst)."""
    names = ["a" * 200, "a/" * 99 + "a", "b" * 199 + "x", ("ab" * 100)[:199] + "/"]
    matcher = Matcher("", pattern)
    started = time.perf_counter()
    for _ in range(125):
        for name in names:
            matcher.match(name)
    assert time.perf_counter() - started < 0.5


def test_a_long_reference_is_matched_like_a_long_pattern() -> None:
    """The reference argument is part of the pattern: wildcards in it cost no more."""
    started = time.perf_counter()
    assert not Matcher("*" * 3000, "*" * 3000 + "x").match("a" * 200)
    assert Matcher("%" * 900 + "/", "*b").match("a" * 100 + "/" + "a" * 98 + "b")
    assert time.perf_counter() - started < 0.1


def test_runs_of_wildcards_count_once_toward_the_length_limit() -> None:
    """Only a pattern that is long after merging runs of wildcards is refused: no folder
    name (at most 200 characters) could need it."""
    Matcher("", "*" * 100_000 + "x")
    Matcher("", "a" * (MAX_PATTERN - 1) + "*")
    with pytest.raises(PatternTooLong, match="too long"):
        Matcher("", "a" * MAX_PATTERN + "*")
    with pytest.raises(PatternTooLong):
        Matcher("a/" * (MAX_PATTERN // 2), "%")
    with pytest.raises(PatternTooLong):
        Matcher("", "a*" * (MAX_PATTERN // 2 + 1))


def info(name: str, *, subscribed: bool = True, special_use: str | None = None) -> FolderInfo:
    return FolderInfo(name, special_use, subscribed)


def test_list_folders_with_a_hostile_pattern_answers_what_a_plain_one_does() -> None:
    """LIST with fifty stars and an x lists the folders ending in x, as "*x" does, with
    implied parents and children attributes."""
    folders = [info("INBOX"), info("Sent", special_use="\\Sent"), info("Dir/Tax"), info("Fax")]
    plain = mailboxes.list_folders(folders, Matcher("", "*x"))
    hostile = mailboxes.list_folders(folders, Matcher("", "*" * 50 + "x"))
    assert plain == hostile
    assert [i.name for i in hostile] == ["Dir/Tax", "Fax"]
    implied = mailboxes.list_folders(folders, Matcher("", "%" * 50))
    assert ("Dir", ("\\Noselect", "\\HasChildren")) in [(i.name, i.attributes) for i in implied]


TREE = [info("INBOX"), info("Fruit", subscribed=False), info("Fruit/Apple", subscribed=False)]
TREE += [info("Fruit/Banana"), info("Veg"), info("Veg/Corn", subscribed=False)]
SUBS = ["INBOX", "Fruit/Banana", "Fruit/Peach", "Veg", "Gone/Deep"]

LISTINGS = [
    # (pattern, options, [(name, attributes, childinfo)])
    (
        "%",
        {"lsub": True},
        [
            ("INBOX", ("\\HasNoChildren",), ()),
            ("Fruit", ("\\Noselect", "\\HasChildren"), ()),
            ("Gone", ("\\Noselect",), ()),
            ("Veg", ("\\HasChildren",), ()),
        ],
    ),
    (
        "Fruit/*",
        {"lsub": True},
        [
            ("Fruit/Banana", ("\\HasNoChildren",), ()),
            ("Fruit/Peach", ("\\Noselect",), ()),
        ],
    ),
    (
        "*",
        {"subscribed_only": True, "extended": True},
        [
            ("INBOX", ("\\HasNoChildren", "\\Subscribed"), ()),
            ("Fruit/Banana", ("\\HasNoChildren", "\\Subscribed"), ()),
            ("Fruit/Peach", ("\\NonExistent", "\\Subscribed"), ()),
            ("Gone/Deep", ("\\NonExistent", "\\Subscribed"), ()),
            ("Veg", ("\\HasChildren", "\\Subscribed"), ()),
        ],
    ),
    (
        "%",
        {"subscribed_only": True, "recursive": True, "extended": True},
        [
            ("INBOX", ("\\HasNoChildren", "\\Subscribed"), ()),
            ("Fruit", ("\\HasChildren",), ("SUBSCRIBED",)),
            ("Gone", ("\\NonExistent",), ("SUBSCRIBED",)),
            ("Veg", ("\\HasChildren", "\\Subscribed"), ()),
        ],
    ),
    (
        "Veg*",
        {"return_subscribed": True},
        [
            ("Veg", ("\\HasChildren", "\\Subscribed"), ()),
            ("Veg/Corn", ("\\HasNoChildren",), ()),
        ],
    ),
    ("G*", {}, []),  # a subscription is no folder for a plain LIST
]


@pytest.mark.parametrize(("pattern", "options", "expected"), LISTINGS)
def test_list_and_lsub_answers(pattern: str, options: dict, expected: list) -> None:
    """LSUB returns subscribed names, gone or not, and unsubscribed parents as \\Noselect
    (RFC 3501 6.3.9); LIST (SUBSCRIBED) marks gone names \\NonExistent and RECURSIVEMATCH
    adds parents with CHILDINFO (RFC 5258 3.1)."""
    got = mailboxes.list_folders(TREE, Matcher("", pattern), subscriptions=SUBS, **options)
    assert [(i.name, i.attributes, i.childinfo) for i in got] == expected


def test_several_patterns_list_a_name_once() -> None:
    """RFC 5258 3: a name matching any of the patterns is listed, once."""
    matcher = mailboxes.AnyOf([Matcher("", "F*"), Matcher("", "Fruit"), Matcher("", "inbox")])
    got = mailboxes.list_folders(TREE, matcher, subscriptions=SUBS)
    assert [i.name for i in got] == ["INBOX", "Fruit", "Fruit/Apple", "Fruit/Banana"]
    assert mailboxes.list_folders(TREE, mailboxes.AnyOf([]), subscriptions=SUBS) == []
