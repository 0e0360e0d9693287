"""Who a submitted message says it is from: its header fields and its From and Sender, read
strictly. Pure functions over header bytes; no I/O.

Mail clients, IMAP's ENVELOPE (`imap.render.envelope`) and Python's `email` package each
read a header block their own way, and they part company exactly where a forger wants them
to: a line without a colon ends the header for one parser and not for the next, `From :`
is a From field to one and a body line to another, `alice@x <bob@x>` is alice to one reader
and bob to another. Submission therefore accepts only what every reader sees the same way:

- each line of the header block is a field `name:` (RFC 5322 2.2) or the folded continuation
  of one (RFC 5322 2.2.3), and no line is white space only (RFC 5322 3.2.2);
- From and Sender appear at most once each (RFC 5322 3.6) and parse under the strict RFC
  5322 3.4 grammar, without obsolete forms (no routes, no groups, no empty list members, no
  comments or white space inside an address);
- the lenient parser that ENVELOPE uses and `email.headerregistry` find the very same
  addresses;
- several From mailboxes come with exactly one Sender mailbox (RFC 5322 3.6.2).

`Authors.addresses()` then lists every address a reader could take for the author, including
any address written inside a display name or a comment, which many clients show instead of
the address; the SMTP handler requires each to be one of the account's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import errors, policy
from email.header import decode_header, make_header
from email.utils import getaddresses

_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 2.2: ftext, printable but ":"
_UNFOLD = re.compile(r"\r\n(?=[ \t])")  # RFC 5322 2.2.3
_ATEXT_ASCII = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_WSP = " \t"
# Something a reader would take for an address inside a display name or a comment.
_ADDRESS_LIKE = re.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")
# Findings of `email.headerregistry` that are no ambiguity once the strict grammar passed:
# UTF-8 local parts are allowed in SMTPUTF8 mail (RFC 6532 3.2) and "J. Smith" is obs-phrase.
_HARMLESS_DEFECTS = (errors.NonASCIILocalPartDefect, errors.ObsoleteHeaderDefect)


class Unreadable(ValueError):
    """The header block, or a From or Sender in it, cannot be read one way only.

    `str(error)` is a plain sentence fit for the client.
    """


@dataclass(frozen=True)
class Mailbox:
    """One mailbox of a From or Sender field."""

    address: str  # the addr-spec as written, as ENVELOPE shows it
    display_name: str  # as written (quotes kept), RFC 2047 words decoded
    named: tuple[str, ...]  # addresses written in the display name or a comment


@dataclass(frozen=True)
class Authors:
    """The From and Sender of a message; both are empty when the message has none."""

    from_: tuple[Mailbox, ...]
    sender: Mailbox | None

    def addresses(self) -> list[str]:
        """Every address a reader could take for the author or sender, lower-cased, once."""
        boxes = [*self.from_, *([self.sender] if self.sender else [])]
        found: dict[str, None] = {}
        for box in boxes:
            found[box.address.lower()] = None
            found.update(dict.fromkeys(a.lower() for a in box.named))
        return list(found)


def header_fields(head: bytes) -> list[tuple[str, bytes]]:
    """(lower-cased name, raw value with its folding) of every field of a CRLF header block.

    `head` ends before the blank line. Raises `Unreadable` for a line that is neither a field
    nor the continuation of one.
    """
    fields: list[tuple[str, bytes]] = []
    if not head:
        return fields
    for number, line in enumerate(head.removesuffix(b"\r\n").split(b"\r\n"), start=1):
        if line[:1] in (b" ", b"\t"):
            # RFC 5322 3.2.2: no line of a folded field is made of white space only
            if not fields or not line.strip(b" \t"):
                raise Unreadable(f"Line {number} of the message header is not a header field")
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        name, colon, value = line.partition(b":")
        # RFC 5322 2.2: the name is followed by the colon; "From :" is obsolete (4.5)
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise Unreadable(f"Line {number} of the message header is not a header field")
        fields.append((name.decode("ascii").lower(), value))
    return fields


def authors(head: bytes) -> Authors:
    """The From and Sender of a header block (as `header_block` cuts it), read strictly.

    Raises `Unreadable` when the block or either field is malformed, repeated or ambiguous.
    """
    fields = header_fields(head)
    found: dict[str, tuple[Mailbox, ...]] = {}
    for wanted in ("from", "sender"):
        values = [value for name, value in fields if name == wanted]
        label = wanted.capitalize()
        if len(values) > 1:
            # RFC 5322 3.6: one From field, at most one Sender field
            raise Unreadable(f"The message has more than one {label} field")
        if values:
            found[wanted] = _mailboxes(wanted, values[0])
    from_ = found.get("from", ())
    sender = found.get("sender")
    if sender is not None and len(sender) != 1:
        raise Unreadable("The Sender field must name exactly one mailbox")  # RFC 5322 3.6.2
    if len(from_) > 1 and sender is None:
        # RFC 5322 3.6.2: several authors need a Sender saying which of them sends it
        raise Unreadable("A From field with several mailboxes needs a Sender field")
    return Authors(from_=from_, sender=sender[0] if sender else None)


def _mailboxes(name: str, raw: bytes) -> tuple[Mailbox, ...]:
    """Parse one From or Sender value three ways; any disagreement is `Unreadable`."""
    label = name.capitalize()
    try:
        text = raw.decode("utf-8")  # RFC 6532 3.2: header text is UTF-8 or nothing
    except UnicodeDecodeError:
        raise Unreadable(f"The {label} field is not valid UTF-8") from None
    # Unfolded and trimmed as imap.message.Part.header_value does for ENVELOPE.
    value = _UNFOLD.sub("", text).strip("\r\n").lstrip(_WSP)
    if any(not ch.isprintable() and ch not in _WSP for ch in value):
        raise Unreadable(f"The {label} field contains control characters")
    try:
        parsed = _Reader(value).mailbox_list()
    except _Syntax:
        raise Unreadable(f"The {label} field is not a valid address list") from None
    envelope_view = [(n, a) for n, a in getaddresses([value]) if n or a]  # as render._addresses
    registry_view = _registry_addresses(name, value)
    strict = [box.address.lower() for box, _ in parsed]
    if [a.lower() for _, a in envelope_view] != strict or registry_view != strict:
        raise Unreadable(f"The {label} field can be read in more than one way")
    out = []
    for (box, comments), (lenient_name, _) in zip(parsed, envelope_view, strict=True):
        texts = [box.display_name, lenient_name, *comments]
        named = tuple(a.rstrip(".") for t in texts for a in _ADDRESS_LIKE.findall(_decoded(t)))
        out.append(Mailbox(box.address, _decoded(box.display_name), named))
    return tuple(out)


def _registry_addresses(name: str, value: str) -> list[str]:
    """The addresses `email.headerregistry` finds, or `Unreadable` if it finds fault."""
    label = name.capitalize()
    try:
        header = policy.default.header_factory(name, value)
        groups = header.groups  # type: ignore[attr-defined]
        defects = header.defects
        addresses = [a.addr_spec.lower() for g in groups for a in g.addresses]
    except Exception:  # the stdlib parser raises on some malformed input (IndexError, ...)
        raise Unreadable(f"The {label} field is not a valid address list") from None
    if any(g.display_name is not None for g in groups):
        raise Unreadable(f"The {label} field may not hold a group")  # RFC 5322 3.6.2
    if any(not isinstance(d, _HARMLESS_DEFECTS) for d in defects):
        raise Unreadable(f"The {label} field is not a valid address list")
    return addresses


def _decoded(text: str) -> str:
    """`text` with its RFC 2047 encoded words decoded, as a mail client shows it."""
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except Exception:  # an unknown charset or broken encoding: no client can show it
        raise Unreadable("A display name has an encoded word that cannot be decoded") from None


class _Syntax(Exception):
    """Not a mailbox-list under the strict grammar."""


@dataclass(frozen=True)
class _Box:
    address: str
    display_name: str


class _Reader:
    """Recursive descent over the RFC 5322 3.4 mailbox-list grammar, stricter where no mail
    program goes: no CFWS inside an address or its angle brackets, no obsolete routes or
    empty list members. Comments are allowed between mailboxes and kept, because readers
    show them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.comments: list[str] = []

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise _Syntax
        self.pos += 1

    def mailbox_list(self) -> list[tuple[_Box, list[str]]]:
        """mailbox-list = mailbox *("," mailbox) (RFC 5322 3.4)."""
        out = []
        while True:
            self.comments = []
            self.cfws()
            box = self.mailbox()
            self.cfws()
            out.append((box, self.comments))
            if not self.peek():
                return out
            self.expect(",")

    def mailbox(self) -> _Box:
        """mailbox = name-addr / addr-spec (RFC 5322 3.4)."""
        start = self.pos
        try:
            address = self.addr_spec()
            if self.peek() in ("", ",", " ", "\t", "("):
                return _Box(address, "")
        except _Syntax:
            pass
        self.pos = start
        name = self.phrase() if self.peek() != "<" else ""
        self.expect("<")  # angle-addr = [CFWS] "<" addr-spec ">" [CFWS]
        address = self.addr_spec()
        self.expect(">")
        return _Box(address, name)

    def phrase(self) -> str:
        """display-name = phrase = 1*word, with "." as in obs-phrase (RFC 5322 4.1); returns
        the phrase as written, so that encoded words and quoted text stay whole."""
        words = 0
        start = end = self.pos
        while True:
            self.cfws()
            char = self.peek()
            if char == '"':
                self.quoted_string()
            elif char == "." and words:
                self.pos += 1
            elif char and _is_atext(char):
                self.atext()
            else:
                break
            words += 1
            end = self.pos
        if not words:
            raise _Syntax
        return self.text[start:end].strip(_WSP)

    def addr_spec(self) -> str:
        """addr-spec = local-part "@" domain, with no CFWS inside (RFC 5322 3.4.1)."""
        local = self.quoted_string()[0] if self.peek() == '"' else self.dot_atom_text()
        self.expect("@")
        domain = self.domain_literal() if self.peek() == "[" else self.dot_atom_text()
        return f"{local}@{domain}"

    def dot_atom_text(self) -> str:
        """dot-atom-text = 1*atext *("." 1*atext) (RFC 5322 3.2.3)."""
        parts = [self.atext()]
        while self.peek() == ".":
            self.pos += 1
            parts.append(self.atext())
        return ".".join(parts)

    def atext(self) -> str:
        start = self.pos
        while self.peek() and _is_atext(self.peek()):
            self.pos += 1
        if self.pos == start:
            raise _Syntax
        return self.text[start : self.pos]

    def quoted_string(self) -> tuple[str, str]:
        """(as written, content) of a quoted-string (RFC 5322 3.2.4), no obs-qtext."""
        start = self.pos
        self.expect('"')
        content = []
        while True:
            char = self.peek()
            if char == '"':
                self.pos += 1
                return self.text[start : self.pos], "".join(content)
            if char == "\\":
                self.pos += 1
                char = self.peek()
                if not char or (char < " " and char != "\t"):
                    raise _Syntax
            elif not char:
                raise _Syntax
            content.append(char)
            self.pos += 1

    def domain_literal(self) -> str:
        """domain-literal = "[" *dtext "]" (RFC 5322 3.4.1), no FWS inside."""
        start = self.pos
        self.expect("[")
        while self.peek() and self.peek() not in "[]\\ \t":
            self.pos += 1
        self.expect("]")
        return self.text[start : self.pos]

    def cfws(self) -> None:
        """Skip white space and comments (RFC 5322 3.2.2), keeping the comments' text."""
        while True:
            char = self.peek()
            if char and char in _WSP:
                self.pos += 1
            elif char == "(":
                self.comments.append(self.comment())
            else:
                return

    def comment(self) -> str:
        """comment = "(" *([FWS] ccontent) [FWS] ")"; comments nest."""
        self.expect("(")
        depth, content = 1, []
        while depth:
            char = self.peek()
            if not char:
                raise _Syntax
            self.pos += 1
            if char == "\\":
                char = self.peek()
                if not char:
                    raise _Syntax
                self.pos += 1
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if not depth:
                    break
            content.append(char)
        return "".join(content)


def _is_atext(char: str) -> bool:
    """RFC 5322 3.2.3 atext, and any non-ASCII printable character (RFC 6532 3.2)."""
    return char in _ATEXT_ASCII or (not char.isascii() and char.isprintable())
