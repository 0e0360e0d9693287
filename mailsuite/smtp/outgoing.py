"""The one path every accepted message takes: local recipients into the store, remote ones
into the outbound spool; and `send_system_mail` for mail the suite writes itself (from a
process that runs no server, such as the admin CLI, `SystemMailer` does the same in its thread).

SMTP's DATA, the web site's e-mails and the queue's bounces all call `dispatch`, so local
delivery, the Return-Path, DKIM signing and spooling behave the same for each. When
`dispatch` returns, the message is durable everywhere it had to go. Concurrent local
deliveries are committed in groups (`_GroupCommit`), so that twenty sessions writing to one
mailbox share each fsync of its new/ and each index commit instead of queueing for them.

The spool, the queue runner's wake-up callbacks and the group commits in progress belong to
one server: they live in its `Outgoing` (`outgoing_of(ctx)`), which serve releases when it
stops, so a second server in the same process shares none of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, localtime, make_msgid
from typing import Protocol

from mailsuite.config import Settings
from mailsuite.context import Context, Part
from mailsuite.directory import Directory
from mailsuite.smtp import signing
from mailsuite.smtp.message import domain_of, from_addresses, normalize_line_endings, return_path
from mailsuite.smtp.spool import Spool, new_id
from mailsuite.store import Prepared, Store

MAX_BATCH = 64  # local deliveries made durable by one Store.deliver_many


class Outgoing:
    """Where one server's accepted mail leaves from: the spool under `paths.spool` that the
    SMTP sessions, the web site and the queue runner share, the runner's wake-up callbacks,
    and the group commits in progress, by recipients."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.wakers: list[Callable[[], None]] = []
        self.groups: dict[tuple[str, ...], _GroupCommit] = {}

    def on_enqueue(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (on the loop) whenever mail is spooled; returns the unsubscriber."""
        self.wakers.append(callback)

        def unsubscribe() -> None:
            if callback in self.wakers:
                self.wakers.remove(callback)

        return unsubscribe

    def wake(self) -> None:
        """Tell the queue runner that there is new mail in the spool."""
        for wake in list(self.wakers):
            wake()

    def close(self) -> None:
        """The server has stopped: a group commit still running is cancelled, so whoever
        still waits on it gets an error rather than silence; nobody is woken any more."""
        for group in list(self.groups.values()):
            if group.task is not None and not group.task.done():
                group.task.cancel()
        self.groups.clear()
        self.wakers.clear()


OUTGOING: Part[Outgoing] = Part("outgoing", lambda ctx: Outgoing(Spool(ctx.settings.paths.spool)))


def outgoing_of(ctx: Context) -> Outgoing:
    """This server's outgoing side, made on first use."""
    return ctx.part(OUTGOING)


def spool_of(ctx: Context) -> Spool:
    """The spool under `paths.spool`, shared by the SMTP sessions and the queue runner."""
    return outgoing_of(ctx).spool


def on_enqueue(ctx: Context, callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` (on the loop) whenever mail is spooled; returns the unsubscriber."""
    return outgoing_of(ctx).on_enqueue(callback)


def wake_queue(ctx: Context) -> None:
    """Tell the queue runner that there is new mail in the spool."""
    outgoing_of(ctx).wake()


class Parts(Protocol):
    """What composing, routing and the durable write need. A running server's Context has
    these, and so has a `SystemMailer`, which needs nothing more."""

    @property
    def settings(self) -> Settings: ...

    @property
    def directory(self) -> Directory: ...

    @property
    def store(self) -> Store: ...


def is_local_domain(ctx: Parts, address: str) -> bool:
    return domain_of(address) in ctx.settings.domains


def local_targets(ctx: Parts, address: str) -> list[str]:
    """Account addresses that receive mail for a local `address` (empty: nobody does).

    The domain's catch-all (`smtp.catch_all`) takes local parts nobody owns.
    """
    accounts = ctx.directory.resolve_recipient(address)
    if not accounts:
        catch_all = ctx.settings.smtp.catch_all.get(domain_of(address))
        if catch_all:
            accounts = ctx.directory.resolve_recipient(catch_all)
    return [a.address for a in accounts]


@dataclass
class Routing:
    local: list[str]  # account addresses, each once
    remote: list[str]  # envelope recipients outside our domains

    @classmethod
    def of(cls, ctx: Parts, recipients: list[str]) -> Routing:
        """Split recipients; an unknown local recipient raises LookupError."""
        resolved: dict[str, list[str] | None] = {}
        for rcpt in recipients:
            if is_local_domain(ctx, rcpt):
                targets = local_targets(ctx, rcpt)
                if not targets:
                    raise LookupError(f"no mailbox for {rcpt}")
                resolved[rcpt] = targets
            else:
                resolved[rcpt] = None
        return cls.resolved(resolved)

    @classmethod
    def resolved(cls, targets: dict[str, list[str] | None]) -> Routing:
        """From recipients already looked up: local ones map to accounts, remote ones to None."""
        local: dict[str, None] = {}
        remote: dict[str, None] = {}
        for rcpt, accounts in targets.items():
            if accounts is None:
                remote[rcpt] = None
            else:
                local.update(dict.fromkeys(accounts))
        return cls(list(local), list(remote))


def _dkim_domain(ctx: Parts, sender: str, data: bytes) -> str | None:
    """Sign as the From domain when it is ours, else as the envelope sender's domain."""
    try:
        candidates = [domain_of(a) for a in from_addresses(data) if a]
    except Exception:
        candidates = []
    candidates.append(domain_of(sender) if sender else "")
    for domain in candidates:
        if domain in ctx.settings.domains:
            return domain
    return None


def _prepare(
    ctx: Parts,
    spool: Spool,
    sender: str,
    routing: Routing,
    data: bytes,
    queue_id: str,
    smtputf8: bool,
    *,
    commit: bool,
) -> Prepared | None:
    """Runs in an I/O thread: spools the remote copy and writes the local one into tmp/, each
    fsynced. With `commit` the local copy is also made durable in the recipients' folders
    here; otherwise `_GroupCommit` does that, together with other messages.

    The spool goes first because it can be taken back: if the store then fails, the entry is
    removed again and the client's retry (after our 451) does not send the remote copy twice.
    """
    if routing.remote:
        signed = data
        domain = _dkim_domain(ctx, sender, data)
        if domain:
            settings = ctx.settings
            signed = (
                signing.sign(data, domain, settings.smtp.dkim_selector, settings.paths.dkim_keys)
                + data
            )
        spool.enqueue(sender, routing.remote, signed, queue_id=queue_id, smtputf8=smtputf8)
    if not routing.local:
        return None
    try:
        if commit:
            ctx.store.deliver(routing.local, return_path(sender) + data)
            return None
        return ctx.store.prepare(routing.local, return_path(sender) + data)
    except BaseException:
        if routing.remote:
            spool.remove(queue_id)
        raise


class _GroupCommit:
    """Local deliveries to one set of recipients, made durable together.

    While nothing is being committed for these recipients, a message is written and committed
    in one trip to an I/O thread (`direct`), so an idle server adds no wait. Messages that
    arrive meanwhile write themselves into tmp/ in their own threads and wait here; when the
    commit in progress ends, one task takes everything waiting (up to MAX_BATCH) into one
    `Store.deliver_many`: one lock section, one fsync of new/ and one index commit per folder
    instead of one of each per message, and repeats while more arrived meanwhile.
    """

    def __init__(self, ctx: Context, key: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.groups = outgoing_of(ctx).groups  # kept, so forgetting never remakes the part
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.waiting: list[tuple[Prepared, asyncio.Future[dict[str, int]]]] = []
        self.task: asyncio.Task[None] | None = None
        self.direct = False

    @classmethod
    def find(cls, ctx: Context, key: tuple[str, ...]) -> _GroupCommit | None:
        """The group committing for these recipients now; None when they are idle."""
        group = outgoing_of(ctx).groups.get(key)
        if group is None or group.loop is not asyncio.get_running_loop():
            return None
        return group

    @classmethod
    def begin_direct(cls, ctx: Context, key: tuple[str, ...]) -> _GroupCommit:
        """Mark the recipients busy while the caller commits one message itself."""
        group = cls(ctx, key)
        group.groups[key] = group
        group.direct = True
        return group

    def end_direct(self) -> None:
        """The caller's own commit is over: commit whoever queued meanwhile, or go idle."""
        self.direct = False
        if self.waiting:
            self.task = self.loop.create_task(self._run())
        else:
            self._forget()

    @classmethod
    async def deliver(cls, ctx: Context, key: tuple[str, ...], prepared: Prepared) -> None:
        """Wait until `prepared` is durable in every recipient's folder; raise its error."""
        group = cls.find(ctx, key)
        if group is None:
            group = cls(ctx, key)
            group.groups[key] = group
        future: asyncio.Future[dict[str, int]] = group.loop.create_future()
        group.waiting.append((prepared, future))
        if group.task is None and not group.direct:
            group.task = group.loop.create_task(group._run())
        await future

    async def _run(self) -> None:
        batch: list[tuple[Prepared, asyncio.Future[dict[str, int]]]] = []
        try:
            while self.waiting:
                batch = self.waiting[:MAX_BATCH]
                del self.waiting[:MAX_BATCH]
                results: list[dict[str, int] | Exception]
                try:
                    results = await self.ctx.run_io(
                        self.ctx.store.deliver_many, [p for p, _ in batch]
                    )
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # the session went away; the message is delivered
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                batch = []
        finally:
            # Cancelled (shutdown): whoever still waits gets an error, so a 451, not silence.
            for _, future in batch + self.waiting:
                if not future.done():
                    future.set_exception(RuntimeError("local delivery was interrupted"))
            self.waiting = []
            self._forget()

    def _forget(self) -> None:
        if self.groups.get(self.key) is self:
            del self.groups[self.key]


async def dispatch(
    ctx: Context,
    sender: str,
    routing: Routing,
    data: bytes,
    *,
    queue_id: str | None = None,
    smtputf8: bool = False,
) -> str:
    """Deliver `data` (CRLF-normalised, trace headers already on) to every recipient.

    Returns the queue id. When it returns, local copies are in the recipients' Maildirs and
    remote recipients are in the spool, all fsynced; the queue runner is woken.
    """
    queue_id = queue_id or new_id()
    key = tuple(routing.local)
    if not routing.local or _GroupCommit.find(ctx, key) is None:
        group = _GroupCommit.begin_direct(ctx, key) if routing.local else None
        try:
            await ctx.run_io(
                _prepare, ctx, spool_of(ctx), sender, routing, data, queue_id, smtputf8, commit=True
            )
        finally:
            if group is not None:
                group.end_direct()
    else:
        prepared = await ctx.run_io(
            _prepare, ctx, spool_of(ctx), sender, routing, data, queue_id, smtputf8, commit=False
        )
        assert prepared is not None
        try:
            await _GroupCommit.deliver(ctx, key, prepared)
        except Exception:
            if routing.remote:
                await ctx.run_io(spool_of(ctx).remove, queue_id)
            raise
    if routing.local:
        ctx.events.inc("smtp.delivered.local", len(routing.local))
    if routing.remote:
        ctx.events.inc("smtp.queued", len(routing.remote))
        wake_queue(ctx)
    return queue_id


def system_sender(ctx: Parts) -> str:
    return ctx.settings.web.mail_from or f"postmaster@{ctx.settings.domains[0]}"


def system_sender_name(ctx: Parts) -> str:
    """The display name on the From line of the suite's mail (seed 002: users check who a
    message is from): `site.mail_sender_name`, else the organisation, else the site's name."""
    site = ctx.settings.site
    return site.mail_sender_name or site.organisation or site.name or ""


def compose(
    ctx: Parts, to: str, subject: str, body: str, *, html: str | None = None
) -> EmailMessage:
    """A complete MIME message from the suite: From, To, Date, Message-ID, UTF-8 text."""
    msg = EmailMessage(policy=SMTPUTF8 if not to.isascii() else SMTP)
    name, sender = system_sender_name(ctx), system_sender(ctx)
    local, _, domain = sender.rpartition("@")
    msg["From"] = Address(display_name=name, username=local, domain=domain) if name else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = make_msgid(domain=ctx.settings.hostname)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834 5: no auto-replies to this
    msg.set_content(body, charset="utf-8", cte="quoted-printable")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


async def send_system_mail(
    ctx: Context, to: str, subject: str, body: str, *, html: str | None = None
) -> None:
    """Send an e-mail from the suite (activation links, codes, notices) to `to`.

    A local recipient gets it in the Maildir, a remote one through the outbound queue (DKIM
    signed). When this returns the message is durable. Raises LookupError for a local
    address that nobody owns, ValueError for something that is not an address.
    """
    # The recipient is looked up in the directory, which may wait for another process.
    to, data, routing = await ctx.run_io(_system_message, ctx, to, subject, body, html)
    await dispatch(ctx, system_sender(ctx), routing, data, smtputf8=not to.isascii())


def _system_message(
    ctx: Parts, to: str, subject: str, body: str, html: str | None
) -> tuple[str, bytes, Routing]:
    """The checked recipient, the message's bytes and where they go; raises as
    `send_system_mail` says. Blocking (the directory): a server calls it in an I/O thread."""
    to = to.strip()
    if "@" not in to or any(c in to for c in "\r\n<> ,"):
        raise ValueError(f"{to!r} is not an e-mail address")
    msg = compose(ctx, to, subject, body, html=html)
    return to, normalize_line_endings(msg.as_bytes()), Routing.of(ctx, [to])


@dataclass
class SystemMailer:
    """`send_system_mail` for a process that runs no server (the admin CLI): the same
    message, routing, DKIM signature and durable write, done in the caller's thread, with
    nothing but the settings, the directory, the store and the spool. No loop, TLS material
    or password hasher is made. Remote copies wait in the spool until the running server's
    queue runner finds them on its next scan (it rescans every few seconds); nobody else
    needs waking, since no IMAP session watches this process's store."""

    settings: Settings
    directory: Directory
    store: Store
    spool: Spool

    @classmethod
    def open(cls, settings: Settings, directory: Directory) -> SystemMailer:
        """A mailer over `directory` and the store and spool under the configured paths."""
        return cls(settings, directory, Store(settings.paths.maildirs), Spool(settings.paths.spool))

    def send(self, to: str, subject: str, body: str, *, html: str | None = None) -> str:
        """Deliver or queue one e-mail from the suite; returns the queue id once it is
        durable. Raises like `send_system_mail`, and OSError when the disk refuses."""
        to, data, routing = _system_message(self, to, subject, body, html)
        queue_id = new_id()
        sender = system_sender(self)
        _prepare(self, self.spool, sender, routing, data, queue_id, not to.isascii(), commit=True)
        return queue_id
