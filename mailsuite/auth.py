"""One login path for SMTP AUTH, IMAP, POP3 and the web site.

Every protocol calls `Authenticator.authenticate` and turns the `AuthResult` into its own
reply, so throttling, legacy logins, temporary passwords and auditing behave the same
everywhere. What a client is told never reveals whether an account exists unless the password
was right: unknown login and wrong password give the same answer, cost the same bcrypt, and
a disabled account or an expired legacy login is only named after the password proved who is
asking.

Throttling, with `throttle.*` settings; a client's network is its address masked to
`ipv4_prefix` / `ipv6_prefix`:

- refused (THROTTLED) per (account, network) after `max_failures_per_account` failures and
  per network after `max_failures_per_ip`, within `window`, for `lockout`. The attempt is
  reserved in the same transaction as that check, before bcrypt, so attempts sent at once
  cannot all slip under the limit; a right password takes its reservation back.
- never refused per account alone: an attacker elsewhere cannot keep the owner out. Failures
  of an account beyond `max_failures_per_account` (from every network) only make its failed
  logins wait before their answer, `account_delay` doubling up to `account_delay_max`.
- over `global_failures_per_minute` failures across the server, every failed login waits
  `global_delay` (counted as `auth.throttle.global`). A right password never waits.

A password bcrypt accepted is remembered for `accounts.credential_cache_lifetime` as a keyed
hash (`credential_cache`), so webmail and phones logging in again and again pay for bcrypt
once; the throttle is still checked first and the account still read afresh on every login.

The directory is only touched from a small worker pool, never from the loop; when it cannot
answer in time (another process holds its lock) the result is UNAVAILABLE, which each
protocol answers with its "try again later".
"""

from __future__ import annotations

import asyncio
import enum
import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from mailsuite import i18n
from mailsuite.config import Settings
from mailsuite.config.schema import Throttle
from mailsuite.credential_cache import CredentialCache
from mailsuite.directory import Account, Directory, DirectoryUnavailable, legacy_login_used
from mailsuite.events import Events
from mailsuite.passwords import Hasher
from mailsuite.urls import CHANGE_PASSWORD_PATH, RESET_PATH, page

log = logging.getLogger("mailsuite.auth")

T = TypeVar("T")

RESET_TOKEN = "reset"  # the directory token kind of a forgotten-password temporary password
GLOBAL_KEY = "all"  # every failed login of the server, for the global budget
GLOBAL_WINDOW = 60.0  # the global budget is per minute


class AuthCode(enum.Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad-credentials"
    DISABLED = "disabled"
    MUST_CHANGE = "must-change"
    TEMP_EXPIRED = "temporary-expired"
    THROTTLED = "throttled"
    LEGACY_EXPIRED = "legacy-expired"
    UNAVAILABLE = "unavailable"  # the directory could not answer in time; try again shortly


@dataclass(frozen=True)
class AuthResult:
    code: AuthCode
    message: str
    account: Account | None = None
    change_url: str = ""
    notices: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code is AuthCode.OK


THROTTLED_MESSAGE = "Too many failed logins; try again later."
UNAVAILABLE_MESSAGE = "The account service is busy; try again in a moment."


def client_network(remote_ip: str | None, throttle: Throttle) -> str:
    """The network whose clients share limits: the address masked to `throttle.ipv4_prefix`
    or `ipv6_prefix` (an IPv4-mapped IPv6 address counts as IPv4). Something that is not an
    address stands for itself; no address at all is the network "unknown"."""
    if not remote_ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote_ip)
    except ValueError:
        return remote_ip[:64]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = throttle.ipv4_prefix if address.version == 4 else throttle.ipv6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def network_key(network: str) -> str:
    """Failures from one client network, whichever account they named."""
    return f"net:{network}"


def login_key(name: str, network: str) -> str:
    """Failures for one account (or unknown login) from one client network."""
    return f"login:{name} {network}"


def account_key(name: str) -> str:
    """Failures for one account (or unknown login) from every network: they slow, never refuse."""
    return f"acct:{name}"


@dataclass(frozen=True)
class _Attempt:
    """A reserved login attempt between the throttle check and the password check."""

    account: Account | None
    name: str  # the account's address, or the lowered login when it names nobody
    network: str
    rows: list[int]


@dataclass(frozen=True)
class _Outcome:
    result: AuthResult
    delay: float = 0.0  # wait this long before answering (failures only)


class Authenticator:
    """Checks logins against the directory with bcrypt off the loop and shared throttling.

    `sleep` is how a failure's answer waits (tests pass one that records); the directory is
    used from the Authenticator's own small pool so that a busy database holds no loop.
    """

    def __init__(
        self,
        settings: Settings,
        directory: Directory,
        hasher: Hasher,
        events: Events | None = None,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.hasher = hasher
        self.events = events or Events()
        self.sleep = sleep
        self.credentials = CredentialCache(clock=directory.clock)
        self._pool: ThreadPoolExecutor | None = None
        self._next_prune = 0.0

    @property
    def change_url(self) -> str:
        return page(self.settings, CHANGE_PASSWORD_PATH)

    def _say(self, account: Account | None, key: str, **values: object) -> str:
        """What a mail client is told, in the account's language once the password proved
        who is asking (before that, in the site's, so the words reveal no account), as the
        US-ASCII that IMAP, POP3 and SMTP replies carry (`i18n.ascii_text`)."""
        own = account.language if account is not None else None
        lang = i18n.language(own, self.settings.site.language)
        return i18n.ascii_text(i18n.text(lang, key, **values))

    def _legacy_notice(self, account: Account, login: str) -> str:
        """The notice that the old login `login` is going away (seed 000)."""
        cutoff = self.settings.migration.cutoff
        until = (
            self._say(account, "auth.legacy_until", date=cutoff.isoformat())
            if cutoff
            else self._say(account, "auth.legacy_until_end")
        )
        return self._say(
            account, "auth.legacy_notice", address=account.address, login=login, until=until
        )

    async def run_io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run directory work in the Authenticator's pool: two threads per bcrypt worker, so
        the hops before and after each hash never wait for each other."""
        if self._pool is None:
            workers = 2 * self.settings.accounts.auth_workers
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="auth-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    def close(self) -> None:
        """Stop the pools; called by serve once every service is closed."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.hasher.shutdown()

    def _today(self) -> date:
        return datetime.fromtimestamp(self.directory.clock()).date()

    def legacy_allowed(self) -> bool:
        """Legacy logins work inside the migration window (open-ended where a date is unset)."""
        mig = self.settings.migration
        today = self._today()
        if mig.window_start and today < mig.window_start:
            return False
        return not (mig.cutoff and today >= mig.cutoff)

    def network_refused(self, remote_ip: str | None) -> bool:
        """Whether the client's network is refused for logins right now (blocking: call it in
        a worker). The reset page refuses such a network too."""
        limits = self.settings.throttle
        now = self.directory.clock()
        key = network_key(client_network(remote_ip, limits))
        count, last = self.directory.failures_since(key, now - limits.window)
        return (
            count >= limits.max_failures_per_ip
            and last is not None
            and (now - last < limits.lockout)
        )

    def _prune(self, now: float) -> None:
        """Every `throttle.prune_interval`, delete the failures no limit looks at any more."""
        limits = self.settings.throttle
        if now < self._next_prune:
            return
        self._next_prune = now + limits.prune_interval
        self.directory.clear_failures([], older_than=now - max(limits.window, GLOBAL_WINDOW))

    def _reset_matches(self, account: Account, password: str) -> bool:
        """Whether `password` is the temporary password of a pending "forgot password" reset.

        A reset does not replace the password: the old one keeps working until the user
        changes it, so anyone who knows a login cannot lock its owner out by asking for one.
        """
        token = self.directory.latest_token(RESET_TOKEN, account.address)
        if token is None or token.used is not None or self.directory.clock() >= token.expires:
            return False
        return self.directory.token_matches(token, password)

    async def authenticate(
        self,
        login: str,
        password: str,
        *,
        protocol: str,
        remote_ip: str | None,
        allow_temporary: bool = False,
    ) -> AuthResult:
        try:
            result = await self._decide(login, password, protocol, remote_ip, allow_temporary)
        except DirectoryUnavailable:
            log.warning("%s login from %s: the directory is busy", protocol, remote_ip)
            result = AuthResult(AuthCode.UNAVAILABLE, self._say(None, "auth.unavailable"))
        self.events.inc(f"auth.login.{protocol}.{result.code.value}")
        return result

    async def _decide(
        self,
        login: str,
        password: str,
        protocol: str,
        remote_ip: str | None,
        allow_temporary: bool,
    ) -> AuthResult:
        """Decide whether `login` may proceed with `password`: reserve the attempt, hash,
        then settle it, with the directory in the pool each time.

        `allow_temporary` is for the page that changes a temporary password: there, a valid
        temporary password is exactly what is expected.
        """
        login = login.strip()
        network = client_network(remote_ip, self.settings.throttle)
        attempt = await self.run_io(self._begin, login, network)
        if attempt is None:
            log.warning("%s login throttled for %r from %s", protocol, login, remote_ip)
            return AuthResult(AuthCode.THROTTLED, self._say(None, "auth.throttled"))
        valid = await self._verify(attempt.account, password)
        outcome = await self.run_io(
            self._conclude, attempt, login, password, valid, protocol, remote_ip, allow_temporary
        )
        if outcome.delay > 0:
            await self.sleep(outcome.delay)
        return outcome.result

    async def _verify(self, account: Account | None, password: str) -> bool:
        """Whether `password` is the account's: from the credential cache when bcrypt proved
        it against the same stored hash a moment ago, else by bcrypt (counted as
        `auth.bcrypt.verify`), whose yes is then remembered. Only active accounts are cached;
        a login that names nobody still costs a bcrypt of the dummy hash."""
        stored = account.password_hash if account is not None else None
        if account is None or stored is None:
            self.events.inc("auth.bcrypt.verify")
            return await self.hasher.verify(password, stored)
        lifetime = self.settings.accounts.credential_cache_lifetime
        if not account.active:
            self.credentials.forget(account.id)
        elif lifetime > 0 and self.credentials.matches(account.id, stored, password, lifetime):
            self.events.inc("auth.credential_cache.hit")
            return True
        self.events.inc("auth.bcrypt.verify")
        valid = await self.hasher.verify(password, stored)
        if valid and account.active:
            self.credentials.remember(account.id, stored, password, lifetime)
        return valid

    def _begin(self, login: str, network: str) -> _Attempt | None:
        """Resolve the login and reserve the attempt, or None when it is refused."""
        limits = self.settings.throttle
        now = self.directory.clock()
        self._prune(now)
        account = self.directory.resolve_login(login)
        name = account.address if account else login.lower()[:254]
        rows = self.directory.reserve_attempt(
            [
                (login_key(name, network), limits.max_failures_per_account),
                (network_key(network), limits.max_failures_per_ip),
            ],
            since=now - limits.window,
            lockout=limits.lockout,
        )
        return None if rows is None else _Attempt(account, name, network, rows)

    def _failure(
        self, attempt: _Attempt, login: str, protocol: str, remote_ip: str | None
    ) -> _Outcome:
        """The password was wrong: the reservation stays as the failure; the account's and the
        server's failures decide how long the answer waits."""
        limits = self.settings.throttle
        now = self.directory.clock()
        log.info("%s login failed for %r from %s", protocol, login, remote_ip)
        result = AuthResult(AuthCode.BAD_CREDENTIALS, self._say(None, "auth.bad_credentials"))
        key = account_key(attempt.name)
        try:
            of_account, of_server = self.directory.note_failure(
                [key, GLOBAL_KEY], [(key, now - limits.window), (GLOBAL_KEY, now - GLOBAL_WINDOW)]
            )
            self.directory.audit(
                "login.fail",
                attempt.account.address if attempt.account else None,
                f"{protocol} login {login!r}",
                remote_ip,
            )
        except DirectoryUnavailable:
            log.warning("failed login for %r not fully recorded: directory busy", login)
            return _Outcome(result, limits.global_delay)
        delay = 0.0
        over = of_account - limits.max_failures_per_account
        if over > 0:
            delay = min(limits.account_delay_max, limits.account_delay * 2 ** min(over - 1, 32))
            self.events.inc("auth.throttle.account")
        if of_server > limits.global_failures_per_minute:
            delay = max(delay, limits.global_delay)
            self.events.inc("auth.throttle.global")
        return _Outcome(result, delay)

    def _conclude(
        self,
        attempt: _Attempt,
        login: str,
        password: str,
        valid: bool,
        protocol: str,
        remote_ip: str | None,
        allow_temporary: bool,
    ) -> _Outcome:
        """Everything after the hash, in the pool: the reset password, the failure or the
        release of the reservation, legacy logins, temporary passwords, the audit."""
        account = attempt.account
        via_reset = not valid and account is not None and self._reset_matches(account, password)
        if not (valid or via_reset) or account is None:
            return self._failure(attempt, login, protocol, remote_ip)
        try:
            self.directory.release_attempt(
                attempt.rows, forgive=[login_key(attempt.name, attempt.network)]
            )
        except DirectoryUnavailable:
            log.warning("login of %s: reservation kept, the directory is busy", account.address)
        return _Outcome(
            self._admit(account, login, protocol, remote_ip, allow_temporary, via_reset)
        )

    def _admit(
        self,
        account: Account,
        login: str,
        protocol: str,
        remote_ip: str | None,
        allow_temporary: bool,
        via_reset: bool,
    ) -> AuthResult:
        """The password was right: what the account's state allows."""
        notices: list[str] = []
        via_legacy = legacy_login_used(account, login)
        if via_legacy:
            if not self.legacy_allowed():
                self._audit("login.legacy-refused", account.address, protocol, remote_ip)
                return AuthResult(
                    AuthCode.LEGACY_EXPIRED,
                    self._say(account, "auth.legacy_expired", address=account.address),
                    account,
                )
            notices.append(self._legacy_notice(account, login))
        if not account.active:
            return AuthResult(AuthCode.DISABLED, self._say(account, "auth.disabled"), account)
        if account.must_change or via_reset:
            expires = account.temp_expires
            if not via_reset and expires is not None and self.directory.clock() > expires:
                return AuthResult(
                    AuthCode.TEMP_EXPIRED,
                    self._say(account, "auth.temp_expired", url=page(self.settings, RESET_PATH)),
                    account,
                    self.change_url,
                )
            if not allow_temporary:
                return AuthResult(
                    AuthCode.MUST_CHANGE,
                    self._say(account, "auth.must_change", url=self.change_url),
                    account,
                    self.change_url,
                    notices,
                )
        try:
            self.directory.update_account(account.address, last_login=self.directory.clock())
        except DirectoryUnavailable:
            log.warning("last login of %s not recorded: the directory is busy", account.address)
        log.info("%s login ok for %s from %s", protocol, account.address, remote_ip)
        return AuthResult(
            AuthCode.OK, self._say(account, "auth.ok"), account, self.change_url, notices
        )

    def _audit(self, event: str, address: str, detail: str, remote_ip: str | None) -> None:
        try:
            self.directory.audit(event, address, detail, remote_ip)
        except DirectoryUnavailable:
            log.warning("audit %s for %s not recorded: the directory is busy", event, address)
