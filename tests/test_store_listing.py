"""The folder's in-memory copy as columns: what `messages()` hands out, how it is shared and
copied, and SEARCH by flags answered from the flag column with the same result as the
per-message evaluation."""

from __future__ import annotations

from mailsuite.imap.parser import parse_command
from mailsuite.imap.search import search
from mailsuite.imap.view import Snapshots, View
from mailsuite.store import Store

USER = "cols@example.test"


def _folder(tmp_path, count: int):
    store = Store(tmp_path, fsync=False)
    for i in range(count):
        store.deliver([USER], b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
    return store, store.mailbox(USER).folder("INBOX")


def test_messages_is_one_shared_listing_until_the_folder_changes(tmp_path):
    _, folder = _folder(tmp_path, 5)
    first = folder.messages()
    assert folder.messages() is first  # asking again copies nothing
    assert [m.uid for m in first] == [1, 2, 3, 4, 5]
    assert list(first.uids) == [1, 2, 3, 4, 5]
    assert first[-1].uid == 5 and [m.uid for m in first[1:3]] == [2, 3]
    folder.store_flags([2, 4], ["\\Seen", "$Later"], "add")
    second = folder.messages()
    assert second is not first
    # the listing handed out before keeps what it showed
    assert all(not m.flags for m in first)
    assert [sorted(m.flags) for m in second] == [
        [],
        ["$Later", "\\Seen"],
        [],
        ["$Later", "\\Seen"],
        [],
    ]
    assert second.first_unseen() == 1 and second.keywords() == frozenset({"$Later"})
    keys = {m.uid: m.key for m in second}
    folder.expunge([1, 3])
    third = folder.messages()
    assert [m.uid for m in third] == [2, 4, 5]
    assert [m.key for m in third] == [keys[2], keys[4], keys[5]] == list(third.keys)
    assert third.first_unseen() == 3
    assert [m.uid for m in second] == [1, 2, 3, 4, 5]
    status = folder.status()
    assert (status.messages, status.unseen) == (3, 1)
    assert status.size == sum(m.size for m in third)


def test_many_distinct_flag_sets_widen_the_flag_column(tmp_path):
    _, folder = _folder(tmp_path, 300)
    for uid in range(1, 301):
        folder.store_flags([uid], [f"k{uid}"], "add")
    listed = folder.messages()
    assert [sorted(m.flags) for m in listed][:2] == [["k1"], ["k2"]]
    assert listed[299].flags == frozenset({"k300"})
    assert len(listed.keywords()) == 300
    assert listed.count_with("k7", True) == 1


def _uids(program: str, view: View, recent: set[int]) -> tuple[list[int], list[int]]:
    key = parse_command(b"a UID SEARCH " + program.encode()).search
    by_columns = search(key, view.entries(), recent, view.folder.read)
    one_by_one = search(key, view.all(), recent, view.folder.read)  # a plain list
    assert (by_columns.seqs, by_columns.uids) == (one_by_one.seqs, one_by_one.uids), program
    return by_columns.seqs, by_columns.uids


def test_flag_searches_from_the_column_match_the_per_message_answer(tmp_path):
    store, folder = _folder(tmp_path, 12)
    folder.store_flags([1, 2, 3, 4, 5, 6], ["\\Seen"], "add")
    folder.store_flags([2, 7], ["\\Flagged", "Work"], "add")
    view = View("INBOX", folder, False, Snapshots().take(folder), set())
    # flags this session learned after its listing, and messages added since
    [info] = folder.store_flags([3], ["\\Seen"], "remove")
    view.update(info)
    [info] = folder.store_flags([9], ["\\Seen"], "add")
    view.update(info)
    new = [store.deliver([USER], b"Subject: n\r\n\r\nx\r\n")[USER] for _ in range(2)]
    folder.store_flags([new[1]], ["\\Seen"], "add")
    view.add([folder.get(u) for u in new])
    view.update(folder.get(new[1]))
    assert _uids("UNSEEN", view, set()) == (
        [3, 7, 8, 10, 11, 12, 13],
        [3, 7, 8, 10, 11, 12, 13],
    )
    assert _uids("SEEN", view, set())[1] == [1, 2, 4, 5, 6, 9, 14]
    # keywords match without regard to case, as the per-message test does
    assert _uids("KEYWORD work", view, set())[1] == [2, 7]
    assert _uids("OR FLAGGED NOT SEEN", view, set())[1] == [2, 3, 7, 8, 10, 11, 12, 13]
    assert _uids("SEEN UNKEYWORD Work", view, set())[1] == [1, 4, 5, 6, 9, 14]
    assert _uids("ALL", view, set())[1] == list(range(1, 15))
    # after an expunge the view has its own columns; numbers follow
    view.remove([1, 8])
    assert _uids("UNSEEN", view, set()) == ([2, 6, 8, 9, 10, 11], [3, 7, 10, 11, 12, 13])
    # \Recent is the session's, not a flag the store keeps: the per-message path answers
    assert _uids("RECENT", view, {12, 13})[1] == [12, 13]


def _seqset(text: str):
    return parse_command(b"a FETCH " + text.encode() + b" UID").sequence


def test_a_selection_reads_base_tail_and_overrides_lazily_in_slices(tmp_path):
    store, folder = _folder(tmp_path, 2500)
    view = View("INBOX", folder, False, Snapshots().take(folder), set())
    [info] = folder.store_flags([1200], ["\\Flagged"], "add")
    view.update(info)
    new = [store.deliver([USER], b"Subject: t\r\n\r\nx\r\n")[USER] for _ in range(3)]
    view.add([folder.get(u) for u in new])
    expected = [(i, m) for i, m in enumerate(view.all(), 1)]
    for text, by_uid in (("1:*", False), ("2,5:1300,2400:*", False), ("1199:1201,2502", True)):
        picked = view.select_entries(_seqset(text), by_uid)
        wanted = [
            (s, m)
            for s, m in expected
            if any(lo <= (m.uid if by_uid else s) <= hi for lo, hi in _bounds(text, expected))
        ]
        assert list(picked) == wanted, text
        assert len(picked) == len(wanted)
        assert [picked[k] for k in range(len(picked))] == wanted
        assert picked[-1] == wanted[-1]
        # chunks as FETCH takes them: each a selection of its own, together the whole
        chunks = [picked[a : a + 700] for a in range(0, len(picked), 700)]
        assert [pair for chunk in chunks for pair in chunk] == wanted
        assert view.select(_seqset(text), by_uid) == [m.uid for _, m in wanted]
    assert "\\Flagged" in view.select_entries(_seqset("1200"), True)[0][1].flags
    # the selection keeps what the view was: a later change does not reach into it
    picked = view.select_entries(_seqset("1:*"), False)
    view.remove([1])
    assert len(picked) == 2503 and picked[0][1].uid == 1


def _bounds(text: str, expected: list) -> list[tuple[int, int]]:
    top = len(expected) if "*" in text else 0
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        a = top if lo == "*" else int(lo)
        b = a if not hi else (10**9 if hi == "*" else int(hi))
        out.append((min(a, b), max(a, b)))
    return out


def test_keys_stay_right_through_bulk_expunges_and_a_session_shares_the_columns(tmp_path):
    _, folder = _folder(tmp_path, 40)
    before = {m.uid: m.key for m in folder.messages()}
    view = View("INBOX", folder, False, Snapshots().take(folder), set())
    doomed = list(range(3, 40, 3))  # more than a few at once: the key buffer is packed
    folder.expunge(doomed)
    left = [u for u in range(1, 41) if u not in doomed]
    assert [(m.uid, m.key) for m in folder.messages()] == [(u, before[u]) for u in left]
    assert view.remove(doomed) == sorted(doomed, reverse=True)
    assert [(m.uid, m.key) for m in view.all()] == [(u, before[u]) for u in left]
    assert list(view.base.uids) == left and view.seq_of(left[-1]) == len(left)
    # the view's listing after the expunge is positions into the columns it had
    assert len(view.base.without([left[0]])) == len(left) - 1
    assert view.base.first_unseen() == 1 and view.base.total_size() == sum(
        m.size for m in view.all()
    )
