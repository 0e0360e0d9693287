"""The outbound queue runner: delivers spooled mail, retries with backoff, bounces.

The spool on disk is the queue (`spool.py`); the runner keeps no state of its own beyond
which entries are being delivered right now, so a restart, a crash or an admin's
`mailsuite queue flush|delete` in another process all just change files it rereads. Each
entry is sent to each recipient domain's MX (or to `smtp.relay_host`) in one transaction per
domain. Recipients that get a 4xx or no answer are retried after `retry_initial`, doubling up
to `retry_max`, until `queue_lifetime`; then, or at a 5xx, the sender gets an RFC 3464 bounce.
Bounces themselves (empty sender) are never bounced (RFC 5321 4.5.5).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from mailsuite.context import Context
from mailsuite.smtp import delivery, dsn
from mailsuite.smtp.message import domain_of
from mailsuite.smtp.outgoing import Routing, dispatch, on_enqueue, spool_of
from mailsuite.smtp.spool import Entry, Recipient

log = logging.getLogger("mailsuite.smtp.queue")

POLL_INTERVAL = 2.0  # seconds between spool scans when nothing wakes the runner
SEND_TIMEOUT = 120.0  # per SMTP command of an outbound connection


def next_delay(attempts: int, initial: float, longest: float) -> float:
    """Backoff after `attempts` failed tries: initial, 2×, 4×… capped at `longest`."""
    return min(initial * 2 ** max(attempts - 1, 0), longest)


T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    """Run a blocking SMTP conversation in its own daemon thread.

    Not an executor: its threads are joined at interpreter exit, so one remote server that
    stalls would hold up shutdown for the whole SMTP timeout. The caller bounds concurrency.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        outcome: tuple[T | None, BaseException | None]
        try:
            outcome = (fn(), None)
        except BaseException as exc:
            outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:
            pass  # the loop has closed (shutdown); the entry is retried after restart

    threading.Thread(target=run, name="smtp-out", daemon=True).start()
    return await future


class QueueRunner:
    """Background service (`Running`): address is None, close() stops it."""

    address = None

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.spool = spool_of(ctx)
        self.settings = ctx.settings.smtp
        self.slots = asyncio.Semaphore(self.settings.delivery_workers)
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self.woken = asyncio.Event()
        self._unsubscribe = on_enqueue(ctx, self.woken.set)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def status(self) -> dict[str, object]:
        """For `mailsuite status`: messages waiting in the spool and deliveries under way."""
        return {"queued": len(self.spool.ids()), "delivering": len(self.in_flight)}

    async def close(self) -> None:
        """Stop scanning; deliveries in progress are abandoned and retried after restart."""
        self._unsubscribe()
        tasks = [t for t in [self._task, *self.in_flight.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        await self.ctx.run_io(self.spool.sweep)
        while True:
            self.woken.clear()
            try:
                wait = await self._dispatch_due()
            except Exception:
                log.exception("scanning the spool failed")
                wait = POLL_INTERVAL
            try:
                await asyncio.wait_for(self.woken.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def _dispatch_due(self) -> float:
        """Start a delivery for every due entry; returns how long to sleep."""
        entries = await self.ctx.run_io(self.spool.entries)
        now = time.time()
        wait = POLL_INTERVAL
        for entry in entries:
            if entry.id in self.in_flight:
                continue
            if entry.next_attempt <= now:
                task = asyncio.ensure_future(self._attempt(entry.id))
                self.in_flight[entry.id] = task
                task.add_done_callback(lambda _t, i=entry.id: self.in_flight.pop(i, None))
            else:
                wait = min(wait, entry.next_attempt - now)
        return max(wait, 0.05)

    # -- one attempt ------------------------------------------------------------------------

    async def _attempt(self, queue_id: str) -> None:
        async with self.slots:
            try:
                await self._deliver(queue_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery attempt of %s failed unexpectedly", queue_id)
                entry = await self.ctx.run_io(self.spool.load, queue_id)
                if entry is not None:
                    entry.attempts += 1
                    entry.next_attempt = time.time() + next_delay(
                        entry.attempts, self.settings.retry_initial, self.settings.retry_max
                    )
                    await self.ctx.run_io(self.spool.save, entry)

    def _groups(self, entry: Entry) -> dict[str, list[Recipient]]:
        """One transaction per recipient domain; through a relay, one for all."""
        groups: dict[str, list[Recipient]] = {}
        for rcpt in entry.pending:
            key = "" if self.settings.relay_host else domain_of(rcpt.address)
            groups.setdefault(key, []).append(rcpt)
        return groups

    async def _hosts(self, domain: str) -> list[tuple[str, int]]:
        if self.settings.relay_host:
            return [self.settings.relay_host]
        names = await delivery.mx_hosts(domain, self.settings.nameservers)
        hosts = [
            (ip, delivery.SMTP_PORT)
            for name in names
            for ip in await delivery.addresses(name, self.settings.nameservers)
        ]
        if not hosts:
            raise delivery.LookupFailure(
                f"no address for the mail exchangers of {domain}", permanent=False
            )
        return hosts

    async def _deliver(self, queue_id: str) -> None:
        entry = await self.ctx.run_io(self.spool.load, queue_id)
        if entry is None or not entry.pending:
            return
        data = await self.ctx.run_io(self.spool.read, queue_id)
        for domain, rcpts in self._groups(entry).items():
            try:
                hosts = await self._hosts(domain)
            except delivery.LookupFailure as exc:
                kind = "permanent" if exc.permanent else "temporary"
                results = {r.address: delivery.Outcome(kind, str(exc)) for r in rcpts}
            else:
                results = await in_thread(
                    lambda hosts=hosts, rcpts=rcpts: delivery.send(
                        hosts,
                        helo=self.ctx.settings.hostname,
                        sender=entry.sender,
                        recipients=[r.address for r in rcpts],
                        data=data,
                        smtputf8=entry.smtputf8,
                        timeout=SEND_TIMEOUT,
                        username=self.settings.relay_username if self.settings.relay_host else None,
                        password=self.settings.relay_password if self.settings.relay_host else None,
                    ),
                )
            for rcpt in rcpts:
                outcome = results[rcpt.address]
                rcpt.last_error = "" if outcome.kind == "sent" else outcome.text
                rcpt.remote_mta = outcome.remote_mta
                if outcome.kind == "sent":
                    rcpt.state = "sent"
                    self.ctx.events.inc("smtp.sent")
                    log.info(
                        "%s: delivered to <%s> via %s", queue_id, rcpt.address, outcome.remote_mta
                    )
                elif outcome.kind == "permanent":
                    rcpt.state = "failed"
                    log.info("%s: <%s> refused: %s", queue_id, rcpt.address, outcome.text)
                else:
                    log.info("%s: <%s> deferred: %s", queue_id, rcpt.address, outcome.text)
        await self._settle(entry, data)

    async def _settle(self, entry: Entry, data: bytes) -> None:
        """Record the attempt: bounce what failed, schedule a retry or drop the entry."""
        now = time.time()
        entry.attempts += 1
        failed = [r for r in entry.recipients if r.state == "failed"]
        expired: list[Recipient] = []
        if entry.pending and now - entry.created >= self.settings.queue_lifetime:
            expired = entry.pending
            for rcpt in expired:
                rcpt.last_error = rcpt.last_error or "retry period expired"
                rcpt.state = "failed"
        if failed:
            await self._bounce(entry, failed, data, expired=False)
        if expired:
            await self._bounce(entry, expired, data, expired=True)
        for rcpt in failed + expired:
            rcpt.state = "bounced"
        if entry.pending:
            entry.next_attempt = now + next_delay(
                entry.attempts, self.settings.retry_initial, self.settings.retry_max
            )
            entry.last_error = entry.pending[0].last_error
            await self.ctx.run_io(self.spool.save, entry)
        else:
            await self.ctx.run_io(self.spool.remove, entry.id)

    async def _bounce(
        self, entry: Entry, failed: list[Recipient], data: bytes, *, expired: bool
    ) -> None:
        if not entry.sender:
            log.info("%s: not bouncing a bounce", entry.id)
            return
        report = dsn.build(self.ctx.settings.hostname, entry, failed, data, expired=expired)
        try:
            routing = Routing.of(self.ctx, [entry.sender])
        except LookupError:
            log.warning(
                "%s: the sender <%s> no longer exists; bounce dropped", entry.id, entry.sender
            )
            return
        await dispatch(self.ctx, "", routing, report)
        self.ctx.events.inc("smtp.bounced", len(failed))
        log.info("%s: bounce sent to <%s> for %d recipient(s)", entry.id, entry.sender, len(failed))


async def start_queue(ctx: Context) -> QueueRunner:
    runner = QueueRunner(ctx)
    runner.start()
    return runner
