"""IMAP listeners on Twisted: framing of lines and literals, limits, TLS, timers, output.

This module owns the socket side of a session: it cuts the byte stream into complete commands
(line plus inline literals, see `parser`), enforces the line and literal limits before data is
accepted, sends continuation requests, batches output, and applies back-pressure both ways.
Everything a command means lives in `session`; the only store call here is the periodic sync
of watched folders that brings other processes' changes to IDLE sessions.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import protocol

from mailsuite.context import Context
from mailsuite.imap.parser import literal_at_end, parse_tag
from mailsuite.imap.session import Session
from mailsuite.netlimits import ConnectionCounter, OutputGate, is_loopback

log = logging.getLogger("mailsuite.imap")

_VERB = re.compile(rb"^\S+ +(?:UID +)?([A-Za-z]+)")
MAX_PIPELINE = 64  # queued commands before we stop reading from the client
OUTPUT_HIGH_WATER = 1 << 20
NON_APPEND_LITERAL = 64 * 1024  # literals of other commands (login, search strings)
POLL_INTERVAL = 2.0  # seconds between syncs of watched folders for outside changes


@dataclass
class Limits:
    line_length: int
    message_size: int
    idle_timeout: float
    per_user: int
    per_ip: int
    total: int


@dataclass
class Registry:
    """Open connections of one listener pair, counted for the per-IP and per-user limits."""

    counts: ConnectionCounter[Connection] = field(default_factory=ConnectionCounter)
    by_user: Counter[str] = field(default_factory=Counter)
    listeners: int = 0
    poller: asyncio.Future[None] | None = None


class Connection(protocol.Protocol):
    """One client connection: framing and I/O for a `Session`."""

    def __init__(self, factory: IMAPFactory, implicit_tls: bool) -> None:
        self.factory = factory
        self.ctx = factory.ctx
        self.limits = factory.limits
        self.tls = implicit_tls
        self.buffer = bytearray()
        self.command = bytearray()  # the command being assembled (line plus literals)
        self.literal_left = 0
        self.discard_left = 0  # bytes of a refused LITERAL+ still to skip
        self.discarding_line = False  # inside an over-long line: skip to its end
        self.queue: deque[bytes] = deque()
        self.wakeup = asyncio.Event()
        self.out: list[bytes] = []
        self.out_size = 0
        self.gate = OutputGate()
        self.closed = False
        self.reading_paused = False
        self.remote_ip = ""
        self.user: str | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.session = Session(self.ctx, self)

    # --- Twisted callbacks -------------------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.remote_ip = getattr(peer, "host", "")
        reg = self.factory.registry
        refused = reg.counts.admit(self, self.remote_ip, self.limits.total, self.limits.per_ip)
        self.ctx.events.inc("imap.connections")
        self.transport.registerProducer(self.gate, True)
        # responses end in small tagged lines; Nagle plus delayed ACKs would stall them 40 ms
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        if refused == "total":
            self.write(b"* BYE Too many connections; try again later\r\n")
            self.close()
            return
        if refused == "ip":
            self.write(b"* BYE Too many connections from your address\r\n")
            self.close()
            return
        self.ctx.events.inc("imap.open.connections")
        self.touch()
        self.task = asyncio.ensure_future(self.session.run())
        self.task.add_done_callback(self._session_ended)

    def _session_ended(self, task: asyncio.Task[None]) -> None:
        """Whatever ended the session, the socket goes with it."""
        if not task.cancelled() and task.exception() is not None:
            log.error("IMAP session ended by an error", exc_info=task.exception())
            self.write(b"* BYE Internal error\r\n")
        self.close()

    def connectionLost(self, reason: Any = None) -> None:
        self.closed = True
        reg = self.factory.registry
        if reg.counts.release(self):
            self.ctx.events.inc("imap.open.connections", -1)
        self.set_user(None)
        if self.timer is not None:
            self.timer.cancel()
        self.gate.open.set()
        self.wakeup.set()
        self.session.connection_lost()

    def dataReceived(self, data: bytes) -> None:
        self.touch()
        self.buffer += data
        self._frame()

    # --- framing -------------------------------------------------------------------------

    def _frame(self) -> None:
        """Move complete commands from the input buffer to the queue."""
        buf = self.buffer
        while buf and not self.closed:
            if self.discard_left:
                n = min(self.discard_left, len(buf))
                del buf[:n]
                self.discard_left -= n
                continue
            if self.literal_left:
                n = min(self.literal_left, len(buf))
                self.command += buf[:n]
                del buf[:n]
                self.literal_left -= n
                continue
            nl = buf.find(b"\n")
            if nl < 0:
                if self.discarding_line:
                    buf.clear()
                    return
                if len(buf) + len(self.command) > self.limits.line_length:
                    if not self.discarding_line:
                        self._too_long(bytes(self.command or buf[:200]))
                    self.discarding_line = True
                    buf.clear()
                return
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if self.discarding_line:
                self.discarding_line = False
                self.command.clear()
                continue
            if len(line) > self.limits.line_length:
                self._too_long(line)
                self.command.clear()
                continue
            self.command += line
            announced = literal_at_end(line)
            if announced is None:
                self._queue(bytes(self.command))
                self.command.clear()
                continue
            size, nonsync = announced
            refusal = self._literal_refusal(size)
            if refusal is not None:
                tag = parse_tag(bytes(self.command)) or "*"
                if nonsync:
                    # RFC 7888 4: the client sends the data anyway; skip it, then answer
                    self.discard_left = size
                    self.discarding_line = True  # and the rest of that command line
                self.command.clear()
                self.write(tag.encode() + b" " + refusal + b"\r\n")
                self.flush()
                continue
            self.command += b"\r\n"
            self.literal_left = size
            if not nonsync:
                self.write(b"+ Ready for literal data\r\n")
                self.flush()
        if len(self.queue) >= MAX_PIPELINE and not self.reading_paused:
            self.reading_paused = True
            self.transport.pauseProducing()

    def _literal_refusal(self, size: int) -> bytes | None:
        """The reply that refuses an announced literal, or None when it may be sent."""
        m = _VERB.match(self.command)
        verb = m.group(1).upper() if m else b""
        if verb == b"APPEND":
            if size > self.limits.message_size or len(self.command) > NON_APPEND_LITERAL * 4:
                # RFC 7889 / RFC 4469: refuse before the data is sent
                return b"NO [TOOBIG] Message larger than the APPENDLIMIT of %d bytes" % (
                    self.limits.message_size
                )
            return None
        if size > NON_APPEND_LITERAL or len(self.command) + size > NON_APPEND_LITERAL * 4:
            return b"BAD [LIMIT] Literal too large for this command"
        return None

    def _too_long(self, start: bytes) -> None:
        tag = parse_tag(start[:200]) or "*"
        self.write(tag.encode() + b" BAD [LIMIT] Command line too long\r\n")
        self.flush()

    def _queue(self, command: bytes) -> None:
        self.queue.append(command)
        self.wakeup.set()

    # --- what the session calls ----------------------------------------------------------

    async def next_command(self) -> bytes | None:
        """The next complete command (or raw line, for IDLE's DONE and SASL), None on close."""
        while not self.queue:
            if self.closed:
                return None
            self.wakeup.clear()
            await self.wakeup.wait()
        item = self.queue.popleft()
        if self.reading_paused and len(self.queue) < MAX_PIPELINE // 2 and not self.closed:
            self.reading_paused = False
            self.transport.resumeProducing()
        return item

    def has_pending_input(self) -> bool:
        return bool(self.queue)

    def write(self, data: bytes) -> None:
        self.out.append(data)
        self.out_size += len(data)
        if self.out_size >= OUTPUT_HIGH_WATER:
            self.flush()

    def flush(self) -> None:
        if self.out and not self.closed:
            self.transport.write(b"".join(self.out))
        self.out.clear()
        self.out_size = 0

    async def drain(self) -> None:
        """Flush, and wait while the transport's buffer is full (big FETCH responses)."""
        self.flush()
        await self.gate.open.wait()

    def start_tls(self) -> None:
        """RFC 3501 6.2.1: TLS starts right after the OK; anything pipelined is dropped."""
        self.buffer.clear()
        self.queue.clear()
        self.command.clear()
        self.flush()
        self.transport.startTLS(self.ctx.tls.twisted_options())
        self.tls = True

    def is_loopback(self) -> bool:
        return is_loopback(self.remote_ip)

    def set_user(self, address: str | None) -> bool:
        """Count this connection against `address`; False when over the per-user limit."""
        reg = self.factory.registry
        if self.user is not None:
            reg.by_user[self.user] -= 1
            if reg.by_user[self.user] <= 0:
                del reg.by_user[self.user]
        self.user = None
        if address is None:
            return True
        if reg.by_user[address] >= self.limits.per_user:
            return False
        reg.by_user[address] += 1
        self.user = address
        return True

    def touch(self) -> None:
        """Restart the autologout timer (RFC 3501 5.4: at least 30 minutes)."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(
            self.limits.idle_timeout, self._autologout
        )

    def _autologout(self) -> None:
        if not self.closed:
            self.write(b"* BYE Autologout; idle for too long\r\n")
            self.close()

    def close(self) -> None:
        self.flush()
        if not self.closed:
            self.closed = True
            self.transport.loseConnection()
        self.wakeup.set()


class IMAPFactory(protocol.Factory):
    def __init__(self, ctx: Context, implicit_tls: bool, registry: Registry) -> None:
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.registry = registry
        self.port: Any = None
        s = ctx.settings
        self.limits = Limits(
            line_length=s.limits.line_length,
            message_size=s.limits.message_size,
            idle_timeout=s.imap.idle_timeout,
            per_user=s.imap.max_connections_per_user,
            per_ip=s.limits.connections_per_ip,
            total=s.limits.connections,
        )

    def buildProtocol(self, addr: Any) -> Connection:
        return Connection(self, self.implicit_tls)


@dataclass
class Running:
    """A bound IMAP listener."""

    port: Any
    registry: Registry
    address: tuple[str, int] | None = None

    async def close(self) -> None:
        """Stop accepting, say BYE to every session, and let the sockets close."""
        stopped = self.port.stopListening()
        if stopped is not None:
            await stopped.asFuture(asyncio.get_running_loop())
        for conn in list(self.registry.counts.live):
            if conn.factory.port is self.port:
                conn.write(b"* BYE Server shutting down\r\n")
                conn.close()
        self.registry.listeners -= 1
        if self.registry.listeners <= 0 and self.registry.poller is not None:
            self.registry.poller.cancel()
            self.registry.poller = None


_REGISTRIES: dict[int, Registry] = {}


def _registry(ctx: Context) -> Registry:
    """The registry shared by the imap and imaps listeners of one server.

    Sharing makes the per-user limit span both ports and gives them one poller that syncs
    watched folders, so changes made by other processes (the CLI, another server) reach
    IDLE sessions.
    """
    reg = _REGISTRIES.setdefault(id(ctx), Registry())
    reg.listeners += 1
    if reg.poller is None:
        reg.poller = asyncio.ensure_future(_poll_watched(ctx, reg))
    return reg


async def _poll_watched(ctx: Context, reg: Registry) -> None:
    while True:
        await asyncio.sleep(POLL_INTERVAL)
        if reg.counts.live:
            try:
                await ctx.run_io(ctx.store.sync_watched)
            except Exception:
                log.exception("syncing watched folders failed")


async def start_imap(ctx: Context, host: str, port: int) -> Running:
    """IMAP with STARTTLS (RFC 3501 6.2.1)."""
    from twisted.internet import reactor

    registry = _registry(ctx)
    factory = IMAPFactory(ctx, False, registry)
    listener = reactor.listenTCP(port, factory, interface=host)
    factory.port = listener
    bound = listener.getHost()
    return Running(listener, registry, (bound.host, bound.port))


async def start_imaps(ctx: Context, host: str, port: int) -> Running:
    """IMAP over implicit TLS (RFC 8314 3.2)."""
    from twisted.internet import reactor

    registry = _registry(ctx)
    factory = IMAPFactory(ctx, True, registry)
    listener = reactor.listenSSL(port, factory, ctx.tls.twisted_options(), interface=host)
    factory.port = listener
    bound = listener.getHost()
    return Running(listener, registry, (bound.host, bound.port))
