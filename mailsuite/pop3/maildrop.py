"""The maildrop a POP3 session works on: INBOX as it was at login, and the locks.

RFC 1939 4 has the server fix the message list at login: numbers stay valid for the whole
session although IMAP sessions and deliveries change INBOX meanwhile. New mail waits for
the next login; mail expunged by IMAP meanwhile answers -ERR when asked for. Only messages
the store has indexed are listed, and the store indexes a delivery only once it is complete,
so a session never sees half-delivered mail.

Everything here that touches the store runs in an I/O thread (`ctx.run_io`). The locks
belong to one server (`pop3_state(ctx)`), shared by its pop3 and pop3s listeners and its
worker processes (through the host's table, `netlimits.HostCounts`) and by nobody else;
serve releases them when it stops.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from mailsuite.context import Context, Part
from mailsuite.netlimits import HostCounts
from mailsuite.pop3.wire import uidl_of
from mailsuite.store import Folder, Store

INBOX = "INBOX"  # RFC 1939 1: one maildrop per user; ours is INBOX only


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
    the stored size when other software stored bare LFs. The store has it without reading a
    file for every message it wrote itself (the W= of the name); see `Folder.wire_sizes`.
    """
    folder = store.mailbox(address).folder(INBOX)
    folder.sync()
    drop = Maildrop(folder)
    infos = folder.messages()
    sizes = folder.wire_sizes(infos)
    entries = drop.entries
    for uid, key in zip(infos.uids, infos.keys, strict=True):
        size = sizes.get(uid)
        if size is not None:  # else expunged while we looked
            entries.append(Entry(len(entries) + 1, uid, uidl_of(key), size))
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


class Locks:
    """One POP3 session per maildrop in this server (RFC 1939 4 exclusive access; the
    refusal is RFC 2449 8.1.2 IN-USE). With several workers, `host` holds each lock for the
    host: a session on one worker keeps the maildrop from sessions on every other."""

    def __init__(self, host: HostCounts | None = None) -> None:
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._host = host
        self._name = host.name("pop3.maildrops") if host is not None else 0

    def acquire(self, address: str) -> bool:
        with self._lock:
            if address in self._held:
                return False
            if self._host is not None and not self._host.hold(self._name, address):
                return False
            self._held.add(address)
            return True

    def release(self, address: str) -> None:
        with self._lock:
            if address in self._held:
                self._held.discard(address)
                if self._host is not None:
                    self._host.let_go(self._name, address)

    def clear(self) -> None:
        for address in list(self._held):
            self.release(address)


class Pop3State:
    """What every POP3 listener of one server shares: the maildrop locks, so that pop3 and
    pop3s (and, with several workers, every worker's) exclude each other for one mailbox."""

    def __init__(self, host: HostCounts | None = None) -> None:
        self.locks = Locks(host)

    def close(self) -> None:
        """The server has stopped; its sessions are gone, and so are their locks."""
        self.locks.clear()


POP3: Part[Pop3State] = Part("pop3", lambda ctx: Pop3State(ctx.connections.host))


def pop3_state(ctx: Context) -> Pop3State:
    """The POP3 state of the server `ctx` belongs to, made on first use."""
    return ctx.part(POP3)
