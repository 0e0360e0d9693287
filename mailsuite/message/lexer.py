"""RFC 5322 3.2 lexical tokens over the raw bytes of one (possibly folded) header value.

A `Lexer` walks a value left to right. Every reader returns one of three results, as the
callers need to know whether anything follows: `MORE` (more input after the token and the
CFWS behind it), `END` (the input ended) or `BAD` (the token is malformed; the position is
where the reader gave up). Tokens are appended to a caller's bytearray, so readers can
build phrases and local parts piece by piece.

Leniency follows Dovecot's lib-mail: folding line breaks inside quoted strings and comments
are dropped (RFC 5322 2.2.3), whitespace may surround the dots of a dot-atom (RFC 5322 4.4,
obs-local-part and obs-domain), and 8-bit bytes count as atext (RFC 6532 3.2).
"""

from __future__ import annotations

MORE, END, BAD = 1, 0, -1

# RFC 5322 3.2.3 atext, plus every 8-bit byte (RFC 6532 3.2: UTF-8 in header fields)
ATEXT = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
) | frozenset(range(0x80, 0x100))
# RFC 2045 5.1 token: atext without the tspecials "/", "=" and "?"; "." is allowed
TOKEN = (ATEXT - frozenset(b"/=?")) | frozenset(b".")
_WSP = frozenset(b" \t\r\n")
NUL_REPLACEMENT = "\ufffd".encode()


class Lexer:
    """A cursor over `data`. With `comments`, the text of the last comment is kept in
    `last_comment` (an address may take its display name from it, RFC 5322 3.4 obs)."""

    __slots__ = ("comments", "data", "end", "last_comment", "pos")

    def __init__(self, data: bytes, *, comments: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.comments = comments
        self.last_comment = bytearray()

    def peek(self) -> int | None:
        """The byte at the cursor, or None at the end."""
        return self.data[self.pos] if self.pos < self.end else None

    def at(self, char: bytes) -> bool:
        return self.pos < self.end and self.data[self.pos] == char[0]

    def skip_comment(self) -> int:
        """Skip one comment (RFC 5322 3.2.2: nested, quoted-pairs); the cursor is on "("."""
        data = self.data
        if self.comments:
            self.last_comment.clear()
        self.pos += 1
        start = self.pos
        level = 1
        while self.pos < self.end:
            c = data[self.pos]
            if c == 0 and self.comments:
                self.last_comment += data[start : self.pos] + NUL_REPLACEMENT
                start = self.pos + 1
            elif c == 0x28:  # (
                level += 1
            elif c == 0x29:  # )
                level -= 1
                if level == 0:
                    if self.comments:
                        self.last_comment += data[start : self.pos]
                    self.pos += 1
                    return MORE if self.pos < self.end else END
            elif c == 0x0A and self.comments:
                # RFC 5322 2.2.3: a folding line break is not part of the text
                stop = self.pos - 1 if self.pos > start and data[self.pos - 1] == 0x0D else self.pos
                self.last_comment += data[start:stop]
                start = self.pos + 1
            elif c == 0x5C:  # backslash: RFC 5322 3.2.1 quoted-pair
                self.pos += 1
                if self.pos >= self.end:
                    return BAD
                if data[self.pos] in (0x0D, 0x0A, 0):
                    self.pos -= 1  # a backslash before a line break or NUL stays as it is
                elif self.comments:
                    self.last_comment += data[start : self.pos - 1]
                    start = self.pos
            self.pos += 1
        return BAD

    def skip_cfws(self) -> int:
        """Skip white space, line breaks and comments (RFC 5322 3.2.2 CFWS)."""
        data = self.data
        while self.pos < self.end:
            c = data[self.pos]
            if c in _WSP:
                self.pos += 1
            elif c == 0x28:
                if self.skip_comment() == BAD:
                    return BAD
            else:
                break
        return MORE if self.pos < self.end else END

    def _run(self, allowed: frozenset[int]) -> int:
        """Advance over bytes in `allowed`; the position where the run stops."""
        data, pos, end = self.data, self.pos, self.end
        while pos < end and data[pos] in allowed:
            pos += 1
        return pos

    def atom(self, out: bytearray) -> int:
        """RFC 5322 3.2.3 atom; at least one atext byte."""
        if self.pos >= self.end or self.data[self.pos] not in ATEXT:
            return BAD
        stop = self._run(ATEXT)
        out += self.data[self.pos : stop]
        self.pos = stop
        return END if stop >= self.end else self.skip_cfws()

    def dot_atom(self, out: bytearray) -> int:
        """RFC 5322 3.2.3 dot-atom; CFWS around the dots is allowed (RFC 5322 4.4)."""
        if self.pos >= self.end or self.data[self.pos] not in ATEXT:
            return BAD
        while True:
            stop = self._run(ATEXT)
            if stop == self.pos:
                return BAD
            out += self.data[self.pos : stop]
            self.pos = stop
            if stop >= self.end:
                return END
            ret = self.skip_cfws()
            if ret <= END:
                return ret
            if not self.at(b"."):
                return MORE
            self.pos += 1
            out += b"."
            if self.skip_cfws() <= END:
                return BAD

    def mime_token(self, out: bytearray) -> int:
        """RFC 2045 5.1 token, possibly empty."""
        stop = self._run(TOKEN)
        out += self.data[self.pos : stop]
        self.pos = stop
        return END if stop >= self.end else self.skip_cfws()

    def quoted_string(self, out: bytearray) -> int:
        """RFC 5322 3.2.4 quoted-string, unquoted into `out`; the cursor is on the quote."""
        data = self.data
        self.pos += 1
        start = self.pos
        while self.pos < self.end:
            c = data[self.pos]
            if c == 0:
                out += data[start : self.pos] + NUL_REPLACEMENT
                start = self.pos + 1
            elif c == 0x22:  # "
                out += data[start : self.pos]
                self.pos += 1
                return self.skip_cfws()
            elif c == 0x0A:
                # RFC 5322 2.2.3: unfolding drops the line break, keeps the white space
                stop = self.pos - 1 if self.pos > start and data[self.pos - 1] == 0x0D else self.pos
                out += data[start:stop]
                start = self.pos + 1
            elif c == 0x5C:
                self.pos += 1
                if self.pos >= self.end:
                    return BAD
                if data[self.pos] in (0x0D, 0x0A, 0):
                    self.pos -= 1
                else:
                    out += data[start : self.pos - 1]
                    start = self.pos
            self.pos += 1
        return BAD

    def _atom_or_dots(self, out: bytearray) -> int:
        stop = self._run(ATEXT | frozenset(b"."))
        out += self.data[self.pos : stop]
        self.pos = stop
        return END if stop >= self.end else self.skip_cfws()

    def phrase(self, out: bytearray) -> int:
        """RFC 5322 3.2.5 phrase with obs-phrase dots; words are joined by one space."""
        if self.pos >= self.end:
            return END
        if self.at(b"."):
            return BAD
        while True:
            if self.at(b'"'):
                ret = self.quoted_string(out)
            else:
                ret = self._atom_or_dots(out)
            if ret <= END:
                return ret
            c = self.data[self.pos]
            if c not in ATEXT and c not in (0x22, 0x2E):
                break
            out += b" "
        return self.skip_cfws()

    def _domain_literal(self, out: bytearray) -> int:
        """RFC 5322 3.4.1 domain-literal, kept with its brackets."""
        data = self.data
        start = self.pos
        self.pos += 1
        while self.pos < self.end:
            c = data[self.pos]
            if c == 0:
                out += data[start : self.pos] + NUL_REPLACEMENT
                start = self.pos + 1
            elif c == 0x5B:  # [
                return BAD
            elif c == 0x5D:  # ]
                out += data[start : self.pos + 1]
                self.pos += 1
                return self.skip_cfws()
            elif c == 0x0A:
                stop = self.pos - 1 if self.pos > start and data[self.pos - 1] == 0x0D else self.pos
                out += data[start:stop]
                start = self.pos + 1
            elif c == 0x5C:
                self.pos += 1
                if self.pos >= self.end:
                    return BAD
                if data[self.pos] in (0x0D, 0x0A, 0):
                    out += data[start : self.pos]
                    start = self.pos
                    self.pos -= 1
            self.pos += 1
        return BAD

    def domain(self, out: bytearray) -> int:
        """RFC 5322 3.4.1 domain after its "@" (the cursor is on the "@")."""
        self.pos += 1
        if self.skip_cfws() <= END:
            return BAD
        if self.at(b"["):
            return self._domain_literal(out)
        return self.dot_atom(out)
