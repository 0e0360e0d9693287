"""The Maildir++ store on real files: delivery, flags, the index, folders and notices."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mailsuite.store import (
    Change,
    FolderExists,
    NoSuchFolder,
    NoSuchMessage,
    NotAllowed,
    Store,
)
from mailsuite.store.maildir import INDEX_FILE, JOURNAL_FILE, wire_from_key, wire_size

ALICE = "alice@example.org"
BOB = "bob@example.org"


def message(n: int, size: int = 0) -> bytes:
    head = f"From: a@example.net\r\nSubject: message {n}\r\n\r\n".encode()
    return head + b"x" * max(0, size - len(head)) + b"\r\n"


def files(folder_dir: Path) -> dict[str, list[str]]:
    return {sub: sorted(os.listdir(folder_dir / sub)) for sub in ("new", "cur", "tmp")}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "maildirs")


def test_new_mailbox_has_maildir_layout_and_special_use_folders(store, tmp_path):
    mailbox = store.mailbox("Alice@Example.ORG")
    root = tmp_path / "maildirs" / "example.org" / "alice"
    assert mailbox.path == root
    for sub in ("cur", "new", "tmp"):
        assert (root / sub).is_dir()
        assert (root / ".Sent" / sub).is_dir()
    assert (root / ".Sent" / "maildirfolder").is_file()
    infos = {f.name: f for f in mailbox.list_folders()}
    assert list(infos) == ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    assert infos["Sent"].special_use == "\\Sent"
    assert infos["Junk"].special_use == "\\Junk"
    assert infos["INBOX"].special_use is None
    assert all(f.subscribed for f in infos.values())


def test_everything_under_a_maildir_is_private_to_its_owner(store, tmp_path):
    store.deliver([ALICE], message(1))
    mailbox = store.mailbox(ALICE)
    mailbox.create_folder("Private")
    mailbox.subscribe("Private")
    mailbox.folder("Private").append(message(2))
    loose = [str(p) for p in mailbox.path.rglob("*") if p.stat().st_mode & 0o077]
    assert loose == []


def test_delivery_hard_links_one_file_into_every_recipient(store, tmp_path):
    data = message(1, 10_000)
    uids = store.deliver([ALICE, BOB, "ALICE@example.org"], data)
    assert uids == {ALICE: 1, BOB: 1}
    a = tmp_path / "maildirs/example.org/alice"
    b = tmp_path / "maildirs/example.org/bob"
    (name,) = os.listdir(a / "new")
    assert os.listdir(b / "new") == [name]
    assert os.stat(a / "new" / name).st_ino == os.stat(b / "new" / name).st_ino
    assert name.endswith(f",S={len(data)},W={wire_size(data)}")  # as Dovecot names it
    assert os.listdir(a / "tmp") == []
    folder = store.mailbox(ALICE).folder("INBOX")
    (info,) = folder.messages()
    assert (info.uid, info.key, info.size, info.flags) == (1, name, len(data), frozenset())
    assert folder.read(1) == data


def test_delivery_with_flags_goes_to_cur_with_info_letters(store, tmp_path):
    when = 1_700_000_000.0
    store.deliver([ALICE], message(1), folder="Sent", flags=["\\Seen", "$Sent"], internal_date=when)
    folder = store.mailbox(ALICE).folder("Sent")
    (name,) = os.listdir(folder.path / "cur")
    assert name.endswith(":2,Sa")  # keywords get Dovecot's letters
    assert (folder.path / "dovecot-keywords").read_text() == "0 $Sent\n"
    (info,) = folder.messages()
    assert info.flags == {"\\Seen", "$Sent"}
    assert info.internal_date == when
    assert os.stat(folder.path / "cur" / name).st_mtime == when


def test_failed_recipient_leaves_no_half_delivery(store, tmp_path):
    """The second of three recipients fails after the first has its copy: nobody keeps one."""
    store.mailbox(ALICE)
    carol = store.mailbox("carol@example.org")
    carol_inbox = carol.folder("INBOX")  # opened, so delivery reaches the broken directory
    os.rename(carol.path / "new", carol.path / "new.saved")
    (carol.path / "new").write_bytes(b"not a directory")
    with pytest.raises(NotADirectoryError):
        store.deliver([ALICE, "carol@example.org", BOB], message(1))
    (carol.path / "new").unlink()
    os.rename(carol.path / "new.saved", carol.path / "new")
    for address in (ALICE, BOB, "carol@example.org"):
        folder = store.mailbox(address).folder("INBOX")
        assert folder.messages() == []
        assert files(folder.path) == {"new": [], "cur": [], "tmp": []}
    assert carol_inbox.messages() == []
    assert store.deliver([ALICE], message(2)) == {ALICE: 2}  # UID 1 stays burnt


def test_delivery_across_filesystems_copies(tmp_path):
    """A recipient whose Maildir sits on another filesystem gets a copy, not a link."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.fail("this test needs /dev/shm on a filesystem of its own")
    store = Store(tmp_path / "maildirs")
    elsewhere = Path(tempfile.mkdtemp(dir=shm))
    try:
        (tmp_path / "maildirs" / "other.org").symlink_to(elsewhere, target_is_directory=True)
        data = message(1, 5000)
        assert store.deliver([ALICE, "dave@other.org"], data) == {ALICE: 1, "dave@other.org": 1}
        dave = store.mailbox("dave@other.org").folder("INBOX")
        assert dave.read(1) == data
        (name,) = os.listdir(dave.path / "new")
        assert os.stat(dave.path / "new" / name).st_dev != os.stat(tmp_path).st_dev
        assert files(dave.path)["tmp"] == []
    finally:
        shutil.rmtree(elsewhere)


def test_flag_changes_rename_the_file_but_keep_uid_and_key(store):
    store.deliver([ALICE], message(1))
    folder = store.mailbox(ALICE).folder("INBOX")
    key = folder.messages()[0].key
    (info,) = folder.store_flags([1], ["\\Seen", "\\Flagged"], "add")
    assert info.flags == {"\\Seen", "\\Flagged"}
    assert files(folder.path)["cur"] == [f"{key}:2,FS"]
    folder.store_flags([1], ["\\Flagged"], "remove")
    folder.store_flags([1], ["\\Answered", "\\Deleted", "\\Draft", "Work"], "add")
    assert files(folder.path)["cur"] == [f"{key}:2,DRSTa"]
    (info,) = folder.store_flags([1], ["Home"], "replace")
    assert (info.uid, info.key, info.flags) == (1, key, {"Home"})
    assert files(folder.path)["cur"] == [f"{key}:2,b"]
    folder.store_flags([1], ["Home"], "remove")
    assert files(folder.path)["cur"] == [f"{key}:2,"]
    assert (folder.path / "dovecot-keywords").read_text() == "0 Work\n1 Home\n"
    (info,) = folder.store_flags([1], ["Home"], "add")
    fresh = Store(folder.path.parent.parent, fsync=False)
    (again,) = fresh.mailbox(ALICE).folder("INBOX").messages()
    assert again == info


def test_store_flags_skips_unknown_uids_and_rejects_bad_mode(store):
    store.deliver([ALICE], message(1))
    folder = store.mailbox(ALICE).folder("INBOX")
    assert [m.uid for m in folder.store_flags([1, 7], ["\\Seen"], "add")] == [1]
    with pytest.raises(ValueError):
        folder.store_flags([1], ["\\Seen"], "toggle")


def test_uids_never_go_down_nor_get_reused(store):
    folder = store.mailbox(ALICE).folder("INBOX")
    for n in range(5):
        folder.append(message(n))
    assert folder.expunge([4, 5, 99]) == [4, 5]
    assert folder.append(message(9)) == 6
    assert folder.uidnext == 7
    assert [m.uid for m in folder.messages()] == [1, 2, 3, 6]


def test_index_deleted_is_rebuilt_with_same_uids_and_uidvalidity(store, tmp_path):
    folder = store.mailbox(ALICE).folder("INBOX")
    for n in range(6):
        folder.append(message(n), flags=["\\Seen"] if n % 2 else [])
    folder.expunge([2, 3])
    folder.store_flags([5], ["\\Flagged", "$Important"], "add")
    folder.store_flags([6], ["Work"], "add")
    before, validity = folder.messages(), folder.uidvalidity
    del folder
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.mailbox(ALICE).path / INDEX_FILE}{suffix}").unlink(missing_ok=True)
    other = Store(tmp_path / "maildirs")
    again = other.mailbox(ALICE).folder("INBOX")
    assert again.uidvalidity == validity
    # keywords come back from Dovecot's letters; modseqs start again above the old ones
    assert [m[:5] for m in again.messages()] == [m[:5] for m in before]
    assert again.uidnext == 7
    assert again.append(message(7)) == 7


def _garbage(index: Path) -> None:
    index.write_bytes(b"this is not an SQLite database at all" * 200)


def _truncated(index: Path) -> None:
    with open(index, "r+b") as f:
        f.truncate(os.path.getsize(index) // 2)


def _future_version(index: Path) -> None:
    with sqlite3.connect(index) as conn:
        conn.execute("PRAGMA user_version = 99")


def _meta_lost(index: Path) -> None:
    with sqlite3.connect(index) as conn:
        conn.execute("DELETE FROM meta")


def _page_scribbled(index: Path) -> None:
    with open(index, "r+b") as f:
        f.seek(4096 + 100)
        f.write(b"\xff" * 2000)


@pytest.mark.parametrize(
    "damage", [_garbage, _truncated, _future_version, _meta_lost, _page_scribbled]
)
def test_damaged_index_is_rebuilt_with_the_same_uids(tmp_path, damage):
    root = tmp_path / "maildirs"
    store = Store(root)
    folder = store.mailbox(ALICE).folder("INBOX")
    for n in range(300):
        folder.append(message(n, 300), flags=["\\Seen"] if n % 3 else [])
    folder.expunge([1, 2])
    validity = folder.uidvalidity
    expected = [(m.uid, m.key, m.flags) for m in folder.messages()]
    index = folder.path / INDEX_FILE
    del store, folder
    gc.collect()  # closes the connection, which checkpoints the WAL into the file
    assert not Path(f"{index}-wal").exists()
    damage(index)
    again = Store(root).mailbox(ALICE).folder("INBOX")
    assert [(m.uid, m.key, m.flags) for m in again.messages()] == expected
    assert again.uidvalidity == validity
    assert again.read(300) == message(299, 300)
    assert again.append(message(300)) == 301


def test_index_and_journal_lost_gives_new_uidvalidity(store, tmp_path):
    folder = store.mailbox(ALICE).folder("INBOX")
    folder.append(message(1))
    validity = folder.uidvalidity
    del folder
    path = store.mailbox(ALICE).path
    for name in (INDEX_FILE, INDEX_FILE + "-wal", INDEX_FILE + "-shm", JOURNAL_FILE):
        (path / name).unlink(missing_ok=True)
    again = Store(tmp_path / "maildirs").mailbox(ALICE).folder("INBOX")
    assert again.uidvalidity > validity
    assert [m.uid for m in again.messages()] == [1]


def test_uidvalidity_is_stable_and_grows_for_a_recreated_name(store, tmp_path):
    mailbox = store.mailbox(ALICE)
    mailbox.create_folder("Project")
    first = mailbox.folder("Project").uidvalidity
    assert Store(tmp_path / "maildirs").mailbox(ALICE).folder("Project").uidvalidity == first
    mailbox.delete_folder("Project")
    mailbox.create_folder("Project")
    assert mailbox.folder("Project").uidvalidity > first


def test_files_added_by_other_maildir_software_are_picked_up(store):
    folder = store.mailbox(ALICE).folder("INBOX")
    folder.append(message(1))
    assert [m.uid for m in folder.messages()] == [1]
    assert folder.sync() == []
    (folder.path / "new" / "1700000000.outside.host").write_bytes(b"Subject: x\r\n\r\n")
    (folder.path / "cur" / "1700000001.outside.host,S=3:2,RS").write_bytes(b"abc")
    changes = folder.sync()
    assert changes == [Change("new", "INBOX", (2, 3))]
    by_uid = {m.uid: m for m in folder.messages()}
    assert by_uid[2].key == "1700000000.outside.host" and by_uid[2].size == 14
    assert by_uid[3].flags == {"\\Answered", "\\Seen"} and by_uid[3].size == 3
    os.rename(
        folder.path / "cur" / "1700000001.outside.host,S=3:2,RS",
        folder.path / "cur" / "1700000001.outside.host,S=3:2,S",
    )
    os.unlink(folder.path / "new" / "1700000000.outside.host")
    assert folder.sync() == [Change("expunge", "INBOX", (2,)), Change("flags", "INBOX", (3,))]


def test_claim_recent_gives_each_message_to_one_claim_and_writes_nothing(store):
    """Every message added since the folder was opened is \\Recent, the one delivered with
    flags straight into cur/ too (RFC 3501 2.3.2: new to the mailbox); one claim takes them
    all, and neither the claim nor the look before it changes a file or the index."""
    store.deliver([ALICE], message(1))
    store.deliver([ALICE], message(2), flags=["\\Seen"])
    folder = store.mailbox(ALICE).folder("INBOX")
    before = files(folder.path)
    index = sqlite3.connect(folder.path / INDEX_FILE)
    version = index.execute("PRAGMA data_version").fetchone()[0]
    assert folder.status().recent == 2
    assert folder.recent() == {1, 2}
    assert folder.claim_recent() == {1, 2}
    assert folder.claim_recent() == set()
    assert folder.status().recent == 0
    assert folder.recent() == set()
    assert files(folder.path) == before  # new/ stays new/: a claim is not a read by a user
    assert index.execute("PRAGMA data_version").fetchone()[0] == version  # no commit at all
    store.deliver([ALICE], message(3))
    assert folder.recent() == {3}
    assert folder.claim_recent() == {3}
    assert folder.read(1) == message(1)
    other = store.mailbox(ALICE).folder("Trash")
    assert folder.copy([2], other) == [(2, 1)]
    assert other.recent() == {1}  # a copy is new to its folder (RFC 3501 6.4.7)


def test_recent_is_per_process_and_a_new_process_starts_from_new(store, tmp_path):
    """\\Recent lives in memory: another process (or this one started again) counts as
    new only what is still in new/, whatever this one claimed; a rebuilt index the same."""
    store.deliver([ALICE], message(1), flags=["\\Seen"])
    store.deliver([ALICE], message(2))
    store.deliver([ALICE], message(3))
    folder = store.mailbox(ALICE).folder("INBOX")
    assert folder.claim_recent() == {1, 2, 3}
    assert Store(tmp_path / "maildirs").mailbox(ALICE).folder("INBOX").recent() == {2, 3}
    (folder.path / INDEX_FILE).unlink()
    rebuilt = Store(tmp_path / "maildirs").mailbox(ALICE).folder("INBOX")
    assert rebuilt.recent() == {2, 3}
    assert rebuilt.claim_recent() == {2, 3}
    assert rebuilt.recent() == set()


def test_recent_marks_outlive_the_folder_object_and_not_the_folder(store):
    """The store keeps the marks, so a Folder object it let go of and opened again does not
    hand out \\Recent twice; a folder deleted and made again under the name starts afresh."""
    mailbox = store.mailbox(ALICE)
    mailbox.create_folder("Lists")
    lists = mailbox.folder("Lists")
    lists.append(message(1))
    assert lists.claim_recent() == {1}
    del lists
    for _ in range(40):  # more than the store keeps open
        mailbox.create_folder(f"Other{_}")
        mailbox.folder(f"Other{_}")
    gc.collect()
    assert mailbox.folder("Lists").claim_recent() == set()
    mailbox.delete_folder("Lists")
    mailbox.create_folder("Lists")
    again = mailbox.folder("Lists")
    again.append(message(2))
    assert again.claim_recent() == {1}


def test_status_counts_without_loading(store, tmp_path):
    for n in range(4):
        store.deliver([ALICE], message(n, 100), flags=["\\Seen"] if n == 0 else [])
    fresh = Store(tmp_path / "maildirs")
    status = fresh.mailbox(ALICE).folder("INBOX").status()
    assert status.messages == 4
    # a new process: only what is in new/ is \\Recent (the first went to cur/ with \\Seen)
    assert status.recent == 3
    assert status.unseen == 3
    assert status.size == 4 * len(message(0, 100))
    assert status.uidnext == 5


def test_copy_move_expunge(store):
    mailbox = store.mailbox(ALICE)
    inbox, archive = mailbox.folder("INBOX"), mailbox.folder("Archive")
    for n in range(3):
        inbox.append(message(n), flags=["\\Seen", "Work"] if n == 1 else [])
    assert inbox.copy([1, 2, 42], archive) == [(1, 1), (2, 2)]
    assert archive.read(2) == message(1)
    assert archive.get(2).flags == {"\\Seen", "Work"}
    assert archive.get(1).key != inbox.get(1).key
    # APPEND writes the wire size into the name; a copy, under a new key, keeps it
    assert wire_from_key(archive.get(2).key) == wire_from_key(inbox.get(2).key)
    assert wire_from_key(archive.get(2).key) == wire_size(message(1))
    assert inbox.move([2, 3], archive) == [(2, 3), (3, 4)]
    assert [m.uid for m in inbox.messages()] == [1]
    assert [m.uid for m in archive.messages()] == [1, 2, 3, 4]
    assert archive.expunge([1, 3]) == [1, 3]
    assert [m.uid for m in archive.messages()] == [2, 4]
    with pytest.raises(NoSuchMessage):
        archive.read(3)
    assert sum(len(v) for v in files(archive.path).values()) == 2


def test_cache_blobs_live_and_die_with_the_message(store):
    folder = store.mailbox(ALICE).folder("INBOX")
    folder.append(message(1))
    assert folder.cache_get(1, "envelope") is None
    folder.cache_put(1, "envelope", b"(NIL NIL)")
    folder.cache_put(9, "envelope", b"ghost")
    assert folder.cache_get(1, "envelope") == b"(NIL NIL)"
    assert folder.cache_get(9, "envelope") is None
    folder.expunge([1])
    assert folder.cache_get(1, "envelope") is None


def test_folders_create_rename_delete(store):
    mailbox = store.mailbox(ALICE)
    mailbox.create_folder("Projekty/Żółw")
    assert (mailbox.path / ".Projekty.&AXsA8wFC-w").is_dir()
    with pytest.raises(FolderExists):
        mailbox.create_folder("Projekty/Żółw")
    mailbox.create_folder("Projekty")
    mailbox.subscribe("Projekty/Żółw")
    mailbox.folder("Projekty/Żółw").append(message(1))
    mailbox.rename_folder("Projekty", "Old/Projects")
    names = [f.name for f in mailbox.list_folders()]
    assert "Old/Projects" in names and "Old/Projects/Żółw" in names
    assert "Projekty" not in names
    assert "Old/Projects/Żółw" in mailbox.subscriptions()
    assert mailbox.folder("Old/Projects/Żółw").read(1) == message(1)
    with pytest.raises(NoSuchFolder):
        mailbox.folder("Projekty")
    with pytest.raises(NotAllowed):
        mailbox.rename_folder("Old", "Old/Inner")
    with pytest.raises(FolderExists):
        mailbox.rename_folder("Old/Projects", "Sent")
    with pytest.raises(NotAllowed):
        mailbox.delete_folder("inbox")
    mailbox.delete_folder("Old/Projects")
    names = [f.name for f in mailbox.list_folders()]
    assert "Old/Projects" not in names and "Old/Projects/Żółw" in names
    with pytest.raises(NoSuchFolder):
        mailbox.delete_folder("Old/Projects")
    mailbox.unsubscribe("Old/Projects/Żółw")
    assert "Old/Projects/Żółw" not in mailbox.subscriptions()


def test_a_deleted_folder_object_refuses_further_use(store):
    mailbox = store.mailbox(ALICE)
    mailbox.create_folder("Temp")
    folder = mailbox.folder("Temp")
    mailbox.delete_folder("Temp")
    with pytest.raises(NoSuchFolder):
        folder.append(message(1))
    mailbox.create_folder("Temp")
    assert mailbox.folder("Temp") is not folder


def test_renaming_inbox_moves_its_messages_and_leaves_it_empty(store):
    mailbox = store.mailbox(ALICE)
    store.deliver([ALICE], message(1))
    store.deliver([ALICE], message(2), flags=["\\Seen"])
    mailbox.rename_folder("INBOX", "Old Inbox")
    assert mailbox.folder("INBOX").messages() == []
    moved = mailbox.folder("Old Inbox").messages()
    assert [mailbox.folder("Old Inbox").read(m.uid) for m in moved] == [message(1), message(2)]
    assert moved[1].flags == {"\\Seen"}
    assert store.deliver([ALICE], message(3)) == {ALICE: 3}


def test_purge_deletes_the_maildir(store):
    store.deliver([ALICE, BOB], message(1))
    path = store.mailbox(ALICE).path
    assert store.purge(ALICE) is True
    assert not path.exists()
    assert store.purge(ALICE) is False
    assert store.mailbox(BOB).folder("INBOX").read(1) == message(1)
    assert [d.name for d in path.parent.iterdir()] == ["bob"]


def test_watchers_hear_of_every_in_process_change(store):
    mailbox = store.mailbox(ALICE)
    heard: list[Change] = []
    watch = store.watch(ALICE, "inbox", heard.append)
    other: list[Change] = []
    store.watch(ALICE, "Archive", other.append)
    store.deliver([ALICE], message(1))
    inbox = mailbox.folder("INBOX")
    inbox.append(message(2))
    inbox.store_flags([1], ["\\Seen"], "add")
    inbox.claim_recent()
    inbox.copy([1], mailbox.folder("Archive"))
    inbox.move([2], mailbox.folder("Archive"))
    inbox.expunge([1])
    assert heard == [
        Change("new", "INBOX", (1,)),
        Change("new", "INBOX", (2,)),
        Change("flags", "INBOX", (1,)),  # the claim is no change: \\Recent is a session's
        Change("expunge", "INBOX", (2,)),
        Change("expunge", "INBOX", (1,)),
    ]
    assert other == [Change("new", "Archive", (1,)), Change("new", "Archive", (2,))]
    watch.cancel()
    store.deliver([ALICE], message(3))
    assert len(heard) == 5


def test_changes_by_another_store_reach_watchers_through_sync(store, tmp_path):
    heard: list[Change] = []
    store.watch(ALICE, "INBOX", heard.append)
    other = Store(tmp_path / "maildirs")
    other.deliver([ALICE], message(1))
    other.mailbox(ALICE).folder("INBOX").store_flags([1], ["\\Seen"], "add")
    assert heard == []
    assert store.sync_watched() == 1
    assert heard == [Change("new", "INBOX", (1,))]
    folder = store.mailbox(ALICE).folder("INBOX")
    assert folder.get(1).flags == {"\\Seen"}
    other.mailbox(ALICE).folder("INBOX").expunge([1])
    assert folder.sync() == [Change("expunge", "INBOX", (1,))]
    assert heard[-1] == Change("expunge", "INBOX", (1,))


async def test_notices_arrive_on_the_attached_loop(store):
    loop = asyncio.get_running_loop()
    store.attach_loop(loop)
    got: asyncio.Queue[tuple[Change, bool]] = asyncio.Queue()

    def callback(change: Change) -> None:
        got.put_nowait((change, asyncio.get_running_loop() is loop))

    store.watch(ALICE, "INBOX", callback)
    await loop.run_in_executor(None, lambda: store.deliver([ALICE], message(1)))
    change, on_loop = await asyncio.wait_for(got.get(), 5)
    assert change == Change("new", "INBOX", (1,))
    assert on_loop


def test_tmp_leftovers_are_never_messages_and_go_after_36_hours(store, tmp_path):
    folder = store.mailbox(ALICE).folder("INBOX")
    folder.append(message(1))
    tmp = folder.path / "tmp"
    (tmp / "1700000000.M1P1Q1.crashed,S=5").write_bytes(b"half-")
    (tmp / "1700000000.M1P1Q2.writing,S=5").write_bytes(b"fresh")
    old = time.time() - 37 * 3600
    os.utime(tmp / "1700000000.M1P1Q1.crashed,S=5", (old, old))
    folder.sync()
    assert [m.uid for m in folder.messages()] == [1]
    again = Store(tmp_path / "maildirs").mailbox(ALICE).folder("INBOX")
    assert [m.uid for m in again.messages()] == [1]
    assert sorted(os.listdir(tmp)) == ["1700000000.M1P1Q2.writing,S=5"]


def test_sessions_share_one_folder_object(store):
    """Every lookup of a folder, from any thread, gives the same object (INBOX in any case)."""
    store.deliver([ALICE], message(1))
    found: list[object] = []
    threads = [
        threading.Thread(
            target=lambda n=n: found.append(store.mailbox(ALICE).folder(("INBOX", "inbox")[n % 2]))
        )
        for n in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(f) for f in found}) == 1
    assert store.mailbox("ALICE@example.org").folder("Inbox") is found[0]


def test_unknown_folder_raises(store):
    with pytest.raises(NoSuchFolder):
        store.mailbox(ALICE).folder("Nope")
    with pytest.raises(NoSuchFolder):
        store.deliver([ALICE], message(1), folder="Nope")


def test_uid_journal_is_compacted_and_still_keeps_uids(tmp_path):
    store = Store(tmp_path / "maildirs", fsync=False)
    folder = store.mailbox(ALICE).folder("INBOX")
    for n in range(1200):
        folder.append(message(n))
    folder.expunge(range(1, 1101))
    journal = (folder.path / JOURNAL_FILE).read_text().splitlines()
    assert len(journal) == 1 + 100  # header and the live messages
    assert journal[0].endswith(" N1201")
    expected = folder.messages()
    del store, folder
    gc.collect()
    path = tmp_path / "maildirs/example.org/alice"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path / INDEX_FILE}{suffix}").unlink(missing_ok=True)
    again = Store(tmp_path / "maildirs").mailbox(ALICE).folder("INBOX")
    assert [m[:5] for m in again.messages()] == [m[:5] for m in expected]
    assert again.append(message(0)) == 1201
