"""One login path for SMTP AUTH, IMAP, POP3 and the web site.

Every protocol calls `Authenticator.authenticate` and turns the `AuthResult` into its own
reply, so throttling, legacy logins, temporary passwords and auditing behave the same
everywhere. What a client is told never reveals whether an account exists unless the password
was right: unknown login and wrong password give the same answer, and a disabled account or
an expired legacy login is only named after the password proved who is asking.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from mailsuite.config import Settings
from mailsuite.directory import Account, Directory
from mailsuite.events import Events
from mailsuite.passwords import Hasher
from mailsuite.urls import CHANGE_PASSWORD_PATH, RESET_PATH, page

log = logging.getLogger("mailsuite.auth")

RESET_TOKEN = "reset"  # the directory token kind of a forgotten-password temporary password


class AuthCode(enum.Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad-credentials"
    DISABLED = "disabled"
    MUST_CHANGE = "must-change"
    TEMP_EXPIRED = "temporary-expired"
    THROTTLED = "throttled"
    LEGACY_EXPIRED = "legacy-expired"


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


class Authenticator:
    """Checks logins against the directory with bcrypt off the loop and shared throttling."""

    def __init__(
        self, settings: Settings, directory: Directory, hasher: Hasher, events: Events | None = None
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.hasher = hasher
        self.events = events or Events()

    @property
    def change_url(self) -> str:
        return page(self.settings, CHANGE_PASSWORD_PATH)

    def _today(self) -> date:
        return datetime.fromtimestamp(self.directory.clock()).date()

    def legacy_allowed(self) -> bool:
        """Legacy logins work inside the migration window (open-ended where a date is unset)."""
        mig = self.settings.migration
        today = self._today()
        if mig.window_start and today < mig.window_start:
            return False
        return not (mig.cutoff and today >= mig.cutoff)

    def throttled(self, keys: list[str]) -> bool:
        limits = self.settings.throttle
        now = self.directory.clock()
        for key in keys:
            limit = (
                limits.max_failures_per_ip
                if key.startswith("ip:")
                else limits.max_failures_per_account
            )
            count, last = self.directory.failures_since(key, now - limits.window)
            if count >= limit and last is not None and now - last < limits.lockout:
                return True
        return False

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
        result = await self._decide(login, password, protocol, remote_ip, allow_temporary)
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
        """Decide whether `login` may proceed with `password`.

        `allow_temporary` is for the page that changes a temporary password: there, a valid
        temporary password is exactly what is expected.
        """
        login = login.strip()
        account = self.directory.resolve_login(login)
        account_key = f"acct:{account.address if account else login.lower()}"
        keys = [account_key] + ([f"ip:{remote_ip}"] if remote_ip else [])
        if self.throttled(keys):
            log.warning("%s login throttled for %r from %s", protocol, login, remote_ip)
            return AuthResult(AuthCode.THROTTLED, "Too many failed logins; try again later.", None)
        valid = await self.hasher.verify(password, account.password_hash if account else None)
        via_reset = not valid and account is not None and self._reset_matches(account, password)
        if not (valid or via_reset) or account is None:
            self.directory.record_failure(keys)
            self.directory.audit(
                "login.fail",
                account.address if account else None,
                f"{protocol} login {login!r}",
                remote_ip,
            )
            log.info("%s login failed for %r from %s", protocol, login, remote_ip)
            return AuthResult(AuthCode.BAD_CREDENTIALS, "Invalid login or password.")
        self.directory.clear_failures([account_key])
        notices: list[str] = []
        via_legacy = "@" not in login and account.legacy_login is not None
        if via_legacy:
            if not self.legacy_allowed():
                self.directory.audit("login.legacy-refused", account.address, protocol, remote_ip)
                return AuthResult(
                    AuthCode.LEGACY_EXPIRED,
                    f"Your login has changed: sign in with your full address {account.address}.",
                    account,
                )
            notices.append(
                f"Please sign in with your full address {account.address}; "
                f"the old login {login} stops working"
                + (
                    f" on {self.settings.migration.cutoff}."
                    if self.settings.migration.cutoff
                    else " when the migration ends."
                )
            )
        if not account.active:
            return AuthResult(AuthCode.DISABLED, "This account is disabled.", account)
        if account.must_change or via_reset:
            expires = account.temp_expires
            if not via_reset and expires is not None and self.directory.clock() > expires:
                return AuthResult(
                    AuthCode.TEMP_EXPIRED,
                    "Your temporary password has expired; ask for a new one at "
                    f"{page(self.settings, RESET_PATH)}",
                    account,
                    self.change_url,
                )
            if not allow_temporary:
                return AuthResult(
                    AuthCode.MUST_CHANGE,
                    f"Change your temporary password first at {self.change_url}",
                    account,
                    self.change_url,
                    notices,
                )
        self.directory.update_account(account.address, last_login=self.directory.clock())
        log.info("%s login ok for %s from %s", protocol, account.address, remote_ip)
        return AuthResult(AuthCode.OK, "Logged in.", account, self.change_url, notices)
