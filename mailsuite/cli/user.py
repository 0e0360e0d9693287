"""`mailsuite user …`: add, invite, list, change and remove mail accounts.

The account operations are the directory's and `mailsuite.accounts`' (temporary passwords,
invitations), the same the web site uses; this module only reads options and prints.
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
from mailsuite.directory import DirectoryError
from mailsuite.passwords import hash_password_sync


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


@user.command("add")
@click.argument("address")
@click.option("--name", default="", help="Display name.")
@click.option("--contact", help="Contact e-mail outside this server (resets, codes, invites).")
@click.option("--legacy-login", help="Old login accepted during the migration window.")
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
        )
    except DirectoryError as exc:
        fail(str(exc))
    click.echo(f"created {account.address}")
    if shown is None:
        return
    expiry = f"it expires {when(shown.expires)}; the user changes it at the web site first"
    if account.contact:
        letter = accounts.temporary_letter(
            settings, account.address, account.contact, shown, lang=account.language
        )
        problem = Mail(settings, directory).send(letter)
        if problem is None:
            click.echo(f"login and temporary password e-mailed to {account.contact}")
            click.echo(expiry)
            return
        click.echo(f"warning: could not e-mail {account.contact}: {problem}", err=True)
    click.echo(f"temporary password (shown once): {shown.password}")
    click.echo(expiry)


@user.command("invite")
@click.argument("address")
@click.option("--contact", required=True, help="Where the activation link is sent.")
@click.option("--name", default="", help="Display name.")
@click.option("--legacy-login", help="Old login accepted during the migration window.")
@config_option
def user_invite(
    address: str, contact: str, name: str, legacy_login: str | None, config: Path | None
) -> None:
    """Create ADDRESS without a password and e-mail CONTACT a link that sets the first one.

    The link works once, for accounts.activation_link_lifetime; inviting an existing account
    that has no password yet sends a fresh link (the old one stops working).
    """
    settings = load_settings(config)
    directory = open_directory(settings)
    try:
        invitation = accounts.invite(
            directory, settings, address, contact=contact, name=name, legacy_login=legacy_login
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
@click.option("--temporary", is_flag=True, help="Generate a temporary password, print it once.")
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
        click.echo(f"temporary password (shown once): {shown.password}")


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
        pw = "temporary" if a.must_change else "set" if a.password_hash else "none"
        click.echo(
            f"{a.address:<{width}}  {a.state:<8}  {pw:<9}  {when(a.last_login):<16}  {a.name}"
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
    rows = [
        ("address", a.address),
        ("name", a.name or "-"),
        ("contact", a.contact or "-"),
        ("state", a.state),
        ("password", "temporary (must change)" if a.must_change else "set"),
        ("temporary expires", when(a.temp_expires)),
        ("legacy login", a.legacy_login or "-"),
        ("aliases", ", ".join(aliases) or "-"),
        ("created", when(a.created)),
        ("password changed", when(a.password_changed)),
        ("last login", when(a.last_login)),
        ("maildir", str(settings.paths.maildirs / a.domain / a.local)),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':<19}{value}")


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
