"""Log lines an admin can read: time, level, component, client address, what happened.

    2026-11-23 19:40:01 INFO  imap     [127.0.0.1:51234] login ok for ala@example.test

Secrets never reach these lines: protocol code logs outcomes, not commands, and AUTH data
is never passed to a logger.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.component = record.name.removeprefix("mailsuite.").split(".")[0]
        return super().format(record)


def setup_logging(level: str = "INFO", tag: str = "") -> None:
    """Log to stderr at `level`; `tag` (a worker's "w1") starts each line after the level,
    so the lines of serve's worker processes, which share the supervisor's stderr, can be
    told apart."""
    handler = logging.StreamHandler(sys.stderr)
    who = f"{tag} " if tag else ""
    handler.setFormatter(
        _Formatter(
            f"%(asctime)s %(levelname)-5s {who}%(component)-8s %(message)s", "%Y-%m-%d %H:%M:%S"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter stays out of the admin's way unless asked for.
    for noisy in ("mail.log", "aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


class ClientLog(logging.LoggerAdapter):
    """A component's logger that prefixes every line with the client's address."""

    def __init__(self, component: str, peer: tuple[str, int] | str | None) -> None:
        super().__init__(logging.getLogger(f"mailsuite.{component}"), {})
        if isinstance(peer, tuple):
            host, port = peer[0], peer[1]
            self.peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        else:
            self.peer = peer or "-"

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"[{self.peer}] {msg}", kwargs
