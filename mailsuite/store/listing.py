"""The in-memory copy of a folder's index, kept as columns rather than objects.

A folder of 100,000 messages held as a dict of `MessageInfo` tuples costs close to 40 MB of
Python objects (a tuple, three ints, a float and a string each, plus the dict). Here the
same copy is six parallel columns: UIDs, sizes, internal dates and modseqs in `array`s, the
flags as a one-byte number into a table of the few distinct flag sets a folder has, and
the keys in one byte buffer (`KeyColumn`); about 10 MB for 100,000 messages, in a few large
blocks that go back to the system with the listing. A `MessageInfo` is made only when
someone asks for that message.

`Listing` is the folder's copy, changed as the index changes (a mapping UID -> MessageInfo
in UID order). `Frozen` is what `Folder.messages()` hands out: a sequence in UID order that
shares the columns until the folder next changes, at which point the folder copies them
(copy-on-write: one memcpy per column, about a millisecond for 100,000 messages) and the
frozen sequences keep the old ones. So sessions share one listing, and a SELECT of an open
folder copies nothing.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from functools import partial
from typing import Any, overload

from .model import MessageInfo

_make = partial(tuple.__new__, MessageInfo)


class FlagTable:
    """The distinct flag sets of a folder, numbered; only ever grows, so every copy of
    the columns can share it."""

    def __init__(self) -> None:
        self.sets: list[frozenset[str]] = []
        self._ids: dict[frozenset[str], int] = {}

    def id_of(self, flags: frozenset[str]) -> int:
        found = self._ids.get(flags)
        if found is None:
            found = self._ids[flags] = len(self.sets)
            self.sets.append(flags)
        return found

    def mask(self, want: set[int]) -> bytes:
        """A translate table: byte 1 for the ids in `want`, 0 for the others."""
        return bytes(1 if i in want else 0 for i in range(256))


class KeyColumn(Sequence[str]):
    """The message keys of a listing in one byte buffer, with their offsets and lengths in
    arrays: about 70 bytes a message instead of 120 for a list of strings, and no object
    per key that would pin the allocator's pages of the scan that made them. A key is
    decoded when read. A removed key leaves its bytes behind until the next bulk removal
    (`kept`) packs the buffer."""

    __slots__ = ("_blob", "_lens", "_starts")

    def __init__(self) -> None:
        self._blob = bytearray()
        self._starts = array("I")
        self._lens = array("H")  # a key is part of a file name: at most 240 characters

    def copy(self) -> KeyColumn:
        other = KeyColumn()
        other._blob = bytearray(self._blob)
        other._starts = array("I", self._starts)
        other._lens = array("H", self._lens)
        return other

    def __len__(self) -> int:
        return len(self._starts)

    def _get(self, i: int) -> str:
        start = self._starts[i]
        return self._blob[start : start + self._lens[i]].decode()

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._get(j) for j in range(*i.indices(len(self)))]
        return self._get(i)

    def __iter__(self) -> Iterator[str]:
        return map(self._get, range(len(self)))

    def insert(self, i: int, key: str) -> None:
        data = key.encode()
        self._starts.insert(i, len(self._blob))
        self._lens.insert(i, len(data))
        self._blob += data

    def append(self, key: str) -> None:
        self.insert(len(self._starts), key)

    def __setitem__(self, i: int, key: str) -> None:
        if self._get(i) != key:
            data = key.encode()
            self._starts[i] = len(self._blob)
            self._lens[i] = len(data)
            self._blob += data

    def __delitem__(self, i: int) -> None:
        del self._starts[i]
        del self._lens[i]

    def kept(self, keep: bytes) -> KeyColumn:
        """The keys whose byte in `keep` is non-zero, in a packed buffer."""
        other = KeyColumn()
        blob = self._blob
        pieces = [
            blob[start : start + n]
            for start, n in itertools.compress(zip(self._starts, self._lens, strict=True), keep)
        ]
        other._lens = array("H", map(len, pieces))
        other._starts = array("I", itertools.accumulate(other._lens, initial=0))
        other._starts.pop()
        other._blob = bytearray().join(pieces)
        return other


class _Columns:
    """The column arrays themselves; `Listing` and `Frozen` both read through one."""

    __slots__ = ("dates", "flags", "keys", "modseqs", "sizes", "table", "uids")

    def __init__(self, table: FlagTable) -> None:
        self.uids = array("I")  # RFC 3501 2.3.1.1: UIDs are 32-bit
        self.sizes = array("Q")
        self.dates = array("d")
        self.modseqs = array("Q")
        self.flags = array("B")  # ids into `table`; widened to "H" past 256 flag sets
        self.keys = KeyColumn()
        self.table = table

    def copy(self) -> _Columns:
        other = _Columns(self.table)
        other.uids = array("I", self.uids)
        other.sizes = array("Q", self.sizes)
        other.dates = array("d", self.dates)
        other.modseqs = array("Q", self.modseqs)
        other.flags = array(self.flags.typecode, self.flags)
        other.keys = self.keys.copy()
        return other

    def at(self, i: int) -> MessageInfo:
        return _make(
            (
                self.uids[i],
                self.keys[i],
                self.sizes[i],
                self.dates[i],
                self.table.sets[self.flags[i]],
                self.modseqs[i],
            )
        )

    def iter(self, start: int = 0, stop: int | None = None) -> Iterator[MessageInfo]:
        s = slice(start, stop)
        return map(
            _make,
            zip(
                self.uids[s],
                self.keys[s],
                self.sizes[s],
                self.dates[s],
                map(self.table.sets.__getitem__, self.flags[s]),
                self.modseqs[s],
                strict=True,
            ),
        )

    def flag_id(self, flags: frozenset[str]) -> int:
        found = self.table.id_of(flags)
        if found > 255 and self.flags.typecode == "B":
            self.flags = array("H", self.flags)
        return found

    def set_at(self, i: int, info: MessageInfo) -> None:
        self.keys[i] = info.key
        self.sizes[i] = info.size
        self.dates[i] = info.internal_date
        self.flags[i] = self.flag_id(info.flags)
        self.modseqs[i] = info.modseq

    def insert(self, i: int, info: MessageInfo) -> None:
        flag = self.flag_id(info.flags)
        if i == len(self.uids):
            self.uids.append(info.uid)
            self.keys.append(info.key)
            self.sizes.append(info.size)
            self.dates.append(info.internal_date)
            self.flags.append(flag)
            self.modseqs.append(info.modseq)
            return
        self.uids.insert(i, info.uid)
        self.keys.insert(i, info.key)
        self.sizes.insert(i, info.size)
        self.dates.insert(i, info.internal_date)
        self.flags.insert(i, flag)
        self.modseqs.insert(i, info.modseq)

    def delete(self, i: int) -> None:
        for column in (self.uids, self.keys, self.sizes, self.dates, self.flags, self.modseqs):
            del column[i]

    def kept(self, keep: bytes) -> _Columns:
        """New columns with the rows whose byte in `keep` is non-zero (rows past the end of
        `keep` are left out): a bulk delete in one pass per column, in C."""
        c = itertools.compress
        other = _Columns(self.table)
        other.uids = array("I", c(self.uids, keep))
        other.keys = self.keys.kept(keep)
        other.sizes = array("Q", c(self.sizes, keep))
        other.dates = array("d", c(self.dates, keep))
        other.flags = array(self.flags.typecode, c(self.flags, keep))
        other.modseqs = array("Q", c(self.modseqs, keep))
        return other

    def flag_mask(self, pick: set[int]) -> bytes:
        """One byte per row, 1 where the row's flag set id is in `pick`."""
        if self.flags.typecode == "B":
            return self.flags.tobytes().translate(self.table.mask(pick))
        return bytes(1 if f in pick else 0 for f in self.flags)


class _Picked(Sequence[int]):
    """The items of a column at some of its positions (bisect and iteration work on it)."""

    __slots__ = ("_column", "_pos")

    def __init__(self, column: Sequence[int], pos: array) -> None:
        self._column, self._pos = column, pos

    def __len__(self) -> int:
        return len(self._pos)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._column[p] for p in self._pos[i]]
        return self._column[self._pos[i]]

    def __iter__(self) -> Iterator[int]:
        return map(self._column.__getitem__, self._pos)


class Frozen(Sequence[MessageInfo]):
    """A folder's messages in UID order as they were at one moment; never changes.

    Besides the Sequence methods it answers what SELECT, STATUS and SEARCH need without
    making an object per message: `uids` (an array, for bisect), `first_unseen`, `keywords`,
    `count_with`, `total_size` and `matching`. A listing `without` some messages (a session's
    own after an expunge) shares the columns and keeps only the positions it shows, 4 bytes
    a message.
    """

    __slots__ = ("_c", "_n", "_pos")

    def __init__(self, columns: _Columns, pos: array | None = None) -> None:
        self._c = columns
        self._pos = pos  # positions in `columns` shown, ascending; None: all of them
        self._n = len(columns.uids) if pos is None else len(pos)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> MessageInfo: ...

    @overload
    def __getitem__(self, i: slice) -> list[MessageInfo]: ...

    def __getitem__(self, i: int | slice) -> MessageInfo | list[MessageInfo]:
        if isinstance(i, slice):
            start, stop, step = i.indices(self._n)
            if step == 1 and self._pos is None:
                return list(self._c.iter(start, max(start, stop)))
            return [self[j] for j in range(start, stop, step)]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._c.at(i if self._pos is None else self._pos[i])

    def __iter__(self) -> Iterator[MessageInfo]:
        if self._pos is None:
            return self._c.iter(0, self._n)
        return map(self._c.at, self._pos)

    def __eq__(self, other: object) -> bool:
        """Equal to any list, tuple or Frozen of the same entries, as a list would be."""
        if other is self:
            return True
        if isinstance(other, Frozen | list | tuple):
            return len(other) == self._n and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Frozen({list(self)!r})"

    def _column(self, column: Any) -> Any:
        return column if self._pos is None else _Picked(column, self._pos)

    @property
    def uids(self) -> Sequence[int]:
        """The UIDs in order (shared, read-only by contract)."""
        return self._column(self._c.uids)  # type: ignore[no-any-return]

    @property
    def keys(self) -> Sequence[str]:
        """The message keys in UID order (shared, read-only by contract), for what needs
        only UID and key (a POP3 login's sizes and UIDLs)."""
        return self._column(self._c.keys)  # type: ignore[no-any-return]

    def without(self, uids: Iterable[int]) -> Frozen:
        """This listing without these UIDs (a session's own after an expunge): the same
        columns, with the positions still shown (4 bytes a message)."""
        n = self._n
        shown = self.uids
        keep = bytearray(b"\x01") * n
        for uid in uids:
            i = bisect.bisect_left(shown, uid, 0, n)
            if i < n and shown[i] == uid:
                keep[i] = 0
        if all(keep):
            return self
        positions = range(n) if self._pos is None else self._pos
        return Frozen(self._c, array("I", itertools.compress(positions, keep)))

    def _mask(self, test: Callable[[frozenset[str]], bool]) -> bytes:
        """One byte per message, 1 where its flag set passes `test`: `test` runs once per
        distinct flag set, the rest is one translate in C."""
        sets = self._c.table.sets
        mask = self._c.flag_mask({i for i, flags in enumerate(sets) if test(flags)})
        return mask if self._pos is None else bytes(map(mask.__getitem__, self._pos))

    def matching(self, test: Callable[[frozenset[str]], bool]) -> tuple[list[int], list[int]]:
        """(0-based positions, UIDs) of the messages whose flags pass `test`, ascending."""
        mask = self._mask(test)
        return list(itertools.compress(range(self._n), mask)), list(
            itertools.compress(self.uids, mask)
        )

    def total_size(self, flag: str | None = None) -> int:
        """The octets of every message, or of those with `flag`."""
        sizes = self._column(self._c.sizes)
        if flag is None:
            return sum(sizes)
        return sum(itertools.compress(sizes, self._mask(lambda f: flag in f)))

    def count_with(self, flag: str, present: bool) -> int:
        """How many messages have (or lack) a flag."""
        return self._mask(lambda f: (flag in f) == present).count(1)

    def first_unseen(self) -> int:
        """The sequence number of the first message without \\Seen; 0 when there is none."""
        return self._mask(lambda f: "\\Seen" not in f).find(1) + 1

    def keywords(self) -> frozenset[str]:
        """Every keyword some message has."""
        table = self._c.table.sets
        flags = self._c.flags
        if self._pos is not None:
            used = set(map(flags.__getitem__, self._pos))
        else:
            used = set(flags.tobytes()) if flags.typecode == "B" else set(flags)
        return frozenset(
            f for i in used if i < len(table) for f in table[i] if not f.startswith("\\")
        )


class Listing(MutableMapping[int, MessageInfo]):
    """The folder's copy: UID -> MessageInfo in UID order, stored as columns."""

    def __init__(self, table: FlagTable | None = None) -> None:
        self._c = _Columns(table or FlagTable())
        self._frozen: Frozen | None = None

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, str, int, float, frozenset[str], int]]) -> Listing:
        """Build from (uid, key, size, idate, flags, modseq) rows given in UID order."""
        listing = cls()
        c = listing._c
        flag_id = c.flag_id
        for uid, key, size, idate, flags, modseq in rows:
            flag = flag_id(flags)  # first: it may widen the flag column
            c.uids.append(uid)
            c.keys.append(key)
            c.sizes.append(size)
            c.dates.append(idate)
            c.flags.append(flag)
            c.modseqs.append(modseq)
        return listing

    def frozen(self) -> Frozen:
        """The current messages as a sequence that will not change; the same object until
        the listing next changes."""
        if self._frozen is None:
            self._frozen = Frozen(self._c)
        return self._frozen

    def _own(self) -> _Columns:
        """The columns, copied first if a frozen sequence shares them."""
        if self._frozen is not None:
            self._c = self._c.copy()
            self._frozen = None
        return self._c

    def _pos(self, uid: int) -> int:
        uids = self._c.uids
        i = bisect.bisect_left(uids, uid)
        return i if i < len(uids) and uids[i] == uid else -1

    def __len__(self) -> int:
        return len(self._c.uids)

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self._pos(uid) >= 0

    def __getitem__(self, uid: int) -> MessageInfo:
        i = self._pos(uid)
        if i < 0:
            raise KeyError(uid)
        return self._c.at(i)

    def get(self, uid: int, default: MessageInfo | None = None) -> MessageInfo | None:  # type: ignore[override]
        i = self._pos(uid)
        return default if i < 0 else self._c.at(i)

    def __iter__(self) -> Iterator[int]:
        return iter(self._c.uids)

    def __reversed__(self) -> Iterator[int]:
        return reversed(self._c.uids)

    def values(self) -> Iterator[MessageInfo]:  # type: ignore[override]
        return self._c.iter()

    def items(self) -> Iterator[tuple[int, MessageInfo]]:  # type: ignore[override]
        return ((m.uid, m) for m in self._c.iter())

    def __setitem__(self, uid: int, info: MessageInfo) -> None:
        uids = self._c.uids
        i = bisect.bisect_left(uids, uid)
        c = self._own()
        if i < len(uids) and uids[i] == uid:
            c.set_at(i, info)
        else:
            c.insert(i, info)

    def __delitem__(self, uid: int) -> None:
        i = self._pos(uid)
        if i < 0:
            raise KeyError(uid)
        self._own().delete(i)

    def discard_many(self, uids: Iterable[int]) -> None:
        """Remove several UIDs in one pass over the columns."""
        gone = {u for u in uids if u in self}
        if not gone:
            return
        if len(gone) < 8:
            for uid in gone:
                del self[uid]
            return
        self._c = self._c.kept(bytes(0 if u in gone else 1 for u in self._c.uids))
        self._frozen = None
