"""What each POP3 command means: the RFC 1939 states over a `Maildrop`.

A session runs as one task that takes complete lines from its connection one at a time, so
pipelined commands (RFC 2449 6.6) are answered strictly in order even when a handler waits
for bcrypt or the disk. Every reply is a single +OK/-ERR line, with RFC 2449 response codes
where one applies; a handler never raises into the connection.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Protocol

from mailsuite import control, sasl
from mailsuite.auth import UNAVAILABLE_MESSAGE, AuthCode, AuthResult
from mailsuite.connection import TooLong
from mailsuite.context import Context
from mailsuite.directory import DirectoryUnavailable
from mailsuite.logs import ClientLog
from mailsuite.pop3.maildrop import Locks, Maildrop, commit, open_maildrop, pop3_state
from mailsuite.pop3.readahead import ReadAhead
from mailsuite.pop3.wire import (
    BadCommand,
    Command,
    parse_command,
    parse_number,
    top_body,
)
from mailsuite.store import NoSuchMessage, StoreError

CHUNK = 256 * 1024  # big responses are written in pieces, waiting while the socket is full
# RFC 3206 4: [AUTH] where the credentials are the problem
_SASL_FAILURES: dict[sasl.FailureKind, str] = {
    sasl.FailureKind.CANCELLED: "Authentication cancelled",  # RFC 5034 4
    sasl.FailureKind.BAD_BASE64: "Invalid base64 in SASL response",  # RFC 5034 4
    sasl.FailureKind.MALFORMED: "[AUTH] Malformed PLAIN response",  # RFC 4616 2
    sasl.FailureKind.TOO_LONG: "[AUTH] Response too long",
}


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"


class Connection(Protocol):
    """What the session needs from the socket side (`server.Connection`)."""

    tls: bool
    remote_ip: str
    peer: tuple[str, int] | None

    async def next_command(self) -> bytes | TooLong | None: ...
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def start_tls(self) -> None: ...
    def is_loopback(self) -> bool: ...
    def close(self) -> None: ...


def _read_top(drop: Maildrop, uid: int, lines: int) -> bytes | None:
    """TOP's body (I/O thread); None when the message was expunged meanwhile."""
    try:
        return top_body(drop.folder.read(uid), lines)
    except NoSuchMessage:
        return None


def _one_line(text: str) -> str:
    """Reply text never breaks the line it sits on."""
    return " ".join(text.split())


class Session:
    """One POP3 conversation; `run()` is its task."""

    def __init__(self, ctx: Context, conn: Connection, locks: Locks | None = None) -> None:
        self.ctx = ctx
        self.conn = conn
        self.shared = pop3_state(ctx)
        self.locks = locks if locks is not None else self.shared.locks
        self.state = State.AUTHORIZATION
        self.user_login: str | None = None
        self.address: str | None = None
        self.drop: Maildrop | None = None
        self.log = ClientLog("pop3", conn.peer)
        self.ahead = ReadAhead(ctx.run_io)
        self.handlers: dict[str, Callable[[Command], Awaitable[None]]] = {
            "CAPA": self.capa,
            "QUIT": self.quit,
            "NOOP": self.noop,
            "STLS": self.stls,
            "USER": self.user,
            "PASS": self.pass_,
            "AUTH": self.auth,
            "APOP": self.apop,
            "STAT": self.stat,
            "LIST": self.list_,
            "UIDL": self.uidl,
            "RETR": self.retr,
            "TOP": self.top,
            "DELE": self.dele,
            "RSET": self.rset,
        }

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Greet, then answer lines in order until QUIT or the connection goes."""
        self.ok("mailsuite POP3 server ready")
        try:
            while self.state is not State.UPDATE:
                line = await self.conn.next_command()
                if line is None:
                    break  # RFC 1939 6: a dropped connection does not enter UPDATE
                await self.dispatch(line)
        finally:
            self.release()

    async def dispatch(self, line: bytes | TooLong) -> None:
        # the loop watchdog names this command if it ever holds the loop (control.LoopLag)
        with control.running(self.ctx.lag, "pop3", self.conn.remote_ip) as doing:
            await self._dispatch(line, doing)

    async def _dispatch(self, line: bytes | TooLong, doing: control.Activity) -> None:
        if isinstance(line, TooLong):
            self.err("Line too long")  # answered in order, the connection stays
            return
        try:
            command = parse_command(line)
        except BadCommand as exc:
            self.err(str(exc))
            return
        handler = self.handlers.get(command.verb)
        if handler is None:
            self.err("Unknown command")
            return
        doing.command = command.verb
        try:
            await handler(command)
        except Exception:
            self.log.exception("%s failed", command.verb)
            self.err("[SYS/TEMP] Internal error; try again later")

    def release(self) -> None:
        """Let another session have the maildrop; marks not committed are forgotten."""
        if self.address is not None:
            self.locks.release(self.address)
            self.address = None
        self.drop = None
        self.ahead.clear()

    # -- replies ---------------------------------------------------------------------------

    def ok(self, text: str = "") -> None:
        self.conn.write(("+OK " + _one_line(text)).rstrip().encode("utf-8") + b"\r\n")

    def err(self, text: str) -> None:
        self.conn.write(("-ERR " + _one_line(text)).encode("utf-8") + b"\r\n")

    def in_state(self, *states: State) -> bool:
        """RFC 1939 3: a command in the wrong state is answered -ERR."""
        if self.state in states:
            return True
        if self.state is State.AUTHORIZATION:
            self.err("Log in first")
        else:
            self.err("Not allowed after login")
        return False

    def no_args(self, command: Command) -> bool:
        if command.args:
            self.err(f"{command.verb} takes no arguments")
            return False
        return True

    # -- any state -------------------------------------------------------------------------

    def login_allowed(self) -> bool:
        """Secure by default: credentials only over TLS (RFC 2595 2.1, RFC 8314), except
        on loopback when the demo setting allows it."""
        if self.conn.tls:
            return True
        return self.ctx.settings.tls.allow_plaintext_auth_on_loopback and self.conn.is_loopback()

    async def capa(self, command: Command) -> None:
        """RFC 2449 5: only what this server really does."""
        if not self.no_args(command):
            return
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state is State.AUTHORIZATION:
            if self.login_allowed():
                caps += ["USER", "SASL PLAIN"]
            if not self.conn.tls:
                caps.append("STLS")
        caps.append("IMPLEMENTATION mailsuite")
        self.ok("Capability list follows")
        self.conn.write(b"".join(c.encode() + b"\r\n" for c in caps) + b".\r\n")

    async def noop(self, command: Command) -> None:
        if self.in_state(State.TRANSACTION) and self.no_args(command):
            self.ok()

    async def quit(self, command: Command) -> None:
        """RFC 1939 6: QUIT after login enters UPDATE and removes the marked messages."""
        if self.state is State.AUTHORIZATION:
            self.ok("Bye")
            self.state = State.UPDATE
            self.conn.close()
            return
        assert self.drop is not None
        self.state = State.UPDATE
        try:
            removed = await self.ctx.run_io(commit, self.drop)
        except StoreError as exc:
            self.log.warning("UPDATE failed for %s: %s", self.address, exc)
            # RFC 1939 6: -ERR when some deleted messages were not removed
            self.err("[SYS/TEMP] Some deleted messages were not removed")
        else:
            if removed:
                self.log.info("%s removed %d message(s)", self.address, removed)
            self.ok(f"Bye; {removed} message(s) deleted")
        self.release()
        self.conn.close()

    async def stls(self, command: Command) -> None:
        """RFC 2595 4: TLS right after +OK; anything pipelined before it is dropped."""
        if self.state is not State.AUTHORIZATION:
            self.err("STLS only before login")
        elif self.conn.tls:
            self.err("TLS is already active")
        elif self.no_args(command):
            self.ok("Begin TLS negotiation")
            self.conn.start_tls()

    # -- AUTHORIZATION ---------------------------------------------------------------------

    def refuse_plaintext(self) -> bool:
        if self.login_allowed():
            return False
        self.err("[AUTH] Log in only after STLS (TLS is required)")
        return True

    async def user(self, command: Command) -> None:
        if not self.in_state(State.AUTHORIZATION) or self.refuse_plaintext():
            return
        if len(command.args) != 1 or len(command.args[0]) > 255:
            self.user_login = None
            self.err("USER needs one login name")
            return
        self.user_login = command.args[0]
        self.ok("Send your password")

    async def pass_(self, command: Command) -> None:
        if not self.in_state(State.AUTHORIZATION) or self.refuse_plaintext():
            return
        login, self.user_login = self.user_login, None
        if login is None:
            self.err("Send USER first")  # RFC 1939 7: PASS only right after USER
            return
        # RFC 1939 7: the password is the rest of the line and may hold spaces.
        await self.login(login, command.rest)

    async def apop(self, command: Command) -> None:
        if self.in_state(State.AUTHORIZATION):
            # The greeting carries no timestamp, which RFC 1939 7 says means no APOP.
            self.err("APOP is not supported; use USER/PASS or AUTH PLAIN")

    async def auth(self, command: Command) -> None:
        """RFC 5034: SASL; PLAIN (RFC 4616) is the one mechanism, only over TLS."""
        if not self.in_state(State.AUTHORIZATION):
            return
        if not command.args:
            # A common extension (not in RFC 5034): bare AUTH lists the mechanisms.
            self.ok("Mechanisms follow")
            self.conn.write((b"PLAIN\r\n" if self.login_allowed() else b"") + b".\r\n")
            return
        if self.refuse_plaintext():
            return
        if len(command.args) > 2:
            self.err("AUTH takes a mechanism and an optional initial response")
            return
        if command.args[0].upper() != "PLAIN":
            self.err("Unsupported SASL mechanism; use PLAIN")
            return
        exchange = sasl.Exchange("PLAIN")
        # RFC 5034 4: an optional initial response, "=" when it is empty
        step = exchange.begin(command.args[1].encode() if len(command.args) == 2 else None)
        while isinstance(step, sasl.Challenge):
            self.conn.write(b"+ " + sasl.encode_challenge(step.data) + b"\r\n")  # RFC 5034 4
            line = await self.conn.next_command()
            if line is None:
                return
            if isinstance(line, TooLong):
                step = sasl.Failure(sasl.FailureKind.TOO_LONG)
            else:
                step = exchange.respond(line)
        if isinstance(step, sasl.Failure):
            self.err(_SASL_FAILURES[step.kind])
            return
        await self.login(step.authcid, step.password, authzid=step.authzid)

    async def login(self, login: str, password: str, *, authzid: str = "") -> None:
        """The shared auth path, then the maildrop lock and snapshot (RFC 1939 4).

        `authzid` is decided only after the password was right, so its refusal tells
        nothing about the password.
        """
        result = await self.ctx.auth.authenticate(
            login, password, protocol="pop3", remote_ip=self.conn.remote_ip or None
        )
        if not result.ok or result.account is None:
            self.refuse(result)
            return
        try:
            allowed = await self.ctx.run_io(
                sasl.authorize, self.ctx.directory, result.account, authzid
            )
        except DirectoryUnavailable:
            self.err(f"[SYS/TEMP] {UNAVAILABLE_MESSAGE}")  # RFC 3206 4: trying later helps
            return
        if not allowed:
            self.err("[AUTH] Not allowed to act as that authorization identity")  # RFC 3206 4
            return
        address = result.account.address
        if not self.locks.acquire(address):
            # RFC 2449 8.1.2: the maildrop is locked by another session
            self.err("[IN-USE] Mailbox in use by another POP3 session")
            self.log.info("maildrop of %s in use", address)
            return
        self.address = address
        try:
            self.drop = await self.ctx.run_io(open_maildrop, self.ctx.store, address)
        except StoreError as exc:
            self.log.error("cannot open the maildrop of %s: %s", address, exc)
            self.release()
            self.err("[SYS/TEMP] Mailbox unavailable; try again later")
            return
        self.state = State.TRANSACTION
        self.ctx.events.inc("pop3.login")
        live = self.drop.live()
        text = f"Logged in, {len(live)} message(s) ({sum(e.size for e in live)} octets)"
        self.ok(" ".join([text + ".", *result.notices]))

    def refuse(self, result: AuthResult) -> None:
        # RFC 3206 4: [AUTH] for credential problems, [SYS/TEMP] when trying later helps.
        temporary = result.code in (AuthCode.THROTTLED, AuthCode.UNAVAILABLE)
        code = "[SYS/TEMP]" if temporary else "[AUTH]"
        self.err(" ".join([code, result.message, *result.notices]))

    # -- TRANSACTION -----------------------------------------------------------------------

    def message(self, command: Command, *, more: int = 0) -> tuple[Maildrop, int] | None:
        """The maildrop and the message number in the first argument, or None after -ERR."""
        if not self.in_state(State.TRANSACTION):
            return None
        assert self.drop is not None
        if len(command.args) != 1 + more:
            self.err(f"{command.verb} needs {1 + more} argument(s)")
            return None
        number = parse_number(command.args[0])
        if number is None:
            self.err("Invalid message number")
            return None
        if self.drop.get(number) is None:
            self.err("No such message")  # RFC 1939 5: also for messages marked deleted
            return None
        return self.drop, number

    async def stat(self, command: Command) -> None:
        if self.in_state(State.TRANSACTION) and self.no_args(command):
            assert self.drop is not None
            live = self.drop.live()
            self.ok(f"{len(live)} {sum(e.size for e in live)}")  # RFC 1939 5 drop listing

    async def list_(self, command: Command) -> None:
        await self._listing(command, lambda e: str(e.size))

    async def uidl(self, command: Command) -> None:
        await self._listing(command, lambda e: e.uidl)

    async def _listing(self, command: Command, value: Callable[..., str]) -> None:
        """LIST and UIDL (RFC 1939 5, 7): one message, or every message not deleted."""
        if not self.in_state(State.TRANSACTION):
            return
        assert self.drop is not None
        if command.args:
            found = self.message(command)
            if found is not None:
                entry = found[0].get(found[1])
                assert entry is not None
                self.ok(f"{entry.number} {value(entry)}")
            return
        self.ok("Listing follows")
        lines = [f"{e.number} {value(e)}\r\n" for e in self.drop.live()]
        self.conn.write("".join(lines).encode("ascii") + b".\r\n")

    async def retr(self, command: Command) -> None:
        found = self.message(command)
        if found is not None:
            await self._send(found[0], found[1], None)

    async def top(self, command: Command) -> None:
        found = self.message(command, more=1)
        if found is None:
            return
        lines = parse_number(command.args[1])
        if lines is None:
            self.err("Invalid line count")  # RFC 1939 7: a non-negative number
            return
        await self._send(found[0], found[1], lines)

    async def _send(self, drop: Maildrop, number: int, top: int | None) -> None:
        """RETR and TOP: read and frame the message off the loop, then stream it out."""
        entry = drop.get(number)
        assert entry is not None
        if top is None:
            body = await self.ahead.body(drop, number)
        else:
            body = await self.ctx.run_io(_read_top, drop, entry.uid, top)
        if body is None:
            # Expunged by another session since login; RFC 1939 4 keeps the numbers.
            self.err("Message was removed by another session")
            return
        self.ok(f"{entry.size} octets" if top is None else "Top of message follows")
        if len(body) <= CHUNK:
            self.conn.write(body)
            return
        view = memoryview(body)
        for start in range(0, len(view), CHUNK):
            self.conn.write(bytes(view[start : start + CHUNK]))
            await self.conn.drain()

    async def dele(self, command: Command) -> None:
        found = self.message(command)
        if found is not None:
            entry = found[0].get(found[1])
            assert entry is not None
            entry.deleted = True  # RFC 1939 5: only marked; removed at QUIT
            self.ok(f"Message {entry.number} deleted")

    async def rset(self, command: Command) -> None:
        if self.in_state(State.TRANSACTION) and self.no_args(command):
            assert self.drop is not None
            self.drop.reset()
            live = self.drop.live()
            self.ok(f"{len(live)} message(s) ({sum(e.size for e in live)} octets)")
