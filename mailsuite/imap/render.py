"""Byte-exact IMAP response data (RFC 3501 7.4.2): strings, ENVELOPE, BODY/BODYSTRUCTURE,
BODY[section]<partial>, INTERNALDATE and whole FETCH lines. No I/O.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Iterable
from typing import Any

from mailsuite import mutf7
from mailsuite.imap.message import Part, parse, section_bytes
from mailsuite.imap.parser import FetchItem

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


def astring_mailbox(name: str) -> bytes:
    """A mailbox name on the wire: modified UTF-7, always quoted."""
    return string(mutf7.encode(name))


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


def _addresses(raw: bytes | None) -> bytes:
    """RFC 3501 7.4.2 address list: ((name adl mailbox host) ...) or NIL."""
    if raw is None:
        return b"NIL"
    text = raw.decode("utf-8", "surrogateescape")
    out = []
    for name, addr in email.utils.getaddresses([text]):
        if not addr and not name:
            continue
        local, _, host = addr.rpartition("@") if "@" in addr else (addr, "", "")
        out.append(
            plist(
                (
                    nstring(_raw(name) or None),
                    b"NIL",
                    nstring(_raw(local) if local else None),
                    nstring(_raw(host) if host else None),
                )
            )
        )
    return plist(out) if out else b"NIL"


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def envelope(msg: Part) -> bytes:
    """RFC 3501 7.4.2 ENVELOPE from the message's own header fields (values not decoded)."""
    h = msg.header_value
    sender_from = h(b"From")
    parts = [
        nstring(h(b"Date")),
        nstring(h(b"Subject")),
        _addresses(sender_from),
        # RFC 3501 7.4.2: sender and reply-to default to from when absent
        _addresses(h(b"Sender") or sender_from),
        _addresses(h(b"Reply-To") or sender_from),
        _addresses(h(b"To")),
        _addresses(h(b"Cc")),
        _addresses(h(b"Bcc")),
        nstring(h(b"In-Reply-To")),
        nstring(h(b"Message-ID")),
    ]
    return plist(parts)


# --- BODY / BODYSTRUCTURE -----------------------------------------------------------------


def _params(values: list[tuple[str, str]] | None) -> bytes:
    if not values:
        return b"NIL"
    items = []
    for key, value in values:
        if isinstance(value, tuple):
            value = email.utils.collapse_rfc2231_value(value)
        items.append(string(key.upper()))
        items.append(string(str(value)))
    return plist(items)


def _content_params(part: Part, header: str) -> list[tuple[str, str]]:
    params = part.headers.get_params(header=header, failobj=[])
    return [(k, v) for k, v in params[1:]] if params else []


def _disposition(part: Part) -> bytes:
    if "content-disposition" not in part.headers:
        return b"NIL"
    kind = part.headers.get_params(header="content-disposition", failobj=[])
    if not kind:
        return b"NIL"
    return plist([string(kind[0][0].upper()), _params(kind[1:])])


def _language(part: Part) -> bytes:
    value = part.header_value(b"Content-Language")
    if value is None:
        return b"NIL"
    tags = [t.strip() for t in value.replace(b",", b" ").split() if t.strip()]
    if not tags:
        return b"NIL"
    return string(tags[0]) if len(tags) == 1 else plist(string(t) for t in tags)


def _count_lines(data: bytes) -> int:
    lines = data.count(b"\n")
    if data and not data.endswith(b"\n"):
        lines += 1
    return lines


def body_structure(part: Part, extended: bool) -> bytes:
    """BODYSTRUCTURE when `extended`, else the non-extensible BODY (RFC 3501 7.4.2)."""
    if part.is_multipart:
        if part.children:
            kids = b"".join(body_structure(c, extended) for c in part.children)
        else:
            # RFC 3501 7.4.2 needs at least one body; an empty multipart shows as empty text
            kids = b'("TEXT" "PLAIN" NIL NIL NIL "7BIT" 0 0)'
        out = [kids, string(part.subtype.upper())]
        if extended:
            out += [
                _params(_content_params(part, "content-type")),
                _disposition(part),
                _language(part),
                nstring(part.header_value(b"Content-Location")),
            ]
        return b"(" + b" ".join(out) + b")"
    body = part.body_bytes()
    params = _content_params(part, "content-type")
    if part.maintype == "text" and not any(k.lower() == "charset" for k, _ in params):
        params.append(("charset", "us-ascii"))
    encoding = part.header_value(b"Content-Transfer-Encoding")
    out = [
        string(part.maintype.upper()),
        string(part.subtype.upper()),
        _params(params),
        nstring(part.header_value(b"Content-ID")),
        nstring(part.header_value(b"Content-Description")),
        string(encoding.strip().upper() if encoding else b"7BIT"),
        str(len(body)).encode(),
    ]
    if part.message is not None:
        out += [
            envelope(part.message),
            body_structure(part.message, extended),
            str(_count_lines(body)).encode(),
        ]
    elif part.maintype == "text":
        out.append(str(_count_lines(body)).encode())
    if extended:
        out += [
            nstring(part.header_value(b"Content-MD5")),
            _disposition(part),
            _language(part),
            nstring(part.header_value(b"Content-Location")),
        ]
    return b"(" + b" ".join(out) + b")"


# --- FETCH --------------------------------------------------------------------------------


def needs_body(items: Iterable[FetchItem]) -> bool:
    """Whether any item needs the message file (everything else comes from the index)."""
    return any(i.name not in ("FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE") for i in items)


def fetch_item(item: FetchItem, data: bytes, root: Part) -> bytes:
    """``label value`` for one body-dependent fetch item."""
    name = item.name
    if item.section is not None:
        sec = item.section
        chunk = section_bytes(root, sec.part, sec.text, sec.fields)
        if item.partial is not None:
            start, count = item.partial
            # RFC 3501 6.4.5: an origin past the end gives the empty string
            chunk = chunk[start : start + count]
        return item.label().encode() + b" " + literal(chunk)
    if name == "ENVELOPE":
        return b"ENVELOPE " + envelope(root)
    if name == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + body_structure(root, True)
    if name == "BODY":
        return b"BODY " + body_structure(root, False)
    if name == "RFC822":
        return b"RFC822 " + literal(data)
    if name == "RFC822.HEADER":
        return b"RFC822.HEADER " + literal(root.header_bytes())
    if name == "RFC822.TEXT":
        return b"RFC822.TEXT " + literal(root.body_bytes())
    raise ValueError(name)


_INDEX_FORMATS = {
    "UID": b"UID %d",
    "FLAGS": b"FLAGS %s",
    "RFC822.SIZE": b"RFC822.SIZE %d",
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


CACHEABLE = ("ENVELOPE", "BODYSTRUCTURE", "BODY")


def cacheable_value(name: str, root: Part) -> bytes:
    """The value of ENVELOPE, BODYSTRUCTURE or BODY, fit to keep with the message."""
    if name == "ENVELOPE":
        return envelope(root)
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
) -> bytes:
    """A whole ``* n FETCH (...)`` line (with CRLF).

    `known` holds already computed ENVELOPE / BODYSTRUCTURE / BODY values; `data` is needed
    for anything else that needs_body() reports.
    """
    root = None
    out = []
    for item in items:
        name = item.name
        if name == "UID":
            out.append(b"UID %d" % uid)
        elif name == "FLAGS":
            out.append(b"FLAGS " + flags(flag_names))
        elif name == "RFC822.SIZE":
            out.append(b"RFC822.SIZE %d" % size)
        elif name == "INTERNALDATE":
            out.append(b"INTERNALDATE " + internal_date(when))
        elif known and item.section is None and name in known:
            out.append(name.encode() + b" " + known[name])
        else:
            if data is None:
                raise ValueError(f"{name} needs the message bytes")
            if root is None:
                root = parse(data)
            out.append(fetch_item(item, data, root))
    return b"* %d FETCH (" % seq + b" ".join(out) + b")\r\n"
