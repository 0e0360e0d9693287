"""The SMTP listeners: aiosmtpd protocol objects on the shared loop, with our limits.

`start_mx` (port 25), `start_submission` (587, STARTTLS then AUTH) and `start_submissions`
(465, implicit TLS) each serve the socket serve bound with `loop.create_server`, whose
protocol is `Server`, an aiosmtpd `SMTP` that adds what aiosmtpd leaves to us: connection
limits per service and per client address, enhanced status codes on every reply, plaintext
AUTH on loopback only when the config allows it, and a close that lets deliveries in
progress finish.

Bad input gets the protocol's answer and nothing more: NUL anywhere in a command line is
refused (501), a path aiosmtpd's parser chokes on is malformed (553/501, never its 451 and
a traceback), undecodable bytes are never echoed raw, and what a client sent reaches the log
escaped. After any 421 reply the connection is closed (RFC 5321 3.8).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, syntax

from mailsuite import control
from mailsuite.context import Context
from mailsuite.netlimits import ConnectionCounter, is_loopback
from mailsuite.smtp import replies
from mailsuite.smtp.handler import Handler

log = logging.getLogger("mailsuite.smtp")


class _QuietDeprecation(logging.Filter):
    """aiosmtpd warns on every AUTH about an attribute it sets itself; that is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


class _Printable(logging.Filter):
    """What a client sent reaches the log escaped (`replies.printable`): a NUL, a terminal
    escape or a line break can neither corrupt the log nor forge a line of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call is logging's to report
            return True
        clean = replies.printable(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


logging.getLogger("mail.log").addFilter(_QuietDeprecation())
for _name in ("mail.log", "mailsuite.smtp"):
    logging.getLogger(_name).addFilter(_Printable())

IDENT = "mailsuite ESMTP"
CLOSE_GRACE = 3.0  # seconds a session in DATA may take to finish at shutdown


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# RFC 5321 4.1.2: "<" Dot-string "@" a domain of LDH labels ">", then parameters, if any
_SIMPLE_PATH = re.compile(
    rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?:[ \t]+([^( \t].*)?)?"
)


def simple_path(arg: str) -> tuple[str, str] | None:
    """(address, rest) of a path in the plain form nearly every client sends, exactly as
    the email package's `get_angle_addr` splits it; None for anything else (quoted local
    parts, address literals, source routes, comments, UTF-8), which that parser handles."""
    found = _SIMPLE_PATH.fullmatch(arg)
    if found is None:
        return None
    return found.group(1), found.group(2) or ""


_REFUSALS = {"total": replies.SERVICE_FULL, "ip": replies.TOO_MANY_CONNECTIONS}
Command = Callable[[str | None], Awaitable[None]]


class _Verbs(dict[str, Any]):
    """aiosmtpd's table of `smtp_<VERB>` methods, as it looks them up: each command it finds
    is guarded so that a command line with NUL anywhere, in the verb or the argument, gets
    `refuse` and goes no further (RFC 5321 4.1.2 allows NUL in no path or parameter, and one
    is how `<a\\0b@x>` became `ab@x`), and declared to the loop watchdog while it runs, so a
    stall it causes is named after it. The guard is made for the command being run, not
    for every verb at every connection."""

    def __init__(self, server: Server, methods: dict[str, Any]) -> None:
        super().__init__(methods)
        self._server = server

    def get(self, verb: str, default: Any = None) -> Any:  # type: ignore[override]
        if "\0" in verb:
            return self._server._refuse_nul
        method = super().get(verb)
        return default if method is None else _Command(self._server, verb, method)


class _Command:
    """One `smtp_<VERB>` call, guarded (see `_Verbs`); HELP still finds its syntax
    attributes, which are the method's."""

    __slots__ = ("_method", "_server", "_verb")

    def __init__(self, server: Server, verb: str, method: Command) -> None:
        self._server = server
        self._verb = verb
        self._method = method

    def __getattr__(self, name: str) -> Any:
        return getattr(self._method, name)

    async def __call__(self, arg: str | None) -> None:
        server = self._server
        if arg is not None and "\0" in arg:
            await server._refuse_nul(arg)
            return
        with control.running(server.ctx.lag, "smtp", server._ip) as doing:
            doing.command = self._verb
            await self._method(arg)


def _listed(cls: type, prefixes: tuple[str, ...]) -> list[str]:
    """The attribute names of `cls` that start with one of `prefixes`, sorted as dir()."""
    return sorted(name for name in dir(cls) if name.startswith(prefixes))


class Server(SMTP):
    """One SMTP session. Holds no policy of its own: that is in `Handler`."""

    _raw_push = False
    committing = False  # set by Handler while DATA waits for the store and spool
    _holding = False  # while EHLO's lines are being pushed, to go out in one write
    _names: list[str] | None = None

    def __init__(
        self,
        handler: Handler,
        *,
        ctx: Context,
        connections: ConnectionCounter[Server],
        implicit_tls: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.ctx = ctx
        self.connections = connections
        self.implicit_tls = implicit_tls
        self._refusal: str | None = None
        self._ip = ""
        self._held: list[bytes] = []  # replies kept back to go out with the next one
        self._smtp_methods = _Verbs(self, self._smtp_methods)

    def __dir__(self) -> list[str]:
        """Only the `smtp_` and `auth_` names, worked out once per class: aiosmtpd's
        `SMTP.__init__` walks dir() of every new connection (`inspect.getmembers`) to build
        its command and AUTH tables, and the hundreds of other names made that walk a tenth
        of what a connection costs."""
        cls = type(self)
        if cls.__dict__.get("_names") is None:
            cls._names = _listed(cls, ("smtp_", "auth_"))
        return list(cls._names or ())

    @property
    def secure(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        if first:
            peer = transport.get_extra_info("peername")
            self._ip = str(peer[0]) if peer else ""
            limits = self.ctx.settings.limits
            refused = self.connections.admit(
                self, self._ip, limits.connections, limits.connections_per_ip
            )
            self._refusal = _REFUSALS[refused] if refused else None
            self.ctx.events.inc("smtp.connections")
            if refused is None:
                self.ctx.events.inc("smtp.open.connections")
            # RFC 4954 4: no plaintext passwords; the demo may allow them on loopback only.
            if (
                not self.implicit_tls
                and self.ctx.settings.tls.allow_plaintext_auth_on_loopback
                and is_loopback(self._ip)
            ):
                self._auth_require_tls = False
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self.connections.release(self):
            self.ctx.events.inc("smtp.open.connections", -1)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refusal is not None:
            await self.push(self._refusal)  # a 421: push closes the connection
            return
        await super()._handle_client()

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            if not self._raw_push:
                status = replies.enhance(status)
            # A reply may echo the client's words: control characters and bytes that were
            # not UTF-8 (surrogates here) go back escaped, never raw, never as an error.
            status = replies.printable(status).encode("utf-8")
        if self._holding or (status[:3] == b"250" and self._next_command_waiting()):
            self._held.append(status)
            return
        if self._held:
            status = b"\r\n".join([*self._held, status])
            self._held = []
        await super().push(status)
        if status[:3] == b"421" and self.transport is not None:
            self.transport.close()  # RFC 5321 3.8: the server closes after a 421

    async def _refuse_nul(self, arg: str | None) -> None:
        await self.push(replies.NUL_IN_COMMAND)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The path and what follows it. The usual `<local@domain> PARAMS` is split here
        (`simple_path`); anything else goes to aiosmtpd's parser (the email package's, a
        tenth of a message's CPU), which raises on some malformed paths (IndexError for
        `MAIL FROM:‹` and `VRFY a@`, and others): such a path is just malformed, so MAIL and
        RCPT answer aiosmtpd's 553 5.1.3 and VRFY 501."""
        simple = simple_path(arg)
        if simple is not None and not (
            self.local_part_limit and len(simple[0].rpartition("@")[0]) > self.local_part_limit
        ):
            return simple
        try:
            return super()._getaddr(arg)
        except Exception:
            return None, None

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str | None) -> None:
        """RFC 5321 3.5.3: we never confirm who exists, so 252; a malformed argument is a
        501 that does not echo it (aiosmtpd's 502 echo fails on undecodable bytes)."""
        if await self.check_auth_needed("VRFY"):
            return
        if not arg:
            await self.push(replies.VRFY_SYNTAX)
            return
        address, _ = self._getaddr(arg)
        await self.push(replies.CANNOT_VRFY if address else replies.BAD_ADDRESS)

    async def smtp_EHLO(self, hostname: str) -> None:
        """RFC 2034 3: the EHLO reply itself carries no enhanced codes. Its lines go out in
        one write (aiosmtpd pushes each on its own: a send(2) per line, the costliest part
        of a short connection)."""
        self._raw_push = self._holding = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._raw_push = self._holding = False
        if self._held:
            lines, self._held = self._held, []
            await super().push(b"\r\n".join(lines))

    def _next_command_waiting(self) -> bool:
        """Whether the client's next command line has already arrived (RFC 2920: MAIL, RCPT
        and DATA sent together): then a 250 waits to go out in one write with the replies
        that follow, instead of a send(2) each. Nothing is held when the client waits."""
        buffered = getattr(self._reader, "_buffer", None)
        return buffered is not None and b"\n" in buffered


class Listener:
    """A running SMTP listener (`Running` in docs/internals.md)."""

    def __init__(self, server: asyncio.Server, connections: ConnectionCounter[Server]) -> None:
        self.server = server
        self.connections = connections
        sock = server.sockets[0].getsockname()
        self.address: tuple[str, int] | None = (sock[0], sock[1])

    async def close(self) -> None:
        """Stop accepting; sessions in DATA get the grace period to finish, then all close."""
        self.server.close()
        deadline = asyncio.get_running_loop().time() + CLOSE_GRACE
        while asyncio.get_running_loop().time() < deadline:
            if not any(s.committing for s in self.connections.live):
                break
            await asyncio.sleep(0.05)
        for session in list(self.connections.live):
            if session.transport is not None:
                session.transport.close()
        await asyncio.sleep(0)


async def _start(ctx: Context, sock: socket.socket, service: str) -> Listener:
    handler = Handler(ctx, service)
    connections: ConnectionCounter[Server] = ctx.connections.counter(service)
    implicit = service == "submissions"
    tls_context = ctx.tls.server_context()

    def factory() -> Server:
        settings = ctx.settings  # the settings in force when the client connects (SIGHUP)
        return Server(
            handler,
            ctx=ctx,
            connections=connections,
            implicit_tls=implicit,
            hostname=settings.hostname,
            data_size_limit=settings.limits.message_size,
            enable_SMTPUTF8=True,
            tls_context=None if implicit else tls_context,
            # RFC 8314: on 465 TLS is already on, so AUTH needs no further TLS.
            auth_require_tls=not implicit,
            auth_required=service != "mx",
            ident=IDENT,
            timeout=300,
            loop=ctx.loop,
        )

    server = await ctx.loop.create_server(factory, sock=sock, ssl=tls_context if implicit else None)
    return Listener(server, connections)


async def start_mx(ctx: Context, sock: socket.socket) -> Listener:
    """Mail from the internet for our domains; relaying only after AUTH."""
    return await _start(ctx, sock, "mx")


async def start_submission(ctx: Context, sock: socket.socket) -> Listener:
    """Submission (RFC 6409): STARTTLS, then AUTH, then any recipient."""
    return await _start(ctx, sock, "submission")


async def start_submissions(ctx: Context, sock: socket.socket) -> Listener:
    """Submission over implicit TLS (RFC 8314)."""
    return await _start(ctx, sock, "submissions")
