"""Our SMTP policy, as aiosmtpd handler hooks named after the verbs.

One handler class serves the MX and both submission listeners; `submission` says whether
AUTH is mandatory. Rules:

- RCPT for our domains: only existing addresses, aliases or a configured catch-all
  (550 5.1.1 otherwise). RCPT for other domains: only after AUTH (554 5.7.1), so the server
  is never an open relay.
- After AUTH the envelope sender and every From/Sender header address must be one of the
  account's own addresses, aliases or external addresses (553 5.7.1), and the header must
  read one way only (`authors`).
- `<postmaster>` and postmaster@ each local domain are always accepted (`postmaster`).
- A session's refused recipients are answered ever more slowly, and past a limit with 421.
- NUL is refused in commands (the server) and in DATA; a non-ASCII address needs SMTPUTF8.
- DATA is answered 250 only after `outgoing.dispatch` made the message durable for every
  recipient.
- A mailbox over its quota is refused at RCPT, each recipient on its own (452 4.2.2 full,
  552 5.2.2 never fits; `smtp.quota`), and DATA when no recipient can take the message.
- The directory is read in I/O threads, never on the loop; when it cannot answer in time
  the command gets a temporary failure (451 4.3.0, AUTH 454 4.7.0), never a 5xx.

Passwords and AUTH lines never reach a log; only the outcome does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TypeVar

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from mailsuite import sasl
from mailsuite.auth import AuthCode
from mailsuite.context import Context
from mailsuite.directory import Account, DirectoryUnavailable
from mailsuite.directory.external import external_senders
from mailsuite.logs import ClientLog
from mailsuite.quota import Verdict
from mailsuite.smtp import authors, replies
from mailsuite.smtp import quota as smtp_quota
from mailsuite.smtp.message import (
    header_block,
    hop_count,
    missing_headers,
    normalize_line_endings,
    protocol_keyword,
    received_header,
    return_path,
)
from mailsuite.smtp.outgoing import Routing, dispatch, is_local_domain, local_targets
from mailsuite.smtp.postmaster import is_postmaster, postmaster_targets
from mailsuite.smtp.spool import new_id

log = logging.getLogger("mailsuite.smtp")

T = TypeVar("T")

MAX_HOPS = 100  # RFC 5321 6.3: a loop is assumed at 100 Received lines
MAX_ADDRESS = 254  # RFC 5321 4.5.3.1.3 path length less the brackets
_SASL_FAILURES: dict[sasl.FailureKind, str] = {
    sasl.FailureKind.CANCELLED: replies.AUTH_CANCELLED,  # RFC 4954 4
    sasl.FailureKind.BAD_BASE64: replies.AUTH_UNDECODABLE,  # RFC 4954 4
    sasl.FailureKind.MALFORMED: replies.AUTH_UNDECODABLE,
    sasl.FailureKind.TOO_LONG: replies.AUTH_TOO_LONG,  # RFC 4954 4
}


def _peer_ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _valid_address(address: str) -> bool:
    """Enough of RFC 5321 4.1.2 to route: local@domain, valid UTF-8 (RFC 6531), bounded."""
    local, at, domain = address.rpartition("@")
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(at and local and domain and len(address) <= MAX_ADDRESS and "." in domain)


def _targets(envelope: Envelope) -> dict[str, list[str] | None]:
    """Accepted recipients of this transaction and the accounts each delivers to."""
    if not hasattr(envelope, "targets"):
        envelope.targets = {}  # type: ignore[attr-defined]
    return envelope.targets  # type: ignore[attr-defined]


def _local_recipient(ctx: Context, address: str, size: int) -> tuple[list[str], dict[str, Verdict]]:
    """The accounts a local address delivers to and the quota verdict of each for `size`
    octets: one trip to an I/O thread per RCPT, not two. Blocking (the directory)."""
    targets = local_targets(ctx, address)
    return targets, smtp_quota.verdicts(ctx, targets, size) if targets else {}


def _count_refusal(session: Session) -> int:
    """One more refused recipient in this session (RSET does not forget); the new count."""
    count: int = getattr(session, "refused_recipients", 0) + 1
    session.refused_recipients = count  # type: ignore[attr-defined]
    return count


class Handler:
    """aiosmtpd hooks for one listener kind (`mx`, `submission`, `submissions`)."""

    def __init__(self, ctx: Context, service: str) -> None:
        self.ctx = ctx
        self.service = service
        self._hooks = sorted(n for n in dir(type(self)) if n.startswith(("handle_", "auth_")))

    def __dir__(self) -> list[str]:
        """Only the hooks: aiosmtpd's `SMTP.__init__` walks dir() of the handler on every
        connection (`inspect.getmembers`) to find them, and needs nothing else."""
        return list(self._hooks)

    # -- session helpers --------------------------------------------------------------------

    def _account(self, session: Session) -> Account | None:
        data = session.auth_data if session.authenticated else None
        return data if isinstance(data, Account) else None

    def _clog(self, session: Session) -> ClientLog:
        return ClientLog("smtp", session.peer)

    def _own_addresses(self, account: Account) -> set[str]:
        """Every address `account` may send as (blocking: runs in an I/O thread)."""
        own = {a.lower() for a in self.ctx.directory.addresses_of(account)}
        # The user's external accounts' addresses are theirs to send as, too.
        own.update(a.lower() for a, _ in external_senders(self.ctx.directory, account))
        return own

    # -- EHLO -------------------------------------------------------------------------------

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list
    ) -> list[str]:
        """Advertise what we do beyond aiosmtpd's defaults; drop its HELP line."""
        session.host_name = hostname
        lines = [r[4:] for r in responses if not r.endswith("HELP")]
        # RFC 2920 (PIPELINING) and RFC 2034 (ENHANCEDSTATUSCODES).
        lines += ["PIPELINING", "ENHANCEDSTATUSCODES"]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    # -- AUTH -------------------------------------------------------------------------------

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """RFC 4616 PLAIN, with the credentials on the AUTH line or after an empty 334."""
        return await self._sasl(server, "PLAIN", args)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """LOGIN, for clients that know no other: user name and password after two 334s."""
        return await self._sasl(server, "LOGIN", args)

    async def _sasl(self, server: SMTP, mechanism: str, args: list[str]) -> AuthResult:
        """Run the exchange; aiosmtpd has already checked TLS, state and the mechanism name.

        A failure before the password is checked is answered here (handled=True); the
        outcome of a check is left to aiosmtpd to send.
        """
        exchange = sasl.Exchange(mechanism)
        # RFC 4954 4: an initial response may follow the mechanism; "=" means empty
        step = exchange.begin(args[1].encode() if len(args) > 1 else None)
        while isinstance(step, sasl.Challenge):
            blob = await server.challenge_auth(step.data)
            if not isinstance(blob, bytes):
                # RFC 4954 4: aiosmtpd already answered "*" and bad base64 with a 501
                return AuthResult(success=False, handled=True)
            step = exchange.respond_decoded(blob)
        if isinstance(step, sasl.Failure):
            await server.push(_SASL_FAILURES[step.kind])
            return AuthResult(success=False, handled=True)
        return await self._login(server, step)

    async def _login(self, server: SMTP, credentials: sasl.Credentials) -> AuthResult:
        session = server.session
        assert session is not None
        result = await self.ctx.auth.authenticate(
            credentials.authcid,
            credentials.password,
            protocol="smtp",
            remote_ip=_peer_ip(session),
        )
        if result.ok and result.account is not None:
            # The authzid is decided only once the password proved who is asking.
            try:
                allowed = await self.ctx.run_io(
                    sasl.authorize, self.ctx.directory, result.account, credentials.authzid
                )
            except DirectoryUnavailable:
                self._clog(session).warning("authzid not checked: the directory is busy")
                self.ctx.events.inc("smtp.auth.fail")
                return AuthResult(success=False, handled=False, message=replies.AUTH_UNAVAILABLE)
            if not allowed:
                self.ctx.events.inc("smtp.auth.fail")
                return AuthResult(success=False, handled=False, message=replies.AUTHZ_FAILED)
            self.ctx.events.inc("smtp.auth.ok")
            message = replies.AUTH_OK
            if result.notices:
                message += "; " + " ".join(result.notices)
            return AuthResult(success=True, auth_data=result.account, message=message)
        self.ctx.events.inc("smtp.auth.fail")
        if result.code is AuthCode.THROTTLED:
            message = replies.AUTH_THROTTLED
        elif result.code is AuthCode.UNAVAILABLE:
            message = replies.AUTH_UNAVAILABLE
        else:
            # MUST_CHANGE and TEMP_EXPIRED carry the web page where the password is changed.
            message = replies.AUTH_FAILED.format(message=result.message)
        # aiosmtpd: a failure must say handled=False or the client waits for ever.
        return AuthResult(success=False, handled=False, message=message)

    # -- envelope ---------------------------------------------------------------------------

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if address and address != "<>":
            if not _valid_address(address):
                return replies.BAD_ADDRESS
            if not address.isascii() and not envelope.smtp_utf8:
                return replies.NON_ASCII_SENDER  # RFC 6531 3.5
        account = self._account(session)
        if account is not None:
            if not address or address == "<>":
                return replies.NULL_SENDER_REFUSED
            own = await self._look_up(session, self._own_addresses, account)
            if own is None:
                return replies.DIRECTORY_BUSY
            if address.lower() not in own:
                self._clog(session).info("refused sender %s for %s", address, account.address)
                return replies.NOT_YOUR_SENDER.format(address=address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.MAIL_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.ctx.settings.limits.recipients:
            return replies.TOO_MANY_RECIPIENTS
        targets: list[str] | None = None
        if is_postmaster(address, self.ctx.settings.domains):
            # RFC 5321 4.5.1: postmaster is accepted, bare or at every local domain
            targets = await self._look_up(session, self._postmaster, session, address)
            if targets is None:
                return replies.DIRECTORY_BUSY
            if not targets:
                return replies.NO_POSTMASTER
        elif not _valid_address(address):
            return replies.BAD_ADDRESS
        elif not address.isascii() and not envelope.smtp_utf8:
            return replies.NON_ASCII_RECIPIENT  # RFC 6531 3.5
        elif is_local_domain(self.ctx, address):
            size = smtp_quota.declared_size(envelope.mail_options)
            looked = await self._look_up(session, _local_recipient, self.ctx, address, size)
            if looked is None:
                return replies.DIRECTORY_BUSY
            targets, found = looked
            if not targets:
                self._clog(session).info("unknown recipient %s", address)
                return await self._refused(session, replies.NO_SUCH_USER.format(address=address))
            refusal = smtp_quota.rcpt_refusal(address, found)
            if refusal is not None:
                self._clog(session).info("%s refused: over quota", address)
                return refusal
        elif self._account(session) is None:
            self._clog(session).info("relay to %s refused", address)
            return await self._refused(session, replies.RELAY_DENIED.format(address=address))
        # DATA delivers to the accounts resolved here, so it needs no second lookup.
        _targets(envelope)[address] = targets
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RCPT_OK

    async def _look_up(self, session: Session, fn: Callable[..., T], *args: object) -> T | None:
        """`fn(*args)`, which reads the directory, in an I/O thread; None when the directory
        cannot answer in time (another process holds its lock), so that the command gets a
        temporary failure and the client tries again later."""
        try:
            return await self.ctx.run_io(fn, *args)
        except DirectoryUnavailable:
            self._clog(session).warning("address not looked up: the directory is busy")
            return None

    def _postmaster(self, session: Session, address: str) -> list[str]:
        """The accounts that get mail for this postmaster address (empty: no account yet):
        an account or alias of that very name, else `smtp.postmaster`, before any catch-all.
        Blocking: runs in an I/O thread."""
        if "@" in address:
            named = self.ctx.directory.resolve_recipient(address)
            if named:
                return [a.address for a in named]
        found = postmaster_targets(self.ctx.settings, self.ctx.directory)
        if found.fallback:
            self._clog(session).warning(
                "postmaster mail goes to %s: smtp.postmaster names no account",
                found.targets[0] if found.targets else "nobody",
            )
        return found.targets

    async def _refused(self, session: Session, reply: str) -> str:
        """`reply` for a refused recipient, sent later the more this session had refused, so
        that guessing addresses is slow; past the limit 421 instead, and the server closes
        (as Postfix's smtpd_hard_error_limit). Only this session waits: the loop runs on."""
        smtp = self.ctx.settings.smtp
        count = _count_refusal(session)
        if count > smtp.refused_recipients_limit:
            self._clog(session).warning("closing after %d refused recipients", count - 1)
            return replies.TOO_MANY_REFUSED
        extra = count - smtp.refused_recipients_before_delay
        if extra > 0:
            delay = smtp.refused_recipient_delay * 2 ** min(extra - 1, 32)
            await asyncio.sleep(min(delay, smtp.refused_recipient_delay_max))
        return reply

    # -- DATA -------------------------------------------------------------------------------

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        if b"\0" in raw:
            # RFC 5322 3.5, RFC 2045 2.8: message text has no NUL, and IMAP could not serve
            # it (RFC 3501 9: a literal is CHAR8, any octet but NUL).
            self._clog(session).info("refused a message that contains NUL")
            return replies.NUL_IN_DATA
        data = normalize_line_endings(raw)
        if hop_count(data) >= MAX_HOPS:
            self._clog(session).warning("refused a message with %d Received lines", MAX_HOPS)
            return replies.TOO_MANY_HOPS
        account = self._account(session)
        if account is not None:
            refusal = await self._look_up(session, self._author_refusal, session, account, data)
            if refusal is None:
                return replies.DIRECTORY_BUSY
            if refusal:
                return refusal
            data = missing_headers(data, self.ctx.settings.hostname) + data
        routing = Routing.resolved(_targets(envelope))
        queue_id = new_id()
        protocol = protocol_keyword(
            esmtp=bool(session.extended_smtp),
            utf8=bool(envelope.smtp_utf8),
            tls=bool(getattr(server, "secure", False)),
            authenticated=account is not None,
        )
        trace = received_header(
            helo=session.host_name,
            peer_ip=_peer_ip(session),
            hostname=self.ctx.settings.hostname,
            protocol=protocol,
            queue_id=queue_id,
            recipient=envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else None,
        )
        sender = envelope.mail_from if envelope.mail_from != "<>" else ""
        if routing.local:
            size = len(return_path(sender)) + len(trace) + len(data)  # as the store keeps it
            found = await self._look_up(session, smtp_quota.verdicts, self.ctx, routing.local, size)
            if found is None:
                return replies.DIRECTORY_BUSY
            refusal = smtp_quota.data_refusal(found, bool(routing.remote))
            if refusal is not None:
                self._clog(session).info("refused a message of %d bytes: over quota", size)
                return refusal
        server.committing = True  # type: ignore[attr-defined]
        try:
            await dispatch(
                self.ctx,
                sender,
                routing,
                trace + data,
                queue_id=queue_id,
                smtputf8=bool(envelope.smtp_utf8),
            )
        except Exception:
            self._clog(session).exception("could not accept a message from %s", sender)
            return replies.TEMPORARY_FAILURE
        finally:
            server.committing = False  # type: ignore[attr-defined]
        self.ctx.events.inc("smtp.received")
        self._clog(session).info(
            "accepted %s from <%s> for %d recipient(s), %d bytes",
            queue_id,
            sender,
            len(envelope.rcpt_tos),
            len(data),
        )
        return replies.QUEUED.format(queue_id=queue_id)

    def _author_refusal(self, session: Session, account: Account, data: bytes) -> str:
        """The reply refusing a submitted message whose header does not read one way only or
        names an author or sender that is not the account's own; "" when all is well.
        Blocking (the account's addresses): runs in an I/O thread."""
        try:
            found = authors.authors(header_block(data))
        except authors.Unreadable as error:
            self._clog(session).info("refused a message from %s: %s", account.address, error)
            return replies.BAD_AUTHOR.format(reason=error)
        own = self._own_addresses(account)
        for address in found.addresses():
            if address not in own:
                self._clog(session).info("refused author %s for %s", address, account.address)
                return replies.NOT_YOUR_FROM.format(address=address)
        return ""

    async def handle_exception(self, error: Exception) -> str:
        """An unexpected error becomes a 451 reply and a log line, never a traceback."""
        log.error("SMTP session error: %s: %s", type(error).__name__, error, exc_info=error)
        return replies.TEMPORARY_FAILURE


# aiosmtpd works out the EHLO hook's signature on every connection (to tell its two forms
# apart); inspect takes a function's own __signature__ when it has one, so it is made once.
Handler.handle_EHLO.__signature__ = inspect.signature(Handler.handle_EHLO)  # type: ignore[attr-defined]
