"""Names that could leave a user's Maildir are refused before any path is built."""

from __future__ import annotations

import os

import pytest

from mailsuite.store import BadFlag, BadFolderName, Store
from mailsuite.store.names import (
    canonical_folder,
    folder_dirname,
    folder_from_dirname,
    mutf7_decode,
    mutf7_encode,
    parse_flags,
)

BAD_FOLDER_NAMES = [
    "",
    "..",
    "../x",
    "a/../b",
    "x/..",
    ".",
    ".hidden",
    "a/.b",
    "a.b",  # "." is the Maildir++ separator on disk
    "/abs",
    "/",
    "trailing/",
    "a//b",
    "back\\slash",
    "..\\..\\etc",
    "nul\x00byte",
    "line\nbreak",
    "tab\tname",
    "del\x7f",
    "c1\x85control",
    "wild*",
    "wild%",
    " padded",
    "padded ",
    "x" * 201,
    "/".join(["a"] * 17),
    "ą" * 150,  # fits 200 characters but not one directory name once encoded
    "\ud800",
]

BAD_ADDRESSES = [
    "",
    "no-at-sign",
    "a@b@c.org",
    "../x@example.org",
    "..@example.org",
    ".a@example.org",
    "a.@example.org",
    "a..b@example.org",
    "a/b@example.org",
    "a\\b@example.org",
    "a\x00@example.org",
    "a\n@example.org",
    "a@../etc",
    "a@.example.org",
    "a@example..org",
    "a@exa/mple.org",
    "a@[127.0.0.1]",
    "a@",
    "@example.org",
    "x" * 65 + "@example.org",
    "a@" + "b" * 254,
]


@pytest.mark.parametrize("name", BAD_FOLDER_NAMES)
def test_folder_names_that_could_escape_are_refused(tmp_path, name):
    store = Store(tmp_path / "maildirs", fsync=False)
    mailbox = store.mailbox("alice@example.org")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(BadFolderName):
        mailbox.create_folder(name)
    with pytest.raises(BadFolderName):
        mailbox.folder(name)
    with pytest.raises(BadFolderName):
        mailbox.rename_folder("Sent", name)
    with pytest.raises(BadFolderName):
        mailbox.subscribe(name)
    with pytest.raises(BadFolderName):
        store.deliver(["alice@example.org"], b"x", folder=name)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_addresses_that_could_escape_are_refused(tmp_path, address):
    store = Store(tmp_path / "maildirs", fsync=False)
    with pytest.raises(BadFolderName):
        store.mailbox(address)
    with pytest.raises(BadFolderName):
        store.deliver([address], b"x")
    with pytest.raises(BadFolderName):
        store.purge(address)
    assert os.listdir(tmp_path / "maildirs") == []


@pytest.mark.parametrize(
    ("name", "canonical", "dirname"),
    [
        ("INBOX", "INBOX", None),
        ("inbox", "INBOX", None),
        ("InBox/Sub", "INBOX/Sub", ".INBOX.Sub"),
        ("Sent", "Sent", ".Sent"),
        ("sent", "sent", ".sent"),
        ("Archive/2026", "Archive/2026", ".Archive.2026"),
        ("Été", "Été", ".&AMk-t&AOk-"),
        ("Tom & Jerry", "Tom & Jerry", ".Tom &- Jerry"),
        ("日本語/メール", "日本語/メール", ".&ZeVnLIqe-.&MOEw,DDr-"),
        ("a~b", "a~b", ".a~b"),
    ],
)
def test_names_map_to_maildir_plus_plus_directories(name, canonical, dirname):
    assert canonical_folder(name) == canonical
    assert folder_dirname(canonical) == dirname
    if dirname is not None:
        assert folder_from_dirname(dirname) == canonical


@pytest.mark.parametrize(
    "dirname", ["..", "...x", ".&Jjo", ".&AGE-", ".a..b", "cur", ".&-&-/x", ".x\x01"]
)
def test_directories_that_are_not_our_folders_are_not_listed(dirname):
    assert folder_from_dirname(dirname) is None


@pytest.mark.parametrize("text", ["plain", "&", "ä", "a&b€c", "😀 smile", "~-&-"])
def test_modified_utf7_round_trips(text):
    encoded = mutf7_encode(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert mutf7_decode(encoded) == text


@pytest.mark.parametrize(
    ("flags", "letters", "keywords"),
    [
        ((), "", ()),
        (("\\Seen",), "S", ()),
        (("\\seen", "\\DELETED", "\\Draft", "\\Flagged", "\\Answered"), "DFRST", ()),
        (("$Forwarded", "\\Seen", "$Forwarded"), "S", ("$Forwarded",)),
    ],
)
def test_flags_map_to_maildir_letters(flags, letters, keywords):
    assert parse_flags(flags) == (letters, keywords)


@pytest.mark.parametrize(
    "flag", ["\\Recent", "\\Bogus", "", "two words", "pa(ren", 'quo"te', "x" * 101, "é"]
)
def test_flags_that_cannot_be_stored_are_refused(flag):
    with pytest.raises(BadFlag):
        parse_flags([flag])
