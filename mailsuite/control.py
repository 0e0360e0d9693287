"""The running server's control socket: `mailsuite status` asks it what is going on.

A Unix socket (mode 0600, so only the server's own user may ask) that answers one JSON
request per connection. The server side lives on the loop; the client side is a few blocking
lines for the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_REQUEST = 4096


class ControlServer:
    """Serves `{"command": "status"}` with the dict `status()` builds."""

    def __init__(self, path: Path, status: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self.status = status
        self.server: asyncio.AbstractServer | None = None
        self.address = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a server that was killed
        old = os.umask(0o177)
        try:
            self.server = await asyncio.start_unix_server(self._handle, path=str(self.path))
        finally:
            os.umask(old)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            try:
                request = json.loads(line[:MAX_REQUEST] or b"{}")
            except ValueError:
                request = {}
            if request.get("command") == "status":
                reply: dict[str, Any] = {"ok": True, "status": self.status()}
            else:
                reply = {"ok": False, "error": 'unknown command; try {"command": "status"}'}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def ask(path: Path, command: str = "status", timeout: float = 5) -> dict[str, Any]:
    """Ask a running server; raises OSError when none is listening at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"command": command}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


class LoopLag:
    """Measures how late the loop wakes up: the figure that shows something blocked it."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.last = 0.0
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None
        self.address = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            self.last = max(0.0, time.monotonic() - before - self.interval)
            self.worst = max(self.worst, self.last)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
