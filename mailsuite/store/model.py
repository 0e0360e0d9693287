"""The small value types the store hands out; immutable so sessions can share them."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class MessageInfo(NamedTuple):
    """One message as the index knows it.

    `key` is the unique part of the file name (the POP3 UIDL); it never changes while the
    message exists, whatever happens to its flags. `internal_date` is POSIX seconds (the file's
    mtime, as Maildir readers take it). `flags` holds IMAP names: `\\Seen`, `\\Answered`,
    `\\Flagged`, `\\Deleted`, `\\Draft` and keywords. `modseq` is the folder's modseq of
    the last change to the message (its arrival, a flag change, or the end of its \\Recent):
    RFC 7162 3.1's per-message mod-sequence, never lower than before.
    """

    uid: int
    key: str
    size: int
    internal_date: float
    flags: frozenset[str]
    modseq: int = 0


class FolderInfo(NamedTuple):
    """One folder of a mailbox: its API name (`/`-separated Unicode), its RFC 6154
    special-use attribute (`\\Sent`, ... or None) and whether it is subscribed."""

    name: str
    special_use: str | None
    subscribed: bool


class FolderStatus(NamedTuple):
    """The counts IMAP STATUS and POP3 STAT need, without loading every message."""

    messages: int
    recent: int
    unseen: int
    uidnext: int
    uidvalidity: int
    size: int
    highest_modseq: int = 0  # RFC 7162 3.1.2.1, for STATUS HIGHESTMODSEQ
    deleted: int = 0  # messages flagged \\Deleted (RFC 9051 6.3.11 STATUS DELETED)
    deleted_size: int = 0  # their octets (RFC 9208 4.1.4 STATUS DELETED-STORAGE)


class Change(NamedTuple):
    """A change notice for live sessions.

    `kind` is `new`, `flags`, `expunge`, or `uidvalidity` (the index had to be rebuilt with
    new UIDs: sessions must drop what they know of the folder). `uids` are sorted.
    """

    kind: str
    folder: str
    uids: tuple[int, ...]


class NewMessage(NamedTuple):
    """One message for `Folder.append_many`; `uid` asks for exactly that UID (a migration
    that keeps another server's UIDs), None for the next one."""

    data: bytes
    flags: frozenset[str] | tuple[str, ...] = ()
    internal_date: float | datetime | None = None
    uid: int | None = None
