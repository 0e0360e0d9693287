"""BINARY (RFC 3516): message parts with their content-transfer-encoding undone.

Works on the structure `imap.message` reads from the stored bytes; no I/O. The stored message
is never changed: only what FETCH BINARY[...] sends is decoded.
"""

from __future__ import annotations

import binascii
import re

from mailsuite.imap.message import MESSAGE, MULTIPART, Part, find_part
from mailsuite.imap.parser import FetchItem
from mailsuite.message import mime

_IDENTITY = frozenset({b"7BIT", b"8BIT", b"BINARY"})  # RFC 2045 6.2: no encoding to undo
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


class UnknownCte(Exception):
    """RFC 3516 4.2: the part's content-transfer-encoding is one we cannot decode; the
    command ends with NO [UNKNOWN-CTE]."""


def encoding_of(part: Part) -> bytes:
    """The part's content-transfer-encoding, upper-cased; 7BIT when none is given
    (RFC 2045 6.1) or the entity is not MIME (RFC 2045 4)."""
    if not part.is_mime:
        return b"7BIT"
    values = part.field_values(b"Content-Transfer-Encoding")
    if not values:
        return b"7BIT"
    token = mime.transfer_encoding(values[0])
    if token is None:
        raise UnknownCte("unreadable content-transfer-encoding")
    return token.upper()


def decode(body: bytes, encoding: bytes) -> bytes:
    """`body` with `encoding` undone; UnknownCte for an encoding RFC 2045 does not define."""
    if encoding in _IDENTITY:
        return body
    if encoding == b"BASE64":
        # RFC 2045 6.8: characters outside the alphabet are ignored; a short last group is
        # what a damaged message leaves, so it is cut rather than refused
        clean = _NOT_BASE64.sub(b"", body.split(b"=", 1)[0])
        clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
        return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4)) if clean else b""
    if encoding == b"QUOTED-PRINTABLE":
        return binascii.a2b_qp(body)  # RFC 2045 6.7: soft line breaks and =XX octets
    raise UnknownCte(encoding.decode("ascii", "replace"))


def section(root: Part, path: tuple[int, ...]) -> bytes:
    """RFC 3516 4.2 BINARY[section-part]: the part's body decoded. BINARY[] is the whole
    message as stored (it has no one encoding to undo); a multipart or message/rfc822
    part is sent as it is, since RFC 2045 6.4 allows those no encoding but identity ones."""
    if not path:
        return root.data
    target = find_part(root, path)
    if target is None:
        return b""
    body = target.body_bytes()
    if target.kind in (MULTIPART, MESSAGE):
        return body
    return decode(body, encoding_of(target))


def literal8(data: bytes) -> bytes:
    """RFC 3516 4.3: decoded data with a NUL goes as literal8 ``~{n}``; other data as a
    literal (CHAR8 takes 8-bit octets but not NUL, RFC 3501 9)."""
    marker = b"~" if b"\0" in data else b""
    return marker + b"{%d}\r\n" % len(data) + data


def fetch_item(item: FetchItem, root: Part) -> bytes:
    """``label value`` of BINARY[...]<partial> or BINARY.SIZE[...] (RFC 3516 4.2, 4.3)."""
    assert item.section is not None
    data = section(root, item.section.part)
    label = "[" + ".".join(str(p) for p in item.section.part) + "]"
    if item.name == "BINARY.SIZE":
        return b"BINARY.SIZE%s %d" % (label.encode(), len(data))
    if item.partial is not None:
        start, count = item.partial
        data = data[start : start + count]  # RFC 3516 4.2: <partial> counts decoded octets
        label += f"<{start}>"
    return b"BINARY" + label.encode() + b" " + literal8(data)
