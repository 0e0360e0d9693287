"""What every running service is handed: settings and the shared parts, built once by serve."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mailsuite.auth import Authenticator
from mailsuite.config import Settings
from mailsuite.directory import Directory
from mailsuite.events import Events
from mailsuite.netlimits import Connections
from mailsuite.store import Store
from mailsuite.tls import TLSMaterial

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
    lag: Any = None  # control.LoopLag once serve runs: the loop's wake-up delay, for metrics

    async def run_io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work (fsync, big reads, index scans) off the loop."""
        call = functools.partial(fn, *args, **kwargs) if kwargs else functools.partial(fn, *args)
        return await self.loop.run_in_executor(self.io_pool, call)
