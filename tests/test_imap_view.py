"""A session's view of its folder: shared listings, its own changes, sequence arithmetic."""

from __future__ import annotations

from mailsuite.imap.parser import parse_command
from mailsuite.imap.view import Snapshots, View
from mailsuite.store import Store


def _folder(tmp_path, count: int):
    store = Store(tmp_path, fsync=False)
    for i in range(count):
        store.deliver(["v@example.test"], b"Subject: %d\r\n\r\nx\r\n" % i)
    return store, store.mailbox("v@example.test").folder("INBOX")


def _seqset(text: str):
    return parse_command(b"a FETCH " + text.encode() + b" UID").sequence


def test_sessions_share_one_listing_until_they_change(tmp_path):
    _, folder = _folder(tmp_path, 5)
    shared = Snapshots()
    a = View("INBOX", folder, False, shared.take(folder), set())
    b = View("INBOX", folder, False, shared.take(folder), set())
    assert a.base is b.base
    [info] = folder.store_flags([2], ["\\Flagged"], "add")
    assert a.update(info)
    assert "\\Flagged" in a.entry(2).flags
    assert "\\Flagged" not in b.entry(2).flags
    assert a.base is b.base


def test_new_messages_extend_the_tail_and_ranges_span_both(tmp_path):
    store, folder = _folder(tmp_path, 4)
    v = View("INBOX", folder, False, Snapshots().take(folder), set())
    uids = [store.deliver(["v@example.test"], b"S: n\r\n\r\n")["v@example.test"] for _ in range(3)]
    assert v.add([folder.get(u) for u in uids]) == 3
    assert len(v) == 7
    assert [s for s, _ in v.select_entries(_seqset("3:*"), False)] == [3, 4, 5, 6, 7]
    assert v.select(_seqset("4:6"), True) == [4, 5, 6]
    assert v.select(_seqset("100:*"), True) == [7]
    assert v.seq_of(6) == 6 and v.last_uid() == 7


def test_expunge_renumbers_and_reports_descending(tmp_path):
    _, folder = _folder(tmp_path, 6)
    v = View("INBOX", folder, False, Snapshots().take(folder), {1, 2})
    assert v.remove([2, 5, 99]) == [5, 2]
    assert [m.uid for m in v.all()] == [1, 3, 4, 6]
    assert v.seq_of(6) == 4 and v.recent == {1}
    v.note("flags", [3])
    [info] = folder.store_flags([3], ["\\Seen"], "add")
    out = v.apply({3: info}, [], allow_expunge=True, with_uid=True)
    assert out == b"* 2 FETCH (FLAGS (\\Seen) UID 3)\r\n"


def test_expunges_wait_while_not_allowed(tmp_path):
    _, folder = _folder(tmp_path, 3)
    v = View("INBOX", folder, False, Snapshots().take(folder), set())
    v.note("expunge", [2])
    assert v.apply({}, [], allow_expunge=False, with_uid=False) == b""
    assert len(v) == 3
    assert v.apply({}, [], allow_expunge=True, with_uid=False) == b"* 2 EXPUNGE\r\n"


def test_entries_reflect_own_changes_without_copying(tmp_path):
    _, folder = _folder(tmp_path, 3)
    v = View("INBOX", folder, False, Snapshots().take(folder), set())
    [info] = folder.store_flags([3], ["\\Seen"], "add")
    v.update(info)
    entries = v.entries()
    assert len(entries) == 3
    assert entries[-1].flags == frozenset({"\\Seen"})
    assert [m.uid for m in entries[0:2]] == [1, 2]
