"""The MIME structure of one message as byte ranges over its original bytes.

IMAP sections (RFC 3501 6.4.5) must be cut from the message exactly as stored, so this module
records where each header block and body starts and ends rather than re-serialising anything.
Header values are read with `mailsuite.message` (raw bytes, nothing decoded).

Where a message is broken the structure is the one Dovecot finds, so that a client sees the
same parts from either server. Line by line, as RFC 2046 5.1.1 describes:

- a delimiter is a line starting with "--" and a boundary of any open multipart; the
  boundary need only be a prefix of the rest of the line (RFC 2046 5.1.1 note) and the
  longest matching boundary wins, the innermost among equals, so an inner multipart that
  reuses its parent's boundary takes the delimiters until its close delimiter;
- the line break before a delimiter belongs to the delimiter, so two delimiters in a row
  enclose an empty part; a delimiter also ends a header block that has no blank line, and
  then the header's last line break (or the blank line itself) is the delimiter's;
- a missing close delimiter ends the parts at the end of the data;
- a part without Content-Type is text/plain, or message/rfc822 in multipart/digest
  (RFC 2046 5.1.5); Content-Type counts only in a MIME entity (a MIME-Version or
  Content-Type field, or a body part).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass, field

from mailsuite.message import mime

MAX_DEPTH = 32  # deeper nesting is treated as an opaque body rather than recursed into
MAX_PARTS = 2000  # per message; further parts are left inside their parent's body
_BOUNDARY_LINE_MAX = 84  # RFC 2046 5.1.1: 70 + "--" twice, and some slack (as Dovecot)

TEXT, MULTIPART, MESSAGE, OTHER = "text", "multipart", "message", "other"


@dataclass(eq=False)
class Part:
    """One entity: its header block is data[start:header_end], its body data[body_start:end].

    `kind` is how the entity is parsed: TEXT, MULTIPART (with `children`), MESSAGE (a
    message/rfc822 with the encapsulated `message`) or OTHER. `content_type` is the first
    Content-Type field read (None when there is none or the entity is not MIME).
    """

    data: bytes
    start: int
    header_end: int = 0
    body_start: int = 0
    end: int = 0
    fields_end: int = 0  # data[start:fields_end] holds the fields, without the blank line
    has_eoh: bool = False  # the header block ends with its blank line
    is_mime: bool = False
    kind: str = TEXT
    content_type: mime.ContentType | None = None
    digest: bool = False  # multipart/digest: parts default to message/rfc822
    boundary: bytes | None = None
    children: list[Part] = field(default_factory=list)
    message: Part | None = None
    _fields: list[tuple[bytes, bytes]] | None = None

    @property
    def is_multipart(self) -> bool:
        return self.kind == MULTIPART

    @property
    def maintype(self) -> str:
        if self.kind == MESSAGE:
            return "message"
        if self.content_type is None:
            return "text"
        return self.content_type.type.decode("utf-8", "replace").lower()

    @property
    def subtype(self) -> str:
        if self.kind == MESSAGE:
            return "rfc822"
        if self.content_type is None:
            return "plain"
        return self.content_type.subtype.decode("utf-8", "replace").lower()

    def header_bytes(self) -> bytes:
        return self.data[self.start : self.header_end]

    def body_bytes(self) -> bytes:
        return self.data[self.body_start : self.end]

    def fields(self) -> list[tuple[bytes, bytes]]:
        """(NAME, raw field bytes with its line breaks) for every header field, in order.

        A field is a line and the lines after it that start with white space (RFC 5322
        2.2.3); a line without a colon is a field whose name is the whole line.
        """
        if self._fields is None:
            block = self.data[self.start : self.fields_end]
            out: list[tuple[bytes, bytes]] = []
            pos = 0
            while pos < len(block):
                end = pos
                while True:
                    lf = block.find(b"\n", end)
                    end = len(block) if lf < 0 else lf + 1
                    if end >= len(block) or block[end] not in b" \t":
                        break
                raw = block[pos:end]
                colon = raw.find(b":")
                name = raw[:colon] if colon >= 0 else raw.rstrip(b"\r\n")
                # RFC 5322 2.2: white space before the colon is not part of the name
                out.append((name.rstrip(b" \t").upper(), raw))
                pos = end
            self._fields = out
        return self._fields

    def field_values(self, name: bytes) -> list[bytes]:
        """The values of every field `name`: after the colon and the white space following
        it, line breaks of folding kept, the final line break dropped."""
        wanted = name.upper()
        out = []
        for fname, raw in self.fields():
            if fname == wanted:
                out.append(_value_of(raw))
        return out

    def header_value(self, name: bytes) -> bytes | None:
        """The first field `name` unfolded, without the name, colon and leading space."""
        values = self.field_values(name)
        if not values:
            return None
        return values[0].replace(b"\r\n", b"").replace(b"\n", b"").lstrip(b" \t")


def _value_of(raw: bytes) -> bytes:
    colon = raw.find(b":")
    if colon < 0:
        return b""
    value = raw[colon + 1 :]
    if value.endswith(b"\n"):
        value = value[:-2] if value.endswith(b"\r\n") else value[:-1]
    first_line = value.split(b"\n", 1)[0].rstrip(b"\r")
    skip = len(first_line) - len(first_line.lstrip(b" \t"))
    if skip == len(first_line) and skip:
        skip = 1  # a value of white space only loses just the space after the colon
    return value[skip:]


@dataclass(eq=False)
class _Boundary:
    owner: Part
    text: bytes


@dataclass
class _Hit:
    """Where scanning stopped: content ends at `end`; a delimiter line of `boundary` starts
    at `line` (`boundary` is None when the data ended)."""

    end: int
    line: int
    boundary: _Boundary | None = None
    close: bool = False


class _Parser:
    """One pass over a message; `boundaries` are the open multiparts' boundaries, outermost
    first."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.boundaries: list[_Boundary] = []
        self.budget = MAX_PARTS

    def match(self, pos: int, exclude: Part | None = None) -> tuple[_Boundary, bool] | None:
        """The boundary whose delimiter line starts at `pos`, and whether it closes."""
        data = self.data
        if not self.boundaries or data[pos : pos + 2] != b"--":
            return None
        lf = data.find(b"\n", pos + 2)
        stop = len(data) if lf < 0 else lf
        text = data[pos + 2 : stop]
        size = len(text)
        if size and text[-1] == 0x0D:
            size -= 1
        if size > 2 and text[size - 2 : size] == b"--":
            size -= 2
        if lf < 0:
            size = min(size, _BOUNDARY_LINE_MAX)
        best: _Boundary | None = None
        for b in reversed(self.boundaries):  # the innermost first
            n = len(b.text)
            if n <= size and text.startswith(b.text) and (best is None or len(best.text) < n):
                best = b
                if n == size:
                    break
        if best is None or best.owner is exclude:
            return None
        start = pos + 2 + len(best.text)
        return best, data[start : start + 2] == b"--"

    def scan(self, pos: int) -> _Hit:
        """The first delimiter line at or after the line starting at `pos`."""
        data, n = self.data, len(self.data)
        if not self.boundaries:
            return _Hit(n, n)
        found = self.match(pos)
        if found is not None:
            return _Hit(pos, pos, *found)
        i = pos
        while True:
            j = data.find(b"\n--", i)
            if j < 0:
                return _Hit(n, n)
            found = self.match(j + 1)
            if found is not None:
                # RFC 2046 5.1.1: the line break before the delimiter is part of it
                end = j - 1 if j > pos and data[j - 1] == 0x0D else j
                return _Hit(end, j + 1, *found)
            i = j + 1

    def header(self, part: Part, depth: int) -> _Hit | None:
        """Read the header block from part.start; a _Hit when a delimiter line cut it."""
        data, n = self.data, len(self.data)
        pos = part.start
        last_break = 0
        classified = False
        while True:
            found = self.match(pos, exclude=part)
            if found is not None:
                # the header's last line break belongs to the delimiter (Dovecot's reading)
                part.header_end = part.body_start = part.end = pos - last_break
                if not classified:
                    part.fields_end = part.header_end
                    self.classify(part, depth)
                part.has_eoh = False
                part.boundary = None  # its body never started
                return _Hit(pos, pos, *found)
            if part.has_eoh or pos >= n:
                break
            lf = data.find(b"\n", pos)
            stop = n if lf < 0 else lf + 1
            if stop - pos <= 2 and data[pos:stop] in (b"\n", b"\r\n"):
                part.fields_end = pos
                part.has_eoh = True
                self.classify(part, depth)
                classified = True
                if part.boundary is not None:
                    self.boundaries.append(_Boundary(part, part.boundary))
            last_break = 0 if lf < 0 else (2 if lf > pos and data[lf - 1] == 0x0D else 1)
            pos = stop
        part.header_end = part.body_start = pos
        if not classified:
            part.fields_end = pos
            self.classify(part, depth)
            part.boundary = None  # no blank line, so no body with delimiters
        return None

    def classify(self, part: Part, depth: int) -> None:
        """Decide `kind` from the fields read (RFC 2045 3, 5.2; RFC 2046 5.1.5)."""
        names = [name for name, _ in part.fields()]
        ctype_raw = part.field_values(b"Content-Type")[:1]
        part.is_mime = part.is_mime or b"MIME-VERSION" in names or bool(ctype_raw)
        if ctype_raw:
            ct = part.content_type = mime.content_type(ctype_raw[0])
            kind, sub = ct.type.lower(), ct.subtype.lower()
            if kind == b"message" and sub == b"rfc822":
                part.kind = MESSAGE
            elif kind == b"text":
                part.kind = TEXT
            elif kind == b"multipart" and sub:
                part.kind = MULTIPART
                part.digest = sub == b"digest"
                for name, value in ct.params or ():
                    if name.lower() == b"boundary":
                        part.boundary = value
                        break
            else:
                part.kind = OTHER
        # a body that cannot be looked into further stays one piece
        self.budget -= 1
        if depth >= MAX_DEPTH or self.budget <= 0:
            part.boundary = None
            if part.kind == MESSAGE:
                part.kind = OTHER

    def entity(self, part: Part, depth: int, in_digest: bool) -> _Hit:
        """Parse one entity from part.start; its end and what stopped it."""
        if in_digest:
            part.kind = MESSAGE  # until a Content-Type says otherwise
        cut = self.header(part, depth)
        if cut is not None:
            if part.kind == MESSAGE:
                at = cut.line  # an empty message: its header never started
                part.message = Part(
                    self.data, at, header_end=at, body_start=at, end=at, fields_end=at
                )
            return _Hit(cut.line, cut.line, cut.boundary, cut.close)
        if part.kind == MESSAGE:
            inner = Part(self.data, part.body_start)
            hit = self.entity(inner, depth + 1, False)
            part.message = inner
            part.end = hit.end
            return hit
        if part.kind == MULTIPART and part.boundary is not None:
            return self.multipart(part, depth)
        hit = self.scan(part.body_start)
        part.end = hit.end
        return hit

    def multipart(self, part: Part, depth: int) -> _Hit:
        data, n = self.data, len(self.data)
        hit = self.scan(part.body_start)
        while True:
            if hit.boundary is None or hit.boundary.owner is not part:
                part.end = hit.end
                return hit
            idx = next(i for i, b in enumerate(self.boundaries) if b is hit.boundary)
            lf = data.find(b"\n", hit.line)
            after = n if lf < 0 else lf + 1
            if hit.close:
                del self.boundaries[idx:]
                # the epilogue runs to the next delimiter of an enclosing multipart
                hit = self.scan(after) if self.boundaries else _Hit(n, n)
                part.end = hit.end
                return hit
            if self.budget <= 0:
                # too many parts: the rest of this multipart is one piece of its body
                del self.boundaries[idx:]
                hit = self.scan(after) if self.boundaries else _Hit(n, n)
                part.end = hit.end
                return hit
            del self.boundaries[idx + 1 :]
            child = Part(data, after, is_mime=True)
            hit = self.entity(child, depth + 1, part.digest)
            part.children.append(child)


def parse(data: bytes) -> Part:
    """The structure of a whole message; never raises on malformed MIME."""
    root = Part(data, 0)
    hit = _Parser(data).entity(root, 0, False)
    root.end = max(root.end, hit.end)
    return root


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
    """HEADER.FIELDS / HEADER.FIELDS.NOT: the original field bytes, then the blank line.

    RFC 3501 6.4.5: the blank line is always included, except for a header that has none;
    lines without a colon are fields too and HEADER.FIELDS.NOT keeps them.
    """
    wanted = _upper_names(names)
    found = None if exclude else find_fields(part, wanted)
    if found is not None:
        chosen = found
    else:
        chosen = [raw for name, raw in part.fields() if (name in wanted) != exclude]
    out = b"".join(raw if raw.endswith(b"\n") else raw + b"\r\n" for raw in chosen)
    return out + b"\r\n" if part.has_eoh else out


@functools.lru_cache(maxsize=256)
def _upper_names(names: tuple[str, ...]) -> frozenset[bytes]:
    return frozenset(n.encode("ascii", "replace").upper() for n in names)


def find_fields(part: Part, wanted: Collection[bytes]) -> list[bytes] | None:
    """The raw fields named `wanted`, in order, found by looking only at the lines that
    start with one of the names (a webmail asks for one field of every message; reading
    every field of each is most of the cost). The same fields as `Part.fields` gives, or
    None for a header where that needs the full reading (a name line without a colon)."""
    block = part.data[part.start : part.fields_end]
    upper = block.upper()
    size = len(block)
    hits: list[tuple[int, bytes]] = []
    for name in wanted:
        if not name or not name[:1].isalnum():
            return None
        pos = 0 if upper.startswith(name) else upper.find(b"\n" + name)
        while pos >= 0:
            start = pos if pos == 0 and upper.startswith(name) else pos + 1
            after = start + len(name)
            while after < size and block[after] in b" \t":
                after += 1
            if after >= size or block[after] in b"\r\n":
                return None  # a field without a colon: left to the full reading
            if block[after] == 0x3A:  # ":": the field is `name`
                end = start
                while True:
                    lf = block.find(b"\n", end)
                    end = size if lf < 0 else lf + 1
                    if end >= size or block[end] not in b" \t":
                        break
                hits.append((start, block[start:end]))
            pos = upper.find(b"\n" + name, start + 1)
    hits.sort()
    return [raw for _, raw in hits]


def header_part(block: bytes) -> Part:
    """A message's header block alone (as the store keeps it), read as `parse` reads the
    header of a whole message but without the MIME classification only a body needs: good
    for its fields, HEADER, HEADER.FIELDS and ENVELOPE."""
    end = len(block)
    if block == b"\r\n" or block.endswith(b"\n\r\n"):
        fields_end, eoh = end - 2, True
    elif block == b"\n" or block.endswith(b"\n\n"):
        fields_end, eoh = end - 1, True
    else:
        fields_end, eoh = end, False
    return Part(block, 0, end, end, end, fields_end, eoh)


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
