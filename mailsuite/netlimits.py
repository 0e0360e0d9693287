"""Connection plumbing every listener shares: per-address counting, loopback, output flow.

SMTP (asyncio), IMAP and POP3 (Twisted) enforce the same `limits.connections` and
`limits.connections_per_ip`, recognise loopback clients the same way (the demo's plaintext
setting) and stop writing to a client whose socket buffer is full. When serve runs several
worker processes, the counts behind those limits are the host's (`HostCounts`). Imports
nothing else of mailsuite, so every protocol package may use it without depending on another.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import hashlib
import ipaddress
import mmap
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

T = TypeVar("T")


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8 or ::1 (a zone suffix such as `%lo` is ignored)."""
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


class HostCounts:
    """Connection counts shared by the worker processes of one `serve`, so that
    `limits.connections` and `limits.connections_per_ip` hold for the host, not per process.

    A shared memory file (memfd) the supervisor creates and every worker maps: one row per
    worker, which only that worker writes, holding a total per counted name (a protocol
    family or an SMTP service) and a count per (name, client address) bucket. A worker admits
    a connection by adding up every row under an exclusive POSIX lock on the file, so two
    workers cannot both take the last place; a worker's lock and its process go together, so
    a killed worker leaves no lock behind, and the supervisor zeroes a dead worker's row
    before its replacement starts (the kernel closed its connections). Addresses (and
    accounts, for the per-account limit) are hashed into `BUCKETS` buckets: two that share
    one share a limit, which is stricter, never looser, and happens to one pair in 65,536.

    Exclusive holds (a POP3 maildrop, RFC 1939 4) must not be shared by accident, so they are
    kept exactly: each worker lists the 64-bit keyed hashes of what it holds (`hold`), and a
    hold is refused while any worker's list has it.
    """

    NAMES = 32  # counted names a server can have (it has six: imap, pop3, three SMTP, drops)
    NAME_SIZE = 32
    BUCKETS = 1 << 16
    HOLDS = 8192  # exclusive holds one worker can have at once

    def __init__(self, fd: int, workers: int, slot: int | None) -> None:
        self.fd = fd
        self.workers = workers
        self.slot = slot  # this worker's row; None in the supervisor, which only forgets
        self._map = mmap.mmap(fd, self.size(workers))
        self._names = memoryview(self._map)[: self.NAMES * self.NAME_SIZE]
        self._rows = memoryview(self._map)[self.NAMES * self.NAME_SIZE :].cast("i")
        self._row = self.NAMES + self.BUCKETS
        self._threads = threading.Lock()

    @classmethod
    def _holds_at(cls, workers: int) -> int:
        return cls.NAMES * cls.NAME_SIZE + workers * (cls.NAMES + cls.BUCKETS) * 4

    @classmethod
    def size(cls, workers: int) -> int:
        return cls._holds_at(workers) + workers * cls.HOLDS * 8

    @classmethod
    def create(cls, workers: int) -> HostCounts:
        """The supervisor's table, zeroed, in a file descriptor its workers inherit."""
        fd = os.memfd_create("mailsuite-connections", 0)
        os.ftruncate(fd, cls.size(workers))
        return cls(fd, workers, None)

    def name(self, name: str) -> int:
        """The index of `name`'s total, the same in every worker (taken on first use)."""
        key = name.encode()[: self.NAME_SIZE].ljust(self.NAME_SIZE, b"\0")
        with self._locked():
            for index in range(self.NAMES):
                held = bytes(self._names[index * self.NAME_SIZE : (index + 1) * self.NAME_SIZE])
                if held == key:
                    return index
                if not held.strip(b"\0"):
                    self._names[index * self.NAME_SIZE : (index + 1) * self.NAME_SIZE] = key
                    return index
        raise RuntimeError("too many counted connection names")

    def _bucket(self, name: int, key: str) -> int:
        digest = hashlib.blake2b(f"{name}\0{key}".encode(), digest_size=4).digest()
        return self.NAMES + int.from_bytes(digest, "little") % self.BUCKETS

    def _sum(self, index: int) -> int:
        rows, row = self._rows, self._row
        return sum(rows[w * row + index] for w in range(self.workers))

    def admit(self, name: int, ip: str, total: int, per_ip: int) -> Literal["total", "ip"] | None:
        """Count one connection of `name` from `ip` in this worker's row, unless the host's
        total or the address's count is at its limit already (which is then returned)."""
        assert self.slot is not None
        bucket = self._bucket(name, ip)
        base = self.slot * self._row
        with self._locked():
            if self._sum(name) >= total:
                return "total"
            if self._sum(bucket) >= per_ip:
                return "ip"
            self._rows[base + name] += 1
            self._rows[base + bucket] += 1
        return None

    def release(self, name: int, ip: str) -> None:
        """Uncount one admitted connection; only this worker writes its row, so no file lock."""
        self._add(name, -1)
        self._add(self._bucket(name, ip), -1)

    def take(self, name: int, key: str, limit: int) -> bool:
        """Count one more of `key` (an account's sessions) unless the host has `limit`."""
        assert self.slot is not None
        bucket = self._bucket(name, key)
        with self._locked():
            if self._sum(bucket) >= limit:
                return False
            self._rows[self.slot * self._row + bucket] += 1
        return True

    def give_back(self, name: int, key: str) -> None:
        """Uncount one `take`."""
        self._add(self._bucket(name, key), -1)

    def hold(self, name: int, key: str) -> bool:
        """Hold `key` for this worker unless some worker holds it (or this one holds
        `HOLDS` keys already)."""
        assert self.slot is not None
        digest = self._digest(name, key)
        start = self._holds_at(self.workers)
        mine = start + self.slot * self.HOLDS * 8
        with self._locked():
            if self._find(digest, start, start + self.workers * self.HOLDS * 8) >= 0:
                return False
            free = self._find(bytes(8), mine, mine + self.HOLDS * 8)
            if free < 0:
                return False
            self._map[free : free + 8] = digest
        return True

    def let_go(self, name: int, key: str) -> None:
        """End this worker's hold of `key`."""
        assert self.slot is not None
        mine = self._holds_at(self.workers) + self.slot * self.HOLDS * 8
        with self._threads:
            found = self._find(self._digest(name, key), mine, mine + self.HOLDS * 8)
            if found >= 0:
                self._map[found : found + 8] = bytes(8)

    def _digest(self, name: int, key: str) -> bytes:
        digest = hashlib.blake2b(f"{name}\0{key}".encode(), digest_size=8).digest()
        return digest if digest != bytes(8) else b"\1" * 8  # zero marks a free place

    def _find(self, digest: bytes, start: int, end: int) -> int:
        """The offset of the 8-byte entry `digest` between start and end, or -1."""
        at = self._map.find(digest, start, end)
        while at >= 0 and (at - start) % 8:
            at = self._map.find(digest, at + 1, end)
        return at

    def over_share(self, name: int) -> bool:
        """Whether one more connection of `name` would give this worker more than its share
        (the host's count divided by the workers, rounded up). Read without the lock: it
        only decides which worker accepts first."""
        assert self.slot is not None
        mine = self._rows[self.slot * self._row + name]
        return mine + 1 > -(-(self._sum(name) + 1) // self.workers)

    def open_counts(self) -> list[int]:
        """Connections open in each worker, all names together (for `mailsuite status`)."""
        row = self._row
        return [sum(self._rows[w * row : w * row + self.NAMES]) for w in range(self.workers)]

    def forget(self, slot: int) -> None:
        """Zero a dead worker's counts and holds (the supervisor does, before it starts the
        next one)."""
        start = slot * self._row
        self._rows[start : start + self._row] = array.array("i", bytes(self._row * 4))
        holds = self._holds_at(self.workers) + slot * self.HOLDS * 8
        self._map[holds : holds + self.HOLDS * 8] = bytes(self.HOLDS * 8)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Against the other workers (the file lock) and this worker's other threads (a
        POSIX lock does not exclude threads of the process that holds it)."""
        with self._threads:
            fcntl.lockf(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def _add(self, index: int, amount: int) -> None:
        """Change this worker's own count at `index`; no other worker writes it."""
        assert self.slot is not None
        with self._threads:
            self._rows[self.slot * self._row + index] += amount

    def close(self) -> None:
        self._names.release()
        self._rows.release()
        self._map.close()


class ConnectionCounter(Generic[T]):
    """Open connections, in total and per client address.

    A connection is counted only once `admit` lets it in, and `release` forgets it however
    often it is called, so refusals and double closes never skew the counts. With `host`
    (serve runs several workers) the limits, and the per-account one, are checked against
    the counts of every worker of the host; `live`, `by_ip` and `by_user` stay this
    process's own.
    """

    def __init__(self, host: HostCounts | None = None, name: str = "") -> None:
        self.live: set[T] = set()
        self.by_ip: Counter[str] = Counter()
        self.by_user: Counter[str] = Counter()  # logged-in sessions per account
        self._ip: dict[T, str] = {}
        self._host = host
        self._name = host.name(name) if host is not None else 0

    def admit(self, conn: T, ip: str, total: int, per_ip: int) -> Literal["total", "ip"] | None:
        """Count `conn` in; the limit it would break ("total" or "ip") instead, if any."""
        if self._host is not None:
            refused = self._host.admit(self._name, ip, total, per_ip)
            if refused is not None:
                return refused
        elif len(self.live) >= total:
            return "total"
        elif self.by_ip[ip] >= per_ip:
            return "ip"
        self.live.add(conn)
        self.by_ip[ip] += 1
        self._ip[conn] = ip
        return None

    def release(self, conn: T) -> bool:
        """Forget `conn`; False when it was not counted (refused, or released already)."""
        ip = self._ip.pop(conn, None)
        if ip is None:
            return False
        self.live.discard(conn)
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]
        if self._host is not None:
            self._host.release(self._name, ip)
        return True

    @property
    def shared(self) -> bool:
        """Whether the counts are the host's (serve runs several workers)."""
        return self._host is not None

    def over_share(self) -> bool:
        """With shared counts: whether this worker has more than its share (so another
        should take the next connection); never without."""
        return self._host is not None and self._host.over_share(self._name)

    def take_user(self, address: str, limit: int) -> bool:
        """Count one more logged-in session of `address`, unless it has `limit` of them
        already (0: no limit); on the whole host when the counts are shared."""
        if self._host is not None:
            if not self._host.take(self._name, f"user\0{address}", limit or UNLIMITED):
                return False
        elif limit and self.by_user[address] >= limit:
            return False
        self.by_user[address] += 1
        return True

    def release_user(self, address: str) -> None:
        """Uncount one session `take_user` counted."""
        if self.by_user[address] <= 0:
            return
        self.by_user[address] -= 1
        if self.by_user[address] <= 0:
            del self.by_user[address]
        if self._host is not None:
            self._host.give_back(self._name, f"user\0{address}")


UNLIMITED = 2**31 - 1


@dataclass
class ConnectionFamily:
    """The listeners of one protocol in one server (imap and imaps, pop3 and pop3s).

    They share one count, so the per-address and per-account limits span both ports, and
    background work that lives as long as the protocol has listeners (IMAP's sync of folders
    changed by other processes) is tied to it.
    """

    counts: ConnectionCounter[Any] = field(default_factory=ConnectionCounter)
    listeners: int = 0
    tasks: list[asyncio.Future[None]] = field(default_factory=list)


class Connections:
    """The connection families of one running server; the `Context` owns it, serve closes it.

    A second server in the same process has its own, so nothing is counted across them;
    the workers of one host share `host`, so their limits are the host's.
    """

    def __init__(self, host: HostCounts | None = None) -> None:
        self._families: dict[str, ConnectionFamily] = {}
        self.host = host

    def family(self, protocol: str) -> ConnectionFamily:
        """The family of `protocol` ("imap", "pop3"), created on first use."""
        found = self._families.get(protocol)
        if found is None:
            found = ConnectionFamily(counts=self.counter(protocol))
            self._families[protocol] = found
        return found

    def counter(self, name: str) -> ConnectionCounter[Any]:
        """A count of its own for `name` (an SMTP service), host-wide when `host` is set."""
        return ConnectionCounter(self.host, name)

    def open_count(self) -> dict[str, int]:
        return {name: len(f.counts.live) for name, f in self._families.items()}

    def close(self) -> None:
        """Stop the families' background work; their listeners are closed by then."""
        for family in self._families.values():
            for task in family.tasks:
                task.cancel()
            family.tasks.clear()


@implementer(IPushProducer)
class OutputGate:
    """Closed by a Twisted transport while its send buffer is full, so a session producing
    a big response waits instead of piling it up in memory."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()

    def pauseProducing(self) -> None:
        self.open.clear()

    def resumeProducing(self) -> None:
        self.open.set()

    def stopProducing(self) -> None:
        self.open.set()
