"""One IMAP session: the state machine (RFC 3501 3) and a handler per command verb.

Handlers talk to the store only (never to paths) and to their connection only through
`write`, `flush`, `drain` and `next_command`. Blocking store work (file reads, index scans,
fsyncs) goes through ``ctx.run_io``. A handler raises `No` or `Bad` to end its command with
that reply; any other exception is logged and answered ``NO [SERVERBUG]``, and the
session goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from mailsuite import control, sasl
from mailsuite import quota as quota_policy
from mailsuite import store as store_pkg
from mailsuite.auth import UNAVAILABLE_MESSAGE, AuthCode
from mailsuite.connection import TooLong
from mailsuite.directory import DirectoryUnavailable
from mailsuite.imap import condstore, mailboxes, render, results, rev2, search, status
from mailsuite.imap import quota as imap_quota
from mailsuite.imap.appending import append_all, uid_set
from mailsuite.imap.binary import UnknownCte
from mailsuite.imap.catenate import BadUrl, TooBig, assemble
from mailsuite.imap.message import header_part
from mailsuite.imap.message import parse as parse_message
from mailsuite.imap.objectid import mailbox_code
from mailsuite.imap.parser import Command, FetchItem, ParseError, parse_command, parse_tag
from mailsuite.imap.view import View, snapshots_of
from mailsuite.store import headers as store_headers
from mailsuite.store.errors import SpecialUseRefused

if TYPE_CHECKING:
    from mailsuite.context import Context

log = logging.getLogger("mailsuite.imap")

NOT_AUTH, AUTH, SELECTED, LOGOUT = "not-authenticated", "authenticated", "selected", "logout"
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
FETCH_CHUNK_INDEX = 20000  # messages rendered per trip to the I/O pool, index-only items
FETCH_CHUNK_BYTES = 4 << 20  # message bytes read per trip for body items
FETCH_CHUNK_FILES = 200
FETCH_CHUNK_HEADERS = 1000  # messages per trip when only their kept header blocks are needed
# up to this many messages' index items (FETCH FLAGS, notices of others' flag changes) are
# made from memory on the event loop: microseconds each, cheaper than a trip to the pool
ON_LOOP = 64
CACHE_PREFIX = "imap2."  # bump when the rendering of cached values changes
SERVER_ID = (("name", "mailsuite"), ("vendor", "mailsuite"))
MAX_ERROR_TEXT = 200  # bytes of a grammar error's text in the BAD reply
# NOOP, CHECK and IDLE look at the selected folder's files (other Maildir software) at most
# this often; changes by mailsuite processes are seen at once through the change counter
OUTSIDE_CHECK_INTERVAL = 1.0

_ANY = frozenset({NOT_AUTH, AUTH, SELECTED})
_AUTHED = frozenset({AUTH, SELECTED})
_SELECTED = frozenset({SELECTED})


class No(Exception):
    """End the command with ``NO [code] text``."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class Bad(No):
    """End the command with ``BAD [code] text``."""


_SASL_FAILURES: dict[sasl.FailureKind, str] = {
    sasl.FailureKind.CANCELLED: "Authentication cancelled",  # RFC 3501 6.2.2
    sasl.FailureKind.BAD_BASE64: "Invalid base64 in the SASL response",
    sasl.FailureKind.MALFORMED: "Malformed PLAIN response",  # RFC 4616 2
    sasl.FailureKind.TOO_LONG: "SASL response too long",
}

_STORE_ERRORS: dict[type, str] = {
    store_pkg.NoSuchFolder: "NONEXISTENT",  # RFC 5530 3
    store_pkg.FolderExists: "ALREADYEXISTS",
    store_pkg.NotAllowed: "CANNOT",
    store_pkg.BadFolderName: "CANNOT",
    store_pkg.TooLarge: "TOOBIG",
    store_pkg.BadFlag: "CANNOT",
    store_pkg.NoSuchMessage: "EXPUNGEISSUED",
}

# RFC 3501 9: resp-text is 7-bit, and a folder name is any Unicode; so a refusal says what
# went wrong in words of its own and the name stays in the log
_STORE_TEXTS: dict[type, str] = {
    store_pkg.NoSuchFolder: "No such folder",
    store_pkg.FolderExists: "Folder already exists",
    store_pkg.BadFolderName: "Invalid folder name",
    store_pkg.NotAllowed: "Not allowed",
    store_pkg.TooLarge: "Too large",
    store_pkg.BadFlag: "Invalid flag",
    store_pkg.NoSuchMessage: "No such message",
}
_NAMING_ERRORS = (store_pkg.NoSuchFolder, store_pkg.FolderExists)  # their text is the name


class Session:
    """Command handlers for one connection (`conn` is a server.Connection)."""

    def __init__(self, ctx: Context, conn: Any) -> None:
        self.ctx = ctx
        self.conn = conn
        self.state = NOT_AUTH
        self.address: str | None = None
        self.mailbox: Any = None
        self.view: View | None = None
        self.watch: Any = None
        self.early: list[Any] = []
        self.keywords: set[str] = set()  # keywords the client was told of (FLAGS)
        self.utf8 = False  # RFC 6855 3: ENABLE UTF8=ACCEPT; mailbox names are UTF-8 then
        self.rev2 = False  # RFC 9051 6.3.1: ENABLE IMAP4rev2 (what it changes: imap/rev2.py)
        self.modseqs = condstore.Modseqs()  # RFC 7162: CONDSTORE / QRESYNC enabled
        self.saved_uids: list[int] = []  # RFC 5182: the saved search result, "$"
        self.idle_wakeup = asyncio.Event()
        self.message_size = ctx.settings.limits.message_size

    # --- main loop -----------------------------------------------------------------------

    async def run(self) -> None:
        conn = self.conn
        conn.write(b"* OK [CAPABILITY " + self.capabilities() + b"] mailsuite IMAP4rev1 ready\r\n")
        conn.flush()
        try:
            while self.state != LOGOUT:
                data = await conn.next_command()
                if data is None:
                    break
                if isinstance(data, TooLong):
                    tag = (parse_tag(data.start) or "*").encode()
                    conn.write(tag + b" BAD [LIMIT] Command line too long\r\n")
                    continue
                try:
                    await self.dispatch(data)
                except _Handled:
                    continue
                except (ConnectionError, asyncio.CancelledError):
                    raise
                except Exception:
                    # a defect must not end the session silently: say so, and go on
                    log.exception("IMAP command handling failed for %s", self.address)
                    conn.write(b"* BAD [SERVERBUG] Internal error; the problem was logged\r\n")
                if not conn.has_pending_input():
                    await conn.drain()
        except ConnectionError:
            pass
        finally:
            self.deselect()
            conn.flush()

    def connection_lost(self) -> None:
        self.state = LOGOUT
        self.idle_wakeup.set()

    async def dispatch(self, data: bytes) -> None:
        # the loop watchdog names this command if it ever holds the loop (control.LoopLag)
        with control.running(self.ctx.lag, "imap", self.conn.remote_ip) as doing:
            await self._dispatch(data, doing)

    async def _dispatch(self, data: bytes, doing: control.Activity) -> None:
        conn = self.conn
        try:
            cmd = parse_command(data, self.utf8, self.rev2)
        except ParseError as exc:
            tag = exc.tag or parse_tag(data) or "*"
            kind = b"NO" if exc.code == "BADCHARSET" else b"BAD"
            if kind == b"NO" and exc.resets_saved:
                self.saved_uids = []  # RFC 5182 2.1: NO to a SAVE empties the result
            code = b" [BADCHARSET (UTF-8 US-ASCII)]" if exc.code == "BADCHARSET" else b""
            # 7-bit, and short: a message may quote the client's words, which can be long
            text = exc.message.encode("ascii", "replace")[:MAX_ERROR_TEXT]
            conn.write(b"%s %s%s %s\r\n" % (tag.encode(), kind, code, text))
            return
        handler, states = self.HANDLERS.get(cmd.name, (None, frozenset()))
        tag = cmd.tag.encode()
        if handler is None:
            conn.write(tag + b" BAD Unknown command\r\n")
            return
        doing.command = cmd.name
        if self.state not in states:
            conn.write(tag + b" BAD " + cmd.name.encode() + b" is not valid in this state\r\n")
            return
        try:
            reply = await self._run(handler, cmd)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, _Handled):
            raise
        except Exception:
            log.exception("IMAP %s failed for %s", cmd.name, self.address)
            reply = b"NO [SERVERBUG] Internal error; the problem was logged"
        conn.write(tag + b" " + reply + b"\r\n")
        if self.state == LOGOUT:
            conn.close()

    async def _run(self, handler: Callable[..., Any], cmd: Command) -> bytes:
        """Run one handler and announce pending changes; the tagged reply without its tag."""
        try:
            if cmd.bad_name:
                if cmd.name in ("SELECT", "EXAMINE"):
                    self.deselect()  # RFC 3501 6.3.1: a failed SELECT leaves none selected
                # RFC 3501 5.1.3: a valid astring, but no mailbox can have that name
                raise No("Mailbox name is not valid modified UTF-7", "CANNOT")
            results.resolve_saved(self, cmd)  # RFC 5182 2.1: "$" as the command starts
            if not self.modseqs.condstore and condstore.uses_modseq(cmd):
                self._enable_condstore(cmd)
            text = await handler(self, cmd)
        except Bad as exc:
            return b"BAD " + self._coded(exc)
        except No as exc:
            reply = b"NO " + self._coded(exc)
        except UnknownCte:
            # RFC 3516 4.2: a part whose encoding cannot be undone
            reply = b"NO [UNKNOWN-CTE] Cannot decode the part's content-transfer-encoding"
        except store_pkg.StoreError as exc:
            code = _STORE_ERRORS.get(type(exc), "CANNOT")
            reply = b"NO [" + code.encode() + b"] " + _store_text(exc).encode()
        else:
            reply = b"OK " + (text or f"{cmd.name} completed").encode()
        if self.state != LOGOUT:
            await self.send_updates(cmd)
        return reply

    @staticmethod
    def _coded(exc: No) -> bytes:
        code = f"[{exc.code}] " if exc.code else ""
        return (code + exc.text).encode()

    # --- capabilities and state --------------------------------------------------------

    def plaintext_ok(self) -> bool:
        """RFC 3501 6.2.3 / RFC 8314: passwords only over TLS, or loopback when allowed."""
        if self.conn.tls:
            return True
        return self.ctx.settings.tls.allow_plaintext_auth_on_loopback and self.conn.is_loopback()

    def capabilities(self) -> bytes:
        caps = ["IMAP4rev1", rev2.CAPABILITY, "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"]
        if self.state == NOT_AUTH:
            if not self.conn.tls:
                caps.append("STARTTLS")
            if self.plaintext_ok():
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")  # RFC 3501 6.2.3
        else:
            caps += [
                "NAMESPACE",
                "UIDPLUS",
                "MOVE",
                "UNSELECT",
                "CHILDREN",
                "SPECIAL-USE",
                "LIST-EXTENDED",
                "CONDSTORE",  # RFC 7162 3.1
                "QRESYNC",  # RFC 7162 3.2
                "LIST-STATUS",
                "STATUS=SIZE",
                "QUOTA",  # RFC 9208
                "QUOTA=RES-STORAGE",  # RFC 9208 5.1; MESSAGE counts are not limited
                "MULTIAPPEND",
                "BINARY",
                "CATENATE",
                "CREATE-SPECIAL-USE",
                "OBJECTID",
                "UTF8=ACCEPT",
                *results.CAPABILITIES,
                f"APPENDLIMIT={self.message_size}",
            ]
            if not self.conn.compressed:
                caps.append("COMPRESS=DEFLATE")  # RFC 4978 3: not once it is active
        return " ".join(caps).encode()

    def deselect(self) -> None:
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None
        self.view = None
        self.saved_uids = []  # RFC 5182 2.1: no folder, no saved result
        if self.state == SELECTED:
            self.state = AUTH

    def on_change(self, change: Any) -> None:
        """Store notice for the selected folder (called on the loop)."""
        view = self.view
        if view is None:
            self.early.append(change)  # SELECT in progress
            return
        self._note(view, change)
        self.idle_wakeup.set()

    @staticmethod
    def _note(view: View, change: Any) -> None:
        """Record a notice in the view, unless it is a rebuild the view already shows: a
        SELECT that found the folder rebuilt listed the new UIDs and announced the new
        UIDVALIDITY (RFC 3501 2.3.1.1), so the client has nothing to start again."""
        if change.kind == "uidvalidity" and view.uidvalidity == view.folder.uidvalidity:
            return
        view.note(change.kind, change.uids)

    async def send_updates(self, cmd: Command | None, *, poll: bool = False) -> None:
        """Announce pending changes of the selected folder where RFC 3501 7.4.1 allows.

        Work is proportional to the number of changes, not to the folder's size. Changes
        made in this process arrive as notices (`on_change`). Those of other processes are
        looked for once per command by the folder's change counter, one pread here on the
        loop; only when it moved does the folder sync in the pool. A poll (NOOP, CHECK) also
        syncs when no one has looked at the folder's files for OUTSIDE_CHECK_INTERVAL, for
        other Maildir software. When nothing changed, a command costs no query and no trip
        to the pool.
        """
        view = self.view
        if view is None:
            return
        folder = view.folder
        if folder.changed_elsewhere() or (
            poll and folder.outside_check_due(OUTSIDE_CHECK_INTERVAL)
        ):
            for change in await self.ctx.run_io(folder.sync):
                view.note(change.kind, change.uids)
        pending = view.pending
        if not pending:
            return
        if pending.rebuilt:
            # RFC 3501 2.3.1.1: the UIDs changed under us; the client must start again
            self.conn.write(b"* BYE Folder was rebuilt; please reconnect\r\n")
            self.state = LOGOUT
            self.conn.close()
            return
        allow_expunge = cmd is None or cmd.uid or cmd.name not in ("FETCH", "STORE", "SEARCH")
        changed: dict[int, Any] = {}
        new: list[Any] = []
        if pending.flags or pending.new:
            new_uids = {u for u in pending.new if u > view.last_uid()}
            pending.new.clear()
            claim = bool(new_uids) and not view.readonly and not self.rev2
            flag_uids = set(pending.flags)
            found = None
            if not claim and len(flag_uids) + len(new_uids) <= ON_LOOP:
                # another session's STORE: the entries are in memory, no trip to the pool
                found = view.folder.get_now(flag_uids | new_uids)
            if found is not None:
                changed = {uid: found[uid] for uid in flag_uids}
                new = [m for uid in sorted(new_uids) if (m := found[uid]) is not None]
            else:
                changed, new, recent = await self.ctx.run_io(
                    _collect, view.folder, flag_uids, new_uids, claim
                )
                view.recent |= recent
        # RFC 9051 7.5.2: in IMAP4rev2 every FETCH the server sends on its own has the UID
        with_uid = (cmd is not None and cmd.uid) or self.rev2
        self._announce_keywords(f for m in (*changed.values(), *new) if m for f in m.flags)
        out = view.apply(changed, new, allow_expunge, with_uid)
        if out:
            self.conn.write(out)

    def _flag_lines(self, readonly: bool) -> tuple[bytes, bytes]:
        """The FLAGS response and the PERMANENTFLAGS response code line for the keywords
        this session knows of."""
        keywords = sorted(self.keywords)
        flags = b"* FLAGS " + render.flags([*SYSTEM_FLAGS, *keywords]) + b"\r\n"
        if readonly:
            return flags, b"* OK [PERMANENTFLAGS ()] Read-only folder\r\n"
        # RFC 3501 7.1: \* means new keywords may be created
        perm = render.flags([*SYSTEM_FLAGS, *keywords, "\\*"])
        return flags, b"* OK [PERMANENTFLAGS " + perm + b"] Flags permitted\r\n"

    def _announce_keywords(self, flags: Iterable[str]) -> None:
        """RFC 3501 7.2.6: the FLAGS response lists the flags the mailbox has, so a keyword
        this session was not told of comes in an updated FLAGS (and PERMANENTFLAGS, 7.1)
        before any FETCH that shows it. Call before writing those FETCH lines."""
        view = self.view
        if view is None:
            return
        new = {f for f in flags if not f.startswith("\\")} - self.keywords
        if not new:
            return
        self.keywords |= new
        flags_line, permanent = self._flag_lines(view.readonly)
        # a read-only session's PERMANENTFLAGS stay empty: only FLAGS has news for it
        self.conn.write(flags_line if view.readonly else flags_line + permanent)

    # --- any state -----------------------------------------------------------------------

    async def do_capability(self, cmd: Command) -> str | None:
        self.conn.write(b"* CAPABILITY " + self.capabilities() + b"\r\n")
        return None

    async def do_noop(self, cmd: Command) -> str | None:
        await self.send_updates(cmd, poll=True)
        return None

    async def do_logout(self, cmd: Command) -> str | None:
        self.conn.write(b"* BYE mailsuite IMAP4rev1 server logging out\r\n")
        self.deselect()
        self.state = LOGOUT
        return None

    async def do_id(self, cmd: Command) -> str | None:
        # RFC 2971 3.1
        items = b" ".join(render.string(k) + b" " + render.string(v) for k, v in SERVER_ID)
        self.conn.write(b"* ID (" + items + b")\r\n")
        return None

    async def do_enable(self, cmd: Command) -> str | None:
        # RFC 5161 3.1: the reply lists what this command enabled
        enabled = condstore.enable(self.modseqs, cmd.words)
        if "UTF8=ACCEPT" in (w.upper() for w in cmd.words) and not self.utf8:
            self.utf8 = True  # RFC 6855 3
            enabled.append("UTF8=ACCEPT")
        if rev2.CAPABILITY.upper() in (w.upper() for w in cmd.words) and not self.rev2:
            self.rev2 = True
            enabled.append(rev2.CAPABILITY)
            if self.view is not None:
                self.view.recent.clear()  # RFC 9051 2.3.2: no \Recent from now on
                self.view.recent_responses = False
        self._modseqs_changed()
        self.conn.write(b"* ENABLED" + b"".join(b" " + w.encode() for w in enabled) + b"\r\n")
        return None

    def _enable_condstore(self, cmd: Command) -> None:
        """RFC 7162 3.1: a CONDSTORE enabling command turns CONDSTORE on; in a selected
        folder the client learns its HIGHESTMODSEQ with it (SELECT says it itself)."""
        self.modseqs.condstore = True
        if self.view is not None and cmd.name not in ("SELECT", "EXAMINE"):
            self.conn.write(condstore.highestmodseq_line(self.view.folder.highest_modseq()))
        self._modseqs_changed()

    @property
    def names_utf8(self) -> bool:
        """Whether mailbox names go out as UTF-8: RFC 6855 3 UTF8=ACCEPT, RFC 9051 5.1."""
        return self.utf8 or self.rev2

    def _modseqs_changed(self) -> None:
        if self.view is not None:
            self.view.with_modseq = self.modseqs.condstore
            self.view.vanished = self.modseqs.qresync

    # --- not authenticated ---------------------------------------------------------------

    async def do_starttls(self, cmd: Command) -> str | None:
        if self.conn.tls:
            raise Bad("TLS is already active")
        self.conn.write(cmd.tag.encode() + b" OK Begin TLS negotiation now\r\n")
        self.conn.start_tls()
        raise _Handled

    async def do_login(self, cmd: Command) -> str | None:
        if not self.plaintext_ok():
            raise No("Use STARTTLS first", "PRIVACYREQUIRED")
        assert cmd.user is not None and cmd.password is not None
        return await self.authenticate(
            cmd.user.decode("utf-8", "replace"), cmd.password.decode("utf-8", "replace")
        )

    async def do_authenticate(self, cmd: Command) -> str | None:
        """RFC 3501 6.2.2 with SASL-IR (RFC 4959); PLAIN is the one mechanism offered.

        Before TLS with plaintext logins off no mechanism is offered at all, so every
        AUTHENTICATE gets what LOGIN gets, for the same reason (RFC 3501 6.2.3, RFC 5530 3
        PRIVACYREQUIRED); after it, a mechanism we lack is NO [CANNOT] (RFC 3501 6.2.2)."""
        if not self.plaintext_ok():
            raise No("Use STARTTLS first", "PRIVACYREQUIRED")
        if cmd.mechanism != "PLAIN":
            raise No("Unsupported authentication mechanism", "CANNOT")
        exchange = sasl.Exchange(cmd.mechanism)
        step = exchange.begin(cmd.initial)  # RFC 4959 3: "=" is an empty initial response
        while isinstance(step, sasl.Challenge):
            self.conn.write(b"+ " + sasl.encode_challenge(step.data) + b"\r\n")  # RFC 3501 7.5
            self.conn.flush()
            line = await self.conn.next_command()
            if line is None:
                raise ConnectionError
            if isinstance(line, bytes):
                step = exchange.respond(line)
            else:
                step = sasl.Failure(sasl.FailureKind.TOO_LONG)  # over the line limit
        if isinstance(step, sasl.Failure):
            # RFC 3501 6.2.2: a cancelled exchange, like a malformed one, is BAD
            raise Bad(_SASL_FAILURES[step.kind])
        return await self.authenticate(step.authcid, step.password, authzid=step.authzid)

    async def authenticate(self, login: str, password: str, *, authzid: str = "") -> str:
        """The shared login path; `authzid` is decided only after the password was right."""
        result = await self.ctx.auth.authenticate(
            login, password, protocol="imap", remote_ip=self.conn.remote_ip
        )
        for notice in result.notices:
            self.conn.write(b"* OK [ALERT] " + notice.encode() + b"\r\n")
        if not result.ok:
            if result.code in (AuthCode.MUST_CHANGE, AuthCode.TEMP_EXPIRED):
                # the message carries the address of the page where the password is changed
                text = result.message
                if result.change_url and result.change_url not in text:
                    text += f" ({result.change_url})"
                raise No(text, "ALERT")
            if result.code is AuthCode.LEGACY_EXPIRED:
                raise No(result.message, "ALERT")
            if result.code in (AuthCode.THROTTLED, AuthCode.UNAVAILABLE):
                raise No(result.message, "UNAVAILABLE")  # RFC 5530 3: try again later
            raise No(result.message, "AUTHENTICATIONFAILED")
        account = result.account
        assert account is not None
        try:
            allowed = await self.ctx.run_io(sasl.authorize, self.ctx.directory, account, authzid)
        except DirectoryUnavailable:
            raise No(UNAVAILABLE_MESSAGE, "UNAVAILABLE") from None  # RFC 5530 3
        if not allowed:
            raise No("Not allowed to act as that authorization identity", "AUTHORIZATIONFAILED")
        if not self.conn.set_user(account.address):
            raise No("Too many connections for this account", "LIMIT")
        self.address = account.address
        self.mailbox = await self.ctx.run_io(self.ctx.store.mailbox, account.address)
        self.state = AUTH
        return "[CAPABILITY " + self.capabilities().decode() + "] Logged in"

    # --- authenticated -------------------------------------------------------------------

    async def folder(self, name: str) -> Any:
        return await self.ctx.run_io(self.mailbox.folder, name)

    async def do_select(self, cmd: Command) -> str | None:
        if cmd.qresync is not None and not self.modseqs.qresync:
            raise Bad("QRESYNC is not enabled")  # RFC 7162 3.2.5: MUST be BAD
        if self.view is not None and (self.modseqs.qresync or self.rev2):
            # RFC 7162 3.2.11, RFC 9051 7.1: only when a mailbox was selected
            self.conn.write(condstore.CLOSED_LINE)
        self.deselect()
        try:
            return await self._select(cmd)
        except BaseException:
            self.deselect()  # RFC 3501 6.3.1: a failed SELECT leaves no folder selected
            raise

    async def _select(self, cmd: Command) -> str:
        readonly = cmd.name == "EXAMINE"
        assert cmd.mailbox is not None
        self.early = []
        # RFC 9051 2.3.2: an IMAP4rev2 session has no \Recent and leaves it to others
        recent_mode = "" if self.rev2 else "peek" if readonly else "claim"
        opened = await self.ctx.run_io(
            _open,
            self.ctx.store,
            self.mailbox,
            self.address,
            cmd.mailbox,
            self.on_change,
            snapshots_of(self.ctx),
            recent_mode,
        )
        folder, self.watch, recent, highest, uidvalidity, snap, mailbox_id = opened
        first_unseen = snap.first_unseen
        view = View(folder.name, folder, readonly, snap, recent)
        view.uidvalidity = uidvalidity
        self.keywords = set(snap.keywords)
        flags_line, permanent = self._flag_lines(readonly)
        w = self.conn.write
        w(flags_line)
        if self.rev2:
            # RFC 9051 6.3.2: FLAGS, EXISTS and LIST; no RECENT, and UNSEEN is gone
            view.recent_responses = False
            w(b"* %d EXISTS\r\n" % len(view))
            w(await self.ctx.run_io(rev2.select_list_line, self.mailbox, folder.name, True))
        else:
            w(b"* %d EXISTS\r\n* %d RECENT\r\n" % (len(view), len(recent)))
            if first_unseen:
                w(b"* OK [UNSEEN %d] First unseen message\r\n" % first_unseen)
        w(b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % uidvalidity)
        w(b"* OK [UIDNEXT %d] Predicted next UID\r\n" % folder.uidnext)
        w(b"* OK [%s] Ok\r\n" % mailbox_code(mailbox_id).encode())  # RFC 8474 4
        w(permanent)
        if self.modseqs.condstore:
            w(condstore.highestmodseq_line(highest))  # RFC 7162 3.1.1
        if cmd.qresync is not None:
            w(await self.ctx.run_io(condstore.resync, folder, view, cmd.qresync, set(recent)))
        self.view = view
        self._modseqs_changed()
        self.state = SELECTED
        for change in self.early:
            self._note(view, change)
        self.early = []
        return ("[READ-ONLY] " if readonly else "[READ-WRITE] ") + f"{cmd.name} completed"

    do_examine = do_select

    async def do_create(self, cmd: Command) -> str | None:
        name = (cmd.mailbox or "").rstrip("/")  # RFC 3501 6.3.3: a trailing delimiter is ok
        if not name:
            raise No("Folder name is empty", "CANNOT")
        if name.upper() == "INBOX":
            raise No("INBOX always exists", "ALREADYEXISTS")
        self._check_new_name(name)
        if len(cmd.use_attrs) > 1:
            raise No("A folder has at most one special use", "USEATTR")  # RFC 6154 3
        use = cmd.use_attrs[0] if cmd.use_attrs else None
        try:
            await self.ctx.run_io(self.mailbox.create_folder, name, use)
        except SpecialUseRefused:
            # RFC 6154 3: not a use we keep, or another folder has it
            raise No("That special use cannot be given to this folder", "USEATTR") from None
        mailbox_id = await self.ctx.run_io(self.mailbox.folder_id, name)
        return f"[{mailbox_code(mailbox_id)}] CREATE completed"  # RFC 8474 4

    async def do_delete(self, cmd: Command) -> str | None:
        if (cmd.mailbox or "") == "INBOX":
            raise No("INBOX cannot be deleted", "CANNOT")  # RFC 3501 6.3.4
        if self.view is not None and self.view.name == cmd.mailbox:
            self.deselect()  # the client gets NO on later commands, not stale data
        await self.ctx.run_io(self.mailbox.delete_folder, cmd.mailbox)
        return None

    async def do_rename(self, cmd: Command) -> str | None:
        if (cmd.mailbox2 or "") == "INBOX":
            raise No("A folder cannot be renamed to INBOX", "ALREADYEXISTS")
        self._check_new_name(cmd.mailbox2 or "")
        await self.ctx.run_io(self.mailbox.rename_folder, cmd.mailbox, cmd.mailbox2)
        return None

    def _check_new_name(self, name: str) -> None:
        """RFC 9051 5.1 and RFC 6855 3: a name sent as UTF-8 must be Net-Unicode (RFC 5198),
        so in Unicode NFC; the store refuses the control characters Net-Unicode excludes."""
        if self.names_utf8 and rev2.denormalized(name):
            raise No("Mailbox name is not in Unicode normalization form C", "CANNOT")

    async def do_subscribe(self, cmd: Command) -> str | None:
        await self.ctx.run_io(self.mailbox.subscribe, cmd.mailbox)
        return None

    async def do_unsubscribe(self, cmd: Command) -> str | None:
        await self.ctx.run_io(self.mailbox.unsubscribe, cmd.mailbox)
        return None

    async def do_list(self, cmd: Command) -> str | None:
        """LIST (RFC 3501 6.3.8, RFC 5258, RFC 6154) and LSUB (RFC 3501 6.3.9)."""
        assert cmd.reference is not None
        lsub = cmd.name == "LSUB"
        opts, returns = set(cmd.select_opts), set(cmd.return_opts)
        # RFC 5258 3: options are checked first, so a bad one is BAD whatever the pattern
        if opts - mailboxes.SELECT_OPTIONS:
            raise Bad("Unknown LIST selection option")
        if returns - mailboxes.RETURN_OPTIONS:
            raise Bad("Unknown LIST return option")
        if "RECURSIVEMATCH" in opts and "SUBSCRIBED" not in opts:
            # RFC 5258 3.1: RECURSIVEMATCH needs a base option to modify; the server MUST
            # answer BAD (REMOTE and SPECIAL-USE are independent options, RFC 6154 6)
            raise Bad("RECURSIVEMATCH needs the SUBSCRIBED selection option")
        if not lsub and cmd.patterns == ("",):
            # RFC 3501 6.3.8: an empty pattern asks for the delimiter and root
            self.conn.write(b'* LIST (\\Noselect) "/" ""\r\n')
            return None
        try:
            # a pattern that is not modified UTF-7 (None) matches no name
            matcher = mailboxes.AnyOf(
                [mailboxes.Matcher(cmd.reference, p) for p in cmd.patterns if p is not None]
            )
        except mailboxes.PatternTooLong as exc:
            raise Bad(str(exc), "LIMIT") from None
        if not matcher.matchers:
            return None
        items = await self.ctx.run_io(
            _list_matching,
            self.mailbox,
            matcher,
            subscribed_only="SUBSCRIBED" in opts,
            special_use_only="SPECIAL-USE" in opts,
            recursive="RECURSIVEMATCH" in opts,
            return_subscribed="SUBSCRIBED" in returns,
            extended=cmd.extended,
            lsub=lsub,
        )
        if "STATUS" in returns and not lsub:
            # RFC 5819 2: each selectable name's STATUS follows its LIST line
            with_ids = "MAILBOXID" in cmd.status_items
            found = await self.ctx.run_io(status.list_statuses, self.mailbox, items, with_ids)
            out = []
            for i in items:
                out.append(mailboxes.list_line(cmd.name, i, self.names_utf8))
                if i.name in found:
                    st, mailbox_id = found[i.name]
                    line = status.status_line(
                        i.name, st, cmd.status_items, mailbox_id, self.names_utf8
                    )
                    out.append(line)
            self.conn.write(b"".join(out))
            return None
        self.conn.write(b"".join(mailboxes.list_line(cmd.name, i, self.names_utf8) for i in items))
        return None

    do_lsub = do_list

    async def do_namespace(self, cmd: Command) -> str | None:
        # RFC 2342 5: one personal namespace, no others
        self.conn.write(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
        return None

    async def do_status(self, cmd: Command) -> str | None:
        assert cmd.mailbox is not None
        folder = await self.folder(cmd.mailbox)
        st = await self.ctx.run_io(folder.status)
        mailbox_id = None
        if "MAILBOXID" in cmd.status_items:
            mailbox_id = await self.ctx.run_io(self.mailbox.folder_id, folder.name)
        line = status.status_line(cmd.mailbox, st, cmd.status_items, mailbox_id, self.names_utf8)
        self.conn.write(line)
        return None

    async def _catenated(self, messages: tuple[Any, ...]) -> tuple[Any, ...]:
        """CATENATE messages (RFC 4469) joined from their TEXT and URL parts; URLs may name
        only this user's messages (RFC 4469 5, RFC 5092)."""
        selected = self.view.name if self.view is not None else None
        try:
            return await self.ctx.run_io(
                assemble,
                self.mailbox,
                self.address,
                selected,
                messages,
                self.message_size,
            )
        except BadUrl as exc:
            raise No("Cannot use that URL", exc.code()) from None  # RFC 4469 5
        except TooBig:
            raise No("Message too large", "TOOBIG") from None  # RFC 4469 5

    async def do_append(self, cmd: Command) -> str | None:
        assert cmd.mailbox is not None and cmd.appends
        if any(m.parts for m in cmd.appends):
            # RFC 4469 5: the parts are joined first, so the checks below see the result
            cmd.appends = await self._catenated(cmd.appends)
        if any(len(m.data) > self.message_size for m in cmd.appends):
            raise No("Message too large", "TOOBIG")  # RFC 7889 4: APPENDLIMIT is per message
        try:
            folder = await self.folder(cmd.mailbox)
        except store_pkg.NoSuchFolder:
            raise No("No such folder", "TRYCREATE") from None  # RFC 3501 6.3.11
        await self._room_for(sum(len(m.data) for m in cmd.appends))  # RFC 9208 4.3.1
        # RFC 3502 3: every message or none
        uids = await self.ctx.run_io(append_all, folder, cmd.appends)
        if self.view is not None and self.view.folder is folder:
            self.view.pending.new.update(uids)
        # RFC 4315 3: APPENDUID, with a uid-set for several messages (RFC 3502 6)
        return f"[APPENDUID {folder.uidvalidity} {uid_set(uids)}] APPEND completed"

    # --- QUOTA (RFC 9208) ------------------------------------------------------------

    async def _usage(self) -> quota_policy.Usage:
        """The account's quota usage and limit, read in an I/O thread."""
        ctx = self.ctx
        try:
            return await ctx.run_io(
                quota_policy.usage, ctx.settings, ctx.directory, ctx.store, self.address
            )
        except DirectoryUnavailable:
            raise No(UNAVAILABLE_MESSAGE, "UNAVAILABLE") from None

    async def _room_for(self, size: int) -> None:
        """Refuse an APPEND or COPY that would take the account past its quota, with
        RFC 9208 4.3.1's NO [OVERQUOTA] (also for a message larger than the whole quota: it is
        the quota, not a size limit, that it exceeds). MOVE is not checked: its messages
        stay under the same quota root, so usage does not grow. An account without a limit
        costs no look at its folders: totals of folders nobody opened would mean building
        their indexes."""
        ctx = self.ctx
        try:
            verdict = await ctx.run_io(
                quota_policy.check, ctx.settings, ctx.directory, ctx.store, self.address, size
            )
        except DirectoryUnavailable:
            raise No(UNAVAILABLE_MESSAGE, "UNAVAILABLE") from None
        if verdict is not quota_policy.Verdict.FITS:
            raise No("Quota exceeded (mailbox is full)", imap_quota.OVERQUOTA)

    async def do_getquotaroot(self, cmd: Command) -> str | None:
        assert cmd.mailbox is not None
        await self.folder(cmd.mailbox)  # RFC 9208 4.1.2: NO for a mailbox that does not exist
        current = await self._usage()
        # RFC 9208 4.1.2: QUOTAROOT, then a QUOTA response for each root
        root = imap_quota.quotaroot_line(cmd.mailbox, self.names_utf8)
        self.conn.write(root + imap_quota.quota_line(current))
        return None

    async def do_getquota(self, cmd: Command) -> str | None:
        if cmd.words != (imap_quota.ROOT,):
            raise No("No such quota root", "NONEXISTENT")  # RFC 9208 4.1.1
        self.conn.write(imap_quota.quota_line(await self._usage()))
        return None

    async def do_setquota(self, cmd: Command) -> str | None:
        # RFC 9208 4.1.3: QUOTASET is not advertised; limits are set by the administrator
        raise No("Quota limits are set by the administrator", "NOPERM")

    async def do_idle(self, cmd: Command) -> str | None:
        # RFC 2177 3: untagged updates flow until the client sends DONE
        conn = self.conn
        conn.write(b"+ idling\r\n")
        self.idle_wakeup.clear()
        await self.send_updates(None)
        conn.flush()
        line_task = asyncio.ensure_future(conn.next_command())
        try:
            while True:
                wake = asyncio.ensure_future(self.idle_wakeup.wait())
                done, _ = await asyncio.wait({line_task, wake}, return_when=asyncio.FIRST_COMPLETED)
                if line_task in done:
                    wake.cancel()
                    break
                # cleared before announcing, so a notice arriving meanwhile wakes us again
                self.idle_wakeup.clear()
                if self.state == LOGOUT:
                    raise ConnectionError
                await self.send_updates(None)
                conn.flush()
        finally:
            if not line_task.done():
                line_task.cancel()
        line = line_task.result()
        if line is None:
            raise ConnectionError
        if isinstance(line, TooLong) or line.strip().upper() != b"DONE":
            raise Bad("Expected DONE")
        return "IDLE terminated"

    # --- selected ------------------------------------------------------------------------

    def _view(self) -> View:
        assert self.view is not None
        return self.view

    async def do_check(self, cmd: Command) -> str | None:
        await self.send_updates(cmd, poll=True)
        return None

    async def do_close(self, cmd: Command) -> str | None:
        view = self._view()
        if not view.readonly:
            # RFC 3501 6.4.2: expunge silently
            uids = await self.ctx.run_io(_deleted, view, None)
            if uids:
                await self.ctx.run_io(view.folder.expunge, uids)
        self.deselect()
        return None

    async def do_compress(self, cmd: Command) -> str | None:
        if cmd.words != ("DEFLATE",):
            raise Bad("Unsupported compression mechanism")  # RFC 4978 3
        if self.conn.compressed:
            raise No("DEFLATE is already active", "COMPRESSIONACTIVE")
        self.conn.write(cmd.tag.encode() + b" OK DEFLATE active\r\n")
        self.conn.start_compression()
        raise _Handled

    async def do_unselect(self, cmd: Command) -> str | None:
        self.deselect()  # RFC 3691 2: no expunge
        return None

    async def do_expunge(self, cmd: Command) -> str | None:
        view = self._view()
        if view.readonly:
            raise No("Folder is read-only", "READ-ONLY")
        chosen = (
            set(view.select(cmd.sequence, True)) if cmd.uid and cmd.sequence is not None else None
        )
        uids = await self.ctx.run_io(_deleted, view, chosen)
        if uids:
            removed = await self.ctx.run_io(view.folder.expunge, uids)
            self.conn.write(view.expunged_lines(removed))
        if self.modseqs.condstore:
            # RFC 7162 3.1.10: the tagged OK of EXPUNGE tells the new HIGHESTMODSEQ
            return f"[HIGHESTMODSEQ {view.folder.highest_modseq()}] EXPUNGE completed"
        return None

    async def do_search(self, cmd: Command) -> str | None:
        if self.rev2:
            rev2.as_esearch(cmd)  # RFC 9051 6.4.4: IMAP4rev2 answers ESEARCH only
        if cmd.esearch:
            return await results.do_esearch(self, cmd)  # RFC 4731 3.1: SEARCH RETURN
        view = self._view()
        assert cmd.search is not None
        entries = view.entries()
        span = search.span_in_memory(cmd.search, entries)
        if span is not None and span <= ON_LOOP:
            # a few messages' UIDs and flags (UID SEARCH UID n:m UNSEEN): no trip to the pool
            result = search.search(cmd.search, entries, set(view.recent), view.folder.read)
        else:
            result = await self.ctx.run_io(
                results.search_view, self.ctx, view, cmd.search, set(view.recent)
            )
        found = result.uids if cmd.uid else result.seqs
        extra = b""
        if result.uids and condstore.search_uses_modseq(cmd.search):
            # RFC 7162 3.1.5: the highest modseq of the messages found
            top = max(m.modseq for m in map(view.entry, result.uids) if m is not None)
            extra = b" (MODSEQ %d)" % top
        self.conn.write(b"* SEARCH" + b"".join(b" %d" % n for n in found) + extra + b"\r\n")
        return None

    async def do_store(self, cmd: Command) -> str | None:
        view = self._view()
        if view.readonly:
            raise No("Folder is read-only", "READ-ONLY")
        uids = view.select(cmd.sequence, cmd.uid)
        if not uids:
            return None
        modified: list[int] = []
        if cmd.unchanged_since is not None:
            # RFC 7162 3.1.3: only messages unchanged since the client's modseq
            infos, modified = await self.ctx.run_io(
                view.folder.store_flags_unchanged_since,
                uids,
                list(cmd.flags),
                cmd.store_mode,
                cmd.unchanged_since,
            )
        else:
            infos = await self.ctx.run_io(
                view.folder.store_flags, uids, list(cmd.flags), cmd.store_mode
            )
        if infos and cmd.store_mode != "remove":
            self._announce_keywords(cmd.flags)  # before the FETCHes, even .SILENT ones
        out = []
        for info in infos:
            before = view.entry(info.uid)
            view.update(info)
            if self.modseqs.condstore:
                # RFC 7162 3.1: UID and MODSEQ in every FETCH; 3.1.3: with .SILENT, still a
                # FETCH with the new MODSEQ of each message the STORE changed
                if not cmd.silent or before is None or before.modseq != info.modseq:
                    seq = view.seq_of(info.uid) or 0
                    names = view.flags_of(info)
                    out.append(condstore.flag_fetch(seq, info, names, with_flags=not cmd.silent))
            elif not cmd.silent:
                seq = view.seq_of(info.uid)
                # RFC 9051 7.5.2: IMAP4rev2 FETCHes not asked for by FETCH carry the UID
                extra = b" UID %d" % info.uid if cmd.uid or self.rev2 else b""
                out.append(
                    b"* %d FETCH (FLAGS %s%s)\r\n" % (seq, render.flags(view.flags_of(info)), extra)
                )
        view.pending.flags.difference_update(i.uid for i in infos)
        self.conn.write(b"".join(out))
        if modified:
            # RFC 7162 3.1.3: the messages that failed the test, as UIDs for UID STORE
            numbers = modified if cmd.uid else [view.seq_of(u) or 0 for u in modified]
            code = condstore.uid_set(numbers).decode()
            return f"[MODIFIED {code}] Conditional STORE failed"
        return None

    async def _dest(self, name: str) -> Any:
        try:
            return await self.folder(name)
        except store_pkg.NoSuchFolder:
            raise No("No such folder", "TRYCREATE") from None  # RFC 3501 6.4.7

    async def do_copy(self, cmd: Command) -> str | None:
        view = self._view()
        assert cmd.mailbox is not None
        dest = await self._dest(cmd.mailbox)
        uids = view.select(cmd.sequence, cmd.uid)
        if not uids:
            return None
        await self._room_for(await self.ctx.run_io(_octets, view, uids))
        pairs = await self.ctx.run_io(view.folder.copy, uids, dest)
        if dest is view.folder:
            view.pending.new.update(dst for _, dst in pairs)
        return _copyuid(dest, pairs) + " COPY completed"

    async def do_move(self, cmd: Command) -> str | None:
        view = self._view()
        if view.readonly:
            raise No("Folder is read-only", "READ-ONLY")
        assert cmd.mailbox is not None
        dest = await self._dest(cmd.mailbox)
        uids = view.select(cmd.sequence, cmd.uid)
        if not uids:
            return None
        pairs = await self.ctx.run_io(view.folder.move, uids, dest)
        # RFC 6851 4.3: COPYUID comes untagged, before the EXPUNGEs
        self.conn.write(b"* OK " + _copyuid(dest, pairs).encode() + b" Moved\r\n")
        self.conn.write(view.expunged_lines([src for src, _ in pairs]))
        if dest is view.folder:
            view.pending.new.update(dst for _, dst in pairs)
        return None

    async def do_fetch(self, cmd: Command) -> str | None:
        view = self._view()
        items = list(cmd.fetch)
        if cmd.uid and not any(i.name == "UID" for i in items):
            items.insert(0, FetchItem("UID"))  # RFC 3501 6.4.8
        since = cmd.changed_since
        if since is not None and not any(i.name == "MODSEQ" for i in items):
            items.append(FetchItem("MODSEQ"))  # RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ
        if cmd.vanished and since is not None:
            # RFC 7162 3.2.6: the UIDs of the set expunged since, before the FETCHes
            largest = max(view.folder.uidnext - 1, view.last_uid())
            gone = await self.ctx.run_io(
                condstore.earlier_vanished, view.folder, view, since, cmd.sequence, largest
            )
            self.conn.write(condstore.vanished_lines(gone, earlier=True))
        entries = view.select_entries(cmd.sequence, cmd.uid)
        if since is not None:
            entries = [(seq, m) for seq, m in entries if m.modseq > since]
        if not entries:
            return None
        if not view.readonly and any(i.sets_seen for i in items):
            unseen = [m.uid for _, m in entries if "\\Seen" not in m.flags]
            if unseen:
                if self.modseqs.condstore:
                    # RFC 7162 3.1: a FETCH that sets \Seen reports UID and MODSEQ too
                    for name in ("UID", "MODSEQ"):
                        if not any(i.name == name for i in items):
                            items.append(FetchItem(name))
                # RFC 3501 6.4.5: fetching the body sets \Seen; the new flags are reported
                infos = await self.ctx.run_io(view.folder.store_flags, unseen, ["\\Seen"], "add")
                for info in infos:
                    view.update(info)
                view.pending.flags.difference_update(unseen)
                if not any(i.name == "FLAGS" for i in items):
                    items.append(FetchItem("FLAGS"))
                chosen = {m.uid for _, m in entries}
                entries = [
                    (seq, m)
                    for seq, m in view.select_entries(cmd.sequence, cmd.uid)
                    if m.uid in chosen
                ]
        recent = set(view.recent)
        if not render.needs_body(items):
            if len(entries) <= ON_LOOP:
                # a few messages' FLAGS, UID, sizes...: from memory, no trip to the pool
                self.conn.write(_render_index_chunk(entries, items, recent))
                return None
            for start in range(0, len(entries), FETCH_CHUNK_INDEX):
                chunk = entries[start : start + FETCH_CHUNK_INDEX]
                data = await self.ctx.run_io(_render_index_chunk, chunk, items, recent)
                self.conn.write(data)
                await self.conn.drain()
            return None
        start = 0
        from_header = header_only(items)  # no file is read: only the count bounds a chunk
        while start < len(entries):
            chunk = []
            size = 0
            while start < len(entries) and (
                len(chunk) < FETCH_CHUNK_HEADERS
                if from_header
                else len(chunk) < FETCH_CHUNK_FILES and size < FETCH_CHUNK_BYTES
            ):
                chunk.append(entries[start])
                size += entries[start][1].size
                start += 1
            data = await self.ctx.run_io(_render_body_chunk, view.folder, chunk, items, recent)
            self.conn.write(data)
            if start < len(entries):
                await self.conn.drain()  # the last chunk goes out with the tagged reply
        return None

    HANDLERS: ClassVar[dict[str, tuple[Callable[..., Any], frozenset[str]]]] = {}


class _Handled(Exception):
    """The handler already wrote its tagged reply (STARTTLS)."""


def _collect(
    folder: Any, flag_uids: set[int], new_uids: set[int], claim: bool
) -> tuple[dict[int, Any], list[Any], set[int]]:
    """Current entries for flag and new-message notices, and the \\Recent ones claimed."""
    recent = folder.claim_recent() if claim else set()
    changed = {uid: folder.get(uid) for uid in flag_uids}
    new = [m for m in map(folder.get, sorted(new_uids)) if m is not None]
    return changed, new, recent


def _open(
    store: Any,
    mailbox: Any,
    address: str,
    name: str,
    on_change: Callable[[Any], object],
    snapshots: Any,
    recent_mode: str,
) -> tuple[Any, Any, set[int], int, int, Any, str]:
    """What SELECT and EXAMINE ask the store, in one trip to the pool: (folder, watch,
    \\Recent UIDs, HIGHESTMODSEQ, UIDVALIDITY, listing, MAILBOXID). `recent_mode` is
    "claim" (SELECT takes them, RFC 3501 2.3.2), "peek" (EXAMINE shows them) or "" (none,
    IMAP4rev2). Nothing here writes to the folder."""
    folder = mailbox.folder(name)
    # watch before listing, so no change falls between the listing and the first notice
    watch = store.watch(address, folder.name, on_change)
    try:
        # A sync may find the folder rebuilt (its Maildir replaced by another program): the
        # listing then has the new UIDs, and the client learns the new UIDVALIDITY here.
        folder.sync()
        recent = folder.claim_recent() if recent_mode == "claim" else set()
        # read before the listing: a change after it has a higher modseq and is seen again
        highest = folder.highest_modseq()
        uidvalidity, snap = _listing(snapshots.take, folder)
        if recent_mode == "peek":
            recent = folder.recent()
        mailbox_id = mailbox.folder_id(folder.name)
    except BaseException:
        watch.cancel()
        raise
    return folder, watch, recent, highest, uidvalidity, snap, mailbox_id


def _listing(take: Callable[[Any], Any], folder: Any) -> tuple[int, Any]:
    """The folder's listing with the UIDVALIDITY its UIDs belong to; off the loop. Read
    again if a rebuild changed the UIDVALIDITY meanwhile (the listing waits for a rebuild
    in progress, so one read between two equal values is the listing of that value)."""
    while True:
        uidvalidity = folder.uidvalidity
        snap = take(folder)
        if folder.uidvalidity == uidvalidity:
            return uidvalidity, snap


def _list_matching(mailbox: Any, matcher: mailboxes.NameMatcher, **options: bool) -> list[Any]:
    """The names LIST and LSUB answer with, subscribed names of deleted folders included;
    off the loop, since matching costs grow with the number of folders."""
    return mailboxes.list_folders(
        mailbox.list_folders(), matcher, subscriptions=mailbox.subscriptions(), **options
    )


def _store_text(exc: store_pkg.StoreError) -> str:
    """The words a client gets for a store refusal: the store's own when they are plain
    ASCII and name no folder, else the generic ones for its kind (RFC 3501 9: 7-bit)."""
    text = str(exc)
    if isinstance(exc, _NAMING_ERRORS) or not (text and text.isascii() and text.isprintable()):
        log.debug("store refused: %s: %r", type(exc).__name__, text)
        return _STORE_TEXTS.get(type(exc), "Cannot do that")
    return text


def _copyuid(dest: Any, pairs: list[tuple[int, int]]) -> str:
    # RFC 4315 3: COPYUID uidvalidity source-uids dest-uids, in matching order
    if not pairs:
        return ""
    src = ",".join(str(s) for s, _ in pairs)
    dst = ",".join(str(d) for _, d in pairs)
    return f"[COPYUID {dest.uidvalidity} {src} {dst}]"


def _octets(view: View, uids: list[int]) -> int:
    """The size of the messages `uids` (what a COPY adds to the quota usage); off the loop."""
    return sum(e.size for e in map(view.entry, uids) if e is not None)


def _deleted(view: View, chosen: set[int] | None) -> list[int]:
    """UIDs flagged \\Deleted (among `chosen` if given), from the flag column; off the loop."""
    found = view.flag_matches(lambda flags: "\\Deleted" in flags)
    uids = found[1] if found is not None else [m.uid for m in view.all() if "\\Deleted" in m.flags]
    return [uid for uid in uids if chosen is None or uid in chosen]


def _flag_names(info: Any, recent: set[int]) -> list[str]:
    if info.uid in recent:
        return sorted((*info.flags, "\\Recent"))
    return sorted(info.flags)


def _render_index_chunk(
    chunk: list[tuple[int, Any]], items: list[FetchItem], recent: set[int]
) -> bytes:
    return render.index_lines(chunk, [i.name for i in items], recent)


_HEADER_TEXTS = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"})
_INDEX_ITEMS = frozenset({"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ", "THREADID"})


def header_only(items: list[FetchItem]) -> bool:
    """Whether every item comes from the index or the message's own header block (BODY[HEADER],
    BODY[HEADER.FIELDS (...)], RFC822.HEADER, ENVELOPE), which the store keeps: then no
    message file is read."""
    for i in items:
        if i.section is not None:
            if i.name != "BODY" or i.section.part or i.section.text not in _HEADER_TEXTS:
                return False
        elif i.name not in _INDEX_ITEMS and i.name not in ("RFC822.HEADER", "ENVELOPE"):
            return False
    return True


def _render_body_chunk(
    folder: Any, chunk: list[tuple[int, Any]], items: list[FetchItem], recent: set[int]
) -> bytes:
    """FETCH lines that need more than the index: ENVELOPE and BODYSTRUCTURE come from the
    store's per-message cache when there, and are put there when computed; header items from
    the header blocks the store keeps; the file is read only when something else needs it."""
    wanted = [n for n in render.CACHEABLE if any(i.name == n and i.section is None for i in items)]
    others = any(
        i.section is not None or i.name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT") for i in items
    )
    uids = [m.uid for _, m in chunk]
    known_by_uid: dict[int, dict[str, bytes]] = {}
    for name in wanted:
        for uid, value in folder.cache_get_many(uids, CACHE_PREFIX + name).items():
            known_by_uid.setdefault(uid, {})[name] = value
    need = [u for u in uids if others or len(known_by_uid.get(u, ())) < len(wanted)]
    blocks = store_headers.blocks(folder, need) if need and header_only(items) else {}
    out = []
    for seq, m in chunk:
        known = known_by_uid.get(m.uid, {})
        data = root = None
        if others or len(known) < len(wanted):
            data = blocks.get(m.uid)
            try:
                if data is None:
                    data = folder.read(m.uid)
            except store_pkg.NoSuchMessage:
                continue  # expunged by another session meanwhile; its EXPUNGE comes later
            root = header_part(data) if m.uid in blocks else None
            missing = [n for n in wanted if n not in known]
            if missing:
                root = root or parse_message(data)
                for name in missing:
                    known[name] = render.cacheable_value(name, root)
                    try:
                        folder.cache_put(m.uid, CACHE_PREFIX + name, known[name])
                    except store_pkg.StoreError:
                        pass  # too large to keep or gone: it is computed again next time
        out.append(
            render.fetch_line(
                seq,
                items,
                uid=m.uid,
                flag_names=_flag_names(m, recent),
                size=m.size,
                when=m.internal_date,
                data=data,
                known=known,
                modseq=m.modseq,
                root=root,
            )
        )
    return b"".join(out)


Session.HANDLERS = {
    "CAPABILITY": (Session.do_capability, _ANY),
    "NOOP": (Session.do_noop, _ANY),
    "LOGOUT": (Session.do_logout, _ANY),
    "ID": (Session.do_id, _ANY),
    "STARTTLS": (Session.do_starttls, frozenset({NOT_AUTH})),
    "LOGIN": (Session.do_login, frozenset({NOT_AUTH})),
    "AUTHENTICATE": (Session.do_authenticate, frozenset({NOT_AUTH})),
    "ENABLE": (Session.do_enable, _AUTHED),
    "SELECT": (Session.do_select, _AUTHED),
    "EXAMINE": (Session.do_examine, _AUTHED),
    "CREATE": (Session.do_create, _AUTHED),
    "DELETE": (Session.do_delete, _AUTHED),
    "RENAME": (Session.do_rename, _AUTHED),
    "SUBSCRIBE": (Session.do_subscribe, _AUTHED),
    "UNSUBSCRIBE": (Session.do_unsubscribe, _AUTHED),
    "LIST": (Session.do_list, _AUTHED),
    "LSUB": (Session.do_lsub, _AUTHED),
    "NAMESPACE": (Session.do_namespace, _AUTHED),
    "STATUS": (Session.do_status, _AUTHED),
    "APPEND": (Session.do_append, _AUTHED),
    "GETQUOTAROOT": (Session.do_getquotaroot, _AUTHED),
    "GETQUOTA": (Session.do_getquota, _AUTHED),
    "SETQUOTA": (Session.do_setquota, _AUTHED),
    "IDLE": (Session.do_idle, _AUTHED),
    "CHECK": (Session.do_check, _SELECTED),
    "CLOSE": (Session.do_close, _SELECTED),
    "UNSELECT": (Session.do_unselect, _SELECTED),
    "COMPRESS": (Session.do_compress, frozenset({AUTH, SELECTED})),
    "EXPUNGE": (Session.do_expunge, _SELECTED),
    "SEARCH": (Session.do_search, _SELECTED),
    "SORT": (results.do_sort, _SELECTED),
    "THREAD": (results.do_thread, _SELECTED),
    "FETCH": (Session.do_fetch, _SELECTED),
    "STORE": (Session.do_store, _SELECTED),
    "COPY": (Session.do_copy, _SELECTED),
    "MOVE": (Session.do_move, _SELECTED),
}
