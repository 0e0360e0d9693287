"""Address lists as IMAP ENVELOPE shows them (RFC 3501 7.4.2, RFC 5322 3.4 and 4.4).

`parse(value)` reads one From/To/Cc/... value into `Address` items in order, groups included:
a group is a start marker (its name in `mailbox`, `domain` None), its members, then an end
marker (all four fields None). Display names come from the phrase, or failing that from the
last comment of an addr-spec (`a@b (Name)`, the obsolete RFC 822 form); a source route
(`<@a,@b:user@host>`, RFC 5322 4.4 obs-route) is kept in `route`.

Broken input is read as far as it goes and then the way Dovecot reads it, so both servers
show a mail client the same list: a mailbox without a domain or a local part gets the
placeholder MISSING_DOMAIN / MISSING_MAILBOX rather than a NIL host, which the IMAP
grammar would read as a group marker; an angle address that never closes gets the domain
SYNTAX_ERROR; text after a broken address ends the list.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsuite.message.lexer import BAD, END, MORE, Lexer

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"
SYNTAX_ERROR = b"SYNTAX_ERROR"
INVALID_ROUTE = b"INVALID_ROUTE"


@dataclass
class Address:
    """One entry of an address list: a mailbox, a group start or a group end marker."""

    name: bytes | None = None
    route: bytes | None = None
    mailbox: bytes | None = None
    domain: bytes | None = None
    invalid: bool = False

    @property
    def is_group_start(self) -> bool:
        return self.domain is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        return self.domain is None and self.mailbox is None


class _Reader:
    """The state of one parse: the lexer, the address being built, the list so far."""

    def __init__(self, value: bytes) -> None:
        self.lx = Lexer(value, comments=True)
        self.addr = Address()
        self.out: list[Address] = []
        self.buf = bytearray()

    def emit(self) -> None:
        self.out.append(self.addr)
        self.addr = Address()

    def emit_fixed(self) -> None:
        """Emit a mailbox, never with a NIL mailbox or host (those mean group markers)."""
        a = self.addr
        if a.mailbox is None:
            a.mailbox, a.invalid = MISSING_MAILBOX, True
        if not a.domain:
            a.domain, a.invalid = MISSING_DOMAIN, True
        self.emit()

    def local_part(self) -> int:
        """RFC 5322 3.4.1 local-part, also with dots in odd places (RFC 5322 4.4)."""
        lx = self.lx
        self.buf = bytearray()
        if lx.at(b'"'):
            ret = lx.quoted_string(self.buf)
        else:
            ret = self._loose_dot_atom()
        if ret == BAD:
            return BAD
        self.addr.mailbox = bytes(self.buf)
        return ret

    def _loose_dot_atom(self) -> int:
        """Atoms and dots in any order ("a..b", "a.", ".a"), as real mail has them."""
        lx = self.lx
        ret = BAD
        while True:
            while lx.at(b"."):
                self.buf += b"."
                lx.pos += 1
                if lx.pos >= lx.end:
                    return END  # the @domain is missing but the local part is fine
                ret = MORE
            if lx.at(b"@"):
                break
            ret = lx.atom(self.buf)
            if not (ret == MORE and lx.at(b".")):
                break
        return ret

    def domain(self) -> int:
        self.buf = bytearray()
        ret = self.lx.domain(self.buf)
        if ret == BAD:
            return BAD
        self.addr.domain = bytes(self.buf)
        return ret

    def route(self) -> int:
        """RFC 5322 4.4 obs-domain-list: "@a,@b" before the ":" of an obs-route."""
        lx = self.lx
        self.buf = bytearray()
        while True:
            if lx.pos >= lx.end:
                return END
            if not lx.at(b"@"):
                break
            if self.buf:
                self.buf += b","
            self.buf += b"@"
            ret = lx.domain(self.buf)
            if ret <= END:
                return ret
            while lx.skip_cfws() == MORE and lx.at(b","):
                lx.pos += 1
        self.addr.route = bytes(self.buf)
        return MORE

    def angle_addr(self) -> int:
        """RFC 5322 3.4 angle-addr, with an optional obs-route; the cursor is on "<"."""
        lx = self.lx
        lx.pos += 1
        if lx.skip_cfws() <= END:
            return BAD
        if lx.at(b"@"):
            if self.route() == MORE and lx.at(b":"):
                lx.pos += 1
            else:
                self.addr.route = INVALID_ROUTE
                if lx.pos >= lx.end:
                    return BAD
            if lx.skip_cfws() <= END:
                return BAD
        if not lx.at(b">"):  # "<>" has neither mailbox nor domain
            if self.local_part() <= END:
                return BAD
            if lx.at(b"@") and self.domain() <= END:
                return BAD
        if not lx.at(b">"):
            return BAD
        lx.pos += 1
        return lx.skip_cfws()

    def name_addr(self) -> int:
        """RFC 5322 3.4 name-addr: [display-name] angle-addr."""
        lx = self.lx
        name = bytearray()
        if lx.phrase(name) <= END or not lx.at(b"<"):
            return BAD
        self.addr.name = bytes(name) or None
        if self.angle_addr() == BAD:
            self.addr.domain = SYNTAX_ERROR
            self.addr.invalid = True
        return MORE if lx.pos < lx.end else END

    def addr_spec(self) -> int:
        """RFC 5322 3.4.1 addr-spec; a lone word is a mailbox, several words a name."""
        lx = self.lx
        lx.last_comment.clear()
        quoted = lx.at(b'"')
        ret = self.local_part()
        if ret <= END:
            self.addr.invalid = True
        ret2: int | None = None
        if ret != END and lx.at(b"@"):
            ret2 = self.domain()
            if ret2 <= END:
                ret = ret2
        if lx.last_comment:
            # RFC 822's "user@host (Full Name)": the comment is all the name there is
            self.addr.name = bytes(lx.last_comment)
        elif ret2 is None:
            self.buf += b" "
            before = len(self.buf)
            lx.phrase(self.buf)
            if len(self.buf) != before:
                self.addr.mailbox = None
                self.addr.name = bytes(self.buf)
            elif not quoted:
                self.addr.domain = b""
            self.addr.invalid = True
            ret = BAD
        return ret

    def mailbox(self) -> int:
        """RFC 5322 3.4 mailbox: name-addr / addr-spec."""
        lx = self.lx
        start = lx.pos
        ret = self.name_addr()
        if ret == BAD:
            lx.pos = start
            ret = self.addr_spec()
            a = self.addr
            if a.invalid and a.name is None and a.mailbox is not None and a.domain is None:
                a.name, a.mailbox = a.mailbox, None
        if ret == BAD:
            self.addr.invalid = True
        self.emit_fixed()
        return ret

    def group(self) -> int:
        """RFC 5322 3.4 group: display-name ":" [group-list] ";" [CFWS]."""
        lx = self.lx
        name = bytearray()
        if lx.phrase(name) <= END or not lx.at(b":"):
            return BAD
        # from here on this is a group, however broken, so BAD is never returned
        lx.pos += 1
        ret = lx.skip_cfws()
        self.addr.mailbox = bytes(name)
        self.emit()
        if ret == MORE and not lx.at(b";"):
            while True:
                self.mailbox()
                if not lx.at(b","):
                    break
                lx.pos += 1
                if lx.skip_cfws() <= END:
                    ret = BAD
                    break
        if ret >= END:
            if not lx.at(b";"):
                ret = BAD
            else:
                lx.pos += 1
                ret = lx.skip_cfws()
        self.emit()  # the end marker
        return END if ret == END else MORE

    def address(self) -> int:
        start = self.lx.pos
        ret = self.group()
        if ret == BAD:
            self.lx.pos = start
            self.addr = Address()
            ret = self.mailbox()
        return ret

    def address_list(self) -> None:
        """RFC 5322 3.4 address-list, with the obsolete empty members of RFC 5322 4.4."""
        lx = self.lx
        if lx.skip_cfws() <= END:
            return
        while True:
            if self.address() == END:
                return
            if not lx.at(b","):
                return
            lx.pos += 1
            ret = lx.skip_cfws()
            if ret <= END:
                if ret == BAD:
                    self.emit_fixed()  # ends with some garbage
                return


def parse(value: bytes) -> list[Address]:
    """The addresses of one header value (unfolded or not), in order; [] when there are none."""
    reader = _Reader(value)
    reader.address_list()
    return reader.out
