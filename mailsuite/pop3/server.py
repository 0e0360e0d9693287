"""POP3 listeners: what POP3 adds to the shared connection layer.

`mailsuite.connection` frames lines (POP3 has no literals), queues pipelined commands,
times out, batches output and closes; this module adds POP3's connection-level replies and
its shutdown rule: a session committing a QUIT finishes, the others close uncommitted.
What lines mean lives in `session`.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from mailsuite.connection import Limits, LineConnection, Listener, listen
from mailsuite.context import Context
from mailsuite.netlimits import ConnectionFamily
from mailsuite.pop3.session import Session, State


class Connection(LineConnection):
    """One POP3 client."""

    protocol_name = "pop3"

    def __init__(self, ctx: Context, family: ConnectionFamily, implicit_tls: bool) -> None:
        super().__init__(ctx, family, implicit_tls)
        self.session: Session | None = None

    @staticmethod
    def limits_from(settings: Any) -> Limits:
        return Limits.of(settings, idle_timeout=settings.pop3.idle_timeout)

    def refusal(self, reason: str) -> bytes:
        if reason == "ip":
            return b"-ERR [SYS/TEMP] Too many connections from your address\r\n"
        return b"-ERR [SYS/TEMP] Too many connections; try again later\r\n"

    def farewell(self) -> bytes | None:
        # RFC 1939 3: the autologout timer closes without entering UPDATE; a session that is
        # already committing its QUIT is left to finish.
        if self.session is not None and self.session.state is State.UPDATE:
            return None
        return b"-ERR Idle for too long; closing\r\n"

    def start_session(self) -> asyncio.Future[None]:
        self.session = Session(self.ctx, self)
        return asyncio.ensure_future(self.session.run())

    def close_for_shutdown(self) -> asyncio.Future[None] | None:
        """RFC 1939 6: no UPDATE without QUIT; a QUIT being committed is let finish."""
        if self.session is not None and self.session.state is State.UPDATE and self.task:
            return self.task
        self.write(b"-ERR [SYS/TEMP] Server shutting down\r\n")
        self.close()
        return None


def _family(ctx: Context) -> ConnectionFamily:
    """One count for both listeners, so the per-address limit spans 110 and 995."""
    return ctx.connections.family("pop3")


async def start_pop3(ctx: Context, sock: socket.socket) -> Listener:
    """POP3 with STLS (RFC 1939, RFC 2595 4)."""
    return listen(ctx, _family(ctx), Connection, sock, implicit_tls=False)


async def start_pop3s(ctx: Context, sock: socket.socket) -> Listener:
    """POP3 over implicit TLS (RFC 8314 3.2)."""
    return listen(ctx, _family(ctx), Connection, sock, implicit_tls=True)
