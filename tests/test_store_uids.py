"""UIDs across a move between servers: the store takes another server's UIDVALIDITY and
UIDs (a migration), and exports a Maildir whose `dovecot-uidlist` makes Dovecot show ours.

Dovecot's own `imap` binary reads the exported Maildir (PREAUTH, no daemon), as in
test_store_dovecot.py; nothing of ours is between it and the files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailsuite.store import NewMessage, NotAllowed, Store, UidInUse
from mailsuite.store.export import ExportError, export_mailbox
from mailsuite.store.index import FolderIndex
from mailsuite.store.uidlist import parse_uidlist

from .test_store_dovecot import dovecot, work_dir  # noqa: F401  (work_dir is a fixture)

ALICE = "alice@example.org"


def message(n: int) -> bytes:
    return b"Subject: m%d\r\nMessage-ID: <m%d@example.org>\r\n\r\nbody %d\r\n" % (n, n, n)


def test_an_append_takes_the_uid_asked_for_and_uids_only_grow(tmp_path: Path) -> None:
    store = Store(tmp_path, fsync=False)
    folder = store.mailbox(ALICE).folder("INBOX")
    assert folder.append(message(1), uid=7) == 7
    assert folder.uidnext == 8
    with pytest.raises(UidInUse):
        folder.append(message(2), uid=7)
    with pytest.raises(UidInUse):
        folder.append(message(2), uid=3)
    assert folder.append(message(3)) == 8
    results = folder.append_many(
        [
            NewMessage(message(4), ("\\Seen",), None, 20),
            NewMessage(message(5), (), None, 12),  # below UIDNEXT by then: refused alone
            NewMessage(message(6), ("$Label1",), None, None),
        ]
    )
    assert results[0] == 20 and isinstance(results[1], UidInUse) and results[2] == 21
    assert [(m.uid, m.flags) for m in folder.messages()][-2:] == [
        (20, {"\\Seen"}),
        (21, {"$Label1"}),
    ]


def test_another_servers_uidvalidity_only_for_a_folder_that_never_gave_out_a_uid(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, fsync=False)
    mailbox = store.mailbox(ALICE)
    mailbox.create_folder("Old")
    mailbox.adopt_uidvalidity("Old", 1234567)
    folder = mailbox.folder("Old")
    assert folder.uidvalidity == 1234567
    folder.append(message(1), uid=5)
    folder.reserve_uids(40)
    assert folder.uidnext == 40
    folder.reserve_uids(10)  # never lowered
    assert folder.uidnext == 40
    with pytest.raises(NotAllowed):
        mailbox.adopt_uidvalidity("Old", 7654321)
    inbox = mailbox.folder("INBOX")
    inbox.append(message(2))
    inbox.expunge([1])
    with pytest.raises(NotAllowed):  # empty again, but UID 1 was given out once
        mailbox.adopt_uidvalidity("INBOX", 7654321)
    # A folder made later gets a larger UIDVALIDITY than any handed out, adopted ones too.
    mailbox.adopt_uidvalidity("Sent", 4_000_000_000)
    mailbox.create_folder("New")
    assert mailbox.folder("New").uidvalidity > 4_000_000_000


def test_a_rebuilt_index_keeps_the_adopted_uidvalidity_the_uids_and_uidnext(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, fsync=False)
    mailbox = store.mailbox(ALICE)
    mailbox.adopt_uidvalidity("INBOX", 1234567)
    folder = mailbox.folder("INBOX")
    folder.append_many([NewMessage(message(n), (), None, n * 10) for n in (1, 2, 3)])
    folder.reserve_uids(100)
    path = folder.path
    del folder, mailbox
    store = Store(tmp_path, fsync=False)  # a fresh process: nothing in memory
    FolderIndex(path, fsync=False).discard()
    rebuilt = store.mailbox(ALICE).folder("INBOX")
    assert rebuilt.uidvalidity == 1234567 and rebuilt.uidnext == 100
    assert [m.uid for m in rebuilt.messages()] == [10, 20, 30]


def test_dovecot_shows_our_uids_in_an_exported_maildir(work_dir: Path) -> None:  # noqa: F811
    tmp_path = work_dir
    store = Store(tmp_path / "maildirs")
    for n in range(1, 6):
        store.deliver([ALICE], message(n))
    mailbox = store.mailbox(ALICE)
    inbox = mailbox.folder("INBOX")
    inbox.store_flags([2], ["\\Seen", "$Label1"], "add")
    inbox.expunge([3])  # a gap: Dovecot must not renumber
    mailbox.create_folder("Archive/2026")
    archive = mailbox.folder("Archive/2026")
    archive.append(message(9), flags=["\\Flagged"], uid=42)
    ours = {m.uid: m.flags for m in inbox.messages()}
    assert list(ours) == [1, 2, 4, 5]

    dest = tmp_path / "exported"
    summary = export_mailbox(store, ALICE, dest)

    assert summary.linked == 5 and summary.copied == 0
    assert {f.name: f.messages for f in summary.folders}["Archive/2026"] == 1
    listed = parse_uidlist((dest / "dovecot-uidlist").read_text())
    assert listed is not None and sorted(listed.uids.values()) == [1, 2, 4, 5]
    assert not list(dest.glob("mailsuite-*"))
    out = dovecot(
        tmp_path,
        dest,
        [
            "SELECT INBOX",
            "UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
            "SELECT Archive/2026",
            "UID FETCH 1:* (UID FLAGS)",
        ],
    )
    inbox_part, archive_part = out.split("Select completed", 2)[1:3]
    assert f"[UIDVALIDITY {inbox.uidvalidity}]" in out
    assert f"[UIDNEXT {inbox.uidnext}]" in out
    seen = {
        int(uid): subject
        for uid, subject in re.findall(r"UID (\d+) .*?\r\nSubject: (m\d)", inbox_part, re.S)
    }
    assert seen == {1: "m1", 2: "m2", 4: "m4", 5: "m5"}
    assert re.search(r"UID 2 FLAGS \(\\Seen \$Label1\)|FLAGS \(\\Seen \$Label1\) UID 2", out)
    assert f"[UIDVALIDITY {archive.uidvalidity}]" in out
    assert re.search(r"UID 42 FLAGS \(\\Flagged", archive_part)


def test_export_refuses_a_folder_that_holds_anything(tmp_path: Path) -> None:
    store = Store(tmp_path / "maildirs", fsync=False)
    store.deliver([ALICE], message(1))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export_mailbox(store, ALICE, tmp_path / "busy")
    with pytest.raises(ExportError, match="inside the store"):
        export_mailbox(store, ALICE, tmp_path / "maildirs" / "x")
    with pytest.raises(ExportError, match="no mailbox"):
        export_mailbox(store, "bob@example.org", tmp_path / "bob")
