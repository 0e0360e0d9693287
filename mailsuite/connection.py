"""One client connection on Twisted, shared by IMAP and POP3: everything but the protocol.

Twisted is the transport; this module is the layer above it that both line protocols need
and neither should own: cutting the byte stream into commands (lines, plus IMAP's literals
through a hook), refusing over-long lines in order without dropping the connection, the
queue of pipelined commands with back-pressure both ways (reading pauses when too many wait;
answering pauses while the client does not read), the inactivity timer, batched output,
STARTTLS and implicit TLS (one path: TLS is started on the TCP connection in both cases),
the connection limits, and a close that really closes: after the final reply the TLS
close_notify is sent and the socket is gone within a second, on plain and TLS alike.

Limits are read from the current settings on every use, so a SIGHUP reaches connections
that open after it. A protocol subclasses `LineConnection`, says what its limits are and how
it says goodbye, and keeps only what its protocol means in its `Session`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import zlib
from abc import ABCMeta, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.internet import protocol, tcp
from twisted.internet.abstract import FileDescriptor

from mailsuite.netlimits import ConnectionFamily, OutputGate, is_loopback

if TYPE_CHECKING:
    from mailsuite.context import Context

log = logging.getLogger("mailsuite.connection")

MAX_PIPELINE = 64  # queued commands before we stop reading from the client
OUTPUT_HIGH_WATER = 1 << 20  # batched output is handed to the transport past this size
CLOSE_NOTIFY_WAIT = 0.5  # seconds to wait for the client's TLS close_notify before our FIN
CLOSE_DEADLINE = 30.0  # a client that never reads its last reply is cut off after this
INFLATE_CHUNK = 64 * 1024  # compressed input is framed in pieces, so a bomb never piles up


@dataclass(frozen=True)
class Limits:
    """What one connection may do, taken from the settings in force when it is asked."""

    line_length: int
    message_size: int
    idle_timeout: float
    per_ip: int
    total: int
    per_user: int = 0  # 0: no per-account limit on this protocol

    @classmethod
    def of(cls, settings: Any, *, idle_timeout: float, per_user: int = 0) -> Limits:
        """The suite-wide `limits.*` with a protocol's own timer and per-account limit."""
        limits = settings.limits
        return cls(
            line_length=limits.line_length,
            message_size=limits.message_size,
            idle_timeout=idle_timeout,
            per_ip=limits.connections_per_ip,
            total=limits.connections,
            per_user=per_user,
        )


@dataclass(frozen=True)
class TooLong:
    """Queued in place of a command line over the limit, so its refusal keeps its turn.

    `start` is the line's beginning (at most 200 bytes), enough to find an IMAP tag.
    """

    start: bytes


Command = bytes | TooLong


class LineConnection(protocol.Protocol, metaclass=ABCMeta):
    """A client connection: framing, queue, timer, output and close for a protocol session.

    Subclasses set `protocol_name` (for counters and logs), implement `limits_from`,
    `farewell`, `refusal` and `start_session`, and may override `literal_announced` to
    frame literals.
    """

    protocol_name: ClassVar[str] = ""

    def __init__(self, ctx: Context, family: ConnectionFamily, implicit_tls: bool) -> None:
        self.ctx = ctx
        self.family = family
        self.implicit_tls = implicit_tls
        self.tls = implicit_tls
        self.buffer = bytearray()
        self.command = bytearray()  # the command being assembled (a line plus its literals)
        self.literal_total = 0  # bytes of the literals accepted into `command` so far
        self.literal_left = 0
        self.discard_left = 0  # bytes of a refused non-synchronising literal still to skip
        self.discarding_line = False  # inside an over-long line: skip to its end
        self.queue: deque[Command] = deque()
        self.wakeup = asyncio.Event()
        self.out: list[bytes] = []
        self.out_size = 0
        self.gate = OutputGate()
        self.closed = False
        self.lost = False
        self.reading_paused = False
        self.remote_ip = ""
        self.peer: tuple[str, int] | None = None
        self.user: str | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closing_timers: list[asyncio.TimerHandle] = []
        self.task: asyncio.Future[None] | None = None
        self.inflater: Any = None  # set once COMPRESS=DEFLATE is active (RFC 4978)
        self.deflater: Any = None
        self._limits: Limits | None = None
        self._limits_of: object = None

    # --- what a protocol provides ----------------------------------------------------------

    @staticmethod
    @abstractmethod
    def limits_from(settings: Any) -> Limits:
        """This protocol's limits under `settings`."""

    @abstractmethod
    def refusal(self, reason: str) -> bytes:
        """The line that turns a connection away ("total" or "ip" limit reached)."""

    @abstractmethod
    def farewell(self) -> bytes | None:
        """The line sent when the inactivity timer fires; None: do not close now."""

    @abstractmethod
    def start_session(self) -> asyncio.Future[None]:
        """Start the protocol's session task (the greeting is its first write)."""

    def close_for_shutdown(self) -> asyncio.Future[None] | None:
        """Serve is stopping: say so and close, or return the task to wait for."""
        self.close()
        return None

    def literal_announced(self, line: bytes) -> tuple[int, bool] | None:
        """(size, non-synchronising) when `line` ends by announcing a literal; POP3 has none."""
        return None

    def literal_refusal(self, command: bytes, size: int) -> bytes | None:
        """The full reply line refusing a literal of `size` for `command`, or None to accept."""
        return None

    def literal_go_ahead(self) -> bytes:
        """The continuation request sent before a synchronising literal."""
        return b"+ Ready for literal data\r\n"

    # --- limits -----------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        """The limits of the settings in force now (a SIGHUP replaces `ctx.settings`)."""
        settings = self.ctx.settings
        if self._limits is None or self._limits_of is not settings:
            self._limits = self.limits_from(settings)
            self._limits_of = settings
        return self._limits

    # --- Twisted callbacks --------------------------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.remote_ip = getattr(peer, "host", "")
        self.peer = (self.remote_ip, getattr(peer, "port", 0))
        name = self.protocol_name
        limits = self.limits
        self.ctx.events.inc(f"{name}.connections")
        if self.implicit_tls:
            # RFC 8314 3.2: the same TLS layer STARTTLS uses, started before any byte is sent.
            self.transport.startTLS(self.ctx.tls.twisted_options())
        self.transport.registerProducer(self.gate, True)
        # replies end in small lines; Nagle plus delayed ACKs would stall them 40 ms
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        refused = self.family.counts.admit(self, self.remote_ip, limits.total, limits.per_ip)
        if refused is not None:
            self.write(self.refusal(refused))
            self.close()
            return
        self.ctx.events.inc(f"{name}.open.connections")
        self.touch()
        self.task = self.start_session()
        self.task.add_done_callback(self._session_ended)

    def _session_ended(self, task: asyncio.Future[None]) -> None:
        """Whatever ended the session, the socket goes with it."""
        if not task.cancelled() and task.exception() is not None:
            log.error("%s session ended by an error", self.protocol_name, exc_info=task.exception())
        self.close()

    def connectionLost(self, reason: Any = None) -> None:
        self.closed = True
        self.lost = True
        if self.family.counts.release(self):
            self.ctx.events.inc(f"{self.protocol_name}.open.connections", -1)
        self.set_user(None)
        for handle in (self.timer, *self.closing_timers):
            if handle is not None:
                handle.cancel()
        self.closing_timers.clear()
        self.gate.open.set()
        self.wakeup.set()
        self.session_lost()

    def session_lost(self) -> None:
        """The socket is gone; a session waiting for output or input is let go."""

    def dataReceived(self, data: bytes) -> None:
        if self.closed:
            return
        self.touch()
        if self.inflater is None:
            self.buffer += data
            self._frame()
            return
        try:
            # inflated a piece at a time: framing skips over-long lines as they arrive
            while data and not self.closed:
                self.buffer += self.inflater.decompress(data, INFLATE_CHUNK)
                data = self.inflater.unconsumed_tail
                self._frame()
        except zlib.error:
            log.info("%s client %s sent broken DEFLATE data", self.protocol_name, self.remote_ip)
            self.buffer.clear()
            self.close()

    # --- framing ------------------------------------------------------------------------------

    def _frame(self) -> None:
        """Move complete commands from the input buffer to the queue."""
        buf = self.buffer
        limit = self.limits.line_length
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
                if not self.discarding_line and len(buf) + len(self.command) > limit:
                    self._too_long(bytes(self.command or buf[:200]))
                    self.discarding_line = True
                if self.discarding_line:
                    buf.clear()
                break
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if self.discarding_line:
                self.discarding_line = False
                continue
            if len(line) > limit:
                self._too_long(bytes(self.command or line[:200]))
                continue
            self.command += line
            announced = self.literal_announced(line)
            if announced is None:
                self._queue(bytes(self.command))
                self._reset_command()
                continue
            size, nonsync = announced
            refusal = self.literal_refusal(bytes(self.command), size)
            if refusal is not None:
                if nonsync:
                    # RFC 7888 4: the client sends the data anyway; skip it and the rest of
                    # that command line, then answer
                    self.discard_left = size
                    self.discarding_line = True
                self._reset_command()
                self.write(refusal)
                self.flush()
                continue
            self.command += b"\r\n"
            self.literal_left = size
            self.literal_total += size
            if not nonsync:
                self.write(self.literal_go_ahead())
                self.flush()
        if len(self.queue) >= MAX_PIPELINE and not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pauseProducing()

    def _reset_command(self) -> None:
        self.command.clear()
        self.literal_total = 0

    def _too_long(self, start: bytes) -> None:
        self._reset_command()
        self._queue(TooLong(start[:200]))

    def _queue(self, command: Command) -> None:
        self.queue.append(command)
        self.wakeup.set()

    # --- what the session calls -----------------------------------------------------------------

    async def next_command(self) -> Command | None:
        """The next complete command (or raw line, for IDLE's DONE and SASL), None on close.

        Output batched so far is sent before waiting for the client, and no further command
        is taken while the client is not reading what it was sent.
        """
        while True:
            if not self.gate.open.is_set():
                self.flush()
                await self.gate.open.wait()
            if self.queue:
                break
            if self.closed:
                return None
            self.flush()
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
        if self.lost:
            return
        self.out.append(data)
        self.out_size += len(data)
        if self.out_size >= OUTPUT_HIGH_WATER:
            self.flush()

    def flush(self) -> None:
        if self.out and not self.lost:
            data = b"".join(self.out)
            if self.deflater is not None:
                # RFC 4978 4: a sync flush after each batch, so the client can act on it now
                data = self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
            self._send(data)
        self.out.clear()
        self.out_size = 0

    def _send(self, data: bytes) -> None:
        """Hand `data` to the transport. On plain TCP with nothing queued there, what the
        socket takes is sent at once: a reply then costs one send() instead of the reactor's
        round of watching for writable, waking, sending and unwatching. The rest (a full
        socket buffer) and every TLS byte go through the transport, which keeps the order."""
        t = self.transport
        if (
            not self.tls
            and getattr(t, "dataBuffer", None) == b""
            and getattr(t, "_tempDataBuffer", None) == []
            and getattr(t, "connected", False)
            and not getattr(t, "_writeDisconnected", True)
        ):
            try:
                sent = t.socket.send(data)
            except OSError:
                sent = 0  # would block, or broken: the transport's write finds out and closes
            data = data[sent:]
            if not data:
                return
        self.transport.write(data)

    async def drain(self) -> None:
        """Flush, and wait while the transport's buffer is full; a slow reader is not idle."""
        self.flush()
        if not self.gate.open.is_set():
            await self.gate.open.wait()
            self.touch()

    def start_tls(self) -> None:
        """RFC 3501 6.2.1, RFC 2595 4: TLS right after the OK; anything pipelined is dropped."""
        self.buffer.clear()
        self.queue.clear()
        self._reset_command()
        self.literal_left = self.discard_left = 0
        self.discarding_line = False
        self.flush()
        self.transport.startTLS(self.ctx.tls.twisted_options())
        self.tls = True

    def start_compression(self) -> None:
        """RFC 4978 3: raw DEFLATE both ways from the byte after the OK, which is sent as it
        is. Input already buffered came after the command, so it is compressed too."""
        self.flush()
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflater = zlib.decompressobj(-15)
        pending = bytes(self.buffer)
        self.buffer.clear()
        if pending:
            self.dataReceived(pending)

    @property
    def compressed(self) -> bool:
        return self.deflater is not None

    def is_loopback(self) -> bool:
        return is_loopback(self.remote_ip)

    def set_user(self, address: str | None) -> bool:
        """Count this connection against `address`; False when over the per-account limit."""
        counts = self.family.counts
        if self.user is not None:
            counts.release_user(self.user)
        self.user = None
        if address is None:
            return True
        if not counts.take_user(address, self.limits.per_user):
            return False
        self.user = address
        return True

    def touch(self) -> None:
        """Restart the inactivity timer."""
        if self.timer is not None:
            self.timer.cancel()
        if not self.closed:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.limits.idle_timeout, self._idle)

    def _idle(self) -> None:
        if self.closed:
            return
        line = self.farewell()
        if line is not None:
            self.write(line)
            self.close()

    def close(self) -> None:
        """Send what is buffered, then close: TLS close_notify first, the socket right after.

        The output gate is unregistered before the transport is asked to close: Twisted's TLS
        layer starts its shutdown only once no producer is registered. The client gets
        `CLOSE_NOTIFY_WAIT` to answer the close_notify before our side of TCP is closed
        anyway (RFC 8446 6.1 does not require waiting for it), and a client that never reads
        its last reply is cut off at `CLOSE_DEADLINE`.
        """
        self.flush()
        self.wakeup.set()
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        transport = self.transport
        if transport is None or self.lost:
            return
        transport.unregisterProducer()
        self.gate.open.set()
        transport.loseConnection()
        loop = asyncio.get_running_loop()
        if self.tls:
            self.closing_timers.append(loop.call_later(CLOSE_NOTIFY_WAIT, self._close_tcp))
        self.closing_timers.append(loop.call_later(CLOSE_DEADLINE, self._abort))

    def _close_tcp(self) -> None:
        """Our half of TCP, once what Twisted holds for the client has been written."""
        if not self.lost:
            FileDescriptor.loseConnection(self.transport)

    def _abort(self) -> None:
        if not self.lost:
            log.info(
                "%s client %s did not read its last reply; cut off",
                self.protocol_name,
                self.remote_ip,
            )
            self.transport.abortConnection()


class LineFactory(protocol.Factory):
    """Builds one protocol's connections for one listener."""

    def __init__(
        self,
        ctx: Context,
        family: ConnectionFamily,
        connection: type[LineConnection],
        implicit_tls: bool,
    ) -> None:
        self.ctx = ctx
        self.family = family
        self.connection = connection
        self.implicit_tls = implicit_tls

    def buildProtocol(self, addr: Any) -> LineConnection:
        conn = self.connection(self.ctx, self.family, self.implicit_tls)
        conn.factory = self
        return conn


class SharedPort(tcp.Port):
    """A listening port that other worker processes may accept from too.

    The kernel wakes every worker for a new connection and the first to call accept() gets
    it, so a burst of clients (ten IMAP sessions opened at once) can land on one worker and
    stay there. With `balance` set (several workers), a worker that would hold more than its
    share of the protocol's connections steps back: it stops reading the socket for `DEFER`
    and lets another take the client, but never for more than `MAX_DEFER` in a row, so a
    busy or restarting neighbour delays nobody for long. One connection is accepted per
    wake-up, so every accept is decided afresh.
    """

    DEFER = 0.002
    MAX_DEFER = 0.05
    balance: Callable[[], bool] | None = None
    _since = 0.0  # when the current run of deferrals began
    _last = -1.0  # when this port last stepped back
    _accepts = 100  # Twisted's adaptive accepts per wake-up, when not balancing

    @property  # type: ignore[override]
    def numberAccepts(self) -> int:
        return 1 if self.balance is not None else self._accepts

    @numberAccepts.setter
    def numberAccepts(self, value: int) -> None:
        self._accepts = value

    def doRead(self) -> None:
        if self.balance is not None and self.balance():
            now = time.monotonic()
            if now - self._last > 2 * self.DEFER:
                self._since = now  # a new run: the last one ended in an accept elsewhere
            if now - self._since < self.MAX_DEFER:
                self._last = now
                self.stopReading()
                self.reactor.callLater(self.DEFER, self._resume)
                return
        super().doRead()

    def _resume(self) -> None:
        if self.connected:
            self.startReading()


@dataclass
class Listener:
    """A bound IMAP or POP3 listener: what serve reports and closes."""

    port: Any
    factory: LineFactory
    address: tuple[str, int] | None = None

    def connections(self) -> list[LineConnection]:
        """The open connections this listener accepted."""
        return [c for c in self.factory.family.counts.live if c.factory is self.factory]

    async def stop_listening(self) -> None:
        stopped = self.port.stopListening()
        if stopped is not None:
            await stopped.asFuture(asyncio.get_running_loop())
        family = self.factory.family
        family.listeners -= 1
        if family.listeners <= 0:
            for task in family.tasks:
                task.cancel()
            family.tasks.clear()

    async def close(self) -> None:
        """Stop accepting; each session ends as its protocol's `close_for_shutdown` says."""
        await self.stop_listening()
        finishing: list[asyncio.Future[None]] = []
        for conn in self.connections():
            waiting = conn.close_for_shutdown()
            if waiting is not None:
                finishing.append(waiting)
        if finishing:
            await asyncio.wait(finishing)


def listen(
    ctx: Context,
    family: ConnectionFamily,
    connection: type[LineConnection],
    sock: socket.socket,
    implicit_tls: bool,
) -> Listener:
    """Serve `connection`'s protocol on `sock`, a listening socket serve bound (and that
    other worker processes may accept from too); implicit TLS or not, it is plain TCP to
    Twisted and TLS is started per connection. Twisted adopts a duplicate of the socket,
    so `sock` itself is closed here: the listener owns what it was given."""
    from twisted.internet import reactor

    factory = LineFactory(ctx, family, connection, implicit_tls)
    try:
        bound_port = SharedPort._fromListeningDescriptor(
            reactor, sock.fileno(), sock.family, factory
        )
    finally:
        sock.close()
    if family.counts.shared:  # one of several workers: they balance what they accept
        bound_port.balance = family.counts.over_share
    bound_port.startListening()
    family.listeners += 1
    bound = bound_port.getHost()
    return Listener(bound_port, factory, (bound.host, bound.port))
