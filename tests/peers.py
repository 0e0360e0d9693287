"""Tiny misbehaving servers on loopback ports, for the answers a mail client must survive.

Each peer is an asyncio server on 127.0.0.1, port 0, running on a loop in a thread of its
own (the remote clients under test are synchronous). A behaviour is what the server does
with a connection: greet as SMTP, wait like an HTTP server, send garbage, say nothing, hang
up; `tls=True` wraps any of them in TLS with a fresh self-signed certificate.

    with Peers(tmp_path) as peers:
        port = peers.start("smtp")
        port = peers.start("imap", tls=True)
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from mailsuite.tls import generate_self_signed

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

IMAP_GREETING = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake IMAP ready\r\n"


async def _lines(reader: asyncio.StreamReader) -> list[bytes]:
    try:
        line = await reader.readline()
    except (ConnectionError, ssl.SSLError, ValueError):
        return []
    return [line] if line else []


async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 5321 4.2: a 220 greeting, then 502 to whatever comes."""
    writer.write(b"220 mx.example.test ESMTP ready\r\n")
    await writer.drain()
    while lines := await _lines(reader):
        if lines[0].upper().startswith(b"QUIT"):
            writer.write(b"221 2.0.0 Bye\r\n")
            return
        writer.write(b"502 5.5.2 Command not recognised\r\n")
        await writer.drain()


async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Waits for a request, as web servers do; answers anything with 400 and hangs up."""
    try:
        await reader.read(1)
    except (ConnectionError, ssl.SSLError):
        return
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A line of binary noise, then it listens forever."""
    writer.write(b"\x00\xff\xfe\x07 ~~ %s \x1b[0m\r\n")
    await writer.drain()
    while await _lines(reader):
        writer.write(b"\x00\x01\x02\r\n")


async def noise(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes without a line end, then silence."""
    writer.write(b"\x89PNG\x1a\x0a\x00\x00\x00\x0dIHDR")
    await writer.drain()
    await reader.read()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts and never says a word."""
    await reader.read()


async def hangup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Closes at once."""


async def ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    await writer.drain()
    await reader.read()


async def pop3_busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 2449 8.1.2: a POP3 server that turns the session away in its greeting."""
    writer.write(b"-ERR [SYS/TEMP] too many connections, try later\r\n")
    await writer.drain()


async def imap_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 3501 7.1.5: an IMAP server that greets with BYE."""
    writer.write(b"* BYE server is shutting down\r\n")
    await writer.drain()


async def imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An IMAP server that greets and answers CAPABILITY; everything else is refused."""
    await _imap(reader, writer, b"IMAP4rev1 AUTH=PLAIN")


async def imap_logindisabled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 3501 6.2.3: LOGINDISABLED on a connection without TLS."""
    await _imap(reader, writer, b"IMAP4rev1 LOGINDISABLED")


async def _imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, caps: bytes) -> None:
    writer.write(IMAP_GREETING)
    await writer.drain()
    while lines := await _lines(reader):
        match = re.match(rb"(\S+) (\S+)", lines[0])
        if not match:
            continue
        tag, command = match.group(1), match.group(2).upper()
        if command == b"CAPABILITY":
            writer.write(b"* CAPABILITY " + caps + b"\r\n" + tag + b" OK done\r\n")
        elif command == b"LOGOUT":
            writer.write(b"* BYE bye\r\n" + tag + b" OK done\r\n")
            return
        else:
            writer.write(tag + b" NO not here\r\n")
        await writer.drain()


BEHAVIOURS: dict[str, Behaviour] = {
    "smtp": smtp,
    "http": http,
    "garbage": garbage,
    "noise": noise,
    "silent": silent,
    "hangup": hangup,
    "ssh": ssh,
    "pop3_busy": pop3_busy,
    "imap_bye": imap_bye,
    "imap": imap,
    "imap_logindisabled": imap_logindisabled,
}


class Peers:
    """Servers with the behaviours above on one loop in one thread; stopped on exit."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: list[asyncio.Server] = []
        self._tls: ssl.SSLContext | None = None

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            cert, key = self.folder / "peer-cert.pem", self.folder / "peer-key.pem"
            generate_self_signed(cert, key, "localhost")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self._tls = context
        return self._tls

    def start(self, behaviour: str, *, tls: bool = False) -> int:
        """Start a server that does `behaviour` with every connection; returns its port."""
        handler = BEHAVIOURS[behaviour]
        context = self.tls_context() if tls else None

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        async def start() -> asyncio.Server:
            return await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        async def close() -> None:
            for server in self.servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.loop.close()
