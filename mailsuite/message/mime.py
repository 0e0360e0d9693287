"""MIME header values as written (RFC 2045 5.1, 6.1; RFC 2183; RFC 2231; RFC 3282).

Parameters come back as (name, value) byte pairs in the order IMAP BODYSTRUCTURE lists
them (RFC 3501 7.4.2): the plain parameters as they appear, then each RFC 2231 parameter
with its continuations joined (`name*0`, `name*1` → `name`) and, when any segment was
percent-encoded, shown as one extended value (`name*` = `charset'lang'%XX...`) without
decoding it. Quoted values lose their quotes and folding line breaks (RFC 5322 2.2.3); raw
8-bit values stay as they are. A parameter that cannot be read is skipped up to the next
";", the way Dovecot recovers, so a value-less `; format` or a stray `;` adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsuite.message.lexer import BAD, END, MORE, Lexer

Params = list[tuple[bytes, bytes]]


@dataclass
class ContentType:
    """A Content-Type value: `type`/`subtype` as written (b"" when unreadable) and its
    parameters; `params` is None when the type itself was broken and nothing after it was
    read (RFC 2045 5.2 says to treat such a body as text/plain; IMAP shows what is there)."""

    type: bytes
    subtype: bytes
    params: Params | None

    @property
    def mimetype(self) -> bytes:
        """type/subtype in lower case, or just the type when there is no subtype."""
        t = self.type.lower()
        return t + b"/" + self.subtype.lower() if self.subtype else t


def _type_and_subtype(lx: Lexer) -> tuple[bytes, bytes, bool]:
    """RFC 2045 5.1 type "/" subtype; `ok` is False when the value is not one."""
    out = bytearray()
    if lx.skip_cfws() <= END:
        return b"", b"", False
    if lx.mime_token(out) <= END or not out:
        return bytes(out), b"", False  # a lone "text" still says text
    if not lx.at(b"/"):
        return b"", b"", False
    lx.pos += 1
    if lx.skip_cfws() <= END:
        return b"", b"", False
    sub = bytearray()
    ret = lx.mime_token(sub)
    if ret == BAD or not sub or (lx.pos < lx.end and not lx.at(b";")):
        return b"", b"", False
    return bytes(out), bytes(sub), True


def content_type(value: bytes) -> ContentType:
    """Read one Content-Type value."""
    lx = Lexer(value)
    lx.skip_cfws()
    kind, sub, ok = _type_and_subtype(lx)
    return ContentType(kind, sub, parameters(lx) if ok else None)


def _parameter(lx: Lexer) -> tuple[int, bytes, bytes]:
    """One RFC 2045 5.1 `;` attribute `=` value, as (result, name, value)."""
    if lx.pos >= lx.end:
        return END, b"", b""
    if not lx.at(b";"):
        return BAD, b"", b""
    lx.pos += 1
    if lx.skip_cfws() <= END:
        return BAD, b"", b""
    name = bytearray()
    if lx.mime_token(name) <= END or not lx.at(b"="):
        return BAD, b"", b""
    lx.pos += 1
    value = bytearray()
    ret = lx.skip_cfws()
    if ret <= END:
        pass  # no value at all: an empty one
    elif lx.at(b'"'):
        ret = lx.quoted_string(value)
    elif lx.at(b"="):
        # name==?utf-8?b?...?= : an RFC 2047 word where a token belongs, read to white space
        data, pos = lx.data, lx.pos
        while pos < lx.end and data[pos] not in b"; \t\r\n":
            pos += 1
        value += data[lx.pos : pos]
        lx.pos = pos
    else:
        ret = lx.mime_token(value)
    return (BAD if ret == BAD else MORE), bytes(name), bytes(value)


@dataclass
class _Segment:
    name: bytes
    index: int
    extended: bool
    value: bytes


def parameters(lx: Lexer) -> Params:
    """The `;`-separated parameters from the cursor on, RFC 2231 continuations merged."""
    plain: Params = []
    segments: list[_Segment] = []
    index = 0  # a bare "name*" takes the index of the segment before it, as in Dovecot
    while True:
        ret, name, value = _parameter(lx)
        if ret == END:
            break
        if ret == BAD:
            if lx.pos >= lx.end:
                break
            lx.pos += 1  # skip what cannot be read, up to the next ";"
            continue
        star = name.find(b"*")
        if star < 0:
            plain.append((name, value))
            continue
        rest = name[star + 1 :]
        extended = True  # a bare "name*" is one encoded value (RFC 2231 4)
        if rest:
            digits = len(rest) - len(rest.lstrip(b"0123456789"))
            index = int(rest[:digits]) if digits else 0
            rest = rest[digits:]
            if rest not in (b"", b"*"):
                plain.append((name, value))  # "a*x": not RFC 2231 at all
                continue
            extended = rest == b"*"
        segments.append(_Segment(name[:star], index, extended, value))
    return plain + _merge(segments)


def _merge(segments: list[_Segment]) -> Params:
    """RFC 2231 3 and 4: one value per name from its numbered segments."""
    out: Params = []
    segments.sort(key=lambda s: (s.name, s.index))
    i = 0
    while i < len(segments):
        first = segments[i]
        j = i
        while j < len(segments) and segments[j].name.lower() == first.name.lower():
            j += 1
        group = segments[i:j]
        i = j
        if any(s.index != n for n, s in enumerate(group)):
            # a segment is missing or doubled: show them as they were written
            for s in group:
                star = b"*" if s.extended else b""
                out.append((s.name + b"*%d" % s.index + star, s.value))
            continue
        encoded = any(s.extended for s in group)
        value = bytearray(b"''" if encoded and not first.extended else b"")
        for s in group:
            # RFC 2231 4.1: plain segments mixed with encoded ones are taken literally
            value += s.value.replace(b"%", b"%25") if encoded and not s.extended else s.value
        out.append((first.name + (b"*" if encoded else b""), bytes(value)))
    return out


def disposition(value: bytes) -> tuple[bytes, Params] | None:
    """RFC 2183 Content-Disposition: its type token (possibly empty) and parameters, or
    None when even the type cannot be read."""
    lx = Lexer(value)
    lx.skip_cfws()
    kind = bytearray()
    if lx.mime_token(kind) == BAD:
        return None
    return bytes(kind), parameters(lx)


def languages(value: bytes) -> list[bytes]:
    """RFC 3282 Content-Language: the comma-separated tags up to the first unreadable one."""
    lx = Lexer(value)
    out: list[bytes] = []
    lx.skip_cfws()
    while True:
        tag = bytearray()
        if lx.atom(tag) == BAD:
            break
        out.append(bytes(tag))
        if not lx.at(b","):
            break
        lx.pos += 1
        lx.skip_cfws()
    return out


def transfer_encoding(value: bytes) -> bytes | None:
    """RFC 2045 6.1 Content-Transfer-Encoding: one token and nothing after it, else None."""
    lx = Lexer(value)
    lx.skip_cfws()
    token = bytearray()
    if lx.mime_token(token) == BAD or lx.skip_cfws() != END or not token:
        return None
    return bytes(token)
