"""Read-ahead for RETR: the next messages are read and framed in the I/O pool before the
client asks for them.

Mail clients download a maildrop in order (RETR 1, RETR 2, ...). Each read must happen off
the loop, and one trip to the thread pool per message costs more than the read itself, so
while message n is being sent the following small messages are read in batches. Maildir
messages never change once delivered, so bytes read ahead are the bytes RETR would read;
the budget bounds the memory one session can hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mailsuite.pop3.maildrop import Maildrop
from mailsuite.pop3.wire import retr_body

BUDGET = 512 * 1024  # octets read ahead per session, besides the batch being consumed
MAX_BATCH = 64  # messages per trip to the thread pool
FIRST_BATCH = 4  # a RETR nobody read ahead for waits only for these
SMALL = 128 * 1024  # larger messages are read on their own, when asked for

Batch = dict[int, bytes | None]  # message number -> RETR body, None when expunged meanwhile


def read_batch(drop: Maildrop, numbers: list[tuple[int, int]]) -> Batch:
    """Read and frame messages (I/O thread); `numbers` are (message number, UID). The store
    finds all their files with one query (`Folder.read_many`)."""
    found = drop.folder.read_many([uid for _, uid in numbers])
    out: Batch = {}
    for number, uid in numbers:
        data = found.get(uid)
        out[number] = None if data is None else retr_body(data)
    return out


class ReadAhead:
    """The batches in flight or done for one session's RETRs.

    The next batch is started while the current one still has half its messages to go, so
    a client reading in order never waits for a batch to be read: only a RETR out of order
    waits, for a small batch of its own.
    """

    def __init__(self, run_io: Callable[..., Awaitable[Any]]) -> None:
        self.run_io = run_io
        self.pending: dict[int, asyncio.Future[Batch]] = {}
        self.octets = 0  # read ahead and not yet asked for
        self.frontier = 0  # the highest message number planned

    def _plan(self, drop: Maildrop, first: int, most: int) -> list[tuple[int, int]]:
        plan: list[tuple[int, int]] = []
        total = 0
        for entry in drop.entries[first - 1 :]:
            if entry.deleted or entry.number in self.pending:
                continue
            if entry.size > SMALL and plan:
                break
            plan.append((entry.number, entry.uid))
            total += entry.size
            if total >= BUDGET // 2 or len(plan) >= most or entry.size > SMALL:
                break
        return plan

    def _start(self, drop: Maildrop, first: int, most: int) -> None:
        plan = self._plan(drop, first, most)
        if not plan:
            self.frontier = len(drop.entries)
            return
        batch = asyncio.ensure_future(self.run_io(read_batch, drop, plan))
        batch.add_done_callback(_consume_error)
        for number, _ in plan:
            self.pending[number] = batch
            self.octets += drop.entries[number - 1].size
        self.frontier = max(self.frontier, plan[-1][0])

    async def body(self, drop: Maildrop, number: int) -> bytes | None:
        """The RETR body of message `number` (None when expunged meanwhile); starts the
        read of the following messages so that they are ready when asked for."""
        if number not in self.pending:
            self._start(drop, number, FIRST_BATCH)
            self.frontier = max(self.frontier, number)
        batch = self.pending.pop(number)
        self.octets -= drop.entries[number - 1].size
        ahead = self.frontier - number
        if self.frontier < len(drop.entries) and (
            ahead < MAX_BATCH // 2 and self.octets < BUDGET // 2
        ):
            self._start(drop, self.frontier + 1, MAX_BATCH)
        return (await batch)[number]

    def clear(self) -> None:
        self.pending.clear()
        self.octets = 0
        self.frontier = 0


def _consume_error(future: asyncio.Future[Batch]) -> None:
    # A batch nobody waits for any more must not log "exception never retrieved"; the RETR
    # that does wait for it sees the error itself.
    if not future.cancelled():
        future.exception()
