"""`mailsuite user …`: add, invite, list, edit, change and remove mail accounts.

The account operations are the directory's and `mailsuite.accounts`' (temporary passwords,
invitations), the same the web site uses; this module only reads options and prints. An
admin never needs SQLite: every field of an account can be seen with `user show` and changed
with `user edit` or `user passwd`.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from mailsuite import accounts
from mailsuite.cli.common import (
    CONTEXT,
    Mail,
    config_option,
    fail,
    load_settings,
    open_directory,
    read_password,
    when,
)
from mailsuite.config import Settings
from mailsuite.config.schema import parse_size
from mailsuite.directory import Account, Directory, DirectoryError
from mailsuite.i18n import LANGUAGES
from mailsuite.passwords import hash_password_sync

NO_LIMIT = "none"  # `--quota none`: the account has no quota, whatever accounts.quota says
DEFAULT_QUOTA = "default"  # `--quota default`: the account follows accounts.quota
SITE_LANGUAGE = "site"  # `--language site`: the account speaks the site's language


@click.group(context_settings=CONTEXT)
def user() -> None:
    """Add, list, change and remove mail accounts."""


def _password_args(
    settings: Settings, address: str, stdin: bool, temporary: bool
) -> tuple[accounts.Temporary | None, str]:
    """The temporary password to hand over (None for one read from stdin) and the hash."""
    if stdin == temporary:
        fail("give exactly one of --password-stdin or --temporary")
    rounds = settings.accounts.bcrypt_rounds
    if temporary:
        shown = accounts.new_temporary(settings, time.time())
        return shown, hash_password_sync(shown.password, rounds)
    return None, hash_password_sync(read_password(settings, [address]), rounds)


def _quota(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    """`--quota 2G` as bytes, `none` as no limit (NO_LIMIT), `default` as the configured
    default (DEFAULT_QUOTA), absent as None."""
    if value is None:
        return None
    if value.strip().lower() in (NO_LIMIT, DEFAULT_QUOTA):
        return value.strip().lower()
    try:
        return parse_size(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: expected a size such as 500M or 2G, none or default"
        ) from None


def _quota_text(settings: Settings, quota: int | None) -> str:
    """An account's quota for `user show`: its own, or the default with where it comes from."""
    if quota is not None or not settings.accounts.quota:
        return _size_text(quota or None)
    return f"{_size_text(settings.accounts.quota)} (accounts.quota)"


def _size_text(size: int | None) -> str:
    """A quota as an admin writes it: `2G`, `500M`, `12345 bytes`; `none` for no limit."""
    if not size:
        return NO_LIMIT
    for unit, factor in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"


def _hand_over(
    settings: Settings, directory: Directory, account: Account, shown: accounts.Temporary
) -> None:
    """Give the admin's new temporary password to its user: e-mailed with the login to the
    contact address when there is one (seeds 003, 004), else printed once."""
    expiry = f"it expires {when(shown.expires)}; the user changes it at the web site first"
    if account.contact:
        letter = accounts.temporary_letter(
            settings,
            account.address,
            account.contact,
            shown,
            lang=account.language,
            login=accounts.login_of(directory, account),
        )
        problem = Mail(settings, directory).send(letter)
        if problem is None:
            click.echo(f"login and temporary password e-mailed to {account.contact}")
            click.echo(expiry)
            return
        click.echo(f"warning: could not e-mail {account.contact}: {problem}", err=True)
    click.echo(f"temporary password (shown once): {shown.password}")
    click.echo(expiry)


@user.command("add")
@click.argument("address")
@click.option("--name", default="", help="Display name.")
@click.option("--contact", help="Contact e-mail outside this server (resets, codes, invites).")
@click.option("--legacy-login", help="Old login accepted during the migration window.")
@click.option(
    "--login",
    "logins",
    multiple=True,
    metavar="NAME",
    help="A permanent login name beside the address (e.g. a customer number); repeatable. "
    "With accounts.login_digits set, one is also generated.",
)
@click.option(
    "--quota",
    callback=_quota,
    metavar="SIZE",
    help="Most mail the account may hold (e.g. 2G); none: no limit; default: accounts.quota.",
)
@click.option("--password-stdin", "stdin", is_flag=True, help="Read the password from stdin.")
@click.option(
    "--temporary",
    is_flag=True,
    help="Generate a temporary password, print it once; the user "
    "must change it on the web site before any protocol login.",
)
@config_option
def user_add(
    address: str,
    name: str,
    contact: str | None,
    legacy_login: str | None,
    logins: tuple[str, ...],
    quota: int | str | None,
    stdin: bool,
    temporary: bool,
    config: Path | None,
) -> None:
    """Create the account ADDRESS (its Maildir is created on first delivery or login)."""
    settings = load_settings(config)
    directory = open_directory(settings)
    try:
        address = directory.check_address(address)
        if directory.get_account(address):
            fail(f"account {address!r} already exists")
        shown, password_hash = _password_args(settings, address, stdin, temporary)
        account = directory.add_account(
            address,
            password_hash=password_hash,
            name=name,
            contact=contact,
            temporary=temporary,
            temp_expires=shown.expires if shown else None,
            legacy_login=legacy_login,
            login_names=logins,
            login_digits=settings.accounts.login_digits,
            quota=quota if isinstance(quota, int) else (0 if quota == NO_LIMIT else None),
        )
        names = directory.login_names(account.address)
    except DirectoryError as exc:
        fail(str(exc))
    click.echo(f"created {account.address}")
    if names:
        click.echo(f"login names: {', '.join(names)}")
    if shown is not None:
        _hand_over(settings, directory, account, shown)


@user.command("invite")
@click.argument("address")
@click.option("--contact", required=True, help="Where the activation link is sent.")
@click.option("--name", default="", help="Display name.")
@click.option("--legacy-login", help="Old login accepted during the migration window.")
@click.option(
    "--login", "logins", multiple=True, metavar="NAME", help="A permanent login name; repeatable."
)
@config_option
def user_invite(
    address: str,
    contact: str,
    name: str,
    legacy_login: str | None,
    logins: tuple[str, ...],
    config: Path | None,
) -> None:
    """Create ADDRESS without a password and e-mail CONTACT a link that sets the first one.

    The link works once, for accounts.activation_link_lifetime; inviting an existing account
    that has no password yet sends a fresh link (the old one stops working). Once the user
    has set the password, the login is e-mailed (seed 002: with accounts.login_digits, a
    generated number).
    """
    settings = load_settings(config)
    directory = open_directory(settings)
    try:
        invitation = accounts.invite(
            directory,
            settings,
            address,
            contact=contact,
            name=name,
            legacy_login=legacy_login,
            login_names=logins,
        )
    except accounts.HasPassword as exc:
        fail(f"{exc}; use `user passwd`")
    except DirectoryError as exc:
        fail(str(exc))
    to = invitation.letter.to
    problem = Mail(settings, directory).send(invitation.letter)
    if problem is not None:
        fail(f"could not e-mail {to}: {problem}")
    click.echo(f"invited {invitation.account.address}: activation link e-mailed to {to}")
    click.echo(f"the link works once, until {when(invitation.expires)}")


@user.command("passwd")
@click.argument("address")
@click.option("--password-stdin", "stdin", is_flag=True, help="Read the password from stdin.")
@click.option(
    "--temporary",
    is_flag=True,
    help="Generate a temporary password and e-mail it to the contact address (printed once "
    "when there is none); the user changes it on the web site first.",
)
@config_option
def user_passwd(address: str, stdin: bool, temporary: bool, config: Path | None) -> None:
    """Set a new password for ADDRESS."""
    settings = load_settings(config)
    directory = open_directory(settings)
    try:
        account = directory.require_account(address)
        shown, password_hash = _password_args(settings, account.address, stdin, temporary)
        directory.set_password(
            account.address,
            password_hash,
            temporary=temporary,
            temp_expires=shown.expires if shown else None,
        )
    except DirectoryError as exc:
        fail(str(exc))
    click.echo(f"password changed for {account.address}")
    if shown:
        _hand_over(settings, directory, account, shown)


@user.command("list")
@click.option("--domain", help="Only this domain.")
@config_option
def user_list(domain: str | None, config: Path | None) -> None:
    """List accounts with their state."""
    directory = open_directory(load_settings(config))
    found = directory.list_accounts(domain)
    if not found:
        click.echo("no accounts")
        return
    width = max(len(a.address) for a in found)
    click.echo(f"{'ADDRESS':<{width}}  STATE     PASSWORD   LAST LOGIN        NAME")
    for a in found:
        click.echo(
            f"{a.address:<{width}}  {a.state:<8}  {a.password_state:<9}  "
            f"{when(a.last_login):<16}  {a.name}"
        )


@user.command("show")
@click.argument("address")
@config_option
def user_show(address: str, config: Path | None) -> None:
    """Show one account in full (never its password)."""
    settings = load_settings(config)
    directory = open_directory(settings)
    try:
        a = directory.require_account(address)
    except DirectoryError as exc:
        fail(str(exc))
    aliases = directory.addresses_of(a)[1:]
    password = {
        "temporary": "temporary (must change)",
        "set": "set",
        "none": "none (invited, link not used yet)",
    }[a.password_state]
    rows = [
        ("address", a.address),
        ("name", a.name or "-"),
        ("contact", a.contact or "-"),
        ("language", a.language or f"{settings.site.language} (the site's)"),
        ("state", a.state),
        ("password", password),
        ("temporary expires", when(a.temp_expires)),
        ("login names", ", ".join(directory.login_names(a.address)) or "-"),
        ("legacy login", a.legacy_login or "-"),
        ("aliases", ", ".join(aliases) or "-"),
        ("quota", _quota_text(settings, a.quota)),
        ("created", when(a.created)),
        ("password changed", when(a.password_changed)),
        ("last login", when(a.last_login)),
        ("maildir", str(settings.paths.maildirs / a.domain / a.local)),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':<19}{value}")


@user.command("edit")
@click.argument("address")
@click.option("--name", help="Display name ('' to clear).")
@click.option("--contact", help="Contact e-mail outside this server ('' to clear).")
@click.option(
    "--language",
    type=click.Choice([*LANGUAGES, SITE_LANGUAGE]),
    help="Language of the account's e-mails and mail-client notices; site: the site's.",
)
@click.option("--add-login", "add_logins", multiple=True, metavar="NAME", help="Add a login name.")
@click.option(
    "--remove-login", "remove_logins", multiple=True, metavar="NAME", help="Remove a login name."
)
@click.option(
    "--generate-login",
    is_flag=True,
    help="Add a generated numeric login (accounts.login_digits digits, else 6).",
)
@click.option("--legacy-login", help="Old login for the migration window ('' to remove).")
@click.option(
    "--quota",
    callback=_quota,
    metavar="SIZE",
    help="Most mail the account may hold (e.g. 2G); none: no limit; default: accounts.quota.",
)
@config_option
def user_edit(
    address: str,
    name: str | None,
    contact: str | None,
    language: str | None,
    add_logins: tuple[str, ...],
    remove_logins: tuple[str, ...],
    generate_login: bool,
    legacy_login: str | None,
    quota: int | str | None,
    config: Path | None,
) -> None:
    """Change ADDRESS's name, contact, language, login names or quota; what is not given
    stays as it is. `user show` shows the result."""
    settings = load_settings(config)
    directory = open_directory(settings)
    fields: dict[str, object] = {}
    if name is not None:
        fields["name"] = name.strip()
    if contact is not None:
        fields["contact"] = contact.strip() or None
    if language is not None:
        fields["language"] = None if language == SITE_LANGUAGE else language
    if legacy_login is not None:
        fields["legacy_login"] = legacy_login.strip() or None
    if quota is not None:
        fields["quota"] = {NO_LIMIT: 0, DEFAULT_QUOTA: None}.get(quota, quota)  # type: ignore[arg-type]
    if not (fields or add_logins or remove_logins or generate_login):
        fail("nothing to change: give at least one option (see --help)")
    try:
        account, generated = directory.edit_account(
            address,
            fields,
            add_logins=add_logins,
            remove_logins=remove_logins,
            generate_digits=(settings.accounts.login_digits or 6) if generate_login else 0,
        )
    except DirectoryError as exc:
        fail(str(exc))
    click.echo(f"changed {account.address}")
    for login in generated:
        click.echo(f"login name {login} added")


def _set_state(config: Path | None, address: str, state: str, done: str) -> None:
    directory = open_directory(load_settings(config))
    try:
        directory.set_state(address, state)
    except DirectoryError as exc:
        fail(str(exc))
    click.echo(f"{done} {address.lower()}")


@user.command("disable")
@click.argument("address")
@config_option
def user_disable(address: str, config: Path | None) -> None:
    """Refuse every login for ADDRESS (mail is still received)."""
    _set_state(config, address, "disabled", "disabled")


@user.command("enable")
@click.argument("address")
@config_option
def user_enable(address: str, config: Path | None) -> None:
    """Allow logins for ADDRESS again."""
    _set_state(config, address, "active", "enabled")


@user.command("del")
@click.argument("address")
@click.option("--purge", is_flag=True, help="Also delete the account's Maildir and all its mail.")
@config_option
def user_del(address: str, purge: bool, config: Path | None) -> None:
    """Delete ADDRESS and its aliases; its mail stays on disk unless --purge."""
    settings = load_settings(config)
    directory = open_directory(settings)
    try:
        account = directory.delete_account(address)
    except DirectoryError as exc:
        fail(str(exc))
    if purge:
        from mailsuite.store import Store

        Store(settings.paths.maildirs).purge(account.address)
        click.echo(f"deleted {account.address} and its mail")
    else:
        kept = settings.paths.maildirs / account.domain / account.local
        click.echo(f"deleted {account.address}; its mail is kept in {kept}")
