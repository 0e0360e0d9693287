"""Connection plumbing every listener shares: per-address counting, loopback, output flow.

SMTP (asyncio), IMAP and POP3 (Twisted) enforce the same `limits.connections` and
`limits.connections_per_ip`, recognise loopback clients the same way (the demo's plaintext
setting) and stop writing to a client whose socket buffer is full. Imports nothing else of
mailsuite, so every protocol package may use it without depending on another.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
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


class ConnectionCounter(Generic[T]):
    """Open connections, in total and per client address.

    A connection is counted only once `admit` lets it in, and `release` forgets it however
    often it is called, so refusals and double closes never skew the counts.
    """

    def __init__(self) -> None:
        self.live: set[T] = set()
        self.by_ip: Counter[str] = Counter()
        self._ip: dict[T, str] = {}

    def admit(self, conn: T, ip: str, total: int, per_ip: int) -> Literal["total", "ip"] | None:
        """Count `conn` in; the limit it would break ("total" or "ip") instead, if any."""
        if len(self.live) >= total:
            return "total"
        if self.by_ip[ip] >= per_ip:
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
        return True


@dataclass
class ConnectionFamily:
    """The listeners of one protocol in one server (imap and imaps, pop3 and pop3s).

    They share one count, so the per-address and per-account limits span both ports, and
    background work that lives as long as the protocol has listeners (IMAP's sync of folders
    changed by other processes) is tied to it.
    """

    counts: ConnectionCounter[Any] = field(default_factory=ConnectionCounter)
    by_user: Counter[str] = field(default_factory=Counter)
    listeners: int = 0
    tasks: list[asyncio.Future[None]] = field(default_factory=list)


class Connections:
    """The connection families of one running server; the `Context` owns it, serve closes it.

    A second server in the same process has its own, so nothing is counted across them.
    """

    def __init__(self) -> None:
        self._families: dict[str, ConnectionFamily] = {}

    def family(self, protocol: str) -> ConnectionFamily:
        """The family of `protocol` ("imap", "pop3"), created on first use."""
        found = self._families.get(protocol)
        if found is None:
            found = self._families[protocol] = ConnectionFamily()
        return found

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
