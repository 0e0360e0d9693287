"""Pure functions over message bytes: line endings, trace headers, header addresses.

Nothing here does I/O, so each rule can be tested with a table of inputs.
"""

from __future__ import annotations

import re
import time
from email.headerregistry import Address
from email.parser import BytesHeaderParser
from email.policy import SMTPUTF8
from email.utils import format_datetime, formatdate, getaddresses, localtime, make_msgid

_LINE_END = re.compile(rb"\r\n|\r|\n")
_HEADER_END = re.compile(rb"\r\n\r\n")


def normalize_line_endings(data: bytes) -> bytes:
    """Every bare LF and bare CR becomes CRLF, so what we store or relay has one framing.

    RFC 5321 2.3.8: lines end in CRLF only; a bare LF or CR left in content is what SMTP
    smuggling relies on when the next hop reads it as a line end.
    """
    crlf = data.count(b"\r\n")
    clean = data.count(b"\n") == crlf == data.count(b"\r")  # as nearly every client sends
    out = data if clean else _LINE_END.sub(b"\r\n", data)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def header_block(data: bytes) -> bytes:
    """The header section of a CRLF-normalised message, without the blank line.

    A message that starts with the blank line has no header, as IMAP reads it
    (`imap.message._split_header`).
    """
    if data.startswith(b"\r\n"):
        return b""
    match = _HEADER_END.search(data)
    return data[: match.start() + 2] if match else data


def hop_count(data: bytes) -> int:
    """How many `Received:` lines the message already carries (RFC 5321 6.3: loop detection)."""
    head = header_block(data)
    return sum(1 for line in head.split(b"\r\n") if line[:9].lower() == b"received:")


def received_header(
    *,
    helo: str | None,
    peer_ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    recipient: str | None,
    when: float | None = None,
) -> bytes:
    """A `Received:` trace line (RFC 5321 4.4), folded so no line runs long.

    `protocol` is the `with` keyword that `protocol_keyword` chooses.
    """
    helo_text = _clean(helo or "unknown")
    stamp = formatdate(when if when is not None else time.time(), localtime=True)
    parts = [
        f"Received: from {helo_text} ([{peer_ip}])",
        f"\tby {hostname} (mailsuite) with {protocol} id {queue_id}",
    ]
    if recipient:
        parts.append(f"\tfor <{_clean(recipient)}>;")
    else:
        parts[-1] += ";"
    parts.append(f"\t{stamp}")
    return ("\r\n".join(parts) + "\r\n").encode("utf-8", "surrogateescape")


def protocol_keyword(*, esmtp: bool, utf8: bool, tls: bool, authenticated: bool) -> str:
    """The Received `with` keyword for how a message came (RFC 5321 4.4, RFC 3848, RFC 6531
    4.3): SMTP after HELO; ESMTP or, for a transaction with SMTPUTF8, UTF8SMTP; then S for
    TLS and A for AUTH (ESMTPSA, UTF8SMTPSA)."""
    if not esmtp:
        return "SMTP"
    base = "UTF8SMTP" if utf8 else "ESMTP"  # RFC 6531 4.3
    return base + ("S" if tls else "") + ("A" if authenticated else "")  # RFC 3848


def return_path(sender: str) -> bytes:
    """RFC 5321 4.4: the final delivery records the reverse path as `Return-Path:`."""
    return f"Return-Path: <{_clean(sender)}>\r\n".encode("utf-8", "surrogateescape")


def _clean(text: str) -> str:
    """No CR, LF or angle brackets from a client reach a header we write."""
    return re.sub(r"[\r\n<>\x00]", "", text)[:255]


def parse_headers(data: bytes):  # type: ignore[no-untyped-def]
    return BytesHeaderParser(policy=SMTPUTF8).parsebytes(header_block(data))


def from_addresses(data: bytes) -> list[str]:
    """Lower-cased addresses in every `From:` (and `Sender:`) header of the message.

    An unparsable header yields an empty string, which matches no account.
    """
    headers = parse_headers(data)
    values = [str(v) for name in ("from", "sender") for v in (headers.get_all(name) or [])]
    found = []
    for _name, addr in getaddresses(values):
        found.append(addr.strip().lower())
    if values and not found:
        found.append("")
    return found


def missing_headers(data: bytes, hostname: str) -> bytes:
    """`Date:` and `Message-ID:` lines to add when a submitted message lacks them (RFC 6409 8)."""
    # Only the names count: parsing a malformed value would raise, and it is the client's.
    names = {
        line.partition(b":")[0].strip().lower()
        for line in header_block(data).split(b"\r\n")
        if line[:1] not in (b" ", b"\t")
    }
    extra = b""
    if b"date" not in names:
        extra += f"Date: {format_datetime(localtime())}\r\n".encode()
    if b"message-id" not in names:
        extra += f"Message-ID: {make_msgid(domain=hostname)}\r\n".encode()
    return extra


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def format_address(name: str, address: str) -> str:
    """`Name <addr>` with the display name encoded as RFC 2047 needs."""
    local, _, domain = address.rpartition("@")
    return str(Address(display_name=name, username=local, domain=domain))
