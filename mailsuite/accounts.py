"""Account operations that the admin CLI and the haslo web site share, so both do them alike:
temporary passwords (a new account's, an admin's `user passwd --temporary`, a forgotten
password's reset on the web site), invitations and the activation links that the web site's
activation page then accepts, and the e-mails that carry them.

These functions change the directory (which writes the audit log) and return the e-mail as
a `Letter`; they never send it, because the two callers send differently: the web site on
its running loop (`smtp.outgoing.send_system_mail`), the CLI without any server
(`smtp.outgoing.SystemMailer`). So this module starts nothing, never touches Maildirs, and
secrets (temporary passwords, link secrets) exist only in what it returns.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from mailsuite import mails
from mailsuite.config import Settings
from mailsuite.directory import Account, Directory, DirectoryError
from mailsuite.passwords import generate_temporary

ACTIVATION = "activation"  # the token kind of an invitation's link (seed 002)


class HasPassword(DirectoryError):
    """An invitation was asked for an account that already has a password."""


@dataclass(frozen=True)
class Letter:
    """An e-mail from the suite, ready for the outbound path."""

    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class Temporary:
    """A temporary password as the user will type it, and when it stops working."""

    password: str
    expires: float


@dataclass(frozen=True)
class Invitation:
    account: Account
    letter: Letter  # the activation link, to the account's contact address
    expires: float  # when the link stops working


def new_temporary(settings: Settings, now: float) -> Temporary:
    """A fresh temporary password valid for `accounts.temporary_password_lifetime`.

    The caller stores it hashed (bcrypt for an account's password, a token digest for a
    reset) and hands the plain text to the user once.
    """
    return Temporary(generate_temporary(), now + settings.accounts.temporary_password_lifetime)


def temporary_letter(
    settings: Settings,
    address: str,
    contact: str,
    temporary: Temporary,
    *,
    reset: bool = False,
    lang: str | None = None,
    login: str | None = None,
) -> Letter:
    """The login and the temporary password for `address`, to its contact address (seeds 003,
    004), in the account's language `lang` (None: the site's); `reset` makes it the
    forgotten-password mail, which says the current password still works. `login` is the
    account's permanent login name, when it has one (`login_of`)."""
    subject, body = mails.temporary_password(
        settings,
        address,
        temporary.password,
        temporary.expires,
        reset=reset,
        lang=lang,
        login=login,
    )
    return Letter(contact, subject, body)


def login_of(directory: Directory, account: Account) -> str | None:
    """The login name the account's mails give (its oldest permanent one), or None when the
    address is the login."""
    names = directory.login_names(account.address)
    return names[0] if names else None


def invite(
    directory: Directory,
    settings: Settings,
    address: str,
    *,
    contact: str,
    name: str = "",
    legacy_login: str | None = None,
    login_names: Sequence[str] = (),
) -> Invitation:
    """Create `address` without a password, or re-point one that still has none at
    `contact`, and make its activation link: it works once, for
    `accounts.activation_link_lifetime`, and any older link of the account stops working.

    A new account gets `login_names` and, with `accounts.login_digits`, a generated
    numeric login, which the mail after activation tells the user (seed 002).

    Raises HasPassword for an account that has a password, DirectoryError for an address
    outside our domains. The account exists and the link is live when this returns; the
    caller sends the returned letter.
    """
    address = directory.check_address(address)
    account = directory.get_account(address)
    if account is None:
        account = directory.add_account(
            address,
            password_hash=None,
            name=name,
            contact=contact,
            legacy_login=legacy_login,
            login_names=login_names,
            login_digits=settings.accounts.login_digits,
        )
    elif account.password_hash:
        raise HasPassword(f"account {address!r} already has a password")
    else:
        account = directory.update_account(address, contact=contact)
    assert account.contact is not None
    lifetime = settings.accounts.activation_link_lifetime
    secret = secrets.token_urlsafe(32)
    token = directory.create_token(ACTIVATION, account.address, secret, lifetime)
    directory.audit("account.invite", account.address, f"link sent to {account.contact}")
    subject, body = mails.activation_link(
        settings, account.address, secret, round(lifetime / 3600), lang=account.language
    )
    return Invitation(account, Letter(account.contact, subject, body), token.expires)
