"""One of `serve`'s worker processes: what it is told, and how it talks to its supervisor.

With `workers` above 1, `mailsuite serve` is a supervisor (`mailsuite.supervisor`) that starts
`mailsuite serve --worker SPEC` once per slot. `WorkerSpec` is that SPEC: the worker's slot
and the file descriptors it inherits (each listener's socket, the host's connection table,
its end of a socket pair). `WorkerRole` is what the worker's Context knows of it
(`ctx.worker`), and `WorkerLink` answers the supervisor's questions (`status`, `metrics`)
over the socket pair, whose end of file tells the worker that its supervisor is gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailsuite.config import Settings

log = logging.getLogger("mailsuite.workers")


def worker_count(settings: Settings) -> int:
    """`workers` as a number: "auto" is the cores this process may run on."""
    if settings.workers != "auto":
        return int(settings.workers)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker is told on its command line: which one it is, and its inherited file
    descriptors (each listener's socket, the connection table, the link)."""

    slot: int
    count: int
    listeners: dict[str, int]
    counts: int
    link: int

    def encode(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def decode(cls, text: str) -> WorkerSpec:
        return cls(**json.loads(text))

    def sockets(self) -> dict[str, socket.socket]:
        return {key: socket.socket(fileno=fd) for key, fd in self.listeners.items()}


@dataclass(frozen=True)
class WorkerRole:
    """On the worker's Context (`ctx.worker`): which worker this is, and how it reaches the
    supervisor for what only the host as a whole can answer."""

    slot: int
    count: int
    supervisor: Path  # the control socket the supervisor serves

    def host_figures(self, ctx: Any) -> dict[str, Any]:
        """Every worker's /metrics figures added up (blocking: called in an I/O thread); this
        worker's own, logged, if the supervisor does not answer."""
        from mailsuite import control, metrics

        try:
            figures: dict[str, Any] = control.ask(self.supervisor, "metrics")["metrics"]
            return figures
        except (OSError, ValueError, KeyError) as exc:
            log.warning("the supervisor did not answer for the host's metrics: %s", exc)
            return metrics.figures(ctx)


class WorkerLink:
    """The worker's end of its socket pair: one ready line, then one JSON answer per request
    line. End of file means the supervisor is gone, and the worker stops (`on_lost`)."""

    def __init__(
        self, fd: int, commands: dict[str, Callable[[], Any]], on_lost: Callable[[], None]
    ) -> None:
        self.sock = socket.socket(fileno=fd)
        self.commands = commands
        self.on_lost = on_lost
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, listeners: dict[str, Any]) -> None:
        reader, self.writer = await asyncio.open_connection(sock=self.sock)
        self.writer.write(json.dumps({"ready": listeners, "pid": os.getpid()}).encode() + b"\n")
        await self.writer.drain()
        self.task = asyncio.ensure_future(self._serve(reader, self.writer))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command = json.loads(line).get("command")
                answer = self.commands.get(command)
                reply = {"ok": True, command: answer()} if answer else {"ok": False}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError) as exc:
            log.warning("link to the supervisor broken: %s", exc)
        log.info("the supervisor is gone; stopping")
        self.on_lost()

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()
        else:
            self.sock.close()
