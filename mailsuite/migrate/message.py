"""What the importer needs to know of one message: its date, its Message-ID, its digest, and
whether an import's filter keeps it.

Only the header block is parsed (the stdlib `email` parser in compat32 mode, which never
raises on broken headers); bodies are hashed, never interpreted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_tz

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


class FilterError(ValueError):
    """A filter given on the command line cannot be used; the message says why."""


# RFC 5322 3.6.8: a field name is printable US-ASCII except the colon.
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")


def _ascii_domain(domain: str) -> str:
    """A domain in the form addresses carry it: lower case, IDNA for non-ASCII labels."""
    domain = domain.strip().strip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def header_text(value: object) -> str:
    """A header value as a person reads it: RFC 2047 encoded words decoded, lines unfolded."""
    raw = str(value)
    try:
        text = str(make_header(decode_header(raw)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        text = raw
    return " ".join(text.split())


@dataclass(frozen=True)
class Filter:
    """Which messages an import keeps, by their headers (seed 000: "all messages sent by the
    Bank since 1 August" is `--from-domain` with `--since`).

    A message is kept when its From has an address in one of `from_domains` or a subdomain
    of one (when any are given), and every `(field, pattern)` of `header_matches` finds its
    pattern, case-insensitively, in one of the message's fields of that name.
    """

    from_domains: tuple[str, ...] = ()
    header_matches: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @classmethod
    def parse(cls, from_domains: Sequence[str], header_matches: Sequence[str]) -> Filter:
        """The filter of `--from-domain DOMAIN` and `--header-match 'FIELD:REGEX'` options;
        raises FilterError naming the first unusable one."""
        domains = []
        for domain in from_domains:
            ascii_domain = _ascii_domain(domain.removeprefix("@"))
            if not ascii_domain or "@" in ascii_domain or " " in ascii_domain:
                raise FilterError(f"--from-domain {domain!r} is not a domain")
            domains.append(ascii_domain)
        matches = []
        for given in header_matches:
            field, colon, pattern = given.partition(":")
            field = field.strip()
            if not colon or not _FIELD_NAME.match(field) or not pattern.strip():
                raise FilterError(
                    f"--header-match {given!r}: expected FIELD:PATTERN, e.g. 'Subject:faktura'"
                )
            try:
                matches.append((field, re.compile(pattern.strip(), re.IGNORECASE)))
            except re.error as exc:
                raise FilterError(f"--header-match {given!r}: {exc}") from None
        return cls(tuple(domains), tuple(matches))

    @property
    def active(self) -> bool:
        return bool(self.from_domains or self.header_matches)

    def describe(self) -> str:
        """The filter in the words of the summary line: "From pkobp.pl, Subject ~ faktura"."""
        parts = []
        if self.from_domains:
            parts.append("From " + " or ".join(self.from_domains))
        parts += [f"{field} ~ {pattern.pattern}" for field, pattern in self.header_matches]
        return ", ".join(parts)

    def keeps(self, headers: Message) -> bool:
        """Whether a message with these headers is copied."""
        if self.from_domains and not any(
            self._ours(address) for _, address in getaddresses(headers.get_all("From") or [])
        ):
            return False
        for field, pattern in self.header_matches:
            values = headers.get_all(field) or []
            if not any(pattern.search(header_text(v)) for v in values):
                return False
        return True

    def keeps_message(self, data: bytes) -> bool:
        """`keeps` for a message read whole (a remote source's, known only once read)."""
        return self.keeps(parse_header_block(header_block(data)))

    def _ours(self, address: str) -> bool:
        domain = _ascii_domain(address.rpartition("@")[2]) if "@" in address else ""
        return bool(domain) and any(
            domain == d or domain.endswith("." + d) for d in self.from_domains
        )
