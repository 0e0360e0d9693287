"""STATUS data (RFC 3501 6.3.10, RFC 8438 SIZE) for STATUS and for LIST-STATUS (RFC 5819).

Reads counts through the store's `Folder.status`, which keeps them without loading the
message list; never touches message files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mailsuite import store as store_pkg
from mailsuite.imap import render
from mailsuite.imap.mailboxes import Listed
from mailsuite.imap.quota import kib


def values(st: Any) -> dict[str, int]:
    """Every status item we answer, from a store `FolderStatus`."""
    return {
        "MESSAGES": st.messages,
        "RECENT": st.recent,
        "UIDNEXT": st.uidnext,
        "UIDVALIDITY": st.uidvalidity,
        "UNSEEN": st.unseen,
        "SIZE": st.size,  # RFC 8438 2: the octets of every message, as RFC822.SIZE counts
        "HIGHESTMODSEQ": st.highest_modseq,  # RFC 7162 3.1.6
        "DELETED": st.deleted,  # RFC 9051 6.3.11: messages with \\Deleted
        # RFC 9208 4.1.4: what EXPUNGE would free, in the STORAGE unit of 1024 octets (5.1)
        "DELETED-STORAGE": kib(st.deleted_size),
    }


def status_line(
    name: str, st: Any, items: Iterable[str], mailbox_id: str | None = None, utf8: bool = False
) -> bytes:
    """One ``* STATUS name (item value ...)`` response, items in the order asked;
    `mailbox_id` is the folder's id when MAILBOXID is asked for, `utf8` once UTF8=ACCEPT
    is enabled (RFC 6855 3)."""
    known = values(st)
    data = b" ".join(
        # RFC 8474 4: "MAILBOXID" SP "(" objectid ")"
        b"MAILBOXID (%s)" % (mailbox_id or "").encode()
        if i == "MAILBOXID"
        else b"%s %d" % (i.encode(), known[i])
        for i in items
    )
    return b"* STATUS " + render.astring_mailbox(name, utf8) + b" (" + data + b")\r\n"


def selectable(item: Listed) -> bool:
    """RFC 5819 2: no STATUS for a \\NoSelect or \\NonExistent name."""
    return not {a.upper() for a in item.attributes} & {"\\NOSELECT", "\\NONEXISTENT"}


def list_statuses(
    mailbox: Any, items: list[Listed], with_ids: bool = False
) -> dict[str, tuple[Any, str | None]]:
    """The `FolderStatus` of each selectable listed folder, and its MAILBOXID when
    `with_ids`; off the loop. RFC 5819 2: a folder whose status cannot be read (deleted
    meanwhile) is left out, not an error."""
    out: dict[str, tuple[Any, str | None]] = {}
    for item in items:
        if not selectable(item):
            continue
        try:
            st = mailbox.folder(item.name).status()
            out[item.name] = (st, mailbox.folder_id(item.name) if with_ids else None)
        except store_pkg.StoreError:
            continue
    return out
