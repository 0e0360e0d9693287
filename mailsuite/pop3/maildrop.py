"""The maildrop a POP3 session works on: INBOX as it was at login, and the locks.

RFC 1939 4 has the server fix the message list at login: numbers stay valid for the whole
session although IMAP sessions and deliveries change INBOX meanwhile. New mail waits for
the next login; mail expunged by IMAP meanwhile answers -ERR when asked for. Only messages
the store has indexed are listed, and the store indexes a delivery only once it is complete,
so a session never sees half-delivered mail.

Everything here that touches the store runs in an I/O thread (`ctx.run_io`).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

from mailsuite.pop3.wire import uidl_of, wire_size
from mailsuite.store import Folder, NoSuchMessage, Store

INBOX = "INBOX"  # RFC 1939 1: one maildrop per user; ours is INBOX only
SIZE_CACHE = "pop3-size"  # the wire size, kept with the message by the store


@dataclass
class Entry:
    """One message of the snapshot; `number` is its RFC 1939 message-number."""

    number: int
    uid: int
    uidl: str
    size: int
    deleted: bool = False


@dataclass
class Maildrop:
    """The snapshot taken at login and the deletion marks of the session."""

    folder: Folder
    entries: list[Entry] = field(default_factory=list)

    def get(self, number: int) -> Entry | None:
        """A message that exists and is not marked deleted, or None (RFC 1939 5)."""
        if 1 <= number <= len(self.entries):
            entry = self.entries[number - 1]
            if not entry.deleted:
                return entry
        return None

    def live(self) -> list[Entry]:
        return [e for e in self.entries if not e.deleted]

    def marked(self) -> list[int]:
        return [e.uid for e in self.entries if e.deleted]

    def reset(self) -> None:
        for entry in self.entries:
            entry.deleted = False


def open_maildrop(store: Store, address: str) -> Maildrop:
    """Take the snapshot of the user's INBOX (I/O thread).

    LIST must report the size as sent, with CRLF line ends (RFC 1939 5), which differs from
    the stored size when other software stored bare LFs. It is worked out once per message,
    by reading it, and kept in the store's per-message cache for every later login.
    """
    folder = store.mailbox(address).folder(INBOX)
    folder.sync()
    drop = Maildrop(folder)
    known = _known_sizes(folder)
    for info in folder.messages():
        size = known.get(info.key)
        if size is None:
            cached = folder.cache_get(info.uid, SIZE_CACHE)
            if cached is not None and cached.isdigit():
                size = int(cached)
            else:
                try:
                    size = wire_size(folder.read(info.uid))
                except NoSuchMessage:
                    continue  # expunged while we looked
                folder.cache_put(info.uid, SIZE_CACHE, b"%d" % size)
            known[info.key] = size
        drop.entries.append(Entry(len(drop.entries) + 1, info.uid, uidl_of(info.key), size))
    if len(known) > len(drop.entries) * 2 + 1000:
        current = {e.uidl for e in drop.entries}
        for key in [k for k in known if uidl_of(k) not in current]:
            del known[key]  # forget expunged messages now and then
    return drop


def commit(drop: Maildrop) -> int:
    """RFC 1939 6 UPDATE: remove the messages marked deleted (I/O thread).

    The store's expunge sends its change notices to IMAP sessions watching INBOX. Returns
    how many were removed; messages already gone (expunged by IMAP) simply count as removed.
    """
    uids = drop.marked()
    if uids:
        drop.folder.expunge(uids)
    return len(uids)


_SIZES: weakref.WeakKeyDictionary[Folder, dict[str, int]] = weakref.WeakKeyDictionary()
_SIZES_LOCK = threading.Lock()


def _known_sizes(folder: Folder) -> dict[str, int]:
    """Wire sizes by message key, remembered while the store keeps the folder open, so a
    login reads the store's cache only for messages this process has not listed yet."""
    with _SIZES_LOCK:
        found = _SIZES.get(folder)
        if found is None:
            found = _SIZES[folder] = {}
        return found


class Locks:
    """One POP3 session per maildrop in this server (RFC 1939 4 exclusive access; the
    refusal is RFC 2449 8.1.2 IN-USE)."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def acquire(self, address: str) -> bool:
        with self._lock:
            if address in self._held:
                return False
            self._held.add(address)
            return True

    def release(self, address: str) -> None:
        with self._lock:
            self._held.discard(address)


_LOCKS: weakref.WeakKeyDictionary[Store, Locks] = weakref.WeakKeyDictionary()


def locks_for(store: Store) -> Locks:
    """The locks shared by every POP3 listener of the server that owns `store`."""
    found = _LOCKS.get(store)
    if found is None:
        found = _LOCKS[store] = Locks()
    return found
