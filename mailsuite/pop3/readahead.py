"""Read-ahead for RETR: the next messages are read and framed in the I/O pool before the
client asks for them.

Mail clients download a maildrop in order (RETR 1, RETR 2, ...). Each read must happen off
the loop, and one trip to the thread pool per message costs more than the read itself, so
while message n is being sent the following small messages are read in one batch. Maildir
messages never change once delivered, so bytes read ahead are the bytes RETR would read;
the budget bounds the memory one session can hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mailsuite.pop3.maildrop import Maildrop
from mailsuite.pop3.wire import retr_body
from mailsuite.store import NoSuchMessage

BUDGET = 512 * 1024  # octets read ahead per session
MAX_BATCH = 64  # messages per trip to the thread pool
SMALL = 128 * 1024  # larger messages are read on their own, when asked for

Batch = dict[int, bytes | None]  # message number -> RETR body, None when expunged meanwhile


def read_batch(drop: Maildrop, numbers: list[tuple[int, int]]) -> Batch:
    """Read and frame messages (I/O thread); `numbers` are (message number, UID)."""
    out: Batch = {}
    for number, uid in numbers:
        try:
            out[number] = retr_body(drop.folder.read(uid))
        except NoSuchMessage:
            out[number] = None
    return out


class ReadAhead:
    """The batches in flight or done for one session's RETRs."""

    def __init__(self, run_io: Callable[..., Awaitable[Any]]) -> None:
        self.run_io = run_io
        self.pending: dict[int, asyncio.Future[Batch]] = {}

    def _plan(self, drop: Maildrop, first: int) -> list[tuple[int, int]]:
        plan: list[tuple[int, int]] = []
        total = 0
        for entry in drop.entries[first - 1 :]:
            if entry.deleted or entry.number in self.pending:
                continue
            if entry.size > SMALL and plan:
                break
            plan.append((entry.number, entry.uid))
            total += entry.size
            if total >= BUDGET or len(plan) >= MAX_BATCH or entry.size > SMALL:
                break
        return plan

    def _start(self, drop: Maildrop, first: int) -> None:
        plan = self._plan(drop, first)
        if not plan:
            return
        batch = asyncio.ensure_future(self.run_io(read_batch, drop, plan))
        batch.add_done_callback(_consume_error)
        for number, _ in plan:
            self.pending[number] = batch

    async def body(self, drop: Maildrop, number: int) -> bytes | None:
        """The RETR body of message `number` (None when expunged meanwhile); starts the
        read of the following messages so that they are ready when asked for."""
        if number not in self.pending:
            self._start(drop, number)
        batch = self.pending.pop(number)
        if number + 1 <= len(drop.entries) and number + 1 not in self.pending:
            self._start(drop, number + 1)
        return (await batch)[number]

    def clear(self) -> None:
        self.pending.clear()


def _consume_error(future: asyncio.Future[Batch]) -> None:
    # A batch nobody waits for any more must not log "exception never retrieved"; the RETR
    # that does wait for it sees the error itself.
    if not future.cancelled():
        future.exception()
