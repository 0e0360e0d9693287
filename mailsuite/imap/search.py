"""SEARCH evaluation (RFC 3501 6.4.4) over a selected folder's messages.

A search key is compiled once into a predicate. Keys about flags, UIDs, sequence numbers,
sizes and internal dates are answered from the index entries alone; HEADER, the address keys
and the SENT* keys from the header blocks the store keeps; BODY and TEXT from the store's
full-text index when it is current, else by reading each message once. Strings match as
`store.fulltext.fold` says: case and diacritics folded on both sides. Callers run `search`
through ``ctx.run_io`` because it is proportional to the mailbox size.
"""

from __future__ import annotations

import bisect
import datetime as dt
import email.utils
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mailsuite.imap.message import Part, find_fields, header_part
from mailsuite.imap.objectid import email_id
from mailsuite.imap.parser import SearchKey
from mailsuite.message import addresses
from mailsuite.message.words import decode_words
from mailsuite.store import NoSuchMessage
from mailsuite.store.fulltext import body_text, fold, head_text
from mailsuite.store.headers import block_of as headers_block

_FILE_KEYS = frozenset(
    {"HEADER", "ADDRESS", "BODY", "TEXT", "SENTBEFORE", "SENTON", "SENTSINCE", "EMAILID"}
)
_TEXT_KEYS = frozenset({"BODY", "TEXT"})
_HEADER_BATCH = 500  # header blocks asked of the store at once
# an address key's string with none of these, in a header with none of _ADDRESS_SYNTAX, can
# only be found within one word of the field as written
_ADDRESS_JOINERS = frozenset(' <>@:,;"\\()')
_ADDRESS_SYNTAX = (b"(", b'"', b"\\")
Hits = dict[tuple[str, str], set[int]]


class MessageEntry(Protocol):
    uid: int
    size: int
    internal_date: Any
    flags: frozenset[str]


class Candidate:
    """One message under test; the file is read at most once, and only when a key needs it."""

    __slots__ = ("_data", "_head_root", "_text", "entry", "head", "loader", "recent", "seq")

    def __init__(
        self,
        seq: int,
        entry: MessageEntry,
        recent: bool,
        loader: Callable[[int], bytes],
        head: bytes | None = None,
    ) -> None:
        self.seq = seq
        self.entry = entry
        self.recent = recent
        self.loader = loader
        self.head = head  # the header block, when the store gave it
        self._data: bytes | None = None
        self._head_root: Part | None = None
        self._text: str | None = None

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self.loader(self.entry.uid)
        return self._data

    @property
    def header(self) -> bytes:
        if self.head is None:
            self.head = headers_block(self.data)
        return self.head

    @property
    def head_root(self) -> Part:
        """The message's own header, parsed (the body is not needed for it)."""
        if self._head_root is None:
            self._head_root = header_part(self.header)
        return self._head_root

    def body_text(self) -> str:
        """The body as BODY searches it (store.fulltext.body_text)."""
        if self._text is None:
            self._text = body_text(self.data)
        return self._text


def needs_file(key: SearchKey, answered: bool = False) -> bool:
    """Whether the key looks at a message's header or body (`answered`: BODY and TEXT are
    answered by the full-text index, so they need neither)."""
    name = key[0]
    if name in _TEXT_KEYS and answered:
        return False
    if name in _FILE_KEYS:
        return True
    if name == "NOT":
        return needs_file(key[1], answered)
    if name == "OR":
        return needs_file(key[1], answered) or needs_file(key[2], answered)
    if name == "AND":
        return any(needs_file(k, answered) for k in key[1])
    return False


def _date_of(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.datetime.fromtimestamp(float(value), dt.UTC).date()


def _seconds_of(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value)


@functools.lru_cache(maxsize=4096)
def _address_texts(value: bytes) -> tuple[str, ...]:
    """Each address of a field as ENVELOPE reads it, written `Name <mailbox@host>` with
    the name decoded (RFC 2047), folded for matching; a group gives its name. Remembered
    for the last few thousand fields, since most of a folder comes from a few senders."""
    out = []
    for a in addresses.parse(value):
        if a.is_group_end:
            continue
        if a.is_group_start:
            out.append(fold(decode_words(a.mailbox or b"")))
            continue
        spec = b"%s@%s" % (a.mailbox or b"", a.domain or b"")
        if a.route:
            spec = a.route + b":" + spec
        text = "<" + spec.decode("utf-8", "replace") + ">"
        if a.name:
            text = decode_words(a.name) + " " + text
        out.append(fold(text))
    return tuple(out)


def _sent_date(c: Candidate) -> dt.date | None:
    raw = c.head_root.header_value(b"Date")
    if raw is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(raw.decode("ascii", "replace")).date()
    except (TypeError, ValueError, IndexError):
        return None


Predicate = Callable[[Candidate], bool]


def compile_key(
    key: SearchKey, largest_seq: int, largest_uid: int, hits: Hits | None = None
) -> Predicate:
    """Turn a parsed key into a predicate; `largest_*` give ``*`` its value; `hits` holds
    the full-text index's answers to the BODY and TEXT keys, when it gave them."""
    name = key[0]
    if name == "ALL":
        return lambda c: True
    if name in ("FLAG", "NOFLAG"):
        if key[1] == "\\Recent":
            want = name == "FLAG"
            return lambda c: c.recent == want
        test = flags_test(key)
        assert test is not None  # every flag but \\Recent is one the store keeps
        return lambda c: test(c.entry.flags)
    if name == "SEQ":
        bounds = key[1].bounds(largest_seq)
        return lambda c: any(lo <= c.seq <= hi for lo, hi in bounds)
    if name == "UID":
        bounds = key[1].bounds(largest_uid)
        return lambda c: any(lo <= c.entry.uid <= hi for lo, hi in bounds)
    if name == "EMAILID":
        wanted = key[1]
        return lambda c: email_id(c.data) == wanted  # RFC 8474 6
    if name == "THREADID":
        return lambda c: False  # RFC 8474 6: no message is in a thread (THREADID is NIL)
    if name == "LARGER":
        n = key[1]
        return lambda c: c.entry.size > n
    if name == "SMALLER":
        n = key[1]
        return lambda c: c.entry.size < n
    if name == "MODSEQ":
        n = key[1]
        return lambda c: c.entry.modseq >= n  # RFC 7162 3.1.5: at least n
    if name in ("OLDER", "YOUNGER"):
        index_pred = compile_index_key(key, largest_seq, largest_uid, set())
        return lambda c: index_pred(c.seq, c.entry)
    if name in ("BEFORE", "ON", "SINCE"):
        # RFC 3501 6.4.4: internal date, disregarding time and timezone
        return _date_predicate(name, key[1], lambda c: _date_of(c.entry.internal_date))
    if name in ("SENTBEFORE", "SENTON", "SENTSINCE"):
        return _date_predicate(name[4:], key[1], _sent_date)
    if name in ("HEADER", "ADDRESS"):
        field, needle = key[1].encode("ascii", "replace"), fold(key[2])
        by_address = name == "ADDRESS"
        # In a field of plain ASCII without encoded words the text is as written, so a
        # string that is not in the unfolded field is not in its text either.
        quick = needle.encode() if needle.isascii() else None
        if by_address and quick is not None and _ADDRESS_JOINERS.intersection(needle):
            quick = None
        wanted = {field}

        def header(c: Candidate) -> bool:
            part = c.head_root
            raws = find_fields(part, wanted)
            if raws is None:
                raws = [raw for fname, raw in part.fields() if fname == field]
            for raw in raws:
                if not needle:  # RFC 3501 6.4.4: empty string matches any such header
                    return True
                value = raw.partition(b":")[2].replace(b"\r\n", b"").replace(b"\n", b"")
                if value.isascii() and b"=?" not in value:
                    if not needle.isascii():
                        continue  # folded ASCII holds no other letters
                    plain = not (by_address and any(s in value for s in _ADDRESS_SYNTAX))
                    if quick is not None and plain and quick not in value.lower():
                        continue
                if by_address:
                    # RFC 3501 6.4.4: FROM/TO/CC/BCC search the envelope's addresses,
                    # so "a@b" is found however the field spells it (comments, routes)
                    if any(needle in t for t in _address_texts(value)):
                        return True
                elif needle in fold(decode_words(value.strip())):
                    return True  # HEADER: the field's text after the colon
            return False

        return header
    if name in _TEXT_KEYS and hits is not None:
        found = hits[(name, fold(key[1]))]
        return lambda c: c.entry.uid in found
    if name == "BODY":
        needle = fold(key[1])
        return lambda c: needle in c.body_text()
    if name == "TEXT":
        needle = fold(key[1])
        return lambda c: needle in head_text(c.header) or needle in c.body_text()
    if name == "NOT":
        inner = compile_key(key[1], largest_seq, largest_uid, hits)
        return lambda c: not inner(c)
    if name == "OR":
        a = compile_key(key[1], largest_seq, largest_uid, hits)
        b = compile_key(key[2], largest_seq, largest_uid, hits)
        return lambda c: a(c) or b(c)
    if name == "AND":
        # cheap index-only keys first, so file keys run only on survivors
        keys = sorted(key[1], key=needs_file)
        preds = [compile_key(k, largest_seq, largest_uid, hits) for k in keys]
        return lambda c: all(p(c) for p in preds)
    raise ValueError(f"unknown search key {name}")


def _date_predicate(op: str, day: dt.date, get: Callable[[Candidate], dt.date | None]) -> Predicate:
    def check(c: Candidate) -> bool:
        value = get(c)
        if value is None:
            return False
        if op == "BEFORE":
            return value < day
        if op == "ON":
            return value == day
        return value >= day

    return check


IndexPredicate = Callable[[int, Any], bool]


def compile_index_key(
    key: SearchKey,
    largest_seq: int,
    largest_uid: int,
    recent: set[int],
    hits: Hits | None = None,
) -> IndexPredicate:
    """A predicate over (sequence number, entry) for keys that need no file (see needs_file),
    BODY and TEXT among them when the full-text index answered them (`hits`).

    Faster than `compile_key` because no per-message object is made: ``UID SEARCH UNSEEN`` on
    100,000 messages is one comprehension.
    """
    name = key[0]
    if name in _TEXT_KEYS and hits is not None:
        found = hits[(name, fold(key[1]))]
        return lambda i, e: e.uid in found
    if name == "ALL":
        return lambda i, e: True
    if name in ("FLAG", "NOFLAG"):
        flag = key[1]
        want = name == "FLAG"
        if flag == "\\Recent":
            return lambda i, e: (e.uid in recent) == want
        if flag.startswith("\\"):
            if want:
                return lambda i, e: flag in e.flags
            return lambda i, e: flag not in e.flags
        folded = flag.casefold()
        return lambda i, e: any(f.casefold() == folded for f in e.flags) == want
    if name in ("SEQ", "UID"):
        bounds = key[1].bounds(largest_seq if name == "SEQ" else largest_uid)
        if name == "SEQ":
            return lambda i, e: any(lo <= i <= hi for lo, hi in bounds)
        return lambda i, e: any(lo <= e.uid <= hi for lo, hi in bounds)
    if name == "THREADID":
        return lambda i, e: False  # RFC 8474 6: no message is in a thread (THREADID is NIL)
    if name == "LARGER":
        n = key[1]
        return lambda i, e: e.size > n
    if name == "SMALLER":
        n = key[1]
        return lambda i, e: e.size < n
    if name == "MODSEQ":
        n = key[1]
        return lambda i, e: e.modseq >= n  # RFC 7162 3.1.5: at least n
    if name in ("OLDER", "YOUNGER"):
        # RFC 5032 3: the interval is counted back from the server's time now
        edge = time.time() - key[1]
        if name == "OLDER":
            return lambda i, e: _seconds_of(e.internal_date) <= edge
        return lambda i, e: _seconds_of(e.internal_date) > edge
    if name in ("BEFORE", "ON", "SINCE"):
        day = key[1]
        if name == "BEFORE":
            return lambda i, e: _date_of(e.internal_date) < day
        if name == "ON":
            return lambda i, e: _date_of(e.internal_date) == day
        return lambda i, e: _date_of(e.internal_date) >= day
    if name == "NOT":
        inner = compile_index_key(key[1], largest_seq, largest_uid, recent, hits)
        return lambda i, e: not inner(i, e)
    if name == "OR":
        a = compile_index_key(key[1], largest_seq, largest_uid, recent, hits)
        b = compile_index_key(key[2], largest_seq, largest_uid, recent, hits)
        return lambda i, e: a(i, e) or b(i, e)
    if name == "AND":
        preds = [compile_index_key(k, largest_seq, largest_uid, recent, hits) for k in key[1]]
        return lambda i, e: all(p(i, e) for p in preds)
    raise ValueError(f"search key {name} needs the message")


FlagTest = Callable[[frozenset[str]], bool]


def flags_test(key: SearchKey) -> FlagTest | None:
    """A test on a message's flags alone, for keys that look at nothing else (FLAG and
    NOFLAG but \\Recent, ALL, and NOT, AND, OR of those), matching as `compile_index_key`
    does; None for any other key. The store runs it once per distinct flag set, so
    ``UID SEARCH UNSEEN`` makes no object per message."""
    name = key[0]
    if name == "ALL":
        return lambda f: True
    if name in ("FLAG", "NOFLAG"):
        flag = key[1]
        want = name == "FLAG"
        if flag == "\\Recent":
            return None  # session state, not a flag the store keeps
        if flag.startswith("\\"):
            return (lambda f: flag in f) if want else (lambda f: flag not in f)
        # keywords are case-insensitive (RFC 3501 2.3.2 atoms)
        folded = flag.casefold()
        return lambda f: any(x.casefold() == folded for x in f) == want
    if name == "NOT":
        inner = flags_test(key[1])
        return None if inner is None else (lambda f: not inner(f))
    if name in ("AND", "OR"):
        parts = [flags_test(k) for k in (key[1] if name == "AND" else key[1:3])]
        if any(p is None for p in parts):
            return None
        tests = [p for p in parts if p is not None]
        if name == "AND":
            return lambda f: all(t(f) for t in tests)
        return lambda f: any(t(f) for t in tests)
    return None


def _narrow(key: SearchKey, entries: Sequence[MessageEntry]) -> range:
    """Index range a top-level UID or sequence-set key confines the search to."""
    keys = key[1] if key[0] == "AND" else (key,)
    lo, hi = 0, len(entries)
    if not entries:
        return range(0)
    uids = _UidView(entries)
    for k in keys:
        if k[0] == "UID" and len(k[1].ranges) == 1:
            ((a, b),) = k[1].bounds(entries[-1].uid)
            lo = max(lo, bisect.bisect_left(uids, a))
            hi = min(hi, bisect.bisect_right(uids, b))
        elif k[0] == "SEQ" and len(k[1].ranges) == 1:
            ((a, b),) = k[1].bounds(len(entries))
            lo, hi = max(lo, a - 1), min(hi, b)
    return range(lo, max(lo, hi))


def span_in_memory(key: SearchKey, entries: Sequence[MessageEntry]) -> int | None:
    """How many entries a search of `key` tests one by one when it needs nothing but what
    they hold (no header, body or flag column): the size of the range a top-level UID or
    sequence set confines it to, so a caller can run a small one where it is. None for keys
    that read files or that the flag column answers."""
    if needs_file(key) or flags_test(key) is not None:
        return None
    return len(_narrow(key, entries))


class _UidView:
    """The UIDs of an entry list, for bisect without building a second list."""

    def __init__(self, entries: Sequence[MessageEntry]) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> int:
        return self.entries[i].uid


@dataclass
class SearchResult:
    seqs: list[int]
    uids: list[int]


def text_queries(key: SearchKey) -> list[tuple[str, str]]:
    """The (BODY or TEXT, folded string) pairs of a key, for the full-text index."""
    name = key[0]
    if name in _TEXT_KEYS:
        return [(name, fold(key[1]))]
    if name == "NOT":
        return text_queries(key[1])
    if name == "OR":
        return text_queries(key[1]) + text_queries(key[2])
    if name == "AND":
        return [q for k in key[1] for q in text_queries(k)]
    return []


def _reads_header(key: SearchKey, answered: bool) -> bool:
    """Whether the key looks at header blocks (`answered`: BODY and TEXT need none)."""
    name = key[0]
    if name in ("HEADER", "ADDRESS", "SENTBEFORE", "SENTON", "SENTSINCE"):
        return True
    if name == "TEXT":
        return not answered
    if name == "NOT":
        return _reads_header(key[1], answered)
    if name == "OR":
        return _reads_header(key[1], answered) or _reads_header(key[2], answered)
    if name == "AND":
        return any(_reads_header(k, answered) for k in key[1])
    return False


def search(
    key: SearchKey,
    entries: Sequence[MessageEntry],
    recent: set[int],
    loader: Callable[[int], bytes],
    *,
    headers: Callable[[list[int]], dict[int, bytes]] | None = None,
    fulltext: Callable[[list[tuple[str, str]]], Hits | None] | None = None,
) -> SearchResult:
    """Messages of `entries` (in sequence order) matching `key`; `loader(uid)` reads a file,
    `headers(uids)` gives header blocks the store keeps, and `fulltext(queries)` answers
    BODY and TEXT keys from the full-text index, or None when it cannot yet.

    Messages that vanished from disk since the snapshot are skipped, not reported as errors.
    """
    test = flags_test(key)
    by_flags = getattr(entries, "flag_matches", None)
    if test is not None and by_flags is not None:
        found = by_flags(test)  # from the store's flag column, see View.flag_matches
        if found is not None:
            return SearchResult(*found)
    largest_uid = entries[-1].uid if entries else 0
    span = _narrow(key, entries)
    seqs: list[int] = []
    uids: list[int] = []
    queries = text_queries(key) if needs_file(key) else []
    hits = fulltext(queries) if queries and fulltext is not None else None
    if not needs_file(key, hits is not None):
        pred = compile_index_key(key, len(entries), largest_uid, recent, hits)
        for i in span:
            e = entries[i]
            if pred(i + 1, e):
                seqs.append(i + 1)
                uids.append(e.uid)
        return SearchResult(seqs, uids)
    cpred = compile_key(key, len(entries), largest_uid, hits)
    if not _reads_header(key, hits is not None):
        headers = None
    blocks: dict[int, bytes] = {}
    for n, i in enumerate(span):
        entry = entries[i]
        if headers is not None and n % _HEADER_BATCH == 0:
            chunk = span[n : n + _HEADER_BATCH]
            blocks = headers([entries[j].uid for j in chunk])
        c = Candidate(i + 1, entry, entry.uid in recent, loader, blocks.get(entry.uid))
        try:
            hit = cpred(c)
        except (FileNotFoundError, NoSuchMessage):
            continue
        if hit:
            seqs.append(i + 1)
            uids.append(entry.uid)
    return SearchResult(seqs, uids)
