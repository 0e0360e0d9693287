"""Several writers on one Maildir at once: threads of one process and a second process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from mailsuite.store import Change, Store

ALICE = "alice@example.org"
BOB = "bob@example.org"
PER_WRITER = 40

WRITER = textwrap.dedent(
    """
    import sys
    from mailsuite.store import Store
    store = Store(sys.argv[1])
    inbox = store.mailbox(sys.argv[2]).folder("INBOX")
    for n in range(int(sys.argv[3])):
        store.deliver([sys.argv[2], sys.argv[4]], b"Subject: from process %d\\r\\n\\r\\n" % n)
        if n % 5 == 0:
            inbox.store_flags([m.uid for m in inbox.messages()[-3:]], ["\\\\Seen"], "add")
            inbox.sync()
    """
)


def start_writer(root: Path, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), ALICE, str(count), BOB],
        stderr=subprocess.PIPE,
    )


def check_consistent(root: Path, address: str, expected: int) -> None:
    """Every file is indexed once, UIDs are dense and unique, tmp/ is empty, and an
    independent reader agrees."""
    folder = Store(root).mailbox(address).folder("INBOX")
    infos = folder.messages()
    assert len(infos) == expected
    assert [m.uid for m in infos] == list(range(1, expected + 1))
    assert len({m.key for m in infos}) == expected
    on_disk = os.listdir(folder.path / "new") + os.listdir(folder.path / "cur")
    assert sorted(n.partition(":")[0] for n in on_disk) == sorted(m.key for m in infos)
    assert os.listdir(folder.path / "tmp") == []
    assert folder.uidnext == expected + 1
    for info in infos[:: max(1, expected // 10)]:
        assert folder.read(info.uid).startswith(b"Subject: from ")


def test_threads_and_a_second_process_deliver_to_the_same_maildirs(tmp_path):
    root = tmp_path / "maildirs"
    store = Store(root)
    store.mailbox(ALICE)
    store.mailbox(BOB)
    heard: list[Change] = []
    store.watch(ALICE, "INBOX", heard.append)
    process = start_writer(root, PER_WRITER)
    errors: list[BaseException] = []

    def deliver(worker: int) -> None:
        try:
            inbox = store.mailbox(ALICE).folder("INBOX")
            for n in range(PER_WRITER):
                data = b"Subject: from thread %d message %d\r\n\r\n" % (worker, n)
                store.deliver([ALICE, BOB], data)
                if n % 7 == 0:
                    inbox.store_flags([m.uid for m in inbox.messages()[:5]], ["\\Flagged"], "add")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr.decode()
    assert errors == []
    total = PER_WRITER * 5
    check_consistent(root, ALICE, total)
    check_consistent(root, BOB, total)
    store.sync_watched()
    announced = [uid for change in heard if change.kind == "new" for uid in change.uids]
    assert sorted(announced) == list(range(1, total + 1))


def test_two_processes_expunging_and_flagging_do_not_lose_messages(tmp_path):
    root = tmp_path / "maildirs"
    store = Store(root, fsync=False)
    for n in range(60):
        store.deliver([ALICE], b"Subject: from setup %d\r\n\r\n" % n)
    inbox = store.mailbox(ALICE).folder("INBOX")
    process = start_writer(root, 30)
    for uid in range(1, 61, 2):
        inbox.store_flags([uid], ["\\Deleted"], "add")
        inbox.expunge([uid - 1] if uid > 1 else [])
        inbox.claim_recent()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr.decode()
    inbox.sync()
    uids = [m.uid for m in inbox.messages()]
    expunged = set(range(2, 60, 2))
    assert uids == [u for u in range(1, 91) if u not in expunged]
    assert all("\\Deleted" in inbox.get(u).flags for u in range(1, 61, 2))
    fresh = Store(root).mailbox(ALICE).folder("INBOX")
    assert fresh.messages() == inbox.messages()


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from mailsuite.store import Store
    store = Store(sys.argv[1], fsync=False)
    inbox = store.mailbox(sys.argv[2]).folder("INBOX")
    n = 0
    print("ready", flush=True)
    while True:
        store.deliver([sys.argv[2]], b"Subject: from process %d\\r\\n\\r\\n" % n)
        inbox.store_flags([n + 1], ["\\\\Seen"], "add")
        n += 1
    """
)


def test_a_writer_killed_mid_delivery_leaves_a_consistent_maildir(tmp_path):
    """SIGKILL at an arbitrary point: whatever reached new/ or cur/ is a message with one
    UID, whatever stayed in tmp/ is not, and the index agrees with the files."""
    root = tmp_path / "maildirs"
    Store(root).mailbox(ALICE)
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root), ALICE], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    time.sleep(0.7)
    process.kill()
    process.wait()
    folder = Store(root).mailbox(ALICE).folder("INBOX")
    infos = folder.messages()
    assert len(infos) > 5
    on_disk = os.listdir(folder.path / "new") + os.listdir(folder.path / "cur")
    assert sorted(n.partition(":")[0] for n in on_disk) == sorted(m.key for m in infos)
    assert len({m.uid for m in infos}) == len(infos)
    # A kill between the link and the removal of the tmp name leaves a second name of a
    # delivered message in tmp/: the same file, never indexed as a message of its own.
    by_key = {m.key: m for m in infos}
    for name in os.listdir(folder.path / "tmp"):
        info = by_key.get(name.partition(":")[0])
        if info is not None:
            assert (folder.path / "tmp" / name).read_bytes() == folder.read(info.uid)
    for info in infos:
        assert folder.read(info.uid).startswith(b"Subject: from process ")


def test_an_index_rebuilt_by_another_process_is_followed(tmp_path):
    root = tmp_path / "maildirs"
    first = Store(root)
    for n in range(3):
        first.deliver([ALICE], b"Subject: from setup %d\r\n\r\n" % n)
    folder = first.mailbox(ALICE).folder("INBOX")
    before = folder.messages()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{folder.path / 'mailsuite-index.sqlite'}{suffix}").unlink(missing_ok=True)
    second = Store(root)
    assert second.deliver([ALICE], b"Subject: from process 9\r\n\r\n") == {ALICE: 4}
    assert folder.sync() == [Change("new", "INBOX", (4,))]
    assert [m[:5] for m in folder.messages()[:3]] == [m[:5] for m in before]
    assert folder.append(b"Subject: from thread 1\r\n\r\n") == 5
    assert [m.uid for m in second.mailbox(ALICE).folder("INBOX").messages()] == [1, 2, 3, 4, 5]
