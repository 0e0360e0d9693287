"""The pure parts of POP3: command lines in, message bytes out. No I/O here.

Messages go out with CRLF line ends and dot-stuffing whatever the storage holds (a Maildir
written by other software may use bare LF), so the wire format never depends on the store.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

MAX_KEYWORD = 40  # RFC 2449 4: keywords are at most 40 characters (ours are far shorter)
MAX_NUMBER_DIGITS = 9  # message numbers and TOP line counts beyond this are refused
MAX_UIDL = 70  # RFC 1939 7: a unique-id is 1 to 70 characters in 0x21..0x7E

_LINE_END = re.compile(rb"\r\n|\r|\n")


class Command(NamedTuple):
    """One parsed line: the upper-cased keyword and its arguments (possibly none)."""

    verb: str
    args: list[str]
    rest: str  # everything after the first space, for PASS (passwords may hold spaces)


class BadCommand(ValueError):
    """The line is not a POP3 command; the message is fit for the -ERR reply."""


def parse_command(line: bytes) -> Command:
    """Split a command line (without its CRLF).

    RFC 1939 3: keywords are case-insensitive, arguments are separated by single spaces.
    Arguments may be UTF-8 (passwords with Polish letters); lines that are not UTF-8, that
    hold control characters or a keyword that is not ASCII or too long are refused here, so
    handlers only see clean text.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadCommand("Commands must be UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise BadCommand("Control characters in command")
    verb, _, rest = text.partition(" ")
    if not verb:
        raise BadCommand("Empty command")
    if len(verb) > MAX_KEYWORD or not (verb.isascii() and verb.isalnum()):
        raise BadCommand("Unknown command")
    args = rest.split()
    return Command(verb.upper(), args, rest)


def parse_number(text: str) -> int | None:
    """A decimal message number or line count; None when it is not one."""
    if not text.isdigit() or not text.isascii() or len(text) > MAX_NUMBER_DIGITS:
        return None
    return int(text)


def uidl_of(key: str) -> str:
    """The RFC 1939 7 unique-id of a message, from the store's key.

    The key (the unique part of the Maildir file name) never changes while the message
    exists, so neither does this. Keys that do not fit the unique-id grammar (written by
    other software, or a long host name) are replaced by a digest of the key, which is just
    as stable.
    """
    # 0x21..0x7E: printable US-ASCII but the space (a login asks this of every message)
    if 0 < len(key) <= MAX_UIDL and key.isascii() and key.isprintable() and " " not in key:
        return key
    return hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()


def _is_crlf_clean(data: bytes) -> bool:
    lf = data.count(b"\n")
    return lf == data.count(b"\r") == data.count(b"\r\n")


def to_crlf(data: bytes) -> bytes:
    """Every line end as CRLF, and a final CRLF (RFC 1939 3: multi-line responses are
    lines), so the size in LIST (the store's `wire_size`) equals what RETR sends before the
    termination octet."""
    if not _is_crlf_clean(data):
        data = _LINE_END.sub(b"\r\n", data)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def dot_stuff(data: bytes) -> bytes:
    """RFC 1939 3: a line starting with "." gets one more; then the ".CRLF" terminator.

    `data` must already be CRLF-normalised (to_crlf).
    """
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def retr_body(data: bytes) -> bytes:
    """The multi-line body of a RETR response: the message, normalised and dot-stuffed."""
    return dot_stuff(to_crlf(data))


def top_body(data: bytes, lines: int) -> bytes:
    """RFC 1939 7 TOP: the header, the blank line, then `lines` lines of the body.

    A message without a blank line is all header: it is sent whole.
    """
    data = to_crlf(data)
    if data.startswith(b"\r\n"):
        header_end = 2
    else:
        found = data.find(b"\r\n\r\n")
        header_end = len(data) if found < 0 else found + 4
    cut = header_end
    for _ in range(lines):
        if cut >= len(data):
            break
        cut = data.index(b"\r\n", cut) + 2  # data ends in CRLF, so a line end is found
    return dot_stuff(data[:cut])
