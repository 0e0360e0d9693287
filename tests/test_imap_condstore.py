"""CONDSTORE and QRESYNC (RFC 7162) against the real server, and the store's modseqs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailsuite.imap.parser import ParseError, SequenceSet, parse_command
from mailsuite.store import Store
from mailsuite.store.maildir import INDEX_FILE
from tests.test_imap_server import PASSWORD, deliver, reply, session, simple, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

_HIGHEST = re.compile(rb"\[HIGHESTMODSEQ (\d+)\]")


def highest(lines: list[bytes]) -> int:
    """The HIGHESTMODSEQ a reply announced (exactly one)."""
    found = [int(m.group(1)) for ln in lines for m in [_HIGHEST.search(ln)] if m]
    assert len(found) == 1, lines
    return found[0]


def untagged(lines: list[bytes]) -> list[bytes]:
    return [ln for ln in lines[:-1] if ln.startswith(b"* ")]


def modseq_of(line: bytes) -> int:
    m = re.search(rb"MODSEQ \((\d+)\)", line)
    assert m, line
    return int(m.group(1))


def uidvalidity(lines: list[bytes]) -> int:
    m = re.search(rb"\[UIDVALIDITY (\d+)\]", b"".join(lines))
    assert m
    return int(m.group(1))


# --- the store ------------------------------------------------------------------------------


def test_store_modseq_grows_on_append_flag_change_and_expunge(tmp_path):
    """RFC 7162 3.1.2.1: every change gets a higher mod-sequence, and the folder's
    HIGHESTMODSEQ is at least every message's."""
    folder = Store(tmp_path / "m", fsync=False).mailbox("a@example.test").folder("INBOX")
    seen = [folder.highest_modseq()]
    uids = [folder.append(simple(n)) for n in range(3)]
    seen.append(folder.highest_modseq())
    (info,) = folder.store_flags([uids[1]], ["\\Seen"], "add")
    assert info.modseq == folder.highest_modseq() > seen[-1]
    seen.append(folder.highest_modseq())
    assert folder.get(uids[0]).modseq < info.modseq
    folder.expunge([uids[2]])
    seen.append(folder.highest_modseq())
    assert seen == sorted(set(seen))
    assert folder.vanished_since(seen[2]) == [uids[2]]
    assert folder.vanished_since(seen[3]) == []
    # a flag change that changes nothing gives the message no new modseq
    (same,) = folder.store_flags([uids[1]], ["\\Seen"], "add")
    assert same.modseq == info.modseq


def test_store_unchanged_since_leaves_changed_messages_alone(tmp_path):
    """RFC 7162 3.1.3: the test and the change are one step; failures are reported."""
    folder = Store(tmp_path / "m", fsync=False).mailbox("a@example.test").folder("INBOX")
    a, b = folder.append(simple(1)), folder.append(simple(2))
    mark = folder.highest_modseq()
    folder.store_flags([b], ["\\Flagged"], "add")
    infos, modified = folder.store_flags_unchanged_since([a, b], ["\\Seen"], "add", mark)
    assert [i.uid for i in infos] == [a] and modified == [b]
    assert "\\Seen" not in folder.get(b).flags


def test_store_modseq_is_durable_and_never_goes_back_after_an_index_rebuild(tmp_path):
    """RFC 7162 3.1.2.1 with UIDVALIDITY kept: a lost index must not hand out modseqs a
    client already holds, or its next CHANGEDSINCE would miss changes."""
    root = tmp_path / "m"
    folder = Store(root, fsync=False).mailbox("a@example.test").folder("INBOX")
    uids = [folder.append(simple(n)) for n in range(4)]
    folder.store_flags([uids[0]], ["\\Seen"], "add")
    folder.expunge([uids[3]])
    before, validity = folder.highest_modseq(), folder.uidvalidity
    again = Store(root, fsync=False).mailbox("a@example.test").folder("INBOX")
    assert again.highest_modseq() == before  # kept in the index
    del folder, again
    for suffix in ("", "-wal", "-shm"):
        Path(f"{root / 'example.test/a' / INDEX_FILE}{suffix}").unlink(missing_ok=True)
    rebuilt = Store(root, fsync=False).mailbox("a@example.test").folder("INBOX")
    assert rebuilt.uidvalidity == validity
    assert rebuilt.highest_modseq() > before
    assert all(m.modseq > before for m in rebuilt.messages())
    # expunges before the rebuild are forgotten: the caller must assume any missing UID
    assert rebuilt.vanished_since(before) is None
    assert rebuilt.vanished_since(rebuilt.highest_modseq()) == []


# --- CONDSTORE ------------------------------------------------------------------------------


def test_capabilities_offer_condstore_and_qresync(suite, user):
    caps = session(suite, user, select=None).ok("CAPABILITY")[0].split()
    assert b"CONDSTORE" in caps and b"QRESYNC" in caps


def test_enable_lists_only_what_it_enabled(suite, user):
    """RFC 5161 3.1: ENABLED names what this command enabled; RFC 7162 3.2.3: QRESYNC
    implies CONDSTORE, which then is not enabled again."""
    c = session(suite, user, select=None)
    assert c.ok("ENABLE QRESYNC")[0] == b"* ENABLED QRESYNC\r\n"
    assert c.ok("ENABLE CONDSTORE QRESYNC")[0] == b"* ENABLED\r\n"


def test_select_reports_highestmodseq_only_after_condstore(suite, user, store):
    """RFC 7162 3.1.1: HIGHESTMODSEQ on SELECT once CONDSTORE is on (by ENABLE or the
    CONDSTORE select parameter, 3.1.8), never NOMODSEQ (every folder has modseqs)."""
    deliver(store, user, simple(1))
    c = session(suite, user, select=None)
    plain = c.ok("SELECT INBOX")
    assert not any(b"MODSEQ" in ln for ln in plain)
    lines = c.ok("EXAMINE INBOX (CONDSTORE)")
    assert highest(lines) > 0 and not any(b"NOMODSEQ" in ln for ln in lines)
    assert highest(c.ok("SELECT INBOX")) > 0  # stays on


def test_fetch_modseq_and_changedsince(suite, user, store):
    """RFC 7162 3.1.4: MODSEQ is a fetch item; CHANGEDSINCE returns only messages changed
    after the value, and implies MODSEQ."""
    deliver(store, user, simple(1), simple(2), simple(3))
    c = session(suite, user, select=None)
    mark = highest(c.ok("SELECT INBOX (CONDSTORE)"))
    assert modseq_of(c.ok("FETCH 1 (MODSEQ)")[0]) <= mark
    c.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    lines = c.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {mark})")
    assert len(untagged(lines)) == 1
    assert lines[0].startswith(b"* 2 FETCH (") and b"\\Flagged" in lines[0]
    assert modseq_of(lines[0]) > mark
    assert untagged(c.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq_of(lines[0])})")) == []


def test_store_unchangedsince_reports_modified(suite, user, store):
    """RFC 7162 3.1.3: a message changed since UNCHANGEDSINCE is not stored and is named in
    MODIFIED (sequence numbers, or UIDs for UID STORE); the others are stored, and their
    FETCH carries UID and the new MODSEQ even with .SILENT."""
    uids = deliver(store, user, simple(1), simple(2))
    c = session(suite, user, select=None)
    mark = highest(c.ok("SELECT INBOX (CONDSTORE)"))
    c.ok("STORE 2 +FLAGS.SILENT (\\Answered)")
    lines = c.ok(f"STORE 1:2 (UNCHANGEDSINCE {mark}) +FLAGS.SILENT (\\Seen)")
    assert reply(lines).startswith(b"OK [MODIFIED 2]")
    (fetch,) = untagged(lines)
    assert fetch.startswith(b"* 1 FETCH (UID %d MODSEQ (" % uids[0]) and b"FLAGS" not in fetch
    lines = c.ok(f"UID STORE {uids[1]} (UNCHANGEDSINCE 0) FLAGS (\\Draft)")
    assert reply(lines).startswith(b"OK [MODIFIED %d]" % uids[1])
    flags = c.ok("FETCH 1:2 (FLAGS)")
    assert b"\\Seen" in flags[0] and b"\\Seen" not in flags[1] and b"\\Draft" not in flags[1]


def test_search_modseq_gives_the_highest_modseq_found(suite, user, store):
    """RFC 7162 3.1.5: SEARCH MODSEQ finds messages with at least that modseq, and the
    response ends with the highest modseq among them; none found, no MODSEQ."""
    deliver(store, user, simple(1), simple(2))
    c = session(suite, user, select=None)
    mark = highest(c.ok("SELECT INBOX (CONDSTORE)"))
    (fetch,) = untagged(c.ok("STORE 1 +FLAGS (\\Flagged)"))
    changed = modseq_of(fetch)
    assert c.ok(f"SEARCH MODSEQ {mark + 1}")[0] == b"* SEARCH 1 (MODSEQ %d)\r\n" % changed
    assert c.ok('SEARCH MODSEQ "/flags/\\\\flagged" all 1')[0].startswith(b"* SEARCH 1 2 (MODSEQ")
    assert c.ok(f"SEARCH MODSEQ {changed + 1}")[0] == b"* SEARCH\r\n"


def test_status_highestmodseq(suite, user, store):
    """RFC 7162 3.1.6: STATUS HIGHESTMODSEQ grows with a change."""
    deliver(store, user, simple(1))
    c = session(suite, user, select=None)
    first = c.ok("STATUS INBOX (HIGHESTMODSEQ)")[0]
    assert re.fullmatch(rb'\* STATUS "INBOX" \(HIGHESTMODSEQ \d+\)\r\n', first)
    deliver(store, user, simple(2))
    second = c.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")[0]
    assert int(second.split()[4]) > int(first.split()[4].rstrip(b")\r\n"))


def test_unsolicited_flag_changes_carry_uid_and_modseq(suite, user, store):
    """RFC 7162 3.1: once CONDSTORE is on, every untagged FETCH has UID and MODSEQ, also
    for another session's change; the tagged OK of EXPUNGE tells HIGHESTMODSEQ."""
    uids = deliver(store, user, simple(1), simple(2))
    a = session(suite, user, select=None)
    a.ok("ENABLE CONDSTORE")
    a.ok("SELECT INBOX")
    b = session(suite, user)
    b.ok("STORE 2 +FLAGS (\\Flagged)")
    (line,) = untagged(a.ok("NOOP"))
    # A took the new messages' \\Recent with its SELECT
    assert line.startswith(b"* 2 FETCH (UID %d FLAGS (\\Flagged \\Recent) MODSEQ (" % uids[1])
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    lines = a.ok("EXPUNGE")
    assert b"* 1 EXPUNGE\r\n" in lines and highest(lines) > modseq_of(line)


# --- QRESYNC --------------------------------------------------------------------------------


def test_qresync_parameter_without_enable_is_bad(suite, user):
    """RFC 7162 3.2.5: SELECT with QRESYNC before ENABLE QRESYNC MUST be BAD."""
    c = session(suite, user, select=None)
    assert reply(c.cmd("SELECT INBOX (QRESYNC (1 1))")).startswith(b"BAD")


def test_thunderbird_like_resync_after_another_sessions_changes(suite, user, store):
    """RFC 7162 3.2.5.1: a client that reconnects with SELECT (QRESYNC (uidvalidity modseq))
    learns exactly which known UIDs were expunged (VANISHED (EARLIER)) and the flags of the
    messages changed since; a second resync with nothing changed learns nothing."""
    uids = deliver(store, user, *[simple(n) for n in range(6)])
    a = session(suite, user, select=None)
    a.ok("ENABLE QRESYNC")
    lines = a.ok("SELECT INBOX")
    validity, mark = uidvalidity(lines), highest(lines)
    a.ok("LOGOUT")

    b = session(suite, user)
    b.ok(f"UID STORE {uids[1]},{uids[4]} +FLAGS.SILENT (\\Deleted)")
    b.ok(f"UID EXPUNGE {uids[1]},{uids[4]}")
    b.ok(f"UID STORE {uids[2]} +FLAGS.SILENT (\\Seen $Work)")
    b.ok("LOGOUT")

    a = session(suite, user, select=None)
    a.ok("ENABLE QRESYNC")
    lines = a.ok(f"SELECT INBOX (QRESYNC ({validity} {mark}))")
    assert b"* VANISHED (EARLIER) %d,%d\r\n" % (uids[1], uids[4]) in lines
    fetches = [ln for ln in lines if b" FETCH " in ln]
    assert len(fetches) == 1
    assert fetches[0].startswith(b"* 2 FETCH (UID %d FLAGS (" % uids[2])
    assert b"$Work" in fetches[0] and b"\\Seen" in fetches[0]
    again = highest(lines)
    assert again > mark
    a.ok("LOGOUT")

    a = session(suite, user, select=None)
    a.ok("ENABLE QRESYNC")
    lines = a.ok(f"SELECT INBOX (QRESYNC ({validity} {again}))")
    assert not any(b"VANISHED" in ln or b" FETCH " in ln for ln in lines)
    assert highest(lines) == again


def test_qresync_with_another_uidvalidity_gives_no_resync_data(suite, user, store):
    """RFC 7162 3.2.5.1: a UIDVALIDITY that is not the folder's means the client's cache is
    void; the SELECT is a plain one."""
    deliver(store, user, simple(1))
    c = session(suite, user, select=None)
    c.ok("ENABLE QRESYNC")
    lines = c.ok("SELECT INBOX (QRESYNC (1 1))")
    assert not any(b"VANISHED" in ln or b" FETCH " in ln for ln in lines)


def test_known_uids_limit_vanished_earlier(suite, user, store):
    """RFC 7162 3.2.5.1: only UIDs in known-uids are reported."""
    uids = deliver(store, user, simple(1), simple(2), simple(3))
    c = session(suite, user, select=None)
    c.ok("ENABLE QRESYNC")
    lines = c.ok("SELECT INBOX")
    validity, mark = uidvalidity(lines), highest(lines)
    c.ok(f"UID STORE {uids[0]},{uids[2]} +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    lines = c.ok(f"SELECT INBOX (QRESYNC ({validity} {mark} {uids[2]}))")
    assert b"* VANISHED (EARLIER) %d\r\n" % uids[2] in lines
    assert not any(b"VANISHED (EARLIER) %d" % uids[0] in ln for ln in lines)


def test_vanished_replaces_expunge_and_closed_marks_the_switch(suite, user, store):
    """RFC 7162 3.2.10: with QRESYNC on, expunges (own and another session's) are VANISHED
    with UIDs, never EXPUNGE; 3.2.11: a SELECT that closes a mailbox sends CLOSED first."""
    uids = deliver(store, user, *[simple(n) for n in range(4)])
    a = session(suite, user, select=None)
    a.ok("ENABLE QRESYNC")
    a.ok("SELECT INBOX")
    a.ok(f"UID STORE {uids[0]} +FLAGS.SILENT (\\Deleted)")
    lines = a.ok("EXPUNGE")
    assert b"* VANISHED %d\r\n" % uids[0] in lines
    assert not any(b"EXPUNGE\r\n" in ln and ln.startswith(b"* ") for ln in lines)
    b = session(suite, user)
    b.ok(f"UID STORE {uids[1]}:{uids[2]} +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    assert b"* VANISHED %d:%d\r\n" % (uids[1], uids[2]) in a.ok("NOOP")
    lines = a.ok("SELECT INBOX")
    assert lines[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"


def test_uid_fetch_changedsince_vanished(suite, user, store):
    """RFC 7162 3.2.6: UID FETCH (CHANGEDSINCE n VANISHED) first reports the UIDs of the set
    expunged since n as VANISHED (EARLIER), then the changed messages; VANISHED without
    CHANGEDSINCE or outside UID FETCH is BAD."""
    uids = deliver(store, user, *[simple(n) for n in range(4)])
    c = session(suite, user, select=None)
    c.ok("ENABLE QRESYNC")
    mark = highest(c.ok("SELECT INBOX"))
    c.ok(f"UID STORE {uids[0]},{uids[3]} +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    c.ok(f"UID STORE {uids[1]} +FLAGS.SILENT (\\Seen)")
    lines = c.ok(f"UID FETCH {uids[1]}:* (FLAGS) (CHANGEDSINCE {mark} VANISHED)")
    assert lines[0] == b"* VANISHED (EARLIER) %d\r\n" % uids[3]
    assert len(untagged(lines)) == 2
    assert lines[1].startswith(b"* 1 FETCH (UID %d FLAGS (\\Recent \\Seen) MODSEQ (" % uids[1])
    assert reply(c.cmd(f"FETCH 1 (FLAGS) (CHANGEDSINCE {mark} VANISHED)")).startswith(b"BAD")
    assert reply(c.cmd("UID FETCH 1:* (FLAGS) (VANISHED)")).startswith(b"BAD")


def test_modseq_survives_a_server_restart(suite_factory):
    """RFC 7162 3.1.2.1: HIGHESTMODSEQ is kept in the index, so a restart changes nothing a
    client resyncs against."""
    suite = suite_factory()
    address = "restart@example.test"
    suite.add_user(address, PASSWORD)
    deliver(Store(suite.config["paths"]["maildirs"]), address, simple(1), simple(2))
    c = session(suite, address, select=None)
    c.ok("ENABLE QRESYNC")
    lines = c.ok("SELECT INBOX")
    validity, mark = uidvalidity(lines), highest(lines)
    c.ok("LOGOUT")
    suite.restart()
    c = session(suite, address, select=None)
    c.ok("ENABLE QRESYNC")
    lines = c.ok(f"SELECT INBOX (QRESYNC ({validity} {mark}))")
    assert uidvalidity(lines) == validity and highest(lines) == mark
    assert not any(b"VANISHED" in ln or b" FETCH " in ln for ln in lines)


# --- grammar --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"a SELECT INBOX (QRESYNC (0 1))",  # RFC 7162 7: uidvalidity is nz-number
        b"a SELECT INBOX (QRESYNC (1 0))",  # mod-sequence-value is at least 1
        b"a SELECT INBOX (QRESYNC (1 1 1:*))",  # known-uids has no *
        b"a SELECT INBOX (QRESYNC (1 1 $))",
        b"a SELECT INBOX (QRESYNC (1 99999999999999999999))",  # past 2^63-1
        b"a SELECT INBOX (NOSUCH)",
        b"a FETCH 1 (FLAGS) (CHANGEDSINCE 0)",
        b"a FETCH 1 (FLAGS) (CHANGEDSINCE 5 VANISHED)",  # RFC 7162 3.2.6: UID FETCH only
        b"a UID FETCH 1 (FLAGS) (VANISHED)",
        b"a STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
        b"a STORE 1 (CHANGEDSINCE 4) +FLAGS (\\Seen)",
        b'a SEARCH MODSEQ "/flags/\\\\seen" bogus 5',
    ],
)
def test_bad_modseq_grammar_is_refused(line):
    with pytest.raises(ParseError):
        parse_command(line)


def test_modseq_grammar_in_odd_case_and_forms():
    """RFC 7162 7 grammar, case-insensitive keywords (RFC 3501 9)."""
    cmd = parse_command(b"a select INBOX (qresync (7 20 1:5,9 (2,4 3,9)))")
    assert cmd.qresync is not None
    assert (cmd.qresync.uidvalidity, cmd.qresync.modseq) == (7, 20)
    assert cmd.qresync.known_uids == SequenceSet(((1, 5), (9, 9)))
    assert cmd.qresync.seq_match == (SequenceSet(((2, 2), (4, 4))), SequenceSet(((3, 3), (9, 9))))
    assert parse_command(b"a EXAMINE x (QRESYNC (7 20 (2 3)))").qresync.seq_match is not None
    fetch = parse_command(b"a uid fetch 1:* (flags) (changedsince 9223372036854775807 vanished)")
    assert (fetch.changed_since, fetch.vanished) == (2**63 - 1, True)
    assert parse_command(b"a STORE 1 (unchangedsince 0) FLAGS ()").unchanged_since == 0
    assert parse_command(b"a SEARCH modseq 3 UNSEEN").search == (
        "AND",
        (("MODSEQ", 3), ("NOFLAG", "\\Seen")),
    )
    assert parse_command(b"a STATUS x (highestmodseq)").status_items == ("HIGHESTMODSEQ",)


def test_esearch_with_modseq_ends_with_the_highest_modseq(suite, user, store):
    """RFC 7162 3.1.5 with RFC 4731: ESEARCH for a MODSEQ search reports MODSEQ, the highest
    of the messages it returns (only MIN's and MAX's when only they are asked for)."""
    deliver(store, user, simple(1), simple(2), simple(3))
    c = session(suite, user, select=None)
    c.ok("SELECT INBOX (CONDSTORE)")
    (two,) = untagged(c.ok("STORE 2 +FLAGS (\\Flagged)"))
    (three,) = untagged(c.ok("STORE 3 +FLAGS (\\Flagged)"))
    lines = c.ok("SEARCH RETURN (ALL) MODSEQ 1")
    assert lines[0].endswith(b" ALL 1:3 MODSEQ %d\r\n" % modseq_of(three))
    lines = c.ok(f"SEARCH RETURN (MIN) MODSEQ {modseq_of(two)}")
    assert lines[0].endswith(b" MIN 2 MODSEQ %d\r\n" % modseq_of(two))
    lines = c.ok(f"SEARCH RETURN (ALL) MODSEQ {modseq_of(three) + 1}")
    assert b"MODSEQ" not in lines[0]


def test_resync_after_the_index_was_lost_never_misses_a_change(suite_factory):
    """RFC 7162 3.1.2.1: with UIDVALIDITY kept, a rebuilt index gives modseqs above any a
    client holds, so a QRESYNC after it reports every message again and every UID it may have
    missed as vanished (RFC 7162 3.2.5.1 allows more than were expunged), never nothing."""
    suite = suite_factory()
    address = "rebuild@example.test"
    suite.add_user(address, PASSWORD)
    uids = deliver(Store(suite.config["paths"]["maildirs"]), address, simple(1), simple(2))
    c = session(suite, address, select=None)
    c.ok("ENABLE QRESYNC")
    lines = c.ok("SELECT INBOX")
    validity, mark = uidvalidity(lines), highest(lines)
    c.ok(f"UID STORE {uids[0]} +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    c.ok("LOGOUT")
    suite.stop()
    inbox = suite.maildir(address)
    assert (inbox / INDEX_FILE).exists()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{inbox / INDEX_FILE}{suffix}").unlink(missing_ok=True)
    suite.start()
    c = session(suite, address, select=None)
    c.ok("ENABLE QRESYNC")
    lines = c.ok(f"SELECT INBOX (QRESYNC ({validity} {mark}))")
    assert uidvalidity(lines) == validity and highest(lines) > mark
    assert highest(lines) > 10**15  # continued from the clock, not from 1
    assert b"* VANISHED (EARLIER) %d\r\n" % uids[0] in lines
    fetch = next(ln for ln in lines if b" FETCH " in ln)
    assert fetch.startswith(b"* 1 FETCH (UID %d " % uids[1])


def test_resync_uses_the_sequence_match_data_when_the_expunges_are_forgotten(suite_factory):
    """RFC 7162 3.2.5.2: when the server no longer knows every expunge since the client's
    modseq (here: the index was rebuilt), the client's (sequence numbers, UIDs) pairs show
    which known UIDs were not expunged since: message 1 still has the UID the client saw
    there, so UIDs up to it are not reported; the pair that no longer holds (2 -> uid 4)
    marks where reporting starts. Without the pairs every missing UID is reported
    (3.2.5.1 allows that)."""
    suite = suite_factory()
    address = "seqmatch@example.test"
    suite.add_user(address, PASSWORD)
    uids = deliver(Store(suite.config["paths"]["maildirs"]), address, *map(simple, range(5)))
    c = session(suite, address, select=None)
    c.ok("ENABLE QRESYNC")
    validity = uidvalidity(c.ok("SELECT INBOX"))
    c.ok(f"UID STORE {uids[0]},{uids[1]} +FLAGS.SILENT (\\Deleted)")
    mark = highest(c.ok("EXPUNGE"))
    # the client now knows 1 -> uids[2], 2 -> uids[3], 3 -> uids[4]; then uids[3] goes
    c.ok(f"UID STORE {uids[3]} +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    c.ok("LOGOUT")
    suite.stop()
    inbox = suite.maildir(address)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{inbox / INDEX_FILE}{suffix}").unlink(missing_ok=True)
    suite.start()
    c = session(suite, address, select=None)
    c.ok("ENABLE QRESYNC")
    known = f"{uids[0]}:{uids[4]}"
    pairs = f"(1:3 {uids[2]}:{uids[4]})"
    lines = c.ok(f"SELECT INBOX (QRESYNC ({validity} {mark} {known} {pairs}))")
    assert [ln for ln in lines if ln.startswith(b"* VANISHED")] == [
        b"* VANISHED (EARLIER) %d\r\n" % uids[3]
    ]
    lines = c.ok(f"SELECT INBOX (QRESYNC ({validity} {mark} {known}))")
    assert [ln for ln in lines if ln.startswith(b"* VANISHED")] == [
        b"* VANISHED (EARLIER) %d:%d,%d\r\n" % (uids[0], uids[1], uids[3])
    ]
    # a first pair that no longer holds leaves every missing known UID reported
    lines = c.ok(f"SELECT INBOX (QRESYNC ({validity} {mark} {known} (1 {uids[0]})))")
    assert [ln for ln in lines if ln.startswith(b"* VANISHED")] == [
        b"* VANISHED (EARLIER) %d:%d,%d\r\n" % (uids[0], uids[1], uids[3])
    ]
