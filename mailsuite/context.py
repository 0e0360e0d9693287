"""What every running service is handed: settings and the shared parts, built once by serve."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from mailsuite.auth import Authenticator
from mailsuite.config import Settings
from mailsuite.directory import Directory
from mailsuite.events import Events
from mailsuite.netlimits import Connections
from mailsuite.store import Store
from mailsuite.tls import TLSMaterial

if TYPE_CHECKING:
    from mailsuite.fetcher.service import FetcherService
    from mailsuite.workers import WorkerRole

log = logging.getLogger("mailsuite.context")

T = TypeVar("T")


class StartupError(Exception):
    """A service could not start; the message names the listener and the reason.

    Defined here, beside the service contract, so that services can raise it without
    importing serve.
    """


class Running(Protocol):
    """A started listener or background service."""

    address: tuple[str, int] | None

    async def close(self) -> None: ...


class Part(Generic[T]):
    """The name and type of one piece of state a package keeps for a running server, as
    aiohttp's AppKey is for an app: `ctx.part(KEY)` is a `T`. The owning package declares the
    key with the function that makes the state, so this module imports no protocol code."""

    def __init__(self, name: str, make: Callable[[Context], T]) -> None:
        self.name = name
        self.make = make

    def __repr__(self) -> str:
        return f"<Part {self.name}>"


@dataclass
class Context:
    settings: Settings
    config_path: Path
    directory: Directory
    store: Store
    auth: Authenticator
    tls: TLSMaterial
    loop: asyncio.AbstractEventLoop
    io_pool: ThreadPoolExecutor
    events: Events = field(default_factory=Events)
    services: dict[str, Running] = field(default_factory=dict)
    connections: Connections = field(default_factory=Connections)  # IMAP/POP3 listener families
    lag: Any = None  # control.LoopLag once serve runs: loop delay and the stall watchdog
    fetcher: FetcherService | None = None  # set by serve while the fetcher runs
    worker: WorkerRole | None = None  # set when this process is one of serve's workers
    _parts: dict[Part[Any], Any] = field(default_factory=dict, init=False, repr=False)
    _parts_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    async def run_io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work (fsync, big reads, index scans) off the loop."""
        call = functools.partial(fn, *args, **kwargs) if kwargs else functools.partial(fn, *args)
        return await self.loop.run_in_executor(self.io_pool, call)

    def part(self, key: Part[T]) -> T:
        """This server's `key` state, made on first use (from the loop or an I/O thread) and
        kept until `release_parts`. Another Context has its own, so servers share none."""
        with self._parts_lock:
            if key not in self._parts:
                self._parts[key] = key.make(self)
            found: T = self._parts[key]
            return found

    def release_parts(self) -> None:
        """Called by serve once every service is closed: each part with a `close()` lets go
        of what it holds (newest first); a part made after this is made afresh."""
        with self._parts_lock:
            parts = list(self._parts.items())
            self._parts.clear()
        for key, value in reversed(parts):
            close = getattr(value, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("%s did not close cleanly", key.name)
