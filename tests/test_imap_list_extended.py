"""LIST-EXTENDED (RFC 5258) and the SPECIAL-USE options (RFC 6154) against the real server.

The folders are those of RFC 5258's examples: Fruit with Apple and Banana, Tofu, Vegetable
with Broccoli and Corn; subscribed are Fruit/Banana, Fruit/Peach (which does not exist),
Tofu, Vegetable and Vegetable/Broccoli. The folders every account starts with are
unsubscribed first, so the subscribed answers hold only these.
"""

from __future__ import annotations

import pytest

from tests.test_imap_server import Raw, reply, session, user

__all__ = ["user"]  # a fixture, imported so pytest finds it here

FOLDERS = (
    "Fruit",
    "Fruit/Apple",
    "Fruit/Banana",
    "Tofu",
    "Vegetable",
    "Vegetable/Broccoli",
    "Vegetable/Corn",
)
SUBSCRIBED = ("Fruit/Banana", "Fruit/Peach", "Tofu", "Vegetable", "Vegetable/Broccoli")
STARTERS = ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive")


@pytest.fixture
def food(suite, user) -> Raw:
    c = session(suite, user, select=None)
    for name in STARTERS:
        c.ok(f"UNSUBSCRIBE {name}")
    for name in FOLDERS:
        c.ok(f"CREATE {name}")
    for name in SUBSCRIBED:
        c.ok(f"SUBSCRIBE {name}")
    return c


def listing(c: Raw, command: str) -> list[bytes]:
    lines = c.cmd(command)
    assert reply(lines).startswith(b"OK"), (command, lines[-1])
    return [ln.rstrip(b"\r\n") for ln in lines[:-1]]


def test_subscribed_lists_subscribed_names_even_deleted_ones(food):
    """RFC 5258 3.1: SUBSCRIBED lists the subscription list, names that do not exist
    included, flagged \\NonExistent, and implies RETURN (SUBSCRIBED)."""
    assert listing(food, 'LIST (SUBSCRIBED) "" "*"') == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"',
        b'* LIST (\\NonExistent \\Subscribed) "/" "Fruit/Peach"',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Tofu"',
        b'* LIST (\\HasChildren \\Subscribed) "/" "Vegetable"',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable/Broccoli"',
    ]
    # without RECURSIVEMATCH a parent is listed only if it is subscribed itself
    assert listing(food, 'LIST (SUBSCRIBED) "" "%"') == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Tofu"',
        b'* LIST (\\HasChildren \\Subscribed) "/" "Vegetable"',
    ]
    food.ok("DELETE Tofu")
    assert listing(food, 'LIST (SUBSCRIBED) "" "T*"') == [
        b'* LIST (\\NonExistent \\Subscribed) "/" "Tofu"',
    ]


def test_recursivematch_returns_parents_with_childinfo(food):
    """RFC 5258 3.1 and 4: with RECURSIVEMATCH a name matching the pattern that has a
    descendant meeting the selection criteria is returned with CHILDINFO, whether or not
    it meets them itself (Note 2: the descendant need not match the pattern)."""
    assert listing(food, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)') == [
        b'* LIST (\\HasChildren) "/" "Fruit" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Tofu"',
        b'* LIST (\\HasChildren \\Subscribed) "/" "Vegetable" ("CHILDINFO" ("SUBSCRIBED"))',
    ]
    # a parent that does not exist either is \NonExistent, and still gets its CHILDINFO
    food.ok("SUBSCRIBE Nuts/Walnut")
    assert listing(food, 'LIST (RECURSIVEMATCH SUBSCRIBED) "" "N%"') == [
        b'* LIST (\\NonExistent) "/" "Nuts" ("CHILDINFO" ("SUBSCRIBED"))',
    ]


def test_return_subscribed_and_children_with_a_pattern_list(food):
    """RFC 5258 3: several patterns in parentheses; a name matching any is listed once.
    RETURN (SUBSCRIBED) adds \\Subscribed, and lists existing folders only."""
    assert listing(
        food, 'LIST "" ("Fruit" "Tofu" "Vegetable/%" "Tofu" "T*") RETURN (SUBSCRIBED CHILDREN)'
    ) == [
        b'* LIST (\\HasChildren) "/" "Fruit"',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Tofu"',
        b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable/Broccoli"',
        b'* LIST (\\HasNoChildren) "/" "Vegetable/Corn"',
    ]
    assert listing(food, 'LIST "" ("inbox" "Fruit/P*")') == [
        b'* LIST (\\HasNoChildren) "/" "INBOX"'
    ]
    assert listing(food, 'LIST () "" "Tofu" RETURN ()') == [b'* LIST (\\HasNoChildren) "/" "Tofu"']
    assert listing(food, 'LIST (REMOTE) "" "Tofu"') == [b'* LIST (\\HasNoChildren) "/" "Tofu"']


def test_implied_parents_are_nonexistent_in_extended_answers(food):
    """RFC 5258 3 (and its example 11): a parent that is there only for its children is
    \\NonExistent \\HasChildren in an extended LIST; the basic LIST keeps RFC 3501's
    \\Noselect."""
    food.ok("CREATE Music/Jazz")
    assert listing(food, 'LIST "" "M%"') == [b'* LIST (\\Noselect \\HasChildren) "/" "Music"']
    assert listing(food, 'LIST () "" "M%"') == [b'* LIST (\\NonExistent \\HasChildren) "/" "Music"']
    assert listing(food, 'LIST "" ("M%")') == [b'* LIST (\\NonExistent \\HasChildren) "/" "Music"']


def test_special_use_selection_and_return_options(food):
    """RFC 6154 3: SPECIAL-USE selects folders with a special use; RETURN (SPECIAL-USE)
    returns the attributes; it combines with SUBSCRIBED."""
    food.ok("SUBSCRIBE Sent")
    assert listing(food, 'LIST (SPECIAL-USE SUBSCRIBED) "" "*"') == [
        b'* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" "Sent"',
    ]
    assert listing(food, 'LIST "" "S*" RETURN (SPECIAL-USE)') == [
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    ]
    assert listing(food, 'LIST (SPECIAL-USE) "" "J*" RETURN (SPECIAL-USE SUBSCRIBED)') == [
        b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    ]


@pytest.mark.parametrize(
    "command",
    [
        'LIST (RECURSIVEMATCH) "" "*"',
        'LIST (RECURSIVEMATCH) "" ""',
        'LIST (REMOTE RECURSIVEMATCH) "" "%"',
        'LIST (SPECIAL-USE RECURSIVEMATCH) "" "*"',
        'LIST (BOGUS) "" "*"',
        'LIST (BOGUS) "" ""',
        'LIST (SUBSCRIBED BOGUS) "" "Tofu"',
        'LIST "" "*" RETURN (BOGUS)',
        'LIST "" "" RETURN (BOGUS)',
        'LIST "" ("Tofu") RETURN (SUBSCRIBED BOGUS)',
        'LIST "" "*" RETURN (STATUS (BOGUS))',
        'LIST "" ()',
        'LIST "" ("Tofu"',
        'LIST "" "*" RETURN',
        'LIST "" "*" RETURNS ()',
    ],
)
def test_bad_options_get_bad_whatever_the_pattern(food, command):
    """RFC 5258 3.1: RECURSIVEMATCH alone (or with only REMOTE or an independent option)
    MUST get BAD; so do unknown selection and return options (RFC 5258 3, 6), checked
    before the pattern, so even the empty pattern does not answer them."""
    assert reply(food.cmd(command)).startswith(b"BAD"), command
    assert reply(food.cmd("NOOP")).startswith(b"OK")
