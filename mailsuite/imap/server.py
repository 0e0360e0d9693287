"""IMAP listeners: what IMAP adds to the shared connection layer.

`mailsuite.connection` frames lines, queues commands, times out, batches output and closes;
this module adds what is IMAP's own: literals and the limits on them (refused before the data
is sent), the connection-level replies (`* BYE`), and the periodic sync of watched folders
that brings other processes' changes to IDLE sessions. Everything a command means lives in
`session`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from typing import Any

from mailsuite.connection import Limits, LineConnection, Listener, listen
from mailsuite.context import Context
from mailsuite.imap.parser import literal_at_end, parse_tag
from mailsuite.imap.session import NOT_AUTH, Session
from mailsuite.netlimits import ConnectionFamily

log = logging.getLogger("mailsuite.imap")

_VERB = re.compile(rb"^\S+ +(?:UID +)?([A-Za-z]+)")
NON_APPEND_LITERAL = 64 * 1024  # literals of other commands (login, search strings)
MULTIAPPEND_FACTOR = 2  # one MULTIAPPEND may carry up to twice the APPENDLIMIT in all
PRE_AUTH_LITERAL = 8 * 1024  # before login literals carry credentials and ID values: small ones
PUSH_INTERVAL = 0.2  # seconds between looks at the watched folders' change counters
POLL_INTERVAL = 2.0  # seconds between looks at their files, for other Maildir software


class Connection(LineConnection):
    """One IMAP client: literal framing and IMAP's connection-level replies."""

    protocol_name = "imap"

    def __init__(self, ctx: Context, family: ConnectionFamily, implicit_tls: bool) -> None:
        super().__init__(ctx, family, implicit_tls)
        self.session = Session(ctx, self)

    @staticmethod
    def limits_from(settings: Any) -> Limits:
        return Limits.of(
            settings,
            idle_timeout=settings.imap.idle_timeout,
            per_user=settings.imap.max_connections_per_user,
        )

    def refusal(self, reason: str) -> bytes:
        if reason == "ip":
            return b"* BYE Too many connections from your address\r\n"
        return b"* BYE Too many connections; try again later\r\n"

    def farewell(self) -> bytes:
        # RFC 3501 5.4: the autologout timer is at least 30 minutes
        return b"* BYE Autologout; idle for too long\r\n"

    def start_session(self) -> asyncio.Future[None]:
        return asyncio.ensure_future(self.session.run())

    def _session_ended(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.write(b"* BYE Internal error\r\n")
        super()._session_ended(task)

    def session_lost(self) -> None:
        self.session.connection_lost()

    def literal_announced(self, line: bytes) -> tuple[int, bool] | None:
        return literal_at_end(line)

    def literal_refusal(self, command: bytes, size: int) -> bytes | None:
        tag = (parse_tag(command[:200]) or "*").encode()
        m = _VERB.match(command)
        verb = m.group(1).upper() if m else b""
        limit = self.limits.message_size
        if self.session.state == NOT_AUTH and (
            size > PRE_AUTH_LITERAL or len(command) + size > self.limits.line_length
        ):
            # Nothing a client may do before login needs more: refuse before the continuation,
            # so an anonymous connection never makes us hold more than one long line.
            return tag + b" BAD [LIMIT] Literal too large before login\r\n"
        if verb == b"APPEND":
            if size > limit:
                # RFC 7889 / RFC 4469: refuse before the data is sent
                return tag + b" NO [TOOBIG] Message larger than the APPENDLIMIT of %d bytes\r\n" % (
                    limit
                )
            if self.literal_total + size > limit * MULTIAPPEND_FACTOR:
                # RFC 3502: the messages of one APPEND are held until all have arrived
                return tag + b" NO [TOOBIG] The messages of one APPEND exceed %d bytes\r\n" % (
                    limit * MULTIAPPEND_FACTOR
                )
            if len(command) - self.literal_total > NON_APPEND_LITERAL * 4:
                return tag + b" BAD [LIMIT] Command too long\r\n"
            return None
        if size > NON_APPEND_LITERAL or len(command) + size > NON_APPEND_LITERAL * 4:
            return tag + b" BAD [LIMIT] Literal too large for this command\r\n"
        return None

    def close_for_shutdown(self) -> None:
        self.write(b"* BYE Server shutting down\r\n")
        self.close()
        return None


async def _poll_watched(ctx: Context, family: ConnectionFamily) -> None:
    """Bring changes made by other processes (the CLI, another worker or server) to IDLE
    sessions within PUSH_INTERVAL: every mailsuite writer bumps the folder's change counter,
    which is read here on the loop (a pread per watched folder), and only a folder whose
    counter moved is synced in the pool. Every POLL_INTERVAL all of them are synced, which
    looks at new/ and cur/ and so finds what other Maildir software did."""
    waited = 0.0
    while True:
        await asyncio.sleep(PUSH_INTERVAL)
        if not family.counts.live:
            continue
        waited += PUSH_INTERVAL
        try:
            if waited >= POLL_INTERVAL:
                waited = 0.0
                await ctx.run_io(ctx.store.sync_watched)
            else:
                changed = ctx.store.changed_watched()
                if changed:
                    await ctx.run_io(ctx.store.sync_watched, changed)
        except Exception:
            log.exception("syncing watched folders failed")


def _family(ctx: Context) -> ConnectionFamily:
    """The imap and imaps listeners of one server share one count and one folder poller."""
    family = ctx.connections.family("imap")
    if not family.tasks:
        family.tasks.append(asyncio.ensure_future(_poll_watched(ctx, family)))
    return family


async def start_imap(ctx: Context, sock: socket.socket) -> Listener:
    """IMAP with STARTTLS (RFC 3501 6.2.1)."""
    return listen(ctx, _family(ctx), Connection, sock, implicit_tls=False)


async def start_imaps(ctx: Context, sock: socket.socket) -> Listener:
    """IMAP over implicit TLS (RFC 8314 3.2)."""
    return listen(ctx, _family(ctx), Connection, sock, implicit_tls=True)
