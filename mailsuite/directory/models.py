"""What the directory hands out: plain frozen records, never live database rows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailsuite.config.schema import is_mail_domain
from mailsuite.i18n import N_

# Deliberately narrower than RFC 5321's local part: these names become Maildir folder names
# and logins typed on phones, so quoted strings and exotic characters are refused up front.
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+=?^_`{|}~-]+)*$")


class DirectoryError(Exception):
    """A request the directory refuses; the message is fit to show an admin or user.

    `key` and `values`, when given, name the refusal for the catalogues (mailsuite.i18n), so
    the web site says it in the user's language; the message is the admin's English.
    """

    def __init__(self, message: str = "", *, key: str | None = None, **values: object) -> None:
        super().__init__(message)
        self.key = key
        self.values = values


class NoSuchAccount(DirectoryError):
    pass


class AlreadyExists(DirectoryError):
    pass


class InvalidAddress(DirectoryError):
    pass


class DirectoryUnavailable(DirectoryError):
    """The database could not be reached in time (another process holds its write lock).

    Nothing was changed; the same call may succeed a moment later, so callers answer with
    their protocol's "try again later" rather than an error.
    """


def normalize_address(address: str) -> str:
    """Lower-case and check an address; raise InvalidAddress saying what is wrong."""
    address = address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidAddress(
            f"{address!r} is not an e-mail address (expected local@domain)",
            key=N_("dir.address.invalid"),
            address=address,
        )
    if len(local) > 64 or not _LOCAL.match(local):
        raise InvalidAddress(
            f"{address!r}: the part before @ has characters not allowed here",
            key=N_("dir.address.local"),
            address=address,
        )
    if len(address) > 254 or not is_mail_domain(domain):
        raise InvalidAddress(
            f"{address!r}: {domain!r} is not a valid domain",
            key=N_("dir.address.domain"),
            address=address,
            domain=domain,
        )
    return address


@dataclass(frozen=True)
class Account:
    id: int
    address: str
    local: str
    domain: str
    name: str
    contact: str | None
    password_hash: str | None
    must_change: bool
    temp_expires: float | None
    state: str
    legacy_login: str | None
    created: float
    password_changed: float | None
    last_login: float | None
    terms_accepted: float | None
    language: str | None = None  # "pl", "en"; None: the site's language (`site.language`)
    quota: int | None = None  # octets the mailbox may hold; 0: no limit; None: accounts.quota

    @property
    def active(self) -> bool:
        return self.state == "active"

    @property
    def password_state(self) -> str:
        """What `user list` and `user show` both say of the password: "temporary" (to be
        changed on the web site before any protocol login), "set", or "none" (invited, the
        activation link not used yet)."""
        if self.password_hash is None:
            return "none"
        return "temporary" if self.must_change else "set"


# A permanent login name: digits ("482913", seed 002) or a short name; never an address.
_LOGIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_login_name(login: str) -> str:
    """A login name as stored (surrounding spaces removed); InvalidAddress saying what is
    wrong otherwise. An `@` is refused: what has one is resolved as an address or alias."""
    login = login.strip()
    if not _LOGIN_NAME.match(login):
        raise InvalidAddress(
            f"{login!r} cannot be a login name: 1 to 64 letters, digits, dots, hyphens or "
            "underscores, starting with a letter or digit"
        )
    return login


def legacy_login_used(account: Account, login: str) -> bool:
    """Whether `login` is the account's legacy login, which works only inside the migration
    window and brings the notice to use the address; a permanent login name is not one (the
    directory keeps the two kinds from ever sharing a name)."""
    legacy = account.legacy_login
    return legacy is not None and login.strip().lower() == legacy.lower()


@dataclass(frozen=True)
class Alias:
    alias: str
    target: str
    created: float


@dataclass(frozen=True)
class Token:
    id: int
    kind: str
    account_id: int
    created: float
    expires: float
    used: float | None
    attempts: int
