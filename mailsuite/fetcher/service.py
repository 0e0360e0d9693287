"""The background service that polls external accounts.

Accounts fall due in the directory (`next_attempt`); this loop hands due accounts to a pool
of `fetcher.concurrency` threads, one account per thread, so a slow or failing account holds
up nobody but itself: each remote call is bounded by `fetcher.timeout`, and a failing account
is retried later with a growing delay. "Pobierz teraz" (web) and `mailsuite external fetch`
make an account due at once; the cross-process lease in the directory keeps one fetch per
account at a time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from mailsuite.config import Settings
from mailsuite.context import Context, StartupError
from mailsuite.directory import external as ext_db
from mailsuite.fetcher.engine import Fetcher, FetchResult
from mailsuite.secrets import SecretBox, SecretError

log = logging.getLogger("mailsuite.fetcher")

T = TypeVar("T")
R = TypeVar("R")

TICK = 5.0  # seconds between looks at the schedule when nothing wakes the loop


class FetcherService:
    """Running service (see docs/internals.md: `address` is None, `close()` stops it).

    Other services reach it as `ctx.fetcher` while it runs: the web site's "pobierz teraz"
    awaits `fetch_now`, and its connection tests use the same `engine`.
    """

    address: tuple[str, int] | None = None

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.engine = Fetcher(ctx.directory, ctx.store, ctx.settings)
        self.concurrency = ctx.settings.fetcher.concurrency
        self.running: dict[int, asyncio.Task[FetchResult]] = {}
        self.wake = asyncio.Event()
        self.runs = 0
        self.errors = 0
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                self._start_due()
            except Exception:
                log.exception("fetch scheduling failed; trying again")
            try:
                await asyncio.wait_for(self.wake.wait(), TICK)
            except TimeoutError:
                pass
            self.wake.clear()

    def _start_due(self) -> None:
        free = self.concurrency - len(self.running)
        if free <= 0:
            return
        due = ext_db.due_accounts(self.ctx.directory, self.ctx.directory.clock())
        for account in [a for a in due if a.id not in self.running][:free]:
            task = asyncio.ensure_future(self._fetch(account.id))
            self.running[account.id] = task

    async def _fetch(self, account_id: int) -> FetchResult:
        try:
            account = ext_db.external_by_id(self.ctx.directory, account_id)
            if account is None:
                return FetchResult(account_id, "", error="deleted", kind="gone")
            result = await _in_thread(self.ctx.loop, self.engine.fetch, account)
            self.runs += 1
            if result.error:
                self.errors += 1
                self.ctx.events.inc("fetcher.failed")
            else:
                self.ctx.events.inc("fetcher.ok")
            self.ctx.events.inc("fetcher.copied", result.copied)
            return result
        finally:
            self.running.pop(account_id, None)
            self.wake.set()

    async def fetch_now(self, account_id: int) -> None:
        """Make one account due at once ("pobierz teraz"). The directory write runs in an
        I/O thread: it may wait for another process's lock."""
        await self.ctx.run_io(ext_db.request_fetch, self.ctx.directory, account_id)
        self.wake.set()

    def reload(self, settings: Settings) -> None:
        self.engine.settings = settings

    def status(self) -> dict[str, object]:
        return {"running": sorted(self.running), "runs": self.runs, "errors": self.errors}

    async def close(self) -> None:
        """Stop scheduling; fetches in progress stop after their current message. One still
        waiting on a silent server is abandoned: the copy protocol makes that as safe as a
        crash, and the process need not wait for the remote timeout to exit."""
        self._task.cancel()
        self.engine.stopping.set()
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=3)


def _in_thread(loop: asyncio.AbstractEventLoop, fn: Callable[[T], R], arg: T) -> asyncio.Future[R]:
    """Run `fn(arg)` in a daemon thread (one per running fetch; `concurrency` bounds them),
    so that a fetch stuck in a remote call never keeps the process from exiting."""
    future: asyncio.Future[R] = loop.create_future()

    def finish(result: R | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result: R | None = None
        error: BaseException | None = None
        try:
            result = fn(arg)
        except BaseException as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(finish, result, error)
        except RuntimeError:  # the loop is gone: the process is exiting
            pass

    threading.Thread(target=run, name="fetch", daemon=True).start()
    return future


async def start_fetcher(ctx: Context) -> FetcherService:
    """Start polling; the key file for external passwords is created now if missing."""
    box = SecretBox(ctx.settings.paths.secret_key)
    try:
        await ctx.run_io(box.ensure_key)
    except (SecretError, OSError) as exc:
        raise StartupError(f"fetcher: {exc}") from None
    return FetcherService(ctx)
