"""IMAP command grammar (RFC 3501 section 9 and the extensions we serve), with no I/O.

The framer hands over one complete command: the line bytes without the final CRLF, with every
literal inline as ``{n}\\r\\n`` followed by its n bytes, exactly as they arrived. `parse_command`
turns that into a `Command`; any grammar violation raises `ParseError`, which the session
answers with ``BAD`` and keeps the connection.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailsuite import mutf7
from mailsuite.imap.objectid import OBJECTID

MAX_NUMBER = 4294967295  # RFC 3501 9: number is an unsigned 32-bit integer
MAX_NESTING = 50  # search programs deeper than this are refused, not recursed into

# RFC 3501 9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
# resp-specials
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x00, 0x20)) | {0x7F}
_ATOM_CHARS = frozenset(range(0x01, 0x80)) - _ATOM_SPECIALS  # RFC 3501 9: CHAR is 7-bit
# astrings also take 8-bit bytes, so a UTF-8 login or search word sent bare is still read
_ASTRING_CHARS = _ATOM_CHARS | {ord("]")} | frozenset(range(0x80, 0x100))
# RFC 3501 9: list-char = ATOM-CHAR / list-wildcards / resp-specials
_LIST_CHARS = _ASTRING_CHARS | {ord("%"), ord("*")}
_TAG_CHARS = (_ATOM_CHARS | {ord("]")}) - {ord("+")}

_LITERAL = re.compile(rb"\{(\d{1,10})\+?\}\r\n")
_BASE64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_LITERAL_AT_END = re.compile(rb"\{(\d{1,10})(\+?)\}\Z")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DATE_TIME = re.compile(
    rb"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z"
)

SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
_SYSTEM_FLAG_BY_UPPER = {f.upper(): f for f in (*SYSTEM_FLAGS, "\\Recent")}


class ParseError(Exception):
    """The command violates the grammar; the session replies ``BAD`` with this message."""

    def __init__(self, message: str, tag: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tag = tag
        self.code = code
        # RFC 5182 2.1: a SEARCH ... RETURN (SAVE) answered NO empties the saved result
        self.resets_saved = False


def literal_at_end(line: bytes) -> tuple[int, bool] | None:
    """Return (size, non-synchronising) when the line ends with a literal announcement."""
    m = _LITERAL_AT_END.search(line)
    if m is None:
        return None
    return int(m.group(1)), bool(m.group(2))


# --- sequence sets ------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceSet:
    """RFC 3501 9 sequence-set; ``None`` in a range stands for ``*`` (the largest value)."""

    ranges: tuple[tuple[int | None, int | None], ...]
    saved: bool = False  # RFC 5182 2.1: "$", the saved search result, until resolved

    def bounds(self, largest: int) -> list[tuple[int, int]]:
        """Ranges with ``*`` replaced by `largest`, each ordered low to high."""
        out = []
        for a, b in self.ranges:
            lo = largest if a is None else a
            hi = largest if b is None else b
            # RFC 3501 9: "*:4" is the same as "4:*"; ranges may be given in either order
            out.append((lo, hi) if lo <= hi else (hi, lo))
        return out

    def contains(self, value: int, largest: int) -> bool:
        return any(lo <= value <= hi for lo, hi in self.bounds(largest))

    def select(self, values: Sequence[int], largest: int | None = None) -> list[int]:
        """The members of the ascending `values` that the set names, ascending, no repeats.

        Costs O(ranges x log n) plus the size of the answer, so ``1:*`` over 100,000 UIDs is
        one slice.
        """
        if not values:
            return []
        top = values[-1] if largest is None else largest
        picked: set[int] = set()
        chunks: list[Sequence[int]] = []
        for lo, hi in self.bounds(top):
            i = bisect.bisect_left(values, lo)
            j = bisect.bisect_right(values, hi)
            if i < j:
                chunks.append(values[i:j])
        if len(chunks) == 1:
            return list(chunks[0])
        for chunk in chunks:
            picked.update(chunk)
        return sorted(picked)

    def uses_star(self) -> bool:
        return any(a is None or b is None for a, b in self.ranges)

    def __str__(self) -> str:
        if self.saved:
            return "$"

        def one(v: int | None) -> str:
            return "*" if v is None else str(v)

        return ",".join(one(a) if a == b else f"{one(a)}:{one(b)}" for a, b in self.ranges)


# --- fetch --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """RFC 3501 6.4.5 section: part numbers, then HEADER / HEADER.FIELDS[.NOT] / TEXT / MIME."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def render(self) -> str:
        bits = [".".join(str(p) for p in self.part)] if self.part else []
        if self.text:
            spec = self.text
            if self.fields:
                spec += " (" + " ".join(self.fields) + ")"
            bits.append(spec)
        return ".".join(bits)


@dataclass(frozen=True)
class FetchItem:
    """One fetch attribute; ``section`` is set only for ``BODY[...]`` / ``BODY.PEEK[...]``."""

    name: str
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int] | None = None

    def label(self) -> str:
        """The name the response carries (RFC 3501 7.4.2: PEEK is dropped, origin only)."""
        if self.section is None:
            return self.name
        label = f"{self.name}[{self.section.render()}]"  # BODY, or BINARY (RFC 3516 4.2)
        if self.partial is not None:
            label += f"<{self.partial[0]}>"
        return label

    @property
    def sets_seen(self) -> bool:
        # RFC 3501 6.4.5: BODY[...] and RFC822 / RFC822.TEXT set \Seen; PEEK forms do not
        if self.section is not None:
            return not self.peek
        return self.name in ("RFC822", "RFC822.TEXT")


_MACROS = {
    # RFC 3501 6.4.5: the macros
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE_FETCH = frozenset(
    {
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "EMAILID",  # RFC 8474 5.1
        "THREADID",  # RFC 8474 5.2
        "MODSEQ",  # RFC 7162 3.1.4.1
    }
)

# --- search -------------------------------------------------------------------------------

# A search key is a tuple (NAME, *args). Names after normalisation:
#   ALL; FLAG f; NOFLAG f; SEQ set; UID set; LARGER n; SMALLER n;
#   BEFORE/ON/SINCE d and SENTBEFORE/SENTON/SENTSINCE d (datetime.date);
#   HEADER name value; BODY s; TEXT s; NOT k; OR a b; AND (k, ...)
SearchKey = tuple

_FLAG_KEYS = {
    "ANSWERED": ("FLAG", "\\Answered"),
    "DELETED": ("FLAG", "\\Deleted"),
    "DRAFT": ("FLAG", "\\Draft"),
    "FLAGGED": ("FLAG", "\\Flagged"),
    "RECENT": ("FLAG", "\\Recent"),
    "SEEN": ("FLAG", "\\Seen"),
    "UNANSWERED": ("NOFLAG", "\\Answered"),
    "UNDELETED": ("NOFLAG", "\\Deleted"),
    "UNDRAFT": ("NOFLAG", "\\Draft"),
    "UNFLAGGED": ("NOFLAG", "\\Flagged"),
    "UNSEEN": ("NOFLAG", "\\Seen"),
    # RFC 3501 6.4.4: OLD is NOT RECENT; NEW is RECENT UNSEEN
    "OLD": ("NOFLAG", "\\Recent"),
    "NEW": ("AND", (("FLAG", "\\Recent"), ("NOFLAG", "\\Seen"))),
    "ALL": ("ALL",),
}
_DATE_KEYS = frozenset({"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"})
_ADDRESS_KEYS = frozenset({"BCC", "CC", "FROM", "TO"})
_CHARSETS = frozenset({"UTF-8", "US-ASCII"})
SEARCH_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})  # RFC 4731, 5182
ESORT_OPTIONS = SEARCH_RETURN_OPTIONS  # RFC 5267 3: the same for SORT
SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)  # RFC 5256 3, RFC 5957 3
THREAD_ALGORITHMS = frozenset({"REFERENCES", "ORDEREDSUBJECT"})  # RFC 5256 3
SAVED_RESULT = SequenceSet((), saved=True)
# RFC 3501 6.3.10 status items, RFC 8438 2 SIZE, RFC 9051 6.3.11 DELETED and RFC 9208 4.1.4
# DELETED-STORAGE
STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "DELETED", "DELETED-STORAGE"}
)

STATUS_ITEMS |= {"HIGHESTMODSEQ"}  # RFC 7162 3.1.6
STATUS_ITEMS |= {"MAILBOXID"}  # RFC 8474 4

# --- commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AppendMessage:
    """One RFC 3502 append-message: its flags, date and the message bytes; or, for RFC 4469
    CATENATE, the parts to join (("TEXT", bytes) or ("URL", url)) and `data` empty."""

    flags: tuple[str, ...] = ()
    date: dt.datetime | None = None
    data: bytes = b""
    parts: tuple[tuple[str, bytes], ...] = ()


@dataclass
class Command:
    """A parsed command; only the fields its verb uses are set."""

    tag: str
    name: str
    uid: bool = False
    mailbox: str | None = None
    mailbox2: str | None = None
    sequence: SequenceSet | None = None
    fetch: tuple[FetchItem, ...] = ()
    search: SearchKey | None = None
    charset: str | None = None
    store_mode: str | None = None  # "add", "remove", "replace"
    silent: bool = False
    flags: tuple[str, ...] = ()
    date: dt.datetime | None = None
    data: bytes | None = None
    user: bytes | None = None
    password: bytes | None = None
    mechanism: str | None = None
    initial: bytes | None = None
    reference: str | None = None
    # LIST/LSUB patterns; None for one that is not modified UTF-7 (or after such a
    # reference), which matches no name
    patterns: tuple[str | None, ...] = ()
    extended: bool = False  # RFC 5258 3: LIST with selection or return options, or patterns
    select_opts: tuple[str, ...] = ()
    return_opts: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    params: tuple[tuple[str, str | None], ...] | None = None
    # a mailbox argument is a valid astring but not modified UTF-7 (RFC 3501 5.1.3): the
    # session answers NO; the argument holds "" and must not be used
    bad_name: bool = False
    # RFC 7162: FETCH (CHANGEDSINCE n [VANISHED]), STORE (UNCHANGEDSINCE n), SELECT
    # (CONDSTORE) or (QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]]))
    changed_since: int | None = None
    vanished: bool = False
    unchanged_since: int | None = None
    condstore: bool = False
    qresync: QresyncParams | None = None
    # SEARCH/SORT RETURN (RFC 4731 3.1, RFC 5267 3, RFC 5182 2): given at all, and the options
    esearch: bool = False
    result_opts: tuple[str, ...] = ()
    sort_criteria: tuple[tuple[str, bool], ...] = ()  # RFC 5256 3: (key, REVERSE) pairs
    algorithm: str | None = None  # RFC 5256 3: the THREAD algorithm
    # APPEND: every message (RFC 3502 MULTIAPPEND); `flags`, `date` and `data` hold the first
    appends: tuple[AppendMessage, ...] = ()
    use_attrs: tuple[str, ...] = ()  # CREATE ... (USE (\\Drafts)), RFC 6154 3


@dataclass(frozen=True)
class QresyncParams:
    """RFC 7162 3.2.5: what a client remembers of a folder it resyncs."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


class _Reader:
    """A cursor over one command's bytes."""

    def __init__(self, data: bytes, utf8: bool = False, rev2: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.bad_name = False
        self.utf8 = utf8  # RFC 6855 3: UTF8=ACCEPT is enabled; names are UTF-8
        # RFC 9051 5.1: IMAP4rev2 names are UTF-8 too, but SEARCH keeps its CHARSET (6.4.4)
        self.names_utf8 = utf8 or rev2

    def fail(self, message: str) -> ParseError:
        return ParseError(message)

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def sp(self) -> None:
        if self.peek() != 0x20:
            raise self.fail("expected a space")
        while self.peek() == 0x20:  # tolerate extra spaces between arguments
            self.pos += 1

    def maybe_sp(self) -> bool:
        if self.peek() == 0x20:
            self.sp()
            return True
        return False

    def end(self) -> None:
        while self.peek() == 0x20:  # trailing spaces are tolerated
            self.pos += 1
        if not self.at_end():
            raise self.fail("unexpected characters at the end of the command")

    def expect(self, char: bytes) -> None:
        if self.data[self.pos : self.pos + 1] != char:
            raise self.fail(f"expected {char.decode()!r}")
        self.pos += 1

    def take(self, allowed: frozenset[int]) -> bytes:
        start = self.pos
        data = self.data
        n = len(data)
        while self.pos < n and data[self.pos] in allowed:
            self.pos += 1
        return data[start : self.pos]

    def atom(self) -> str:
        raw = self.take(_ATOM_CHARS)
        if not raw:
            raise self.fail("expected an atom")
        return raw.decode("ascii", "surrogateescape")

    def word(self) -> str:
        """An atom, upper-cased (command and keyword names are case-insensitive)."""
        return self.atom().upper()

    def number(self, nonzero: bool = False) -> int:
        raw = self.take(frozenset(b"0123456789"))
        if not raw:
            raise self.fail("expected a number")
        value = int(raw)
        if value > MAX_NUMBER or (nonzero and value == 0):
            raise self.fail("number out of range")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise self.fail("unterminated quoted string")
            c = data[self.pos]
            self.pos += 1
            if c == 0x22:
                return bytes(out)
            if c == 0x5C:  # RFC 3501 9: quoted-specials are escaped with "\"
                if self.pos >= len(data) or data[self.pos] not in (0x22, 0x5C):
                    raise self.fail("bad escape in quoted string")
                out.append(data[self.pos])
                self.pos += 1
            elif c in (0x0A, 0x0D, 0x00):
                raise self.fail("CR, LF or NUL in a quoted string")
            else:
                out.append(c)

    def literal(self) -> bytes:
        m = _LITERAL.match(self.data, self.pos)
        if m is None:
            raise self.fail("bad literal")
        size = int(m.group(1))
        start = m.end()
        if start + size > len(self.data):
            raise self.fail("literal shorter than announced")
        self.pos = start + size
        return self.data[start : self.pos]

    def string(self) -> bytes:
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            return self.literal()
        raise self.fail("expected a string")

    def astring(self) -> bytes:
        c = self.peek()
        if c in (0x22, 0x7B):
            return self.string()
        raw = self.take(_ASTRING_CHARS)
        if not raw:
            raise self.fail("expected an atom or string")
        return raw

    def nstring(self) -> bytes | None:
        if self.data[self.pos : self.pos + 3].upper() == b"NIL" and (
            self.pos + 3 == len(self.data) or self.data[self.pos + 3] not in _ATOM_CHARS
        ):
            self.pos += 3
            return None
        return self.string()

    def mailbox(self) -> str:
        """A mailbox argument. A name that is not modified UTF-7 is a fine astring, so it
        is not a grammar error: `bad_name` is set and "" returned, which no folder has."""
        raw = self.astring()
        try:
            return decode_mailbox(raw, self.names_utf8)
        except ParseError:
            self.bad_name = True
            return ""

    def list_mailbox(self) -> str | None:
        """RFC 3501 9 list-mailbox, decoded; None when it is not modified UTF-7, since such
        a pattern can match no name (all names are)."""
        c = self.peek()
        raw = self.string() if c in (0x22, 0x7B) else self.take(_LIST_CHARS)
        try:
            return name_text(raw, self.names_utf8)
        except mutf7.MailboxNameError:
            return None

    def sequence_set(self) -> SequenceSet:
        if self.peek() == 0x24:  # RFC 5182 3: seq-last-command = "$", only on its own
            self.pos += 1
            return SAVED_RESULT
        ranges: list[tuple[int | None, int | None]] = []
        while True:
            a = self.seq_number()
            b = a
            if self.peek() == 0x3A:  # ":"
                self.pos += 1
                b = self.seq_number()
            ranges.append((a, b))
            if self.peek() != 0x2C:  # ","
                break
            self.pos += 1
        return SequenceSet(tuple(ranges))

    def seq_number(self) -> int | None:
        if self.peek() == 0x2A:  # "*"
            self.pos += 1
            return None
        return self.number(nonzero=True)

    def flag(self) -> str:
        if self.peek() == 0x5C:  # "\"
            self.pos += 1
            name = self.atom()
            known = _SYSTEM_FLAG_BY_UPPER.get("\\" + name.upper())
            if known is None:
                raise self.fail(f"unknown system flag \\{name}")
            return known
        return self.atom()

    def flag_list(self) -> tuple[str, ...]:
        self.expect(b"(")
        flags: list[str] = []
        while self.peek() != 0x29:
            if flags:
                self.sp()
            flags.append(self.flag())
        self.pos += 1
        return tuple(flags)

    def atom_list(self) -> tuple[str, ...]:
        self.expect(b"(")
        words: list[str] = []
        while self.peek() != 0x29:
            if words:
                self.sp()
            words.append(self.word())
        self.pos += 1
        return tuple(words)

    def date(self) -> dt.date:
        # RFC 3501 9: date = date-text / DQUOTE date-text DQUOTE; date-text = d-Mon-yyyy
        raw = self.quoted() if self.peek() == 0x22 else self.take(_ATOM_CHARS)
        m = re.fullmatch(rb"(\d{1,2})-([A-Za-z]{3})-(\d{4})", raw)
        if m is None or m.group(2).upper().decode() not in _MONTHS:
            raise self.fail("expected a date like 1-Feb-2026")
        try:
            return dt.date(int(m.group(3)), _MONTHS[m.group(2).upper().decode()], int(m.group(1)))
        except ValueError as exc:
            raise self.fail("no such date") from exc


def name_text(raw: bytes, utf8: bool = False) -> str:
    """A wire mailbox name or pattern as Unicode: modified UTF-7 (RFC 3501 5.1.3), or, once
    UTF8=ACCEPT is enabled, UTF-8 taken as it is, "&" included (RFC 6855 3).
    mutf7.MailboxNameError when it is neither."""
    if not utf8:
        return mutf7.decode(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise mutf7.MailboxNameError("mailbox name is not UTF-8") from None


def decode_mailbox(raw: bytes, utf8: bool = False) -> str:
    """Wire mailbox name to Unicode; ``INBOX`` in any case is INBOX (RFC 3501 5.1)."""
    try:
        name = name_text(raw, utf8)
    except mutf7.MailboxNameError as exc:
        raise ParseError(str(exc)) from exc
    if name.upper() == "INBOX":
        return "INBOX"
    return name


def parse_date_time(raw: bytes) -> dt.datetime:
    """RFC 3501 9 date-time ``"dd-Mon-yyyy hh:mm:ss +zzzz"`` (without the quotes)."""
    m = _DATE_TIME.match(raw)
    if m is None or m.group(2).upper().decode() not in _MONTHS:
        raise ParseError("bad date-time")
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    offset = dt.timedelta(hours=int(zh), minutes=int(zm))
    if sign == b"-":
        offset = -offset
    try:
        return dt.datetime(
            int(year),
            _MONTHS[mon.upper().decode()],
            int(day.strip()),
            int(hh),
            int(mm),
            int(ss),
            tzinfo=dt.timezone(offset),
        )
    except ValueError as exc:
        raise ParseError("bad date-time") from exc


# --- per-verb argument grammars -------------------------------------------------------------


def _fetch_att(r: _Reader) -> FetchItem:
    raw = r.take(_ATOM_CHARS - {ord("[")} | {ord(".")}).decode("ascii", "replace").upper()
    if r.peek() == 0x5B:  # "["
        if raw in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
            return _binary_att(r, raw)
        if raw not in ("BODY", "BODY.PEEK"):
            raise r.fail(f"{raw} takes no section")
        r.pos += 1
        section = _section(r)
        r.expect(b"]")
        partial = None
        if r.peek() == 0x3C:  # "<"
            r.pos += 1
            start = r.number()
            r.expect(b".")
            count = r.number(nonzero=True)
            r.expect(b">")
            partial = (start, count)
        return FetchItem("BODY", section=section, peek=raw == "BODY.PEEK", partial=partial)
    if raw not in _SIMPLE_FETCH:
        raise r.fail(f"unknown fetch attribute {raw or r.data[r.pos : r.pos + 1]!r}")
    return FetchItem(raw)


def _binary_att(r: _Reader, raw: str) -> FetchItem:
    """RFC 3516 4.1: BINARY[.PEEK] section-binary [partial] / BINARY.SIZE section-binary,
    section-binary = "[" [section-part] "]" (part numbers only). BINARY.SIZE never sets
    \\Seen, so it is a peek."""
    r.pos += 1  # "["
    parts: list[int] = []
    while r.peek() != 0x5D:
        if parts:
            r.expect(b".")
        parts.append(r.number(nonzero=True))
    r.pos += 1
    partial = None
    if raw != "BINARY.SIZE" and r.peek() == 0x3C:  # "<"
        r.pos += 1
        start = r.number()
        r.expect(b".")
        count = r.number(nonzero=True)
        r.expect(b">")
        partial = (start, count)
    name = "BINARY.SIZE" if raw == "BINARY.SIZE" else "BINARY"
    return FetchItem(name, section=Section(tuple(parts)), peek=raw != "BINARY", partial=partial)


def _section(r: _Reader) -> Section:
    parts: list[int] = []
    text: str | None = None
    fields: tuple[str, ...] = ()
    while r.peek() is not None and 0x30 <= r.peek() <= 0x39:
        parts.append(r.number(nonzero=True))
        if r.peek() == 0x2E:
            r.pos += 1
        else:
            break
    if r.peek() != 0x5D:
        text = r.take(frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")).decode()
        text = text.upper()
        if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            r.sp()
            r.expect(b"(")
            names: list[str] = []
            while r.peek() != 0x29:
                if names:
                    r.sp()
                names.append(r.astring().decode("ascii", "replace").upper())
            r.pos += 1
            if not names:
                raise r.fail("HEADER.FIELDS needs at least one field name")
            fields = tuple(names)
        elif text == "MIME":
            # RFC 3501 6.4.5: MIME is only valid with a part number
            if not parts:
                raise r.fail("MIME needs a part number")
        elif text not in ("HEADER", "TEXT"):
            raise r.fail(f"bad section text {text!r}")
    elif r.data[r.pos - 1 : r.pos] == b".":
        raise r.fail("section ends with a dot")
    return Section(tuple(parts), text, fields)


def _fetch_items(r: _Reader) -> tuple[FetchItem, ...]:
    if r.peek() == 0x28:
        r.pos += 1
        items: list[FetchItem] = []
        while r.peek() != 0x29:
            if r.at_end():
                raise r.fail("unterminated fetch list")
            if items:
                r.sp()
            items.append(_fetch_att(r))
        r.pos += 1
        if not items:
            raise r.fail("empty fetch list")
        return tuple(items)
    start = r.pos
    word = r.take(_ATOM_CHARS - {ord("[")}).decode("ascii", "replace").upper()
    if word in _MACROS:
        return tuple(FetchItem(n) for n in _MACROS[word])
    r.pos = start
    return (_fetch_att(r),)


def _search_string(r: _Reader, charset: str | None) -> str:
    raw = r.astring()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("search string is not valid UTF-8", code="BADCHARSET") from exc


def _search_key(r: _Reader, charset: str | None, depth: int) -> SearchKey:
    if depth > MAX_NESTING:
        raise r.fail("search program nested too deeply")
    c = r.peek()
    if c == 0x28:  # "(" search-key *(SP search-key) ")"
        r.pos += 1
        keys = [_search_key(r, charset, depth + 1)]
        while r.peek() != 0x29:
            r.sp()
            if r.peek() == 0x29:
                break
            keys.append(_search_key(r, charset, depth + 1))
        r.pos += 1
        return keys[0] if len(keys) == 1 else ("AND", tuple(keys))
    if c is not None and (0x30 <= c <= 0x39 or c == 0x2A or c == 0x24):
        return ("SEQ", r.sequence_set())  # RFC 5182 3: "$" is a search key too
    word = r.word()
    if word in _FLAG_KEYS:
        return _FLAG_KEYS[word]
    if word in ("KEYWORD", "UNKEYWORD"):
        r.sp()
        kw = r.atom()
        return ("FLAG" if word == "KEYWORD" else "NOFLAG", kw)
    if word in _DATE_KEYS:
        r.sp()
        return (word, r.date())
    if word in _ADDRESS_KEYS:
        r.sp()
        # RFC 3501 / RFC 9051 6.4.4: the envelope's addresses, not HEADER's field text
        return ("ADDRESS", word, _search_string(r, charset))
    if word == "SUBJECT":
        r.sp()
        return ("HEADER", word, _search_string(r, charset))
    if word == "HEADER":
        r.sp()
        name = r.astring().decode("ascii", "replace")
        r.sp()
        return ("HEADER", name.upper(), _search_string(r, charset))
    if word in ("BODY", "TEXT"):
        r.sp()
        return (word, _search_string(r, charset))
    if word in ("EMAILID", "THREADID"):
        r.sp()  # RFC 8474 6: search-key =/ "EMAILID" SP objectid / "THREADID" SP objectid
        raw = r.astring()
        if not OBJECTID.fullmatch(raw):
            raise r.fail("expected an object id")
        return (word, raw.decode("ascii"))
    if word in ("LARGER", "SMALLER"):
        r.sp()
        return (word, r.number())
    if word in ("OLDER", "YOUNGER"):
        r.sp()
        return (word, r.number(nonzero=True))  # RFC 5032 4: interval = 1*DIGIT, not 0
    if word == "UID":
        r.sp()
        return ("UID", r.sequence_set())
    if word == "MODSEQ":
        # RFC 7162 3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer; the
        # entry only narrows which flag's modseq counts, and we keep one per message
        r.sp()
        if r.peek() == 0x22:
            r.quoted()
            r.sp()
            if r.word() not in ("PRIV", "SHARED", "ALL"):
                raise r.fail("bad MODSEQ entry type")
            r.sp()
        return ("MODSEQ", _mod_sequence(r, zero=True))
    if word == "NOT":
        r.sp()
        return ("NOT", _search_key(r, charset, depth + 1))
    if word == "OR":
        r.sp()
        a = _search_key(r, charset, depth + 1)
        r.sp()
        b = _search_key(r, charset, depth + 1)
        return ("OR", a, b)
    raise r.fail(f"unknown search key {word}")


def _search_program(r: _Reader) -> tuple[str | None, SearchKey]:
    charset = None
    r.sp()
    start = r.pos
    if r.take(_ATOM_CHARS).upper() == b"CHARSET":
        if r.utf8:
            # RFC 6855 3 (erratum 4029): after ENABLE UTF8=ACCEPT a charset conflicts
            raise r.fail("no CHARSET after ENABLE UTF8=ACCEPT")
        r.sp()
        charset = r.astring().decode("ascii", "replace").upper()
        if charset not in _CHARSETS:
            # RFC 3501 6.4.4: NO [BADCHARSET] lists the charsets we do support
            raise ParseError(f"unsupported charset {charset}", code="BADCHARSET")
        r.sp()
    else:
        r.pos = start
    keys = [_search_key(r, charset, 0)]
    while r.maybe_sp():
        if r.at_end():
            break
        keys.append(_search_key(r, charset, 0))
    r.end()
    return charset, keys[0] if len(keys) == 1 else ("AND", tuple(keys))


def _search_keys(r: _Reader, charset: str | None) -> SearchKey:
    """search-key *(SP search-key) to the end of the command, as one key."""
    keys = [_search_key(r, charset, 0)]
    while r.maybe_sp():
        if r.at_end():
            break
        keys.append(_search_key(r, charset, 0))
    r.end()
    return keys[0] if len(keys) == 1 else ("AND", tuple(keys))


def _result_opts(r: _Reader, cmd: Command, allowed: frozenset[str]) -> None:
    """RFC 4466 2.6 search-return-opts: [SP "RETURN" SP "(" [opt *(SP opt)] ")"]; an
    option we do not know is BAD (RFC 4731 3.1)."""
    start = r.pos
    if not r.maybe_sp() or r.take(_ATOM_CHARS).upper() != b"RETURN":
        r.pos = start
        return
    r.sp()
    opts = r.atom_list()
    unknown = set(opts) - allowed
    if unknown:
        raise r.fail(f"unknown RETURN option {sorted(unknown)[0]}")
    cmd.esearch = True
    # RFC 4731 3.1: RETURN () is RETURN (ALL)
    cmd.result_opts = opts or ("ALL",)


def _charset(r: _Reader) -> str:
    """RFC 5256 3: the charset SORT and THREAD always name."""
    charset = r.astring().decode("ascii", "replace").upper()
    if charset not in _CHARSETS:
        raise ParseError(f"unsupported charset {charset}", code="BADCHARSET")
    return charset


def _sort(r: _Reader, cmd: Command) -> None:
    """RFC 5256 3 / RFC 5267 3: SORT [RETURN (...)] (sort-criteria) charset search-keys."""
    _result_opts(r, cmd, ESORT_OPTIONS)
    r.sp()
    r.expect(b"(")
    criteria: list[tuple[str, bool]] = []
    while r.peek() != 0x29:
        if criteria:
            r.sp()
        word = r.word()
        reverse = word == "REVERSE"
        if reverse:
            r.sp()
            word = r.word()
        if word not in SORT_KEYS:
            raise r.fail(f"unknown sort key {word}")
        criteria.append((word, reverse))
    r.pos += 1
    if not criteria:
        raise r.fail("SORT needs at least one sort key")
    cmd.sort_criteria = tuple(criteria)
    r.sp()
    cmd.charset = _charset(r)
    r.sp()
    cmd.search = _search_keys(r, cmd.charset)


def _thread(r: _Reader, cmd: Command) -> None:
    """RFC 5256 3: THREAD algorithm charset search-keys."""
    r.sp()
    cmd.algorithm = r.word()
    if cmd.algorithm not in THREAD_ALGORITHMS:
        raise r.fail(f"unknown threading algorithm {cmd.algorithm}")
    r.sp()
    cmd.charset = _charset(r)
    r.sp()
    cmd.search = _search_keys(r, cmd.charset)


def _mod_sequence(r: _Reader, *, zero: bool = False) -> int:
    """RFC 7162 7: mod-sequence-value, 1*DIGIT up to 2^63-1 (mod-sequence-valzer allows 0)."""
    raw = r.take(frozenset(b"0123456789"))
    if not raw or len(raw) > 19 or int(raw) >= 2**63 or (not zero and int(raw) == 0):
        raise r.fail("expected a mod-sequence value")
    return int(raw)


def _select_params(r: _Reader, cmd: Command) -> None:
    """RFC 4466 2.1 select-params: ``(CONDSTORE)`` (RFC 7162 3.1.8) and ``(QRESYNC
    (uidvalidity modseq [known-uids [(known-seqs known-uids)]]))`` (RFC 7162 3.2.5)."""
    r.expect(b"(")
    first = True
    while r.peek() != 0x29:
        if not first:
            r.sp()
        first = False
        word = r.word()
        if word == "CONDSTORE":
            cmd.condstore = True
        elif word == "QRESYNC":
            r.sp()
            r.expect(b"(")
            uidvalidity = r.number(nonzero=True)
            r.sp()
            modseq = _mod_sequence(r)
            known = match = None
            if r.maybe_sp():
                if r.peek() != 0x28:
                    if r.peek() == 0x24:  # RFC 7162 7: known-uids are UIDs, never "$"
                        raise r.fail("known-uids cannot be $")
                    known = r.sequence_set()
                    if known.uses_star():
                        raise r.fail("known-uids cannot use *")  # RFC 7162 7
                    r.maybe_sp()
                if r.peek() == 0x28:
                    r.pos += 1
                    seqs = r.sequence_set()
                    r.sp()
                    uids = r.sequence_set()
                    r.expect(b")")
                    match = (seqs, uids)
            r.expect(b")")
            cmd.qresync = QresyncParams(uidvalidity, modseq, known, match)
        else:
            raise r.fail(f"unknown select parameter {word}")
    r.pos += 1


def _fetch_modifiers(r: _Reader, cmd: Command) -> None:
    """RFC 4466 2.4 fetch-modifiers: ``(CHANGEDSINCE n)`` (RFC 7162 3.1.4.1) and, in
    UID FETCH, ``VANISHED`` (RFC 7162 3.2.6)."""
    start = r.pos
    if not r.maybe_sp() or r.peek() != 0x28:
        r.pos = start
        return
    r.pos += 1
    first = True
    while r.peek() != 0x29:
        if not first:
            r.sp()
        first = False
        word = r.word()
        if word == "CHANGEDSINCE":
            r.sp()
            cmd.changed_since = _mod_sequence(r)
        elif word == "VANISHED":
            cmd.vanished = True
        else:
            raise r.fail(f"unknown fetch modifier {word}")
    r.pos += 1
    if cmd.vanished and (not cmd.uid or cmd.changed_since is None):
        # RFC 7162 3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE
        raise r.fail("VANISHED needs UID FETCH and CHANGEDSINCE")


def _store(r: _Reader, cmd: Command) -> None:
    r.sp()
    cmd.sequence = r.sequence_set()
    r.sp()
    if r.peek() == 0x28:  # RFC 4466 2.5 store-modifiers; RFC 7162 3.1.3 UNCHANGEDSINCE
        r.pos += 1
        if r.word() != "UNCHANGEDSINCE":
            raise r.fail("unknown store modifier")
        r.sp()
        cmd.unchanged_since = _mod_sequence(r, zero=True)
        r.expect(b")")
        r.sp()
    item = r.word()
    modes = {"FLAGS": "replace", "+FLAGS": "add", "-FLAGS": "remove"}
    base, _, suffix = item.partition(".")
    if base not in modes or suffix not in ("", "SILENT"):
        raise r.fail("expected FLAGS, +FLAGS or -FLAGS")
    cmd.store_mode = modes[base]
    cmd.silent = suffix == "SILENT"
    r.sp()
    if r.peek() == 0x28:
        cmd.flags = r.flag_list()
    else:
        flags = [r.flag()]
        while r.maybe_sp():
            if r.at_end():
                break
            flags.append(r.flag())
        cmd.flags = tuple(flags)
    if "\\Recent" in cmd.flags:
        # RFC 3501 2.3.2: \Recent cannot be altered by the client
        raise r.fail("\\Recent cannot be stored")


def _append(r: _Reader, cmd: Command) -> None:
    """RFC 3502 3: append = "APPEND" SP mailbox 1*(SP append-message)."""
    r.sp()
    cmd.mailbox = r.mailbox()
    r.sp()
    messages = [_append_message(r)]
    while r.maybe_sp() and not r.at_end():
        messages.append(_append_message(r))
    cmd.appends = tuple(messages)
    cmd.flags, cmd.date, cmd.data = messages[0].flags, messages[0].date, messages[0].data


def _append_message(r: _Reader) -> AppendMessage:
    """RFC 3502 3: append-message = append-opts SP append-data (read from after its SP);
    append-opts = [SP flag-list] [SP date-time]."""
    flags: tuple[str, ...] = ()
    date = None
    if r.peek() == 0x28:
        flags = r.flag_list()
        if "\\Recent" in flags:
            raise r.fail("\\Recent cannot be set by APPEND")
        r.sp()
    if r.peek() == 0x22:
        date = parse_date_time(r.quoted())
        r.sp()
    if r.data[r.pos : r.pos + 5].upper() == b"UTF8 ":
        # RFC 6855 4: append-data =/ "UTF8" SP "(" literal8 ")", only once enabled
        if not r.utf8:
            raise r.fail("UTF8 APPEND needs ENABLE UTF8=ACCEPT first")
        r.pos += 5
        r.expect(b"(")
        r.expect(b"~")
        data = r.literal()
        r.expect(b")")
        return AppendMessage(flags, date, data)
    if r.data[r.pos : r.pos + 8].upper() == b"CATENATE":
        r.pos += 8
        return AppendMessage(flags, date, parts=_cat_parts(r))
    if r.peek() == 0x7E:  # RFC 3516 4.4: "~" literal8, a message that may hold NUL
        r.pos += 1
    elif r.peek() != 0x7B:
        raise r.fail("APPEND needs the message as a literal")
    return AppendMessage(flags, date, r.literal())


def _cat_parts(r: _Reader) -> tuple[tuple[str, bytes], ...]:
    """RFC 4469 5: SP "(" cat-part *(SP cat-part) ")", cat-part = "TEXT" SP literal /
    "URL" SP astring."""
    r.sp()
    r.expect(b"(")
    parts: list[tuple[str, bytes]] = []
    while r.peek() != 0x29:
        if parts:
            r.sp()
        kind = r.word()
        r.sp()
        if kind == "TEXT":
            if r.peek() == 0x7E:  # RFC 3516 4.4: literal8 once BINARY is offered
                r.pos += 1
            elif r.peek() != 0x7B:
                raise r.fail("CATENATE TEXT needs a literal")
            parts.append((kind, r.literal()))
        elif kind == "URL":
            parts.append((kind, r.astring()))
        else:
            raise r.fail("expected TEXT or URL")
    r.pos += 1
    if not parts:
        raise r.fail("CATENATE needs at least one part")
    return tuple(parts)


def _list(r: _Reader, cmd: Command) -> None:
    """RFC 5258 6: "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    [SP list-return-opts]; mbox-or-pat = list-mailbox / "(" list-mailbox *(SP ...) ")".

    Options are only read here; which ones exist is the session's business, so an unknown
    one gets BAD whatever the pattern."""
    r.sp()
    if r.peek() == 0x28:  # RFC 5258 3: list-select-opts
        cmd.select_opts = r.atom_list()
        cmd.extended = True
        r.sp()
    reference = _reference(r)
    r.sp()
    if r.peek() == 0x28:  # RFC 5258 3: several patterns
        r.pos += 1
        if r.peek() == 0x29:
            raise r.fail("expected at least one pattern")
        patterns = [r.list_mailbox()]
        while r.peek() != 0x29:
            r.sp()
            patterns.append(r.list_mailbox())
        r.pos += 1
        cmd.extended = True
    else:
        patterns = [r.list_mailbox()]
    if r.maybe_sp() and not r.at_end():
        if r.word() != "RETURN":
            raise r.fail("expected RETURN")
        r.sp()
        cmd.return_opts = _list_return_opts(r, cmd)  # RFC 5258 6: list-return-opts
        cmd.extended = True
    _set_patterns(cmd, reference, patterns)


def _list_return_opts(r: _Reader, cmd: Command) -> tuple[str, ...]:
    """RFC 5258 6 return options; RFC 5819 2: ``STATUS (status-att-list)`` is one, its items
    go to `cmd.status_items`."""
    r.expect(b"(")
    words: list[str] = []
    while r.peek() != 0x29:
        if words:
            r.sp()
        words.append(r.word())
        if words[-1] == "STATUS":
            r.sp()
            cmd.status_items = _status_att_list(r)
    r.pos += 1
    return tuple(words)


def _status_att_list(r: _Reader) -> tuple[str, ...]:
    """RFC 3501 9 "(" status-att *(SP status-att) ")", with the items of `STATUS_ITEMS`."""
    items = r.atom_list()
    if not items or not set(items) <= STATUS_ITEMS:
        raise r.fail("bad STATUS item list")
    return items


def _create_params(r: _Reader) -> tuple[str, ...]:
    """RFC 6154 6 with RFC 4466 2.2: create-params = "(" "USE" SP "(" [use-attr *(SP
    use-attr)] ")" ")"; use-attr = "\\" atom (which ones exist is the store's business)."""
    r.expect(b"(")
    if r.word() != "USE":
        raise r.fail("expected USE")
    r.sp()
    r.expect(b"(")
    attrs: list[str] = []
    while r.peek() != 0x29:
        if attrs:
            r.sp()
        r.expect(b"\\")
        attrs.append("\\" + r.atom())
    r.pos += 1
    r.expect(b")")
    return tuple(attrs)


def _quota(r: _Reader, cmd: Command) -> None:
    """RFC 9208 4.1.1 GETQUOTA SP quota-root, 4.1.3 SETQUOTA SP quota-root SP
    setquota-list; the root goes to `cmd.words`, SETQUOTA's (resource, limit) pairs to
    `cmd.params` (checked so that bad syntax is BAD, though SETQUOTA is refused)."""
    r.sp()
    cmd.words = (r.astring().decode("utf-8", "replace"),)  # quota-root = astring
    if cmd.name == "GETQUOTA":
        return
    r.sp()
    r.expect(b"(")  # setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"
    pairs: list[tuple[str, str | None]] = []
    while r.peek() != 0x29:
        if pairs:
            r.sp()
        resource = r.word()  # resource-name = atom
        r.sp()
        limit = r.take(frozenset(b"0123456789"))  # resource-limit = number64
        if not limit or int(limit) >= 2**63:
            raise r.fail("expected a resource limit")
        pairs.append((resource, limit.decode()))
    r.pos += 1
    cmd.params = tuple(pairs)


def _lsub(r: _Reader, cmd: Command) -> None:
    """RFC 3501 6.3.9: LSUB reference mailbox-pattern (no extended forms)."""
    r.sp()
    reference = _reference(r)
    r.sp()
    _set_patterns(cmd, reference, [r.list_mailbox()])


def _reference(r: _Reader) -> str | None:
    """The LIST/LSUB reference (RFC 3501 9: mailbox), decoded; None when not modified
    UTF-7."""
    try:
        return name_text(r.astring(), r.names_utf8)
    except mutf7.MailboxNameError:
        return None


def _set_patterns(cmd: Command, reference: str | None, patterns: list[str | None]) -> None:
    """A reference that is not modified UTF-7 makes every pattern match nothing."""
    cmd.reference = "" if reference is None else reference
    cmd.patterns = tuple(None if reference is None else p for p in patterns)


def _id_params(r: _Reader) -> tuple[tuple[str, str | None], ...] | None:
    # RFC 2971 3.3: id-params-list = "(" *(string SP nstring) ")" / nil
    if r.peek() != 0x28:
        if r.word() != "NIL":
            raise r.fail("expected a parameter list or NIL")
        return None
    r.pos += 1
    pairs: list[tuple[str, str | None]] = []
    while r.peek() != 0x29:
        if pairs:
            r.sp()
        key = r.string().decode("utf-8", "replace")
        r.sp()
        value = r.nstring()
        pairs.append((key, None if value is None else value.decode("utf-8", "replace")))
        if len(pairs) > 30:  # RFC 2971 3.3: at most 30 field-value pairs
            raise r.fail("too many ID parameters")
    r.pos += 1
    return tuple(pairs)


_NO_ARGS = frozenset(
    {
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "STARTTLS",
        "CHECK",
        "CLOSE",
        "EXPUNGE",
        "IDLE",
        "NAMESPACE",
        "UNSELECT",
    }
)
_ONE_MAILBOX = frozenset(
    {"SELECT", "EXAMINE", "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "GETQUOTAROOT"}
)  # RFC 9208 4.1.2: getquotaroot = "GETQUOTAROOT" SP mailbox
_UID_VERBS = frozenset({"FETCH", "SEARCH", "STORE", "COPY", "MOVE", "EXPUNGE", "SORT", "THREAD"})


def parse_tag(data: bytes) -> str | None:
    """The tag of a command line if it has a valid one (used to answer BAD to bad input)."""
    r = _Reader(data)
    raw = r.take(_TAG_CHARS)
    if not raw or r.peek() != 0x20:
        return None
    return raw.decode("ascii", "replace")


def parse_command(data: bytes, utf8: bool = False, rev2: bool = False) -> Command:
    """Parse one complete command (see the module docstring for the framing); `utf8` when
    the session enabled UTF8=ACCEPT (RFC 6855), `rev2` when it enabled IMAP4rev2."""
    r = _Reader(data, utf8, rev2)
    raw_tag = r.take(_TAG_CHARS)
    if not raw_tag:
        raise ParseError("missing tag")
    tag = raw_tag.decode("ascii", "replace")
    try:
        r.sp()
        cmd = Command(tag=tag, name=r.word())
        _arguments(r, cmd)
    except ParseError as exc:
        exc.tag = tag
        raise
    cmd.bad_name = r.bad_name
    return cmd


def _arguments(r: _Reader, cmd: Command) -> None:
    name = cmd.name
    if name == "UID":
        r.sp()
        cmd.uid = True
        cmd.name = name = r.word()
        if name not in _UID_VERBS:
            raise r.fail(f"UID {name} is not a command")
        if name == "EXPUNGE":  # RFC 4315 2.1: UID EXPUNGE sequence-set
            r.sp()
            cmd.sequence = r.sequence_set()
            r.end()
            return
    if name in _NO_ARGS:
        r.end()
    elif name in _ONE_MAILBOX:
        r.sp()
        cmd.mailbox = r.mailbox()
        if name in ("SELECT", "EXAMINE") and r.maybe_sp() and not r.at_end():
            _select_params(r, cmd)
        if name == "CREATE" and r.maybe_sp() and not r.at_end():
            cmd.use_attrs = _create_params(r)
        r.end()
    elif name == "LOGIN":
        r.sp()
        cmd.user = r.astring()
        r.sp()
        cmd.password = r.astring()
        r.end()
    elif name == "AUTHENTICATE":
        r.sp()
        cmd.mechanism = r.word()
        if r.maybe_sp() and not r.at_end():
            # RFC 4959 3: SASL-IR initial response ("=" means empty)
            cmd.initial = r.take(_BASE64_CHARS)
        r.end()
    elif name == "RENAME":
        r.sp()
        cmd.mailbox = r.mailbox()
        r.sp()
        cmd.mailbox2 = r.mailbox()
        r.end()
    elif name in ("LIST", "LSUB"):
        if name == "LSUB":
            _lsub(r, cmd)
        else:
            _list(r, cmd)
        r.end()
    elif name == "STATUS":
        r.sp()
        cmd.mailbox = r.mailbox()
        r.sp()
        cmd.status_items = _status_att_list(r)
        r.end()
    elif name == "APPEND":
        _append(r, cmd)
        r.end()
    elif name == "SEARCH":
        _result_opts(r, cmd, SEARCH_RETURN_OPTIONS)  # RFC 4731 3.1
        try:
            cmd.charset, cmd.search = _search_program(r)
        except ParseError as exc:
            exc.resets_saved = "SAVE" in cmd.result_opts
            raise
    elif name == "SORT":
        try:
            _sort(r, cmd)
        except ParseError as exc:
            exc.resets_saved = "SAVE" in cmd.result_opts
            raise
    elif name == "THREAD":
        _thread(r, cmd)
    elif name == "FETCH":
        r.sp()
        cmd.sequence = r.sequence_set()
        r.sp()
        cmd.fetch = _fetch_items(r)
        _fetch_modifiers(r, cmd)
        r.end()
    elif name == "STORE":
        _store(r, cmd)
        r.end()
    elif name in ("COPY", "MOVE"):
        r.sp()
        cmd.sequence = r.sequence_set()
        r.sp()
        cmd.mailbox = r.mailbox()
        r.end()
    elif name == "ENABLE":
        words = []
        while r.maybe_sp() and not r.at_end():
            words.append(r.word())
        if not words:
            raise r.fail("ENABLE needs a capability")
        cmd.words = tuple(words)
        r.end()
    elif name == "ID":
        r.sp()
        cmd.params = _id_params(r)
        r.end()
    elif name in ("GETQUOTA", "SETQUOTA"):
        _quota(r, cmd)
        r.end()
    elif name == "COMPRESS":
        r.sp()  # RFC 4978 3: COMPRESS SP algorithm
        cmd.words = (r.word().upper(),)
        r.end()
    else:
        raise ParseError(f"unknown command {name}")
