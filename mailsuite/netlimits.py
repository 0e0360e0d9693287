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
from typing import Generic, Literal, TypeVar

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
