"""SEARCH evaluation (RFC 3501 6.4.4) over a selected folder's messages.

A search key is compiled once into a predicate. Keys about flags, UIDs, sequence numbers,
sizes and internal dates are answered from the index entries alone; only HEADER, BODY, TEXT
and the SENT* keys load the message, and then once per message. Callers run `search` through
``ctx.run_io`` because it is proportional to the mailbox size.
"""

from __future__ import annotations

import bisect
import datetime as dt
import email
import email.errors
import email.header
import email.policy
import email.utils
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mailsuite.imap.message import Part, parse
from mailsuite.imap.objectid import email_id
from mailsuite.imap.parser import SearchKey
from mailsuite.message import addresses
from mailsuite.store import NoSuchMessage

_FILE_KEYS = frozenset(
    {"HEADER", "ADDRESS", "BODY", "TEXT", "SENTBEFORE", "SENTON", "SENTSINCE", "EMAILID"}
)


class MessageEntry(Protocol):
    uid: int
    size: int
    internal_date: Any
    flags: frozenset[str]


class Candidate:
    """One message under test; the file is read at most once, and only when a key needs it."""

    __slots__ = ("_data", "_root", "_text", "entry", "loader", "recent", "seq")

    def __init__(
        self, seq: int, entry: MessageEntry, recent: bool, loader: Callable[[int], bytes]
    ) -> None:
        self.seq = seq
        self.entry = entry
        self.recent = recent
        self.loader = loader
        self._data: bytes | None = None
        self._root: Part | None = None
        self._text: str | None = None

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self.loader(self.entry.uid)
        return self._data

    @property
    def root(self) -> Part:
        if self._root is None:
            self._root = parse(self.data)
        return self._root

    def body_text(self) -> str:
        """The body as a reader sees it: raw, plus every text part decoded, lower-cased."""
        if self._text is None:
            raw = self.root.body_bytes()
            chunks = [raw.decode("utf-8", "replace")]
            try:
                msg = email.message_from_bytes(self.data, policy=email.policy.default)
                for part in msg.walk():
                    if part.get_content_maintype() == "text":
                        chunks.append(part.get_content())
            except (LookupError, ValueError, TypeError, AttributeError):
                pass  # undecodable parts are still searched in their raw form above
            self._text = "\n".join(chunks).casefold()
        return self._text


def needs_file(key: SearchKey) -> bool:
    name = key[0]
    if name in _FILE_KEYS:
        return True
    if name == "NOT":
        return needs_file(key[1])
    if name == "OR":
        return needs_file(key[1]) or needs_file(key[2])
    if name == "AND":
        return any(needs_file(k) for k in key[1])
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


def _decode_header(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (LookupError, ValueError, email.errors.HeaderParseError):
        return text


def _address_texts(value: bytes) -> list[str]:
    """Each address of a field as ENVELOPE reads it, written `Name <mailbox@host>` with
    the name decoded (RFC 2047), lower-cased for matching; a group gives its name."""
    out = []
    for a in addresses.parse(value):
        if a.is_group_end:
            continue
        if a.is_group_start:
            out.append(_decode_header(a.mailbox or b"").casefold())
            continue
        spec = b"%s@%s" % (a.mailbox or b"", a.domain or b"")
        if a.route:
            spec = a.route + b":" + spec
        text = "<" + spec.decode("utf-8", "replace") + ">"
        if a.name:
            text = _decode_header(a.name) + " " + text
        out.append(text.casefold())
    return out


def _sent_date(c: Candidate) -> dt.date | None:
    raw = c.root.header_value(b"Date")
    if raw is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(raw.decode("ascii", "replace")).date()
    except (TypeError, ValueError, IndexError):
        return None


Predicate = Callable[[Candidate], bool]


def compile_key(key: SearchKey, largest_seq: int, largest_uid: int) -> Predicate:
    """Turn a parsed key into a predicate; `largest_*` give ``*`` its value."""
    name = key[0]
    if name == "ALL":
        return lambda c: True
    if name in ("FLAG", "NOFLAG"):
        flag = key[1]
        want = name == "FLAG"
        if flag == "\\Recent":
            return lambda c: c.recent == want
        folded = flag.casefold()
        if flag.startswith("\\"):
            return lambda c: (flag in c.entry.flags) == want
        # keywords are case-insensitive (RFC 3501 2.3.2 atoms)
        return lambda c: any(f.casefold() == folded for f in c.entry.flags) == want
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
        field, needle = key[1].encode("ascii", "replace"), key[2].casefold()
        by_address = name == "ADDRESS"

        def header(c: Candidate) -> bool:
            for fname, raw in c.root.fields():
                if fname == field:
                    if not needle:  # RFC 3501 6.4.4: empty string matches any such header
                        return True
                    value = raw.split(b":", 1)[1].replace(b"\r\n", b"").replace(b"\n", b"")
                    if by_address:
                        # RFC 3501 6.4.4: FROM/TO/CC/BCC search the envelope's addresses,
                        # so "a@b" is found however the field spells it (comments, routes)
                        if any(needle in t for t in _address_texts(value)):
                            return True
                    elif needle in _decode_header(value.strip()).casefold():
                        return True  # HEADER: the field's text after the colon
            return False

        return header
    if name == "BODY":
        needle = key[1].casefold()
        return lambda c: needle in c.body_text()
    if name == "TEXT":
        needle = key[1].casefold()
        return lambda c: (
            needle in _decode_header(c.root.header_bytes()).casefold() or needle in c.body_text()
        )
    if name == "NOT":
        inner = compile_key(key[1], largest_seq, largest_uid)
        return lambda c: not inner(c)
    if name == "OR":
        a = compile_key(key[1], largest_seq, largest_uid)
        b = compile_key(key[2], largest_seq, largest_uid)
        return lambda c: a(c) or b(c)
    if name == "AND":
        # cheap index-only keys first, so file keys run only on survivors
        keys = sorted(key[1], key=needs_file)
        preds = [compile_key(k, largest_seq, largest_uid) for k in keys]
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
    key: SearchKey, largest_seq: int, largest_uid: int, recent: set[int]
) -> IndexPredicate:
    """A predicate over (sequence number, entry) for keys that need no file (see needs_file).

    Faster than `compile_key` because no per-message object is made: ``UID SEARCH UNSEEN`` on
    100,000 messages is one comprehension.
    """
    name = key[0]
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
        inner = compile_index_key(key[1], largest_seq, largest_uid, recent)
        return lambda i, e: not inner(i, e)
    if name == "OR":
        a = compile_index_key(key[1], largest_seq, largest_uid, recent)
        b = compile_index_key(key[2], largest_seq, largest_uid, recent)
        return lambda i, e: a(i, e) or b(i, e)
    if name == "AND":
        preds = [compile_index_key(k, largest_seq, largest_uid, recent) for k in key[1]]
        return lambda i, e: all(p(i, e) for p in preds)
    raise ValueError(f"search key {name} needs the message")


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


def search(
    key: SearchKey,
    entries: Sequence[MessageEntry],
    recent: set[int],
    loader: Callable[[int], bytes],
) -> SearchResult:
    """Messages of `entries` (in sequence order) matching `key`; `loader(uid)` reads a file.

    Messages that vanished from disk since the snapshot are skipped, not reported as errors.
    """
    largest_uid = entries[-1].uid if entries else 0
    span = _narrow(key, entries)
    seqs: list[int] = []
    uids: list[int] = []
    if not needs_file(key):
        pred = compile_index_key(key, len(entries), largest_uid, recent)
        for i in span:
            e = entries[i]
            if pred(i + 1, e):
                seqs.append(i + 1)
                uids.append(e.uid)
        return SearchResult(seqs, uids)
    cpred = compile_key(key, len(entries), largest_uid)
    for i in span:
        entry = entries[i]
        c = Candidate(i + 1, entry, entry.uid in recent, loader)
        try:
            hit = cpred(c)
        except (FileNotFoundError, NoSuchMessage):
            continue
        if hit:
            seqs.append(i + 1)
            uids.append(entry.uid)
    return SearchResult(seqs, uids)
