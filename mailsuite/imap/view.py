"""What one session knows of its selected folder: sequence numbers, flags and pending changes.

Sequence numbers are per session (RFC 3501 2.3.1.2), so every session keeps its own view of
the folder's index entries and moves it forward only where the protocol lets it: new messages
and flag changes at any command's end, expunges not during FETCH, STORE or SEARCH
(RFC 3501 7.4.1). Changes come from the store's notices; a poll (NOOP, CHECK, IDLE) syncs the
folder first, so changes made by other processes arrive as notices too.

Memory: sessions on the same folder share one immutable snapshot of its entries (`Snapshot`,
the store's compact columns, see store/listing.py); a view holds only what happened since
(new messages, changed flags). Only an expunge gives a view its own listing, and that
shares the columns too, keeping the positions it still shows (4 bytes a message). So a
thousand IDLE sessions on a 100,000-message INBOX hold one listing.
The shared snapshots belong to one server (`snapshots_of(ctx)`); another server in the same
process has its own, and serve drops them when it stops.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailsuite.context import Context, Part
from mailsuite.imap import condstore, render


@dataclass(frozen=True)
class Snapshot:
    """One folder listing shared by sessions, with what SELECT reports about it."""

    messages: Sequence[Any]
    uids: Sequence[int]
    first_unseen: int
    keywords: frozenset[str]


class Snapshots:
    """The latest listing of each folder the store keeps open (weakly: a folder the store
    lets go of takes its listing with it), for the sessions of one server to share."""

    def __init__(self) -> None:
        self._by_folder: weakref.WeakKeyDictionary[Any, Snapshot] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def take(self, folder: Any) -> Snapshot:
        """The folder's current listing, shared with other sessions when unchanged; off the
        loop. The store hands out the same listing object while the folder is unchanged, so
        the comparison is one identity test and a warm SELECT copies nothing."""
        messages = folder.messages()
        with self._lock:
            known = self._by_folder.get(folder)
        if known is not None and known.messages is messages:
            return known
        snap = _listing(messages)
        with self._lock:
            self._by_folder[folder] = snap
        return snap

    def close(self) -> None:
        """The server has stopped: no session is left to share a listing with."""
        with self._lock:
            self._by_folder.clear()


_SELECTION_STEP = 1000  # entries made at a time while a selection is read in order

SNAPSHOTS: Part[Snapshots] = Part("imap.snapshots", lambda ctx: Snapshots())


def snapshots_of(ctx: Context) -> Snapshots:
    """The shared listings of the server `ctx` belongs to, made on first use."""
    return ctx.part(SNAPSHOTS)


def _listing(messages: Any) -> Snapshot:
    """What SELECT reports about a listing, worked out once per change of the folder from
    the store's columns (a pass in C, no object per message)."""
    return Snapshot(messages, messages.uids, messages.first_unseen(), messages.keywords())


@dataclass
class Pending:
    expunged: set[int] = field(default_factory=set)
    flags: set[int] = field(default_factory=set)
    new: set[int] = field(default_factory=set)
    rebuilt: bool = False

    def __bool__(self) -> bool:
        return bool(self.expunged or self.flags or self.new or self.rebuilt)


class View:
    """The selected folder as this session presents it: base listing + tail + overrides."""

    def __init__(self, name: str, folder: Any, readonly: bool, snap: Snapshot, recent: set[int]):
        self.name = name
        self.folder = folder
        self.readonly = readonly
        self.base: Sequence[Any] = snap.messages
        self.base_uids: Sequence[int] = snap.uids
        self.tail: list[Any] = []
        self.tail_uids: list[int] = []
        self.over: dict[int, Any] = {}
        self.recent = recent
        self.pending = Pending()
        self.uidvalidity: int = folder.uidvalidity
        # RFC 7162 3.1: untagged FETCHes carry UID and MODSEQ once CONDSTORE is on; 3.2.10:
        # expunges are VANISHED once QRESYNC is on (the session sets these)
        self.with_modseq = False
        self.vanished = False
        self.recent_responses = True  # RFC 9051 7.4: no RECENT once IMAP4rev2 is enabled

    def __len__(self) -> int:
        return len(self.base) + len(self.tail)

    def _index(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.base_uids, uid)
        if i < len(self.base_uids) and self.base_uids[i] == uid:
            return i
        j = bisect.bisect_left(self.tail_uids, uid)
        if j < len(self.tail_uids) and self.tail_uids[j] == uid:
            return len(self.base) + j
        return None

    def _at(self, i: int) -> Any:
        nb = len(self.base)
        m = self.base[i] if i < nb else self.tail[i - nb]
        return self.over.get(m.uid, m) if self.over else m

    def seq_of(self, uid: int) -> int | None:
        i = self._index(uid)
        return None if i is None else i + 1

    def last_uid(self) -> int:
        if self.tail_uids:
            return self.tail_uids[-1]
        return self.base_uids[-1] if self.base_uids else 0

    def entry(self, uid: int) -> Any | None:
        i = self._index(uid)
        return None if i is None else self._at(i)

    def all(self) -> list[Any]:
        """Every entry in sequence order (proportional to the folder: call off the loop)."""
        over = self.over
        if not over:
            return [*self.base, *self.tail]
        return [over.get(m.uid, m) for m in (*self.base, *self.tail)]

    def entries(self) -> Sequence[Any]:
        """A read-only sequence over the current entries, without copying the listing."""
        return _Entries(self)

    def flag_matches(
        self, test: Callable[[frozenset[str]], bool]
    ) -> tuple[list[int], list[int]] | None:
        """(sequence numbers, UIDs) of the entries whose flags pass `test`, from the store's
        flag column (SEARCH UNSEEN without an object per message); None when the listing
        is not the store's columns. Flags this view has learned since and the tail are
        looked at one by one."""
        matching = getattr(self.base, "matching", None)
        if matching is None:
            return None
        positions, uids = matching(test)
        nb = len(self.base)
        for uid, info in self.over.items():
            i = bisect.bisect_left(self.base_uids, uid)
            if i >= nb or self.base_uids[i] != uid:
                continue  # a tail entry, looked at below
            j = bisect.bisect_left(positions, i)
            listed = j < len(positions) and positions[j] == i
            if test(info.flags) and not listed:
                positions.insert(j, i)
                uids.insert(j, uid)
            elif listed and not test(info.flags):
                del positions[j], uids[j]
        for k, m in enumerate(self.tail):
            if test(self.over.get(m.uid, m).flags):
                positions.append(nb + k)
                uids.append(m.uid)
        return [i + 1 for i in positions], uids

    def _index_ranges(self, sequence: Any, by_uid: bool) -> list[tuple[int, int]]:
        """Half-open index ranges the set names, ascending and disjoint."""
        n = len(self)
        if n == 0:
            return []
        ranges: list[tuple[int, int]] = []
        if by_uid:
            for lo, hi in sequence.bounds(self.last_uid()):
                a = self._lower(lo)
                b = self._upper(hi)
                if a < b:
                    ranges.append((a, b))
        else:
            for lo, hi in sequence.bounds(n):
                a, b = max(lo, 1) - 1, min(hi, n)
                if a < b:
                    ranges.append((a, b))
        ranges.sort()
        merged: list[tuple[int, int]] = []
        for a, b in ranges:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return merged

    def _lower(self, uid: int) -> int:
        i = bisect.bisect_left(self.base_uids, uid)
        if i < len(self.base_uids):
            return i
        return len(self.base) + bisect.bisect_left(self.tail_uids, uid)

    def _upper(self, uid: int) -> int:
        i = bisect.bisect_right(self.base_uids, uid)
        if i < len(self.base_uids):
            return i
        return len(self.base) + bisect.bisect_right(self.tail_uids, uid)

    def select_entries(self, sequence: Any, by_uid: bool) -> Sequence[tuple[int, Any]]:
        """(sequence number, entry) for the messages a sequence set names, ascending: a
        sequence over the view as it is now whose entries are made as they are read, so a
        FETCH 1:* of 100,000 messages makes them chunk by chunk in the I/O pool, not all at
        once on the loop."""
        return _Selection(
            self.base, list(self.tail), dict(self.over), self._index_ranges(sequence, by_uid)
        )

    def select(self, sequence: Any, by_uid: bool) -> list[int]:
        """UIDs named by a sequence set (message numbers or UIDs), ascending (from the UID
        columns: no entry is made)."""
        out: list[int] = []
        nb = len(self.base)
        for a, b in self._index_ranges(sequence, by_uid):
            if a < nb:
                out.extend(self.base_uids[a : min(b, nb)])
            if b > nb:
                out.extend(self.tail_uids[max(a - nb, 0) : b - nb])
        return out

    def update(self, info: Any) -> bool:
        """Record a message's new entry; True when its flags changed."""
        old = self.entry(info.uid)
        if old is None:
            return False
        self.over[info.uid] = info
        return old.flags != info.flags

    def remove(self, uids: Iterable[int]) -> list[int]:
        """Drop expunged messages; their old sequence numbers, descending (safe to send so).

        The view gets its own copy of the listing here, once per expunge.
        """
        seqs = sorted((s for s in map(self.seq_of, set(uids)) if s is not None), reverse=True)
        if not seqs:
            return []
        gone = {self._at(s - 1).uid for s in seqs}
        without = getattr(self.base, "without", None)
        if without is not None:
            self.base = without(gone)
            self.base_uids = self.base.uids
        else:
            self.base = [m for m in self.base if m.uid not in gone]
            self.base_uids = [m.uid for m in self.base]
        self.tail = [m for m in self.tail if m.uid not in gone]
        self.tail_uids = [m.uid for m in self.tail]
        for uid in gone:
            self.over.pop(uid, None)
        self.recent -= gone
        return seqs

    def add(self, infos: Iterable[Any]) -> int:
        """Append messages newer than the last known UID; how many were added."""
        last = self.last_uid()
        added = sorted((m for m in infos if m is not None and m.uid > last), key=_uid_of)
        for m in added:
            if not self.tail_uids or m.uid > self.tail_uids[-1]:
                self.tail.append(m)
                self.tail_uids.append(m.uid)
        return len(added)

    def note(self, kind: str, uids: Iterable[int]) -> None:
        """Record a store notice, to be announced at the next point that allows it."""
        if kind == "new":
            self.pending.new.update(uids)
        elif kind == "flags":
            self.pending.flags.update(uids)
        elif kind == "expunge":
            self.pending.expunged.update(uids)
        elif kind == "uidvalidity":
            self.pending.rebuilt = True

    def apply(
        self, changed: dict[int, Any], new: Sequence[Any], allow_expunge: bool, with_uid: bool
    ) -> bytes:
        """Untagged responses for the pending changes, applied to the view.

        `changed` maps UIDs with pending flag notices to their current entry (None when
        gone); `new` holds the entries of new UIDs (the caller has taken them out of
        `pending`). Expunges wait while
        `allow_expunge` is false.
        """
        out: list[bytes] = []
        p = self.pending
        if allow_expunge and p.expunged:
            out.append(self.expunged_lines(p.expunged))
            p.expunged = set()
        for uid in sorted(changed):
            info = changed[uid]
            if info is not None and self.update(info):
                if self.with_modseq:
                    out.append(condstore.flag_fetch(self.seq_of(uid), info, self.flags_of(info)))
                    continue
                extra = b" UID %d" % uid if with_uid else b""
                out.append(
                    b"* %d FETCH (FLAGS %s%s)\r\n"
                    % (self.seq_of(uid), render.flags(self.flags_of(info)), extra)
                )
        p.flags.difference_update(changed)
        if new:
            if self.add(new):
                out.append(b"* %d EXISTS\r\n" % len(self))
                if self.recent_responses:
                    out.append(b"* %d RECENT\r\n" % len(self.recent))
        return b"".join(out)

    def expunged_lines(self, uids: Iterable[int]) -> bytes:
        """Drop expunged messages and say so: ``* n EXPUNGE`` lines (RFC 3501 7.4.1: each
        renumbers, so descending numbers stay valid), or one ``* VANISHED`` with their UIDs
        once QRESYNC is on (RFC 7162 3.2.10)."""
        if self.vanished:
            known = [u for u in set(uids) if self._index(u) is not None]
            self.remove(known)
            return condstore.vanished_lines(known, earlier=False)
        return b"".join(b"* %d EXPUNGE\r\n" % s for s in self.remove(uids))

    def flags_of(self, info: Any) -> list[str]:
        if info.uid in self.recent:
            return sorted((*info.flags, "\\Recent"))
        return sorted(info.flags)


class _Entries(Sequence[Any]):
    def __init__(self, view: View) -> None:
        self.view = view
        self.n = len(view)
        self.flag_matches = view.flag_matches

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.view._at(j) for j in range(*i.indices(self.n))]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.view._at(i)


class _Selection(Sequence[tuple[int, Any]]):
    """(sequence number, entry) for index ranges of a view as it was when made (its base
    listing, which never changes, and copies of its tail and overrides); an entry is made
    when it is read, and a slice is another selection."""

    def __init__(
        self, base: Sequence[Any], tail: list[Any], over: dict[int, Any], ranges: list
    ) -> None:
        self._base, self._tail, self._over = base, tail, over
        self._ranges: list[tuple[int, int]] = ranges
        self._starts = list(itertools.accumulate((b - a for a, b in ranges), initial=0))

    def __len__(self) -> int:
        return self._starts[-1]

    def _entry(self, i: int) -> Any:
        nb = len(self._base)
        m = self._base[i] if i < nb else self._tail[i - nb]
        return self._over.get(m.uid, m) if self._over else m

    def _position(self, k: int) -> int:
        r = bisect.bisect_right(self._starts, k) - 1
        return self._ranges[r][0] + k - self._starts[r]

    def __getitem__(self, k: Any) -> Any:
        n = len(self)
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step != 1:
                return [self[j] for j in range(start, stop, step)]
            ranges = []
            for (a, b), s in zip(self._ranges, self._starts, strict=False):
                lo, hi = max(start - s, 0), min(stop - s, b - a)
                if lo < hi:
                    ranges.append((a + lo, a + hi))
            return _Selection(self._base, self._tail, self._over, ranges)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(k)
        i = self._position(k)
        return i + 1, self._entry(i)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        nb = len(self._base)
        for a, b in self._ranges:
            if b <= nb and not self._over:
                for lo in range(a, b, _SELECTION_STEP):
                    hi = min(b, lo + _SELECTION_STEP)
                    yield from zip(range(lo + 1, hi + 1), self._base[lo:hi], strict=True)
            else:
                for i in range(a, b):
                    yield i + 1, self._entry(i)


def _uid_of(info: Any) -> int:
    return info.uid
