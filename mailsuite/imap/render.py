"""Byte-exact IMAP response data (RFC 3501 7.4.2): strings, ENVELOPE, BODY/BODYSTRUCTURE,
BODY[section]<partial>, INTERNALDATE and whole FETCH lines. No I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
from collections.abc import Iterable
from typing import Any

from mailsuite import mutf7
from mailsuite.imap import binary, objectid
from mailsuite.imap.message import MESSAGE, MULTIPART, Part, parse, section_bytes
from mailsuite.imap.parser import FetchItem
from mailsuite.message import addresses, mime

_QUOTE_MAX = 1024  # longer strings are sent as literals
_MONTHS_B = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct")
_MONTHS_B += (b"Nov", b"Dec")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def string(data: bytes | str) -> bytes:
    """A quoted string when that is possible, else a literal (RFC 3501 4.3)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if (
        len(data) > _QUOTE_MAX
        or any(b in data for b in (b"\r", b"\n", b"\0"))
        or not data.isascii()
    ):
        return literal(data)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def nstring(data: bytes | str | None) -> bytes:
    return b"NIL" if data is None else string(data)


def astring_mailbox(name: str, utf8: bool = False) -> bytes:
    """A mailbox name on the wire: modified UTF-7, always quoted; once UTF8=ACCEPT is
    enabled the name itself, quoted UTF-8 (RFC 6855 3: no modified UTF-7 then)."""
    if not utf8:
        return string(mutf7.encode(name))
    data = name.encode("utf-8")
    if len(data) > _QUOTE_MAX or any(b in data for b in (b"\r", b"\n", b"\0")):
        return literal(data)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def plist(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def flags(names: Iterable[str]) -> bytes:
    return b"(" + " ".join(names).encode("utf-8") + b")"


def internal_date(when: dt.datetime | float) -> bytes:
    """RFC 3501 9 date-time, quoted: ``"dd-Mon-yyyy hh:mm:ss +zzzz"``."""
    if not isinstance(when, dt.datetime):
        # POSIX seconds carry no zone: shown in UTC, formatted without datetime (hot path)
        t = time.gmtime(when)
        return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
            t.tm_mday,
            _MONTHS_B[t.tm_mon - 1],
            t.tm_year,
            t.tm_hour,
            t.tm_min,
            t.tm_sec,
        )
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    offset = when.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    zone = f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    text = (
        f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} {zone}"
    )
    return b'"' + text.encode("ascii") + b'"'


# --- ENVELOPE -----------------------------------------------------------------------------

_SPACES = re.compile(rb"[ \t\r\n]+")
_ADDRESS_FIELDS = (b"From", b"Sender", b"Reply-To", b"To", b"Cc", b"Bcc")


def _unnul(value: bytes) -> bytes:
    """RFC 3501 9: strings hold no NUL (CHAR8); a NUL in a header becomes U+FFFD."""
    return value.replace(b"\0", "\ufffd".encode()) if b"\0" in value else value


def _one_line(value: bytes) -> bytes:
    """A folded value on one line: line breaks dropped, a space where none follows."""
    if b"\r" not in value and b"\n" not in value:
        return value
    out = bytearray()
    for i, c in enumerate(value):
        if c in (0x0D, 0x0A):
            if i + 1 < len(value) and value[i + 1] not in b" \t\r\n":
                out += b" "
        else:
            out.append(c)
    return bytes(out)


def _for_humans(value: bytes) -> bytes:
    """Subject and display names as people read them: white space runs as one space,
    trimmed (what Dovecot sends; the text itself is not decoded)."""
    return _SPACES.sub(b" ", value.replace(b"\0", b"\x80")).strip(b" ")


def _address_list(items: list[addresses.Address]) -> bytes:
    """RFC 3501 7.4.2 / 9: "(" 1*address ")" (no space between them) or NIL.

    A group is a start marker (NIL NIL name NIL), its members and an end marker
    (NIL NIL NIL NIL); a mailbox always has a mailbox and a host, so it is never read as
    a group marker.
    """
    if not items:
        return b"NIL"
    out = []
    for a in items:
        name = b"NIL" if a.name is None else string(_for_humans(a.name))
        out.append(
            b"(%s %s %s %s)" % (name, nstring(a.route), nstring(a.mailbox), nstring(a.domain))
        )
    return b"(" + b"".join(out) + b")"


def envelope(msg: Part) -> bytes:
    """RFC 3501 7.4.2 ENVELOPE from the message's own header fields (values not decoded).

    Repeated address fields are read as one list (Dovecot does so that a reader cannot be
    shown a different From than the one checked); of the other fields the last counts.
    """

    def last(name: bytes) -> bytes | None:
        values = msg.field_values(name)
        return _unnul(values[-1]) if values else None

    lists = {}
    for name in _ADDRESS_FIELDS:
        found: list[addresses.Address] = []
        for value in msg.field_values(name):
            found += addresses.parse(value)
        lists[name] = found
    subject = last(b"Subject")
    parts = [
        nstring(None if (v := last(b"Date")) is None else _one_line(v)),
        b"NIL" if subject is None else string(_for_humans(subject)),
        _address_list(lists[b"From"]),
        # RFC 3501 7.4.2: sender and reply-to default to from when absent
        _address_list(lists[b"Sender"] or lists[b"From"]),
        _address_list(lists[b"Reply-To"] or lists[b"From"]),
        _address_list(lists[b"To"]),
        _address_list(lists[b"Cc"]),
        _address_list(lists[b"Bcc"]),
        nstring(None if (v := last(b"In-Reply-To")) is None else _one_line(v)),
        nstring(None if (v := last(b"Message-ID")) is None else _one_line(v)),
    ]
    return plist(parts)


# --- BODY / BODYSTRUCTURE -----------------------------------------------------------------

# RFC 3501 7.4.2 needs at least one body in a multipart; an empty one shows an empty text part
_EMPTY_BODY = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0)'
_EMPTY_BODYSTRUCTURE = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)'


def _params(values: list[tuple[bytes, bytes]] | None, default_charset: bool = False) -> bytes:
    """body-fld-param: name/value pairs as written; text parts get the RFC 2045 5.2 default
    charset when they name none."""
    items = []
    for key, value in values or ():
        items += [string(key.upper()), string(value)]
    if default_charset and not any(k.lower() == b"charset" for k, _ in values or ()):
        items += [b'"CHARSET"', b'"us-ascii"']
    return plist(items) if items else b"NIL"


class _Content:
    """The Content-* fields of one entity as BODYSTRUCTURE shows them (the first of each
    counts; none at all outside a MIME entity, RFC 2045 4)."""

    def __init__(self, part: Part) -> None:
        self.id = self.description = self.md5 = self.location = None
        self.encoding: bytes | None = None
        self.disposition: tuple[bytes, list[tuple[bytes, bytes]]] | None = None
        self.languages: list[bytes] = []
        if not part.is_mime:
            return

        def first(name: bytes) -> bytes | None:
            values = part.field_values(name)
            return _one_line(_unnul(values[0])) if values else None

        self.id = first(b"Content-ID")
        self.description = first(b"Content-Description")
        self.md5 = first(b"Content-MD5")
        self.location = first(b"Content-Location")
        encodings = part.field_values(b"Content-Transfer-Encoding")
        if encodings:
            self.encoding = mime.transfer_encoding(encodings[0])
        for value in part.field_values(b"Content-Disposition"):
            # a later field counts while the ones before it had no parameters (as Dovecot)
            if self.disposition is None or not self.disposition[1]:
                self.disposition = mime.disposition(value) or self.disposition
        langs = part.field_values(b"Content-Language")
        if langs:
            self.languages = mime.languages(langs[0])

    def extension(self) -> list[bytes]:
        """body-fld-dsp, body-fld-lang, body-fld-loc."""
        if self.disposition is None:
            dsp = b"NIL"
        else:
            kind, params = self.disposition
            dsp = plist([string(kind.upper()), _params(params)])
        lang = plist(string(t) for t in self.languages) if self.languages else b"NIL"
        return [dsp, lang, nstring(self.location)]


def _count_lines(data: bytes) -> int:
    """body-fld-lines: the line breaks; a last line without one is not a line."""
    return data.count(b"\n")


def body_structure(part: Part, extended: bool) -> bytes:
    """BODYSTRUCTURE when `extended`, else the non-extensible BODY (RFC 3501 7.4.2)."""
    content = _Content(part)
    ct = part.content_type
    if part.kind == MULTIPART and ct is not None:
        if part.children:
            kids = b"".join(body_structure(c, extended) for c in part.children)
        else:
            kids = _EMPTY_BODYSTRUCTURE if extended else _EMPTY_BODY
        out = [kids, string(ct.subtype.upper())]
        if extended:
            out += [_params(ct.params), *content.extension()]
        return b"(" + b" ".join(out) + b")"
    body = part.body_bytes()
    message = part.kind == MESSAGE and part.message is not None
    if message:
        kind, text = [b'"MESSAGE"', b'"RFC822"'], False
    elif ct is None:
        kind, text = [b'"TEXT"', b'"PLAIN"'], True
    else:
        kind, text = (
            [string(ct.type.upper()), string(ct.subtype.upper())],
            ct.type.lower() == b"text",
        )
    out = [
        *kind,
        _params(ct.params if ct is not None else None, default_charset=text),
        nstring(content.id),
        nstring(content.description),
        string(content.encoding.upper() if content.encoding else b"7BIT"),
        str(len(body)).encode(),
    ]
    if message:
        assert part.message is not None
        out += [
            envelope(part.message),
            body_structure(part.message, extended),
            str(_count_lines(body)).encode(),
        ]
    elif text:
        out.append(str(_count_lines(body)).encode())
    if extended:
        out += [nstring(content.md5), *content.extension()]
    return b"(" + b" ".join(out) + b")"


# --- FETCH --------------------------------------------------------------------------------


def needs_body(items: Iterable[FetchItem]) -> bool:
    """Whether any item needs the message file (everything else comes from the index)."""
    return any(
        i.name not in ("FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ") for i in items
    )


def body_literal(chunk: bytes) -> bytes:
    """Message bytes as a literal. RFC 3501 9: a literal is CHAR8, which excludes NUL, so a
    NUL is sent as 0x80 (as Dovecot does; the length stays the same)."""
    return literal(chunk.replace(b"\0", b"\x80") if b"\0" in chunk else chunk)


@functools.lru_cache(maxsize=256)
def _label(item: FetchItem) -> bytes:
    """``BODY[section]<origin> `` as sent, worked out once per distinct item, not per message."""
    return item.label().encode() + b" "


def fetch_item(item: FetchItem, data: bytes, root: Part) -> bytes:
    """``label value`` for one body-dependent fetch item."""
    name = item.name
    if name in ("BINARY", "BINARY.SIZE"):
        return binary.fetch_item(item, root)  # RFC 3516 4.2, 4.3
    if name == "EMAILID":
        return b"EMAILID " + objectid.fetch_value(data)  # RFC 8474 5.1
    if item.section is not None:
        sec = item.section
        chunk = section_bytes(root, sec.part, sec.text, sec.fields)
        if item.partial is not None:
            start, count = item.partial
            # RFC 3501 6.4.5: an origin past the end gives the empty string
            chunk = chunk[start : start + count]
        return _label(item) + body_literal(chunk)
    if name == "ENVELOPE":
        return b"ENVELOPE " + envelope(root)
    if name == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + body_structure(root, True)
    if name == "BODY":
        return b"BODY " + body_structure(root, False)
    if name == "RFC822":
        return b"RFC822 " + body_literal(data)
    if name == "RFC822.HEADER":
        return b"RFC822.HEADER " + body_literal(root.header_bytes())
    if name == "RFC822.TEXT":
        return b"RFC822.TEXT " + body_literal(root.body_bytes())
    raise ValueError(name)


_INDEX_FORMATS = {
    "UID": b"UID %d",
    "FLAGS": b"FLAGS %s",
    "RFC822.SIZE": b"RFC822.SIZE %d",
    "MODSEQ": b"MODSEQ (%d)",  # RFC 7162 3.1.4.1: the per-message mod-sequence
    "INTERNALDATE": b"INTERNALDATE %s",
}


def index_lines(entries: Iterable[tuple[int, Any]], names: list[str], recent: set[int]) -> bytes:
    """FETCH lines for items the index answers (UID, FLAGS, RFC822.SIZE, INTERNALDATE).

    The hot path of ``UID FETCH 1:* (UID FLAGS RFC822.SIZE)``: one format string for the
    line, flag lists rendered once per distinct set.
    """
    template = b"* %d FETCH (" + b" ".join(_INDEX_FORMATS[n] for n in names) + b")\r\n"
    flag_text: dict[Any, bytes] = {}
    getters = []
    for n in names:
        if n == "UID":
            getters.append(lambda m: m.uid)
        elif n == "RFC822.SIZE":
            getters.append(lambda m: m.size)
        elif n == "MODSEQ":
            getters.append(lambda m: m.modseq)
        elif n == "FLAGS":

            def get_flags(m: Any) -> bytes:
                key = (m.flags, m.uid in recent) if recent else m.flags
                text = flag_text.get(key)
                if text is None:
                    names_ = sorted((*m.flags, "\\Recent")) if m.uid in recent else sorted(m.flags)
                    text = flag_text[key] = flags(names_)
                return text

            getters.append(get_flags)
        else:
            getters.append(lambda m: internal_date(m.internal_date))
    if names == ["UID", "FLAGS", "RFC822.SIZE"]:
        # the commonest client request gets a loop without per-item calls
        out = []
        for seq, m in entries:
            key = (m.flags, m.uid in recent)
            text = flag_text.get(key)
            if text is None:
                text = flag_text[key] = flags(sorted((*m.flags, "\\Recent") if key[1] else m.flags))
            out.append(template % (seq, m.uid, text, m.size))
        return b"".join(out)
    return b"".join(template % (seq, *[g(m) for g in getters]) for seq, m in entries)


CACHEABLE = ("ENVELOPE", "BODYSTRUCTURE", "BODY", "EMAILID")


def cacheable_value(name: str, root: Part) -> bytes:
    """The value of ENVELOPE, BODYSTRUCTURE, BODY or EMAILID, fit to keep with the message."""
    if name == "ENVELOPE":
        return envelope(root)
    if name == "EMAILID":
        return objectid.fetch_value(root.data)  # RFC 8474 5.1
    return body_structure(root, name == "BODYSTRUCTURE")


def fetch_line(
    seq: int,
    items: Iterable[FetchItem],
    *,
    uid: int,
    flag_names: Iterable[str],
    size: int,
    when: dt.datetime | float,
    data: bytes | None,
    known: dict[str, bytes] | None = None,
    modseq: int = 0,
    root: Part | None = None,
) -> bytes:
    """A whole ``* n FETCH (...)`` line (with CRLF).

    `known` holds already computed ENVELOPE / BODYSTRUCTURE / BODY values; `data` is needed
    for anything else that needs_body() reports; `root` is `data` parsed, when the caller
    has it (a header block read by `message.header_part`).
    """
    out = []
    for item in items:
        name = item.name
        if name == "UID":
            out.append(b"UID %d" % uid)
        elif name == "FLAGS":
            out.append(b"FLAGS " + flags(flag_names))
        elif name == "RFC822.SIZE":
            out.append(b"RFC822.SIZE %d" % size)
        elif name == "MODSEQ":
            out.append(b"MODSEQ (%d)" % modseq)  # RFC 7162 3.1.4.1
        elif name == "INTERNALDATE":
            out.append(b"INTERNALDATE " + internal_date(when))
        elif name == "THREADID":
            out.append(b"THREADID NIL")  # RFC 8474 5.2: the server keeps no threads
        elif known and item.section is None and name in known:
            out.append(name.encode() + b" " + known[name])
        else:
            if data is None:
                raise ValueError(f"{name} needs the message bytes")
            if root is None:
                root = parse(data)
            out.append(fetch_item(item, data, root))
    return b"* %d FETCH (" % seq + b" ".join(out) + b")\r\n"
