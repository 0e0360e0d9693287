"""Building a folder's index from its files: what the first open of an unindexed Maildir
finds, and that the running totals and later changes stay right after it."""

from __future__ import annotations

import os
import time

from mailsuite.store import Store
from mailsuite.store import maildir as layout

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
