"""The MIME structure of one message as byte ranges over its original bytes.

IMAP sections (RFC 3501 6.4.5) must be cut from the message exactly as stored, so this module
records where each header block and body starts and ends rather than re-serialising anything.
Header parameters (Content-Type, Content-Disposition) are read with the stdlib `email` parser.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import email.utils
import re
from dataclasses import dataclass, field

MAX_DEPTH = 32  # deeper nesting is treated as an opaque body rather than recursed into
MAX_PARTS = 2000  # per message; further parts are folded into the last one's body

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"(?m)^(?=[^ \t\r\n])")
_header_parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)


@dataclass
class Part:
    """One entity: its header block is data[start:body_start], its body data[body_start:end]."""

    data: bytes
    start: int
    body_start: int
    end: int
    headers: email.message.Message
    children: list[Part] = field(default_factory=list)
    message: Part | None = None  # the encapsulated message of a message/rfc822 part

    @property
    def maintype(self) -> str:
        return self.headers.get_content_maintype()

    @property
    def subtype(self) -> str:
        return self.headers.get_content_subtype()

    @property
    def is_multipart(self) -> bool:
        return self.maintype == "multipart"

    def header_bytes(self) -> bytes:
        return self.data[self.start : self.body_start]

    def body_bytes(self) -> bytes:
        return self.data[self.body_start : self.end]

    def fields(self) -> list[tuple[bytes, bytes]]:
        """(name, raw field bytes including its line ending) for every header field in order."""
        block = self.data[self.start : self.body_start]
        # the blank line that ends the header block is not part of the last field
        if block.endswith(b"\n"):
            block = block[:-2] if block.endswith(b"\r\n") else block[:-1]
        out: list[tuple[bytes, bytes]] = []
        starts = [m.start() for m in _FIELD_START.finditer(block)]
        for i, pos in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(block)
            raw = block[pos:end]
            colon = raw.find(b":")
            if colon <= 0:
                continue
            out.append((raw[:colon].strip().upper(), raw))
        return out

    def header_value(self, name: bytes) -> bytes | None:
        """The first field `name` unfolded, without the name, colon and leading space."""
        wanted = name.upper()
        for fname, raw in self.fields():
            if fname == wanted:
                value = raw.split(b":", 1)[1]
                value = re.sub(rb"\r?\n(?=[ \t])", b"", value)
                return value.strip(b"\r\n").lstrip(b" \t")
        return None


def _split_header(data: bytes, start: int, end: int) -> int:
    """Offset where the body starts (after the blank line), or `end` if there is none."""
    # A header block that is empty: the entity starts with the blank line itself
    if data.startswith(b"\r\n", start):
        return start + 2
    if data.startswith(b"\n", start):
        return start + 1
    m = _HEADER_END.search(data, start, end)
    if m is None:
        return end
    return m.end()


def _headers_of(data: bytes, start: int, body_start: int) -> email.message.Message:
    return _header_parser.parsebytes(data[start:body_start])


def parse(data: bytes) -> Part:
    """The structure of a whole message; never raises on malformed MIME."""
    budget = [MAX_PARTS]
    return _entity(data, 0, len(data), 0, budget, default_type="text/plain")


def _entity(
    data: bytes, start: int, end: int, depth: int, budget: list[int], default_type: str
) -> Part:
    body_start = _split_header(data, start, end)
    headers = _headers_of(data, start, body_start)
    if "content-type" not in headers and default_type != "text/plain":
        # RFC 2046 5.1.5: in multipart/digest the default type is message/rfc822
        headers.set_default_type(default_type)
    part = Part(data, start, body_start, end, headers)
    budget[0] -= 1
    if depth >= MAX_DEPTH or budget[0] <= 0:
        return part
    if part.is_multipart:
        boundary = headers.get_param("boundary")
        if isinstance(boundary, tuple):
            boundary = email.utils.collapse_rfc2231_value(boundary)
        if boundary:
            child_type = "message/rfc822" if part.subtype == "digest" else "text/plain"
            for s, e in _split_multipart(
                data, body_start, end, str(boundary).encode("latin-1", "replace")
            ):
                if budget[0] <= 0:
                    break
                part.children.append(_entity(data, s, e, depth + 1, budget, child_type))
    elif part.maintype == "message" and part.subtype == "rfc822":
        part.message = _entity(data, body_start, end, depth + 1, budget, "text/plain")
    return part


def _split_multipart(data: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the body parts between the delimiter lines (RFC 2046 5.1.1).

    The line break before a delimiter belongs to the delimiter, not to the preceding part.
    """
    delim = re.compile(rb"(\r?\n)?--" + re.escape(boundary) + rb"(--)?[ \t]*(\r?\n|\Z)")
    parts: list[tuple[int, int]] = []
    pos = start
    part_start: int | None = None
    while True:
        m = delim.search(data, pos, end)
        if m is None:
            break
        if m.group(1) is None and m.start() != start:
            # a delimiter must begin a line
            pos = m.end() if m.end() > pos else pos + 1
            continue
        if part_start is not None:
            parts.append((part_start, m.start()))
        if m.group(2):
            return parts
        part_start = m.end()
        pos = m.end()
    if part_start is not None and part_start <= end:
        # RFC 2046 5.1.1: a missing close delimiter ends the last part at the end of the body
        parts.append((part_start, end))
    return parts


def find_part(root: Part, path: tuple[int, ...]) -> Part | None:
    """The entity that section part numbers `path` name (RFC 3501 6.4.5), or None."""
    cur = root
    for i, n in enumerate(path):
        if i > 0 and cur.message is not None:
            cur = cur.message
        if cur.is_multipart:
            if n > len(cur.children):
                return None
            cur = cur.children[n - 1]
        elif n != 1:
            # RFC 3501 6.4.5: a non-multipart entity has only part 1, the entity itself
            return None
    return cur


def header_fields(part: Part, names: tuple[str, ...], exclude: bool) -> bytes:
    """HEADER.FIELDS / HEADER.FIELDS.NOT: the original field bytes, then the blank line."""
    wanted = {n.encode("ascii", "replace").upper() for n in names}
    chosen = [raw for name, raw in part.fields() if (name in wanted) != exclude]
    out = b"".join(raw if raw.endswith(b"\n") else raw + b"\r\n" for raw in chosen)
    return out + b"\r\n"


def section_bytes(
    root: Part, path: tuple[int, ...], text: str | None, fields: tuple[str, ...]
) -> bytes:
    """The bytes of one BODY[section] (RFC 3501 6.4.5); empty when the section does not exist."""
    target = find_part(root, path) if path else root
    if target is None:
        return b""
    if text is None:
        return root.data if not path else target.body_bytes()
    if text == "MIME":
        return target.header_bytes()
    if path:
        # RFC 3501 6.4.5: HEADER/TEXT after part numbers refer to a message/rfc822 part
        if target.message is None:
            return b""
        target = target.message
    if text == "HEADER":
        return target.header_bytes()
    if text == "TEXT":
        return target.body_bytes()
    return header_fields(target, fields, exclude=text == "HEADER.FIELDS.NOT")
