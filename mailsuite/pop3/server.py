"""POP3 listeners on Twisted: line framing, limits, TLS, the idle timer and output flow.

This module owns the socket side; `session` decides what lines mean. Lines longer than the
configured limit are answered -ERR and skipped without dropping the connection; pipelined
lines queue up (reading pauses when too many wait); big responses wait while the socket's
buffer is full, so one slow client never makes the process hold a whole mailbox in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import protocol

from mailsuite.context import Context
from mailsuite.netlimits import ConnectionCounter, OutputGate, is_loopback
from mailsuite.pop3.maildrop import locks_for
from mailsuite.pop3.session import TOO_LONG, Session, State

log = logging.getLogger("mailsuite.pop3")

MAX_QUEUED = 64  # pipelined lines held before we stop reading from the client


@dataclass
class Registry:
    """Open connections of the pop3 and pop3s listeners of one server, for the limits."""

    counts: ConnectionCounter[Connection] = field(default_factory=ConnectionCounter)


class Connection(protocol.Protocol):
    """One client socket, feeding complete lines to its `Session`."""

    def __init__(self, factory: POP3Factory) -> None:
        self.factory = factory
        self.ctx = factory.ctx
        self.tls = factory.implicit_tls
        self.buffer = bytearray()
        self.discarding = False  # inside an over-long line: skip to its end
        self.lines: deque[bytes] = deque()
        self.wakeup = asyncio.Event()
        self.gate = OutputGate()
        self.closed = False
        self.reading_paused = False
        self.remote_ip = ""
        self.peer: tuple[str, int] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.session: Session | None = None
        self.task: asyncio.Future[None] | None = None

    # -- Twisted callbacks -----------------------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.remote_ip = getattr(peer, "host", "")
        self.peer = (self.remote_ip, getattr(peer, "port", 0))
        limits = self.ctx.settings.limits
        refused = self.factory.registry.counts.admit(
            self, self.remote_ip, limits.connections, limits.connections_per_ip
        )
        self.ctx.events.inc("pop3.connections")
        self.transport.registerProducer(self.gate, True)
        if refused == "total":
            self.refuse(b"-ERR [SYS/TEMP] Too many connections; try again later\r\n")
            return
        if refused == "ip":
            self.refuse(b"-ERR [SYS/TEMP] Too many connections from your address\r\n")
            return
        self.ctx.events.inc("pop3.open.connections")
        self.touch()
        self.session = Session(self.ctx, self, locks_for(self.ctx.store))
        self.task = asyncio.ensure_future(self._run(self.session))

    def connectionLost(self, reason: Any = None) -> None:
        self.closed = True
        if self.factory.registry.counts.release(self):
            self.ctx.events.inc("pop3.open.connections", -1)
        if self.timer is not None:
            self.timer.cancel()
        self.gate.open.set()
        self.wakeup.set()

    def dataReceived(self, data: bytes) -> None:
        self.touch()
        self.buffer += data
        self._frame()

    # -- framing ---------------------------------------------------------------------------

    def _frame(self) -> None:
        limit = self.ctx.settings.limits.line_length
        buf = self.buffer
        while buf and not self.closed:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > limit:
                    if not self.discarding:
                        self._too_long()
                    self.discarding = True
                    buf.clear()
                break
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            if self.discarding:
                self.discarding = False
                continue
            if len(line) > limit:
                self._too_long()
                continue
            self.lines.append(line[:-1] if line.endswith(b"\r") else line)
            self.wakeup.set()
        if len(self.lines) >= MAX_QUEUED and not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pauseProducing()

    def _too_long(self) -> None:
        # Answered in place of the line's command, so pipelined replies keep their order.
        self.lines.append(TOO_LONG)
        self.wakeup.set()

    # -- what the session calls ------------------------------------------------------------

    async def next_line(self) -> bytes | None:
        """The next line from the client (TOO_LONG in place of an over-long one), None once
        the connection is gone."""
        # A client that sends commands but does not read the answers gets no more answers
        # until it does, so the output buffered for it stays bounded.
        await self.gate.open.wait()
        while not self.lines:
            if self.closed:
                return None
            self.wakeup.clear()
            await self.wakeup.wait()
        line = self.lines.popleft()
        if self.reading_paused and len(self.lines) < MAX_QUEUED // 2 and not self.closed:
            self.reading_paused = False
            self.transport.resumeProducing()
        return line

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's buffer is full; a slow reader is not idle."""
        await self.gate.open.wait()
        self.touch()

    def start_tls(self) -> None:
        """RFC 2595 4: lines the client pipelined after STLS are thrown away."""
        self.buffer.clear()
        self.lines.clear()
        self.discarding = False
        self.transport.startTLS(self.ctx.tls.twisted_options())
        self.tls = True

    def is_loopback(self) -> bool:
        return is_loopback(self.remote_ip)

    def touch(self) -> None:
        """Restart the RFC 1939 3 inactivity autologout timer (at least 10 minutes)."""
        if self.timer is not None:
            self.timer.cancel()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.ctx.settings.pop3.idle_timeout, self._idle)

    def _idle(self) -> None:
        # RFC 1939 3: the autologout timer closes without entering UPDATE.
        if not self.closed and not (self.session and self.session.state is State.UPDATE):
            self.write(b"-ERR Idle for too long; closing\r\n")
            self.close()

    def refuse(self, line: bytes) -> None:
        self.write(line)
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.loseConnection()
        self.wakeup.set()
        self.gate.open.set()

    async def _run(self, session: Session) -> None:
        try:
            await session.run()
        except Exception:
            log.exception("POP3 session failed")
        finally:
            self.close()


class POP3Factory(protocol.Factory):
    def __init__(self, ctx: Context, implicit_tls: bool, registry: Registry) -> None:
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.registry = registry
        self.port: Any = None

    def buildProtocol(self, addr: Any) -> Connection:
        return Connection(self)


@dataclass
class Running:
    """A bound POP3 listener."""

    port: Any
    registry: Registry
    address: tuple[str, int] | None = None

    async def close(self) -> None:
        """Stop accepting; sessions committing a QUIT finish, the others close uncommitted
        (RFC 1939 6: no UPDATE without QUIT)."""
        stopped = self.port.stopListening()
        if stopped is not None:
            await stopped.asFuture(asyncio.get_running_loop())
        finishing = []
        for conn in list(self.registry.counts.live):
            if conn.factory.port is not self.port:
                continue
            if conn.session is not None and conn.session.state is State.UPDATE and conn.task:
                finishing.append(conn.task)
                continue
            conn.write(b"-ERR [SYS/TEMP] Server shutting down\r\n")
            conn.close()
        if finishing:
            await asyncio.wait(finishing)


_REGISTRIES: dict[int, Registry] = {}


def _registry(ctx: Context) -> Registry:
    """One registry for both listeners, so the per-address limit spans 110 and 995."""
    return _REGISTRIES.setdefault(id(ctx), Registry())


async def start_pop3(ctx: Context, host: str, port: int) -> Running:
    """POP3 with STLS (RFC 1939, RFC 2595 4)."""
    from twisted.internet import reactor

    factory = POP3Factory(ctx, False, _registry(ctx))
    listener = reactor.listenTCP(port, factory, interface=host)
    factory.port = listener
    bound = listener.getHost()
    return Running(listener, factory.registry, (bound.host, bound.port))


async def start_pop3s(ctx: Context, host: str, port: int) -> Running:
    """POP3 over implicit TLS (RFC 8314 3.2)."""
    from twisted.internet import reactor

    factory = POP3Factory(ctx, True, _registry(ctx))
    listener = reactor.listenSSL(port, factory, ctx.tls.twisted_options(), interface=host)
    factory.port = listener
    bound = listener.getHost()
    return Running(listener, factory.registry, (bound.host, bound.port))
