"""What the importer needs to know of one message: its date, its Message-ID, its digest.

Only the header block is parsed (the stdlib `email` parser in compat32 mode, which never
raises on broken headers); bodies are hashed, never interpreted.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parsedate_tz

MAX_HEADER_BYTES = 256 * 1024  # header blocks longer than this are cut before parsing
_PARSER = BytesHeaderParser(policy=policy.compat32)
_LINE_END = re.compile(rb"\r\n|\r")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def header_block(data: bytes) -> bytes:
    """The header lines of a message (bounded), as a parser input."""
    end = _HEADER_END.search(data, 0, MAX_HEADER_BYTES)
    return data[: end.end()] if end else data[:MAX_HEADER_BYTES]


def parse_header_block(block: bytes) -> Message:
    return _PARSER.parsebytes(block)


def header_fields(headers: Message) -> tuple[str | None, str]:
    """(Date header or None, Message-ID or '')."""
    raw_date = headers.get("Date")
    message_id = str(headers.get("Message-ID") or "").strip()
    return (str(raw_date) if raw_date is not None else None), message_id


def parse_headers(block: bytes) -> tuple[str | None, str]:
    """(Date header or None, Message-ID or '') from a header block."""
    return header_fields(_PARSER.parsebytes(block))


def header_date(value: str | None) -> date | None:
    """The calendar day a Date header names, in the sender's own time zone.

    RFC 3501 6.4.4 (SENTSINCE) compares "disregarding time and timezone"; the importer does
    the same, so `--since` means what the user saw in the Date column of the old client.
    """
    if not value:
        return None
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    try:
        return date(parsed[0], parsed[1], parsed[2])
    except (ValueError, TypeError):
        return None


def message_date(raw_date: str | None, internal_date: float | None) -> date | None:
    """The Date header's day, else the local day of the internal date (file time)."""
    day = header_date(raw_date)
    if day is None and internal_date is not None:
        day = datetime.fromtimestamp(internal_date).date()
    return day


def digest(data: bytes, message_id: str) -> str:
    """Identity of a message for deduplication: its Message-ID plus a hash of its content.

    Line endings are normalised first (an mbox holds LF, IMAP sends CRLF), so the same
    message seen through two kinds of source has one digest.
    """
    h = hashlib.sha256()
    h.update(message_id.encode("utf-8", "surrogateescape"))
    h.update(b"\0")
    h.update(_LINE_END.sub(b"\n", data).rstrip(b"\n"))
    return h.hexdigest()
