"""CONDSTORE and QRESYNC (RFC 7162): mod-sequences over IMAP.

Owns what a session says about mod-sequences: ENABLE, the HIGHESTMODSEQ and CLOSED response
codes, the SELECT/EXAMINE QRESYNC resync (VANISHED (EARLIER) and the changed FETCHes), FETCH
CHANGEDSINCE and VANISHED, STORE UNCHANGEDSINCE with MODIFIED, and VANISHED in place of
EXPUNGE. The numbers come from the store (`MessageInfo.modseq`, `Folder.highest_modseq`,
`Folder.vanished_since`); this module keeps none and never touches files.

`Modseqs` is the per-session state: whether CONDSTORE and QRESYNC are on. Both stay on for
the rest of the connection once enabled (RFC 7162 3.1, 3.2.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mailsuite.imap import render
from mailsuite.imap.parser import QresyncParams, SequenceSet


@dataclass
class Modseqs:
    """What this session has enabled (RFC 7162 3.1: a CONDSTORE enabling command turns
    CONDSTORE on; ENABLE QRESYNC turns both on, 3.2.3)."""

    condstore: bool = False
    qresync: bool = False


def enable(state: Modseqs, words: Iterable[str]) -> list[str]:
    """The capabilities of `words` this module enables, for the ENABLED response (RFC 5161
    3.1: only those newly enabled by this command are listed)."""
    done = []
    for word in words:
        name = word.upper()
        if name == "CONDSTORE" and not state.condstore:
            state.condstore = True
            done.append("CONDSTORE")
        elif name == "QRESYNC" and not state.qresync:
            state.qresync = True
            # RFC 7162 3.2.3: QRESYNC implies CONDSTORE
            state.condstore = True
            done.append("QRESYNC")
    return done


def uses_modseq(cmd: Any) -> bool:
    """Whether the command is a CONDSTORE enabling command (RFC 7162 3.1): FETCH MODSEQ or
    CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ, STATUS HIGHESTMODSEQ, SELECT/EXAMINE
    (CONDSTORE)."""
    if cmd.condstore or cmd.changed_since is not None or cmd.unchanged_since is not None:
        return True
    if any(i.name == "MODSEQ" for i in cmd.fetch):
        return True
    if "HIGHESTMODSEQ" in cmd.status_items:
        return True
    return cmd.search is not None and search_uses_modseq(cmd.search)


def search_uses_modseq(key: Any) -> bool:
    """Whether a parsed search key has a MODSEQ criterion anywhere (RFC 7162 3.1.5)."""
    name = key[0]
    if name == "MODSEQ":
        return True
    if name == "NOT":
        return search_uses_modseq(key[1])
    if name == "OR":
        return search_uses_modseq(key[1]) or search_uses_modseq(key[2])
    if name == "AND":
        return any(search_uses_modseq(k) for k in key[1])
    return False


def esearch_modseq(
    view: Any, cmd: Any, uids: Sequence[int], opts: set[str], *, ordered: bool = False
) -> int:
    """The MODSEQ an ESEARCH response ends with when the search has a MODSEQ criterion
    (RFC 7162 3.1.5): the highest modseq of the messages it reports, which are only the MIN
    and MAX ones when nothing else is asked for; 0 (none) when nothing matched."""
    if view is None or not uids or cmd.search is None or not search_uses_modseq(cmd.search):
        return 0
    chosen: Iterable[int] = uids
    if not opts & {"ALL", "COUNT"} and opts & {"MIN", "MAX"}:
        low, high = (uids[0], uids[-1]) if ordered else (min(uids), max(uids))
        chosen = [u for u, o in ((low, "MIN"), (high, "MAX")) if o in opts]
    return max((m.modseq for m in map(view.entry, chosen) if m is not None), default=0)


def highestmodseq_line(value: int) -> bytes:
    # RFC 7162 3.1.1: every folder here has mod-sequences, so never NOMODSEQ (3.1.2)
    return b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % value


CLOSED_LINE = b"* OK [CLOSED] Previous mailbox closed\r\n"  # RFC 7162 3.2.11


def uid_set(uids: Iterable[int]) -> bytes:
    """A sequence-set of UIDs with runs as ranges (``1:3,7``), ascending."""
    out: list[bytes] = []
    start = prev = None
    for uid in sorted(set(uids)):
        if prev is not None and uid == prev + 1:
            prev = uid
            continue
        if start is not None:
            out.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
        start = prev = uid
    if start is not None:
        out.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
    return b",".join(out)


def vanished_lines(uids: Sequence[int], *, earlier: bool) -> bytes:
    """RFC 7162 3.2.10: ``* VANISHED [(EARLIER)] uid-set``; nothing for no UIDs. Long sets
    are split so no line grows past what RFC 7162 4 lets clients expect (8 KB)."""
    if not uids:
        return b""
    head = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    text = uid_set(uids)
    out = []
    while len(text) > 8000:
        cut = text.rindex(b",", 0, 8000)
        out.append(head + text[:cut] + b"\r\n")
        text = text[cut + 1 :]
    out.append(head + text + b"\r\n")
    return b"".join(out)


def earlier_vanished(
    folder: Any,
    view: Any,
    modseq: int,
    within: SequenceSet | None,
    largest_uid: int,
    seq_match: tuple[SequenceSet, SequenceSet] | None = None,
) -> list[int]:
    """UIDs expunged after `modseq`, limited to `within` (RFC 7162 3.2.5.1 known-uids, 3.2.6
    the UID FETCH set); off the loop. When the store's expunge log does not reach back that
    far, every UID of `within` (up to `largest_uid`) that is not in the folder is reported,
    which RFC 7162 3.2.5.1 allows: a UID the client does not have is ignored; the client's
    `seq_match` data (3.2.5.2) then leaves out the UIDs it shows were not expunged."""
    gone = folder.vanished_since(modseq)
    if gone is None:
        entries = view.all()
        present = {m.uid for m in entries}
        floor = _matched_floor(entries, seq_match, largest_uid) if seq_match else 0
        bounds = within.bounds(largest_uid) if within is not None else [(1, largest_uid)]
        gone = [
            uid
            for lo, hi in bounds
            for uid in range(max(lo, floor + 1), min(hi, largest_uid) + 1)
            if uid not in present
        ]
    if within is None:
        return sorted(set(gone))
    return sorted({u for u in gone if within.contains(u, largest_uid)})


def _members(numbers: SequenceSet, largest: int) -> Iterator[int]:
    """The numbers of a set in the order the client gave them, ``*`` as `largest`."""
    for lo, hi in numbers.bounds(largest):
        yield from range(lo, hi + 1)


def _matched_floor(
    entries: Sequence[Any], seq_match: tuple[SequenceSet, SequenceSet], largest_uid: int
) -> int:
    """RFC 7162 3.2.5.2: the UID of the last of the client's (sequence number, UID) pairs,
    taken in order up to the first that no longer holds, that the folder still has at that
    number; 0 when the first fails. UIDs only grow, so when message n still has the UID the
    client saw at n, the n - 1 messages below it are the ones the client saw: none of the
    UIDs up to it was expunged since. Costs at most one step per message of the folder."""
    seqs, uids = seq_match
    floor = 0
    # sets of unequal length are the client's mistake: the pairs it did give still count
    pairs = zip(_members(seqs, len(entries)), _members(uids, largest_uid), strict=False)
    for seq, uid in pairs:
        if seq > len(entries) or entries[seq - 1].uid != uid:
            break
        floor = uid
    return floor


def changed_entries(view: Any, modseq: int) -> list[tuple[int, Any]]:
    """(sequence number, entry) of every message changed after `modseq`; off the loop."""
    return [(seq, m) for seq, m in enumerate(view.all(), 1) if m.modseq > modseq]


def flag_fetch(seq: int, info: Any, flag_names: list[str], *, with_flags: bool = True) -> bytes:
    """An untagged FETCH for a flag change with UID and MODSEQ, as RFC 7162 3.1 wants of
    every untagged FETCH once CONDSTORE is on (FLAGS left out for STORE .SILENT, 3.1.3)."""
    flags = b" FLAGS " + render.flags(flag_names) if with_flags else b""
    return b"* %d FETCH (UID %d%s MODSEQ (%d))\r\n" % (seq, info.uid, flags, info.modseq)


def resync(folder: Any, view: Any, params: QresyncParams, recent: set[int]) -> bytes:
    """RFC 7162 3.2.5.1: what SELECT/EXAMINE (QRESYNC ...) adds after the usual responses:
    VANISHED (EARLIER) for known UIDs expunged since the client's modseq, then a FETCH
    (UID FLAGS MODSEQ) of every message changed since. Nothing when the client's UIDVALIDITY
    is not the folder's (its cache is void and it must start again). Off the loop."""
    if params.uidvalidity != view.uidvalidity:
        return b""
    largest = max(folder.uidnext - 1, view.last_uid())
    gone = earlier_vanished(
        folder, view, params.modseq, params.known_uids, largest, params.seq_match
    )
    out = [vanished_lines(gone, earlier=True)]
    for seq, m in changed_entries(view, params.modseq):
        names = sorted((*m.flags, "\\Recent")) if m.uid in recent else sorted(m.flags)
        out.append(flag_fetch(seq, m, names))
    return b"".join(out)
