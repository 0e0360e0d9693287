"""Building a folder's index from its files: what the first open of an unindexed Maildir
finds, and that the running totals and later changes stay right after it."""

from __future__ import annotations

import os
import threading
import time

import pytest

from mailsuite.store import Store, StoreError
from mailsuite.store import maildir as layout
from mailsuite.store.scans import ScanInterrupted, Scans

USER = "scan@example.org"


def _write(path, data: bytes, mtime: float) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def test_first_open_indexes_what_the_names_say(tmp_path):
    store = Store(tmp_path, fsync=False)
    inbox_dir = store.mailbox(USER).path
    base = time.time() - 1000
    # sizes from S= even where the file disagrees (the name is what Dovecot trusts too),
    # with W= before or after it; a name without S= is measured
    _write(inbox_dir / "cur" / "100.M1P1.host,S=5,W=7:2,S", b"12345", base + 1)
    _write(inbox_dir / "cur" / "101.M1P1.host,W=9,S=8:2,FS", b"x" * 3, base + 2)
    _write(inbox_dir / "new" / "102.M1P1.host", b"abcdef", base + 3)
    # a stale new/ copy of a message already in cur/ is the same message
    _write(inbox_dir / "new" / "100.M1P1.host,S=5,W=7", b"12345", base + 1)
    # not messages: hidden, with a space, too long, non-ASCII
    for name in (".hidden", "a b", "x" * 241, "caf\u00e9"):
        _write(inbox_dir / "cur" / name, b"junk", base)
    folder = store.mailbox(USER).folder("INBOX")
    listed = [(m.uid, m.key, m.size, sorted(m.flags)) for m in folder.messages()]
    assert listed == [
        (1, "100.M1P1.host,S=5,W=7", 5, ["\\Seen"]),
        (2, "101.M1P1.host,W=9,S=8", 8, ["\\Flagged", "\\Seen"]),
        (3, "102.M1P1.host", 6, []),
    ]
    # internal dates are the files' mtimes; UIDs follow them
    assert [round(m.internal_date) for m in folder.messages()] == [
        round(base + 1),
        round(base + 2),
        round(base + 3),
    ]
    assert folder.usage() == (3, 19)
    status = folder.status()
    assert (status.messages, status.unseen, status.size) == (3, 1, 19)


def test_totals_stay_right_after_a_rebuild(tmp_path):
    store = Store(tmp_path, fsync=False)
    folder_dir = store.mailbox(USER).path
    for n in range(50):
        key = layout.unique_key(10, now=time.time() - 100 + n)
        _write(folder_dir / "cur" / layout.file_name(key, "S"), b"0123456789", time.time())
    folder = store.mailbox(USER).folder("INBOX")
    assert folder.usage() == (50, 500)
    # the per-row trigger is back after the rebuild: later changes keep the totals
    extra = b"Subject: x\r\n\r\nbody\r\n"
    folder.append(extra)
    assert folder.usage() == (51, 500 + len(extra))
    folder.expunge([m.uid for m in folder.messages()][:10])
    assert folder.usage() == (41, 400 + len(extra))
    fresh = Store(tmp_path, fsync=False).mailbox(USER).folder("INBOX")
    assert fresh.usage() == (41, 400 + len(extra))


def _unindexed(tmp_path, count: int) -> Store:
    store = Store(tmp_path, fsync=False)
    folder_dir = store.mailbox(USER).path
    now = time.time() - count
    for n in range(count):
        key = layout.unique_key(10, now=now + n)
        _write(folder_dir / "cur" / layout.file_name(key, "S"), b"0123456789", now + n)
    for name in os.listdir(folder_dir):
        if name.startswith((layout.INDEX_FILE, layout.JOURNAL_FILE)):
            os.unlink(folder_dir / name)
    return store


def test_a_stopping_store_builds_no_index_and_the_next_start_does(tmp_path):
    _unindexed(tmp_path, 2000)
    stopping = Store(tmp_path, fsync=False)
    stopping.interrupt_scans()
    t0 = time.monotonic()
    with pytest.raises(StoreError):
        stopping.mailbox(USER).folder("INBOX")
    assert time.monotonic() - t0 < 1.0
    # nothing half-built was kept: no UIDVALIDITY, no UIDs given out
    assert not (tmp_path / "example.org" / "scan" / layout.JOURNAL_FILE).exists()
    folder = Store(tmp_path, fsync=False).mailbox(USER).folder("INBOX")
    assert [m.uid for m in folder.messages()] == list(range(1, 2001))
    assert folder.usage() == (2000, 20000)


def test_builds_take_turns_and_a_waiting_one_stops_at_shutdown():
    scans = Scans(limit=2)
    inside, most = 0, 0
    lock = threading.Lock()
    release = threading.Event()
    errors: list[BaseException] = []

    def build() -> None:
        nonlocal inside, most
        try:
            with scans.turn():
                with lock:
                    inside += 1
                    most = max(most, inside)
                release.wait(5)
                with lock:
                    inside -= 1
        except StoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert most == 2  # two at a time, the other three wait
    scans.interrupt()
    t0 = time.monotonic()
    release.set()
    for t in threads:
        t.join(5)
    assert time.monotonic() - t0 < 1.0
    assert most == 2
    # the two running finished; the three waiting gave up instead of starting
    assert len(errors) == 3 and all(isinstance(e, ScanInterrupted) for e in errors)
