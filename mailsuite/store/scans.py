"""How many index builds run at once, and stopping them at shutdown.

Building the index of a folder nobody has opened yet lists and stats every file and writes
a row each: CPU and I/O for about a second per 100,000 messages. Ten sessions opening ten
such folders at once in ten I/O threads would share the same cores and the GIL, each take
ten times as long, and all hold their working memory at the same moment; run one after
the other, each finishes in its own time and the peak memory is that of one. A server that is
shutting down tells the builds to stop: each one checks between steps and gives up, its
transaction rolled back, so the next start builds the index again from the files.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import StoreError

_WAIT_STEP = 0.1  # seconds between looks at the stop flag while waiting for a turn


class ScanInterrupted(StoreError):
    """The store is shutting down; the index build was abandoned (nothing was kept)."""


class Scans:
    """The store's bound on concurrent index builds and its stop flag. One at a time in a
    process unless told: a build is mostly Python, which holds the GIL, so a second one in
    the same process only takes turns with it and with the event loop; every worker process
    has its own store, so the machine still builds one per worker."""

    def __init__(self, limit: int = 1) -> None:
        self.limit = limit
        self._turns = threading.BoundedSemaphore(self.limit)
        self._stopping = threading.Event()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for a turn to build an index (raising ScanInterrupted if the store stops
        meanwhile) and hold it for the block."""
        while not self._turns.acquire(timeout=_WAIT_STEP):
            self.check()
        try:
            self.check()
            yield
        finally:
            self._turns.release()

    def check(self) -> None:
        """Raise ScanInterrupted once `interrupt` has been called."""
        if self._stopping.is_set():
            raise ScanInterrupted("the mail store is shutting down")

    def interrupt(self) -> None:
        """Shutdown: builds running stop at their next check, waiting ones do not start."""
        self._stopping.set()
