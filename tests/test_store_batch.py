"""Group commit: `Store.prepare` + `Store.deliver_many` link a batch under one lock section."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mailsuite.store import Change, NoSuchFolder, Store
from mailsuite.store import maildir as layout

ALICE = "alice@example.org"
BOB = "bob@example.org"
TRAILER = b"-- end --\r\n"


def message(n: int, lines: int = 50) -> bytes:
    filler = b"".join(b"line %04d of message body text\r\n" % i for i in range(lines))
    return b"Subject: batch %d\r\n\r\n" % n + filler + TRAILER


def modseq(folder_dir: Path) -> int:
    conn = sqlite3.connect(folder_dir / layout.INDEX_FILE)
    try:
        return conn.execute("SELECT v FROM meta WHERE k = 'modseq'").fetchone()[0]
    finally:
        conn.close()


def test_a_batch_is_one_commit_per_folder_and_every_message_lands(tmp_path: Path) -> None:
    store = Store(tmp_path)
    alice = store.mailbox(ALICE).folder("INBOX")
    bob = store.mailbox(BOB).folder("INBOX")
    before = (modseq(alice.path), modseq(bob.path))
    batch = [store.prepare([ALICE], message(n)) for n in range(10)]
    batch.append(store.prepare([ALICE, BOB, ALICE.upper()], message(10)))
    # Written and fsynced in tmp/, but nobody sees them yet.
    assert len(os.listdir(alice.path / "tmp")) == 11
    assert os.listdir(alice.path / "new") == []
    assert alice.messages() == []

    results = store.deliver_many(batch)

    assert results[:10] == [{ALICE: uid} for uid in range(1, 11)]
    assert results[10] == {ALICE: 11, BOB: 1}
    assert (modseq(alice.path), modseq(bob.path)) == (before[0] + 1, before[1] + 1)
    assert os.listdir(alice.path / "tmp") == []
    assert [alice.read(uid) for uid in range(1, 12)] == [message(n) for n in range(11)]
    assert bob.read(1) == message(10)
    assert sorted(alice.recent()) == list(range(1, 12))
    # A second process's view agrees (the index was committed, not only memory changed).
    assert [m.uid for m in Store(tmp_path).mailbox(ALICE).folder("INBOX").messages()] == list(
        range(1, 12)
    )


def test_flags_and_folders_per_item(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.mailbox(ALICE).create_folder("Lists")
    batch = [
        store.prepare([ALICE], message(1), flags=["\\Seen", "$Label1"]),
        store.prepare([ALICE], message(2), folder="Lists", internal_date=1_000_000_000),
        store.prepare([], message(3)),
    ]
    assert store.deliver_many(batch) == [{ALICE: 1}, {ALICE: 1}, {}]
    inbox = store.mailbox(ALICE).folder("INBOX")
    lists = store.mailbox(ALICE).folder("Lists")
    assert inbox.messages()[0].flags == frozenset({"\\Seen", "$Label1"})
    assert os.listdir(inbox.path / "new") == []
    assert lists.messages()[0].internal_date == 1_000_000_000
    assert os.listdir(lists.path / "new") == [lists.messages()[0].key]


def test_one_failed_item_does_not_fail_the_others_and_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.mailbox(ALICE).create_folder("Lists")
    store.mailbox(BOB).create_folder("Lists")
    alice_lists = store.mailbox(ALICE).folder("Lists")
    alice_lists.messages()
    seen: list[Change] = []
    watch = store.watch(ALICE, "Lists", seen.append)

    good_before = store.prepare([ALICE], message(1), folder="Lists")
    lost_tmp = store.prepare([ALICE], message(2), folder="Lists")
    both = store.prepare([ALICE, BOB], message(3), folder="Lists")
    good_after = store.prepare([ALICE], message(4), folder="Lists")
    inbox = store.prepare([BOB], message(5))
    os.unlink(lost_tmp.tmp)  # its tmp file is gone (a crash cleaner, an operator)
    store.mailbox(BOB).delete_folder("Lists")  # one of this item's folders went away

    results = store.deliver_many([good_before, lost_tmp, both, good_after, inbox])

    assert isinstance(results[1], FileNotFoundError)
    assert isinstance(results[2], NoSuchFolder)
    assert results[0] == {ALICE: 1} and results[3] == {ALICE: 3} and results[4] == {BOB: 1}
    # The multi-recipient item was taken back from the folder it had reached.
    on_disk = sorted(os.listdir(alice_lists.path / "new") + os.listdir(alice_lists.path / "cur"))
    assert [alice_lists.read(m.uid) for m in alice_lists.messages()] == [message(1), message(4)]
    assert len(on_disk) == 2
    for sub in ("tmp", "new", "cur"):
        for name in os.listdir(alice_lists.path / sub):
            assert (alice_lists.path / sub / name).read_bytes() != message(3)
    assert os.listdir(alice_lists.path / "tmp") == []
    # Watchers heard only of what stayed.
    delivered = [u for c in seen if c.kind == "new" for u in c.uids]
    assert sorted(delivered) == [1, 3]
    assert all(c.kind == "new" for c in seen)
    watch.cancel()
    # A second process agrees, and the next delivery gets a fresh UID.
    again = Store(tmp_path).mailbox(ALICE).folder("Lists")
    assert [m.uid for m in again.messages()] == [1, 3]
    assert store.deliver([ALICE], message(6), folder="Lists") == {ALICE: 4}


def test_deliver_still_raises_for_its_one_message(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.mailbox(ALICE).create_folder("Gone")
    prepared = store.prepare([ALICE], message(1), folder="Gone")
    store.mailbox(ALICE).delete_folder("Gone")
    with pytest.raises(NoSuchFolder):
        store.deliver([ALICE], message(1), folder="Gone")
    assert isinstance(store.deliver_many([prepared])[0], NoSuchFolder)


def test_concurrent_batches_and_single_deliveries_keep_uids_dense(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.mailbox(ALICE)
    store.mailbox(BOB)
    errors: list[BaseException] = []
    per_thread = 60

    def batches(offset: int) -> None:
        try:
            for start in range(0, per_thread, 6):
                items = [
                    store.prepare([ALICE, BOB], message(offset + n))
                    for n in range(start, start + 6)
                ]
                for result in store.deliver_many(items):
                    assert isinstance(result, dict) and set(result) == {ALICE, BOB}
        except BaseException as exc:
            errors.append(exc)

    def singles(offset: int) -> None:
        try:
            for n in range(per_thread):
                store.deliver([ALICE], message(offset + n))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=batches, args=(k * 1000,)) for k in range(3)]
    threads += [threading.Thread(target=singles, args=(k * 1000,)) for k in range(3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors

    for address, expected in ((ALICE, 5 * per_thread), (BOB, 3 * per_thread)):
        folder = Store(tmp_path).mailbox(address).folder("INBOX")
        infos = folder.messages()
        assert [m.uid for m in infos] == list(range(1, expected + 1))
        names = os.listdir(folder.path / "new")
        assert sorted(names) == sorted(m.key for m in infos)
        assert os.listdir(folder.path / "tmp") == []
        bodies = {folder.read(m.uid) for m in infos}
        assert len(bodies) == expected


CRASHER = textwrap.dedent(
    """
    import sys
    from mailsuite.store import Store
    store = Store(sys.argv[1])
    n = 0
    while True:
        batch = []
        for _ in range(1 + n % 7):
            filler = b"".join(b"line %04d of message body text\\r\\n" % i for i in range(400))
            batch.append(store.prepare([sys.argv[2]], b"Subject: batch %d\\r\\n\\r\\n" % n
                                       + filler + b"-- end --\\r\\n"))
            n += 1
        for result in store.deliver_many(batch):
            print(result[sys.argv[2]], flush=True)
    """
)


def test_kill_9_mid_batch_leaves_only_whole_messages_and_keeps_acknowledged_ones(
    tmp_path: Path,
) -> None:
    root = tmp_path / "maildirs"
    Store(root).mailbox(ALICE)
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASHER, str(root), ALICE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        acknowledged: list[int] = []
        deadline = time.monotonic() + 30
        while len(acknowledged) < 40 * (round_ + 1) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.append(int(line))
        time.sleep(0.003 * round_)
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=10)
        acknowledged += [int(x) for x in rest.split()]
        assert len(acknowledged) >= 40, err.decode()

        folder = Store(root).mailbox(ALICE).folder("INBOX")
        infos = folder.messages()
        by_uid = {m.uid: m for m in infos}
        # Everything deliver_many reported is there, under the UID it reported.
        assert set(acknowledged) <= set(by_uid)
        # Every file a reader can see in new/ or cur/ is a whole message of its stated size.
        for sub in ("new", "cur"):
            for name in os.listdir(folder.path / sub):
                data = (folder.path / sub / name).read_bytes()
                assert data.endswith(TRAILER), name
                size = re.search(r",S=(\d+)", name)
                assert size is not None and int(size.group(1)) == len(data)
        # And every such file is indexed once, with unique UIDs.
        on_disk = os.listdir(folder.path / "new") + os.listdir(folder.path / "cur")
        assert sorted(n.partition(":")[0] for n in on_disk) == sorted(m.key for m in infos)
        assert len(by_uid) == len(infos)
