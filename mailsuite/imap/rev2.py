"""IMAP4rev2 (RFC 9051) offered beside IMAP4rev1: what ``ENABLE IMAP4rev2`` changes.

A session speaks IMAP4rev1 until the client enables IMAP4rev2 (RFC 9051 6.3.1); the session
keeps that in `Session.rev2`. From then on, as RFC 9051 requires and Appendix E lists:

- no ``\\Recent`` flag and no ``* n RECENT`` response (2.3.2, 7.4: both are IMAP4rev1 only),
  and this session claims no message as recent, so an IMAP4rev1 session still can;
- SEARCH answers with ESEARCH, ``ALL`` when no RETURN is given (6.4.4, 7.3.4);
- SELECT and EXAMINE send the mailbox's LIST response (6.3.2) and no UNSEEN code, and say
  ``[CLOSED]`` when they close a selected mailbox (7.1);
- every FETCH the server sends on its own carries UID (7.5.2);
- mailbox names are UTF-8 both ways (5.1), while SEARCH keeps its CHARSET (6.4.4); a new
  name must be in Unicode NFC (5.1: Net-Unicode), which is refused rather than converted, so
  no command needs to normalize the names it is given (and no OLDNAME is ever due).

The rest of IMAP4rev2 is IMAP4rev1 with extensions every session has (NAMESPACE, UNSELECT,
UIDPLUS, ESEARCH, SEARCHRES, ENABLE, IDLE, SASL-IR, LIST-EXTENDED, LIST-STATUS, MOVE,
BINARY, SPECIAL-USE, STATUS SIZE and DELETED); LITERAL+ is offered, which covers LITERAL-.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from mailsuite.imap import mailboxes

CAPABILITY = "IMAP4rev2"


class _Exactly:
    """A LIST matcher for one name as it is, wildcard characters included."""

    def __init__(self, name: str) -> None:
        self.name = name

    def match(self, name: str) -> bool:
        return name == self.name


def select_list_line(mailbox: Any, name: str, utf8: bool) -> bytes:
    """RFC 9051 6.3.2: the untagged LIST response SELECT and EXAMINE send, with the
    mailbox's attributes as LIST gives them (children, special use); off the loop, since
    the attributes come from the folder list."""
    items = mailboxes.list_folders(mailbox.list_folders(), _Exactly(name), extended=True)
    item = items[0] if items else mailboxes.Listed(name, ())
    return mailboxes.list_line("LIST", item, utf8)


def denormalized(name: str) -> bool:
    """Whether a mailbox name is not in Unicode NFC, as RFC 5198 2 (Net-Unicode) wants."""
    return not unicodedata.is_normalized("NFC", name)


def as_esearch(cmd: Any) -> None:
    """RFC 9051 6.4.4: a SEARCH without RETURN is answered as ``RETURN (ALL)``, with the
    ESEARCH response (7.3.4)."""
    if not cmd.esearch:
        cmd.esearch = True
        cmd.result_opts = ("ALL",)
