"""OBJECTID (RFC 8474): the ids IMAP shows for mailboxes and messages.

A MAILBOXID is the store's `Mailbox.folder_id`. An EMAILID is derived from the message's
octets, which never change while it exists: it is the same in every session, after a
folder rename, for a copy or a moved message, and after the index is rebuilt, without the
store keeping anything more. THREADID is NIL: no threads are kept (RFC 8474 5.2 allows it).
"""

from __future__ import annotations

import hashlib
import re

# RFC 8474 7: objectid = 1*255(ALPHA / DIGIT / "_" / "-")
OBJECTID = re.compile(rb"[A-Za-z0-9_-]{1,255}")


def email_id(data: bytes) -> str:
    """RFC 8474 5.1 EMAILID: "M" and 24 hex digits of the SHA-256 of the message."""
    return "M" + hashlib.sha256(data).hexdigest()[:24]


def fetch_value(data: bytes) -> bytes:
    """The FETCH EMAILID value, ``(id)`` (RFC 8474 7: "EMAILID" SP "(" objectid ")")."""
    return b"(" + email_id(data).encode() + b")"


def mailbox_code(folder_id: str) -> str:
    """The response code RFC 8474 4 gives SELECT, EXAMINE and CREATE."""
    return f"MAILBOXID ({folder_id})"
