"""CATENATE (RFC 4469): a message put together from literal text and parts of messages the
user already has, named by IMAP URLs (RFC 5092).

Only the user's own mailboxes are read, through the store's `Mailbox.folder` and
`Folder.read`, as BODY.PEEK would (no flag changes); nothing here writes.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailsuite import store as store_pkg
from mailsuite.imap.message import find_part, parse, section_bytes
from mailsuite.imap.parser import AppendMessage, ParseError, Section, _Reader, _section

# RFC 5092 3: imap://[enc-user[;AUTH=...]@]host[:port] then the path
_ABSOLUTE = re.compile(
    rb"imap://(?:(?P<user>[^@/;]*)(?:;AUTH=[^@/]*)?@)?(?P<host>[^/@]+)(?P<path>/.*)\Z",
    re.IGNORECASE | re.DOTALL,
)
# RFC 5092 3 imessagepart: enc-mailbox [;UIDVALIDITY=n] iuid [isection] [ipartial]
_TAIL = (
    rb";UID=(?P<uid>[1-9]\d{0,9})"
    rb"(?:/;SECTION=(?P<section>[^/]*))?"
    rb"(?:/;PARTIAL=(?P<start>\d{1,10})(?:\.(?P<count>[1-9]\d{0,9}))?)?\Z"
)
_PATH = re.compile(
    rb"/(?P<mailbox>[^;]+?)(?:;UIDVALIDITY=(?P<uidvalidity>[1-9]\d{0,9}))?/" + _TAIL,
    re.IGNORECASE | re.DOTALL,
)
_RELATIVE = re.compile(rb"/?" + _TAIL, re.IGNORECASE | re.DOTALL)  # against the selected one


class BadUrl(Exception):
    """RFC 4469 5: the URL cannot be read or names nothing this user has: NO [BADURL url]."""

    def __init__(self, url: bytes) -> None:
        super().__init__(url)
        self.url = url

    def code(self) -> str:
        """The response code; RFC 4469 7: url-resp-text is 7-bit text without "]"."""
        text = bytes(c for c in self.url if 0x20 < c < 0x7F and c != 0x5D)
        return "BADURL " + text.decode("ascii") if text else "BADURL"


class TooBig(Exception):
    """RFC 4469 5: the joined message is over the size limit: NO [TOOBIG]."""


@dataclass(frozen=True)
class Url:
    """A message (part) an IMAP URL names."""

    mailbox: str
    uidvalidity: int | None
    uid: int
    section: Section | None
    partial: tuple[int, int | None] | None


def _text(raw: bytes, url: bytes) -> str:
    """Percent-decoded UTF-8 (RFC 5092 3: enc-mailbox and enc-section)."""
    try:
        return urllib.parse.unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadUrl(url) from None


def parse_url(url: bytes, address: str, selected: str | None) -> Url:
    """Read an IMAP URL naming a message of `address`'s own mailboxes. An absolute URL
    must name no user or this one; a path ("/INBOX;UIDVALIDITY=1/;UID=2") is on this
    server; a bare ";UID=2/..." is in the selected mailbox (`selected`)."""
    m = _ABSOLUTE.match(url)
    path = url
    if m is not None:
        user = m.group("user")
        if user is not None and _text(user, url).lower() != address.lower():
            raise BadUrl(url)  # another user's mailbox is not the user's own
        path = m.group("path")
    elif url[:7].lower() == b"imap://":
        raise BadUrl(url)
    if re.search(rb";URLAUTH=", path, re.IGNORECASE):
        raise BadUrl(url)  # RFC 4467 URLAUTH is not offered
    found = _PATH.match(path)
    if found is not None:
        mailbox = _text(found.group("mailbox"), url)
        uidvalidity = found.group("uidvalidity")
    else:
        found = _RELATIVE.match(path) if m is None else None
        if found is None or selected is None:
            raise BadUrl(url)
        mailbox, uidvalidity = selected, None
    section = None
    if found.group("section"):
        r = _Reader(_text(found.group("section"), url).encode() + b"]")
        try:
            section = _section(r)
            r.expect(b"]")
            r.end()
        except ParseError:
            raise BadUrl(url) from None
    partial = None
    if found.group("start") is not None:
        count = found.group("count")
        partial = (int(found.group("start")), int(count) if count else None)
    return Url(
        "INBOX" if mailbox.upper() == "INBOX" else mailbox,
        int(uidvalidity) if uidvalidity else None,
        int(found.group("uid")),
        section,
        partial,
    )


def fetch(mailbox: Any, target: Url, url: bytes) -> bytes:
    """The octets a URL names, read as BODY.PEEK[section]<partial> would; off the loop."""
    try:
        folder = mailbox.folder(target.mailbox)
        if target.uidvalidity is not None and target.uidvalidity != folder.uidvalidity:
            raise BadUrl(url)  # RFC 5092 6: the UIDs are not the ones the URL meant
        data = folder.read(target.uid)
    except store_pkg.StoreError:
        raise BadUrl(url) from None
    sec = target.section
    if sec is not None:
        root = parse(data)
        if sec.part and find_part(root, sec.part) is None:
            raise BadUrl(url)
        data = section_bytes(root, sec.part, sec.text, sec.fields)
    if target.partial is not None:
        start, count = target.partial
        data = data[start:] if count is None else data[start : start + count]
    return data


def assemble(
    mailbox: Any,
    address: str,
    selected: str | None,
    messages: Sequence[AppendMessage],
    limit: int,
) -> tuple[AppendMessage, ...]:
    """Every CATENATE message joined into plain bytes, the others as they are; off the loop.
    BadUrl names the first URL that fails; TooBig when a joined message is over `limit`."""
    out = []
    for message in messages:
        if not message.parts:
            out.append(message)
            continue
        chunks: list[bytes] = []
        size = 0
        for kind, value in message.parts:
            chunk = (
                value
                if kind == "TEXT"
                else fetch(mailbox, parse_url(value, address, selected), value)
            )
            size += len(chunk)
            if size > limit:
                raise TooBig
            chunks.append(chunk)
        out.append(AppendMessage(message.flags, message.date, b"".join(chunks)))
    return tuple(out)
