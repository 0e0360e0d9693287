"""SORT (RFC 5256, RFC 5957), THREAD (RFC 5256) and the sort keys of one message; no I/O.

This module owns what a message sorts and threads by: its base subject (RFC 5256 2.1), the
first addresses of From/To/Cc, its display names (RFC 5957), its sent date and its message
IDs, gathered once into `SortKeys` from the header (`keys_of`) and packed for the store's
per-message cache (`pack`/`unpack`), and the i;unicode-casemap comparator (RFC 5051) they
are compared with. It never reads a file or the index: callers hand it header bytes and
index entries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.errors
import email.header
import email.utils
import functools
import gc
import json
import operator
import re
import sys
import unicodedata
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailsuite.message import addresses
from mailsuite.message.words import decode_words

CRITERIA = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)
ALGORITHMS = ("REFERENCES", "ORDEREDSUBJECT")
KEYS_VERSION = 2  # bump when what `keys_of` extracts or `pack` writes changes


# --- i;unicode-casemap (RFC 5051) ---------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _char_key(ch: str) -> str:
    # RFC 5051 2 step 1: the titlecase mapping, where a character has one of its own (the
    # simple mapping: a character whose full mapping is longer keeps itself)
    title = ch.title()
    if len(title) != 1:
        title = ch
    # RFC 5051 2 step 2: the full decomposition (compatibility mappings too)
    return unicodedata.normalize("NFKD", title)


def casemap(text: str) -> str:
    """The i;unicode-casemap key of `text` (RFC 5051 2): compare keys as strings, which is
    the RFC's comparison of their UTF-8 octets. "ż" and "Ż" get one key, "Z" plus a
    combining dot above, so they sort right after the Z words; a letter with no
    decomposition ("Ł") sorts by its code point, after every unaccented Latin letter."""
    if text.isascii():
        return text.upper()  # the titlecase of an ASCII letter is its capital
    return "".join(map(_char_key, text))


# --- base subject (RFC 5256 2.1) ----------------------------------------------------------

_WSP_RUN = re.compile(r"[ \t\r\n]+")
_TRAILER = re.compile(r"(?:[ \t]|\(fwd\))+\Z", re.IGNORECASE)  # subj-trailer, and WSP
_BLOB = r"\[[^\[\]]*\][ \t]*"  # subj-blob = "[" *BLOBCHAR "]" *WSP
_REFWD = r"(?:re|fwd?)[ \t]*(?:" + _BLOB + r")?:"  # subj-refwd
_LEADER = re.compile(r"(?:(?:" + _BLOB + r")*" + _REFWD + r"|[ \t]+)", re.IGNORECASE)
_LEADING_BLOB = re.compile(_BLOB)
_FWD_HDR = re.compile(r"\[fwd:", re.IGNORECASE)  # subj-fwd-hdr


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 2.1: the base subject of a decoded subject, and whether it was a reply or
    forward (something of the leader, a "(fwd)" trailer or a [fwd: ...] wrapper removed).
    The result is as written; compare it through `casemap`."""
    # (1) encoded words are already decoded; white space runs become one space
    s = _WSP_RUN.sub(" ", subject)
    reply = False
    while True:
        # (2) remove subj-trailers and trailing white space
        m = _TRAILER.search(s)
        if m is not None and m.start() < len(s):
            if "(" in m.group(0):
                reply = True
            s = s[: m.start()]
        while True:
            changed = False
            # (3) remove subj-leaders: *subj-blob subj-refwd, or white space
            m = _LEADER.match(s)
            while m is not None and m.end() > 0:
                if ":" in m.group(0):
                    reply = True
                s = s[m.end() :]
                changed = True
                m = _LEADER.match(s)
            # (4) a leading subj-blob goes when something remains after it
            m = _LEADING_BLOB.match(s)
            if m is not None and s[m.end() :]:
                s = s[m.end() :]
                changed = True
            # (5) repeat (3) and (4) until neither changes anything
            if not changed:
                break
        # (6) a whole subject of "[fwd:" ... "]" is unwrapped, and we go back to (2)
        if _FWD_HDR.match(s) and s.endswith("]"):
            s = s[5:-1]
            reply = True
            continue
        return s, reply


# --- the keys of one message --------------------------------------------------------------

_MSG_ID = re.compile(rb"<([^<>\s]+)>")


@dataclass(slots=True)
class SortKeys:
    """What one message sorts and threads by; strings are decoded but not case-mapped.
    Slotted, since a server keeps one per message of every folder it sorts."""

    subject: str = ""  # the base subject
    reply: bool = False  # the subject was a reply or forward (RFC 5256 2.1)
    from_: str = ""  # addr-mailbox of the first From address (RFC 5256 3)
    to: str = ""
    cc: str = ""
    display_from: str = ""  # RFC 5957 3
    display_to: str = ""
    sent: float | None = None  # the Date field in POSIX seconds, None when unreadable
    message_id: str = ""
    references: tuple[str, ...] = ()
    # the casemap keys of the `_TEXT` attributes, in that order: worked out once (at most)
    # and kept in the store's cache with the rest, so no sort maps a string again
    _mapped: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    def mapped(self, name: str) -> str:
        """The casemap key of one string attribute."""
        if self._mapped is None:
            self._mapped = tuple(sys.intern(casemap(getattr(self, n))) for n in _TEXT)
        return self._mapped[_TEXT_AT[name]]

    def share(self) -> SortKeys:
        """Make the strings the one copy of each value (`sys.intern`): a folder's messages
        repeat senders, recipients and thread subjects, and a reply's References are the
        Message-IDs of other messages, so a server holding the keys of 100,000 messages
        keeps each of those once. Returns the keys."""
        for name in (*_TEXT, "message_id"):
            setattr(self, name, sys.intern(getattr(self, name)))
        self.references = tuple(map(sys.intern, self.references))
        if self._mapped is not None:
            self._mapped = tuple(map(sys.intern, self._mapped))
        return self


_TEXT = ("subject", "from_", "to", "cc", "display_from", "display_to")
_TEXT_AT = {name: n for n, name in enumerate(_TEXT)}


# The common shapes of a first address, `Name <local@domain>`, `"Name" <local@domain>`,
# `<local@domain>` and `local@domain`, with atoms only in the name (no comments, dots,
# escapes or line breaks inside quotes) and a dot-atom local part: for these the full
# parser's answer is known, so most messages skip it. Anything else goes to the parser.
_ATEXT = rb"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"  # RFC 5322 3.2.3, as a character class body
_DOT_ATOM = rb"[" + _ATEXT + rb"]+(?:\.[" + _ATEXT + rb"]+)*"
_DOMAIN = rb"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_FWS = rb"[ \t\r\n]*"
_ANGLE_ADDRESS = re.compile(
    rb'(?:[ \t\r\n]*"(?P<quoted>[^"\\\r\n]*)"|(?P<phrase>[\x80-\xff \t\r\n'
    + _ATEXT
    + rb"]*))"
    + _FWS
    + rb"<(?P<local>"
    + _DOT_ATOM
    + rb")@(?P<domain>"
    + _DOMAIN
    + rb")>"
    + _FWS
    + rb"(?:,|\Z)"
)
_BARE_ADDRESS = re.compile(
    _FWS + rb"(?P<local>" + _DOT_ATOM + rb")@(?P<domain>" + _DOMAIN + rb")" + _FWS + rb"(?:,|\Z)"
)
_FWS_RUN = re.compile(rb"[ \t\r\n]+")


def _simple_first(value: bytes) -> addresses.Address | None:
    """The first address of `value` when it has one of the common shapes, else None."""
    m = _ANGLE_ADDRESS.match(value)
    if m is None:
        m = _BARE_ADDRESS.match(value)
        if m is None:
            return None
        return addresses.Address(mailbox=m.group("local"), domain=m.group("domain"))
    quoted = m.group("quoted")
    if quoted is not None:
        name = quoted or None
    else:
        name = _FWS_RUN.sub(b" ", m.group("phrase")).strip(b" ") or None
    return addresses.Address(name=name, mailbox=m.group("local"), domain=m.group("domain"))


def _first_mailbox(values: list[bytes]) -> addresses.Address | None:
    """The first address of the fields that is a mailbox (not a group marker), the fields
    read as one list as ENVELOPE reads them."""
    if values:
        simple = _simple_first(values[0])
        if simple is not None:
            return simple
    for value in values:
        for a in addresses.parse(value):
            if not (a.is_group_start or a.is_group_end):
                return a
    return None


def _mailbox_of(a: addresses.Address | None) -> str:
    # RFC 5256 3: "addr-mailbox of the first ... address" (the local part, as ENVELOPE)
    return "" if a is None or a.mailbox is None else decode_words(a.mailbox)


def _display_of(a: addresses.Address | None) -> str:
    # RFC 5957 3: the display name of the first address, decoded (RFC 2047); without one,
    # the address itself (addr-mailbox "@" addr-host)
    if a is None:
        return ""
    if a.name:
        name = _WSP_RUN.sub(" ", decode_words(a.name)).strip()
        if name:
            return name
    spec = (a.mailbox or b"") + (b"@" + a.domain if a.domain else b"")
    return decode_words(spec)


def _unfold(value: bytes) -> bytes:
    return value.replace(b"\r\n", b"").replace(b"\n", b"").strip(b" \t")


_MONTHS = {
    m: n for n, m in enumerate(b"jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)
}
# RFC 5322 3.3 date-time as nearly every client writes it: [day ","] d mon yyyy hh:mm[:ss]
# and a numeric zone or GMT/UT; other forms go to the email package's lenient parser
_PLAIN_DATE = re.compile(
    rb"(?:[A-Za-z]{3},[ \t]*)?(\d{1,2})[ \t]+([A-Za-z]{3})[ \t]+(\d{4})[ \t]+"
    rb"(\d{2}):(\d{2})(?::(\d{2}))?[ \t]+(?:([+-])(\d{2})(\d{2})|GMT|UT)"
    rb"(?:[ \t]*\([^()]*\))?\Z"
)


def sent_date(value: bytes) -> float | None:
    """A Date field's value in POSIX seconds (RFC 5256 2.2: compared in UTC, a date without
    a zone taken as UTC), or None when it cannot be read."""
    m = _PLAIN_DATE.match(value)
    if m is not None:
        day, month, year, hour, minute, second, sign, zh, zm = m.groups()
        number = _MONTHS.get(month.lower())
        # two-digit years and zones of a day or more are the lenient parser's to judge
        if number is not None and int(year) >= 100 and (zh is None or int(zh) < 24):
            try:
                when = dt.datetime(
                    int(year), number, int(day), int(hour), int(minute), int(second or 0)
                )
            except ValueError:
                return None
            offset = 0 if sign is None else (int(zh) * 60 + int(zm)) * 60
            return when.replace(tzinfo=dt.UTC).timestamp() - (-offset if sign == b"-" else offset)
    try:
        when = email.utils.parsedate_to_datetime(value.decode("ascii", "replace"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def keys_of(field_values: Callable[[bytes], list[bytes]]) -> SortKeys:
    """The sort keys of a message, from `field_values(name)` (every value of a header
    field, as `imap.message.Part.field_values` gives them)."""
    keys = SortKeys()
    subjects = field_values(b"Subject")
    if subjects:
        keys.subject, keys.reply = base_subject(decode_words(_unfold(subjects[-1])))
    sender = _first_mailbox(field_values(b"From"))
    to = _first_mailbox(field_values(b"To"))
    keys.from_ = _mailbox_of(sender)
    keys.to = _mailbox_of(to)
    keys.cc = _mailbox_of(_first_mailbox(field_values(b"Cc")))
    keys.display_from = _display_of(sender)
    keys.display_to = _display_of(to)
    dates = field_values(b"Date")
    if dates:
        keys.sent = sent_date(_unfold(dates[-1]))
    ids = field_values(b"Message-ID")
    if ids:
        m = _MSG_ID.search(ids[0])
        if m is not None:
            keys.message_id = m.group(1).decode("utf-8", "replace")
    refs = [
        m.group(1).decode("utf-8", "replace")
        for v in field_values(b"References")
        for m in _MSG_ID.finditer(v)
    ]
    if not refs:
        # RFC 5256 2.2 REFERENCES (1): without References, the first ID of In-Reply-To
        for v in field_values(b"In-Reply-To"):
            m = _MSG_ID.search(v)
            if m is not None:
                refs = [m.group(1).decode("utf-8", "replace")]
                break
    keys.references = tuple(refs)
    return keys.share()


_PACKED = (
    "subject",
    "reply",
    "from_",
    "to",
    "cc",
    "display_from",
    "display_to",
    "sent",
    "message_id",
    "references",
)


_PACKED_LEN = 1 + len(_PACKED) + len(_TEXT)


def pack(keys: SortKeys) -> bytes:
    """The keys, with their casemap keys, as a blob for the store's per-message cache."""
    mapped = [keys.mapped(n) for n in _TEXT]
    return json.dumps(
        [KEYS_VERSION, *(getattr(keys, n) for n in _PACKED), *mapped], ensure_ascii=False
    ).encode()


def unpack(blob: bytes) -> SortKeys | None:
    """Keys packed by `pack`, or None for a blob of another version or a damaged one."""
    try:
        items = json.loads(blob)
        if not isinstance(items, list) or len(items) != _PACKED_LEN or items[0] != KEYS_VERSION:
            return None
        keys = SortKeys(*items[1 : 1 + len(_PACKED)])
        keys.references = tuple(keys.references)
        mapped = items[1 + len(_PACKED) :]
        if not all(isinstance(m, str) for m in mapped):
            return None
        keys._mapped = tuple(mapped)
        return keys.share()
    except (ValueError, TypeError):
        return None


# a field keys_of reads: its name at the start of a line, the colon, and the value with
# the lines that continue it (RFC 5322 2.2.3); a continuation line starts with white
# space, so it never matches as a field of its own
_KEY_FIELD = re.compile(
    rb"^(subject|from|to|cc|date|message-id|references|in-reply-to)[ \t]*:"
    rb"(.*(?:\n[ \t].*)*)",
    re.IGNORECASE | re.MULTILINE,
)


def header_fields(block: bytes) -> Callable[[bytes], list[bytes]]:
    """`field_values` for the fields `keys_of` reads, from a header block the store keeps
    (`store.headers`): the values `imap.message.Part.field_values` gives (after the colon
    and the white space following it, folding kept, the last line break dropped), found
    by one pass over the block instead of splitting every field."""
    found: dict[bytes, list[bytes]] = {}
    for m in _KEY_FIELD.finditer(block):
        value = m.group(2)
        if value.endswith(b"\r"):
            value = value[:-1]
        first = value.split(b"\n", 1)[0].rstrip(b"\r")
        skip = len(first) - len(first.lstrip(b" \t"))
        if skip == len(first) and skip:
            skip = 1  # a value of white space only loses just the space after the colon
        found.setdefault(m.group(1).upper(), []).append(value[skip:])
    return lambda name: found.get(name.upper(), [])


# --- SORT (RFC 5256 3, RFC 5957) -----------------------------------------------------------


class Item:
    """One message to sort or thread: its sequence number, UID, index entry values and
    keys."""

    __slots__ = ("arrival", "keys", "sent", "seq", "size", "uid")

    def __init__(self, seq: int, uid: int, size: int, arrival: float, keys: SortKeys) -> None:
        self.seq = seq
        self.uid = uid
        self.size = size
        self.arrival = arrival
        self.keys = keys
        # RFC 5256 2.2: the sent date, or the internal date when there is no usable Date
        self.sent = arrival if keys.sent is None else keys.sent


_TEXT_CRITERIA = {
    "SUBJECT": "subject",
    "FROM": "from_",
    "TO": "to",
    "CC": "cc",
    "DISPLAYFROM": "display_from",
    "DISPLAYTO": "display_to",
}


def _column(
    name: str, keys: Sequence[SortKeys], sizes: Sequence[int], arrivals: Sequence[float]
) -> Sequence[Any]:
    """What each message sorts by under criterion `name`, as one list in message order."""
    if name == "ARRIVAL":
        return arrivals
    if name == "SIZE":
        return sizes
    if name == "DATE":
        # RFC 5256 2.2: the sent date, or the internal date when there is no usable Date
        return [a if k.sent is None else k.sent for k, a in zip(keys, arrivals, strict=True)]
    attr = _TEXT_CRITERIA[name]
    at = _TEXT_AT[attr]
    return [k.mapped(attr) if (m := k._mapped) is None else m[at] for k in keys]


def sort_order(
    criteria: Sequence[tuple[str, bool]],
    keys: Sequence[SortKeys],
    sizes: Sequence[int],
    arrivals: Sequence[float],
) -> list[int]:
    """The positions of messages given in sequence order (their keys, sizes and internal
    dates) in the order `criteria` ((name, reverse) pairs) give, RFC 5256 3: each key breaks
    the ties of the one before; messages equal on every key stay in sequence order, even
    under REVERSE (the tie-break is not reversed). Each criterion's values are one list,
    sorted through by index, so no comparison calls back into Python."""
    perm = list(range(len(sizes)))
    # stable sorts from the last key to the first: the first key decides first
    for name, reverse in reversed(criteria):
        perm.sort(key=_column(name, keys, sizes, arrivals).__getitem__, reverse=reverse)
    return perm


class Sorted:
    """A SORT over messages in sequence order that new messages can join: the criteria's
    values per message (one list each) and the positions in sort order (`sort_order`).
    Messages appended at the end (new mail: higher sequence numbers) are put in place by a
    binary search each, so the folder is not sorted again for every delivery."""

    __slots__ = ("columns", "perm")

    def __init__(self, columns: list[tuple[list[Any], bool]], perm: array[int]) -> None:
        self.columns = columns
        self.perm = perm

    @classmethod
    def of(
        cls,
        criteria: Sequence[tuple[str, bool]],
        keys: Sequence[SortKeys],
        sizes: Sequence[int],
        arrivals: Sequence[float],
    ) -> Sorted:
        columns = [(list(_column(n, keys, sizes, arrivals)), rev) for n, rev in criteria]
        perm = list(range(len(sizes)))
        for column, reverse in reversed(columns):
            perm.sort(key=column.__getitem__, reverse=reverse)
        return cls(columns, array("I", perm))

    def __len__(self) -> int:
        return len(self.perm)

    def extended(
        self,
        criteria: Sequence[tuple[str, bool]],
        keys: Sequence[SortKeys],
        sizes: Sequence[int],
        arrivals: Sequence[float],
    ) -> Sorted:
        """A copy with messages appended (`keys`, `sizes`, `arrivals` of the new ones
        only), each placed after every message that sorts equal to it (RFC 5256 3: ties
        in sequence order, and it has the highest number)."""
        columns = [
            (column + list(_column(name, keys, sizes, arrivals)), reverse)
            for (column, reverse), (name, _) in zip(self.columns, criteria, strict=True)
        ]
        perm = array("I", self.perm)
        for pos in range(len(self.perm), len(self.perm) + len(sizes)):
            lo, hi = 0, len(perm)
            while lo < hi:  # the first message the new one sorts before
                mid = (lo + hi) // 2
                if _before(columns, pos, perm[mid]):
                    hi = mid
                else:
                    lo = mid + 1
            perm.insert(lo, pos)
        return Sorted(columns, perm)


def _before(columns: list[tuple[list[Any], bool]], a: int, b: int) -> bool:
    """Whether message `a` sorts strictly before message `b` on the criteria."""
    for column, reverse in columns:
        x, y = column[a], column[b]
        if x != y:
            return x > y if reverse else x < y
    return False


def sort_items(items: Sequence[Item], criteria: Sequence[tuple[str, bool]]) -> list[Item]:
    """`items` in the order `criteria` give (`sort_order`)."""
    ordered = sorted(items, key=operator.attrgetter("seq"))
    perm = sort_order(
        criteria, [i.keys for i in ordered], [i.size for i in ordered], [i.arrival for i in ordered]
    )
    return [ordered[p] for p in perm]


# --- THREAD (RFC 5256 2.2, 4) --------------------------------------------------------------


class Node:
    """A thread tree node: a message, or a dummy (item None) standing for a missing one."""

    __slots__ = ("children", "item", "parent")

    def __init__(self, item: Item | None = None, parent: Node | None = None) -> None:
        self.item = item
        self.parent = parent
        self.children: list[Node] = []

    def first_item(self) -> Item | None:
        node: Node | None = self
        while node is not None and node.item is None:
            node = node.children[0] if node.children else None
        return None if node is None else node.item


def _date_key(node: Node) -> tuple[float, int]:
    # RFC 5256 2.2: by sent date, ties by sequence number; a dummy by its first child
    item = node.item
    if item is None:
        item = node.first_item()
    return (0.0, 0) if item is None else (item.sent, item.seq)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Make many objects without the cycle collector running over and over: a thread tree
    (each node points at its parent and back), the keys of a whole folder. Reference
    counting still frees what goes."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def thread_orderedsubject(
    keys: Sequence[SortKeys], arrivals: Sequence[float], numbers: Sequence[int]
) -> bytes:
    """RFC 5256 2.1 ORDEREDSUBJECT as a thread-list (RFC 5256 4), for messages given in
    sequence order (their keys, internal dates, and the number to show for each): messages
    of one base subject are one thread, the first by sent date the parent of the rest, in
    sent date order; threads in the sent date order of their first. Worked out on columns,
    as SORT is: no tree is built, since the tree is always one level deep."""
    subjects = _column("SUBJECT", keys, (), arrivals)
    sent = _column("DATE", keys, (), arrivals)
    perm = list(range(len(numbers)))  # ties in sequence order
    perm.sort(key=sent.__getitem__)
    perm.sort(key=subjects.__getitem__)
    starts = [n for n in range(len(perm)) if n == 0 or subjects[perm[n]] != subjects[perm[n - 1]]]
    ends = [*starts[1:], len(perm)]
    threads = list(range(len(starts)))
    threads.sort(key=lambda t: (sent[perm[starts[t]]], perm[starts[t]]))  # ties by number
    out = bytearray()
    for t in threads:
        members = perm[starts[t] : ends[t]]
        root = numbers[members[0]]
        if len(members) == 1:
            out += b"(%d)" % root
        elif len(members) == 2:  # an only child continues the chain
            out += b"(%d %d)" % (root, numbers[members[1]])
        else:
            out += b"(%d " % root + b"".join(b"(%d)" % numbers[m] for m in members[1:]) + b")"
    return bytes(out)


def _is_ancestor(a: Node, b: Node) -> bool:
    """True when `a` is `b` or one of its ancestors."""
    node: Node | None = b
    while node is not None:
        if node is a:
            return True
        node = node.parent
    return False


def _link(parent: Node, child: Node) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def thread_references(items: Sequence[Item]) -> list[Node]:
    """RFC 5256 2.2 REFERENCES, step by step; the threads in order."""
    with paused_gc():
        return _thread_references(items)


def _thread_references(items: Sequence[Item]) -> list[Node]:
    table: dict[str, Node] = {}
    for item in sorted(items, key=operator.attrgetter("seq")):
        mid = item.keys.message_id
        # (1)(A) a missing or duplicate Message-ID gets a unique one (lowest number keeps it)
        if not mid or (mid in table and table[mid].item is not None):
            mid = f"\0{item.seq}"
        node = table.get(mid)
        if node is None:
            node = table[mid] = Node(item)
        else:
            node.item = item  # a dummy made by an earlier reference
        prev: Node | None = None
        for ref in item.keys.references:
            ref_node = table.get(ref)
            if ref_node is None:
                ref_node = table[ref] = Node()
            # a node that has a parent keeps it; no link may make a loop
            # (only a node with children can be an ancestor: most checks end there)
            # (checked in this order: most references have their parent already)
            if (
                prev is not None
                and ref_node.parent is None
                and not (ref_node.children and _is_ancestor(ref_node, prev))
            ):
                _link(prev, ref_node)
            prev = ref_node
        # (1)(B) the last reference is the parent, replacing any link a truncated
        # References made, unless that makes a loop
        loop = prev is node or (
            bool(node.children) and prev is not None and _is_ancestor(node, prev)
        )
        if prev is not None and not loop:
            _link(prev, node)
        elif prev is None and node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
    # (2) the root set
    root = Node()
    for node in table.values():
        if node.parent is None:
            root.children.append(node)
            node.parent = root
    # (3) prune dummies
    _prune(root)
    # (4) sort the top level by sent date; a dummy by its children's first
    for node in root.children:
        if node.item is None:
            node.children.sort(key=_date_key)
    root.children.sort(key=_date_key)
    # (5) gather threads of one base subject
    _gather_subjects(root)
    # (6) sort every set of siblings, deepest first
    _sort_tree(root)
    return root.children


def _prune(root: Node) -> None:
    """RFC 5256 2.2 (3), children before parents; a loop, not recursion, since a thread
    may be thousands of replies deep."""
    order: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    for node in reversed(order):  # every node after all of its descendants
        if not node.children:
            continue  # most messages: nothing to prune below them
        kept: list[Node] = []
        for child in node.children:
            if child.item is not None:
                kept.append(child)
            elif not child.children:
                continue  # a dummy without children goes
            elif node is not root or len(child.children) == 1:
                # a dummy with children gives way to them, except that its children
                # become roots only when there is one of them
                for grandchild in child.children:
                    grandchild.parent = node
                    kept.append(grandchild)
            else:
                kept.append(child)
        node.children = kept


def _thread_subject(node: Node) -> tuple[str, bool]:
    item = (
        node.item if node.item is not None else (node.children[0].item if node.children else None)
    )
    if item is None:
        return "", False
    return item.keys.mapped("subject"), item.keys.reply


def _gather_subjects(root: Node) -> None:
    """RFC 5256 2.2 (5). The root's list is rebuilt once at the end, not edited in place,
    so a folder of many threads costs no more than one pass."""
    roots = root.children
    table: dict[str, Node] = {}
    for node in roots:  # (5)(B)
        subject, reply = _thread_subject(node)
        if not subject:
            continue
        known = table.get(subject)
        if known is None:
            table[subject] = node
        elif known.item is not None and (
            node.item is None or (_thread_subject(known)[1] and not reply)
        ):
            table[subject] = node
    removed: set[int] = set()
    replaced: dict[int, Node] = {}
    for node in roots:  # (5)(C)
        subject, reply = _thread_subject(node)
        if not subject:
            continue
        known = table[subject]
        if known is node:
            continue
        removed.add(id(node))
        if known.item is None and node.item is None:
            # both dummies: the children of both become siblings
            for child in node.children:
                child.parent = known
                known.children.append(child)
        elif known.item is None or (reply and not _thread_subject(known)[1]):
            node.parent = known
            known.children.append(node)
        else:
            # a new dummy takes the place of the table's message, with both under it
            dummy = Node(parent=root)
            replaced[id(known)] = dummy
            for child in (known, node):
                child.parent = dummy
                dummy.children.append(child)
            table[subject] = dummy
    root.children = [replaced.get(id(n), n) for n in roots if id(n) not in removed]


def _sort_tree(root: Node) -> None:
    """RFC 5256 2.2 (6); the parent links go on the way, since nothing after this step
    walks up: the tree handed back holds no cycle, so reference counting frees it when the
    answer is written, not a cycle collection over every node of the folder."""
    stack = [root]
    while stack:
        node = stack.pop()
        node.parent = None
        children = node.children
        if len(children) > 1:  # most messages have no reply, or one
            children.sort(key=_date_key)
        stack.extend(children)


def render_threads(roots: Sequence[Node], uid: bool) -> bytes:
    """RFC 5256 4 thread-list: "(" thread-members / thread-nested ")" for each thread, where
    thread-members = nz-number *(SP nz-number) [SP thread-nested]: a chain of only children
    stays flat, two or more children are each a thread-list. Written with a stack, not
    recursion, for deep threads, into one list of strings joined at the end (a folder's
    answer is a few pieces per message)."""
    number = operator.attrgetter("uid" if uid else "seq")
    out: list[str] = []
    push = out.append
    stack: list[Node | None] = []  # None closes the thread-list its node opened
    for root in reversed(roots):
        stack += (None, root)
    while stack:
        node = stack.pop()
        if node is None:
            push(")")
            continue
        push("(")
        item = node.item
        children = node.children
        if item is not None:
            push(str(number(item)))
            while len(children) == 1 and (item := children[0].item) is not None:
                node = children[0]
                children = node.children
                push(" " + str(number(item)))
            if children:
                push(" ")
        for child in reversed(children):
            stack += (None, child)
    return "".join(out).encode()
