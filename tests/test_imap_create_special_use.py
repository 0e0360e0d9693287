"""CREATE-SPECIAL-USE (RFC 6154 3) against the real server."""

from __future__ import annotations

from tests.test_imap_server import reply, session, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here


def listed(c, pattern: str) -> list[bytes]:
    return c.ok(f'LIST "" "{pattern}"')[:-1]


def test_capability_offers_create_special_use(suite, user):
    c = session(suite, user, select=None)
    assert b"CREATE-SPECIAL-USE" in c.ok("CAPABILITY")[0].split()


def test_created_folder_has_its_use_in_list(suite, user):
    """RFC 6154 3: CREATE with USE gives the new mailbox that attribute, shown by LIST
    (RFC 6154 2) and by LIST (SPECIAL-USE)."""
    c = session(suite, user, select=None)
    c.ok("DELETE Drafts")  # every new mailbox has one \\Drafts; make room for another
    c.ok("CREATE Entw&APw-rfe (USE (\\Drafts))")  # modified UTF-7 for Entwürfe
    lines = listed(c, "Entw&APw-rfe")
    assert lines == [b'* LIST (\\HasNoChildren \\Drafts) "/" "Entw&APw-rfe"\r\n']
    special = c.ok('LIST (SPECIAL-USE) "" "*"')
    assert any(b"\\Drafts" in ln and b"Entw&APw-rfe" in ln for ln in special)


def test_use_survives_rename_and_reconnect(suite, user, store):
    """The attribute belongs to the mailbox: it follows a RENAME and stays across
    sessions."""
    c = session(suite, user, select=None)
    c.ok("DELETE Archive")
    c.ok("CREATE Stuff (USE (\\Archive))")
    c.ok("RENAME Stuff Old/Stuff")
    c2 = session(suite, user, select=None)
    assert listed(c2, "Old/Stuff") == [b'* LIST (\\HasNoChildren \\Archive) "/" "Old/Stuff"\r\n']
    assert [f.special_use for f in store.mailbox(user).list_folders() if f.name == "Old/Stuff"] == [
        "\\Archive"
    ]


def test_unsupported_attribute_is_useattr_and_creates_nothing(suite, user):
    """RFC 6154 3: a use the server cannot give gets NO [USEATTR] and no mailbox."""
    c = session(suite, user, select=None)
    for attr in ("\\All", "\\Flagged", "\\Bogus"):
        assert reply(c.cmd(f"CREATE Odd (USE ({attr}))")).startswith(b"NO [USEATTR]"), attr
    assert listed(c, "Odd") == []


def test_use_another_folder_has_is_useattr(suite, user):
    """RFC 6154 3: the server MAY refuse a use another mailbox already has: NO [USEATTR]."""
    c = session(suite, user, select=None)
    assert reply(c.cmd("CREATE MySent (USE (\\Sent))")).startswith(b"NO [USEATTR]")
    assert listed(c, "MySent") == []
    c.ok("DELETE Junk")
    c.ok("CREATE A (USE (\\Junk))")
    assert reply(c.cmd("CREATE B (USE (\\Junk))")).startswith(b"NO [USEATTR]")


def test_two_uses_are_useattr(suite, user):
    c = session(suite, user, select=None)
    c.ok("DELETE Trash")
    c.ok("DELETE Archive")
    assert reply(c.cmd("CREATE Two (USE (\\Trash \\Archive))")).startswith(b"NO [USEATTR]")


def test_create_with_empty_use_list_is_a_plain_create(suite, user):
    c = session(suite, user, select=None)
    c.ok("CREATE Plain (USE ())")
    assert listed(c, "Plain") == [b'* LIST (\\HasNoChildren) "/" "Plain"\r\n']


def test_bad_create_params_are_bad(suite, user):
    c = session(suite, user, select=None)
    for text in ("CREATE X (USE)", "CREATE X (FOO (\\Drafts))", "CREATE X (USE (Drafts))"):
        assert reply(c.cmd(text)).startswith(b"BAD"), text
