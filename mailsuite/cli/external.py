"""`mailsuite external …`: users' external POP3/IMAP accounts, the same operations as the
account page's wizard (`mailsuite.fetcher.accounts`): adding and changing test the connection
first, removing never touches the remote server.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailsuite.cli.common import (
    CONTEXT,
    config_option,
    fail,
    load_settings,
    open_directory,
    option_group,
    stdin_line,
    when,
)
from mailsuite.config import Settings
from mailsuite.directory import DirectoryError

if TYPE_CHECKING:
    from mailsuite.directory.external import ExternalAccount
    from mailsuite.fetcher.engine import Fetcher


@click.group(context_settings=CONTEXT)
def external() -> None:
    """Users' external POP3/IMAP accounts, copied into their mailboxes (read-only remotely)."""


def _fetcher(settings: Settings) -> Fetcher:
    from mailsuite.fetcher.engine import Fetcher
    from mailsuite.store import Store

    return Fetcher(open_directory(settings), Store(settings.paths.maildirs), settings)


def _external_account(fetcher: Fetcher, user_address: str, label: str) -> ExternalAccount:
    from mailsuite.directory import external as ext_db

    try:
        return ext_db.get_external(fetcher.directory, user_address, label)
    except DirectoryError as exc:
        fail(str(exc))


def _remote_password(stdin: bool) -> str:
    if stdin:
        return stdin_line()
    password: str = click.prompt("Password of the external account", hide_input=True)
    return password


_server_options = option_group(
    click.option("--protocol", type=click.Choice(["imap", "pop3"]), help="IMAP or POP3."),
    click.option("--host", help="Server (default: the provider's, from the address)."),
    click.option("--port", type=int, help="Port (default: 993 IMAP, 995 POP3 with TLS)."),
    click.option(
        "--security",
        type=click.Choice(["tls", "starttls", "plain"]),
        help="tls: implicit TLS; starttls: STARTTLS/STLS; plain: none.",
    ),
    click.option(
        "--accept-self-signed/--verify-certificate",
        "accept_self_signed",
        default=None,
        help="Accept a certificate nobody vouches for (off by default).",
    ),
)


@contextmanager
def _saving() -> Iterator[None]:
    """A refused save ends the command with one line: the remote server's answer when the
    connection test failed, else the directory's reason."""
    from mailsuite.remote import RemoteError

    try:
        yield
    except RemoteError as exc:
        fail(f"not saved: {exc}")
    except DirectoryError as exc:
        fail(str(exc))


def _server(account: ExternalAccount) -> str:
    return f"{account.protocol} {account.host}:{account.port} {account.security}"


def _print_external(info: dict[str, Any]) -> None:
    rows = [
        ("label (Dostawca)", info["label"]),
        ("user", info["owner"]),
        ("display name", info["display_name"] or "-"),
        ("address", info["email"]),
        ("login", info["login"]),
        ("server", f"{info['protocol']} {info['host']}:{info['port']} ({info['security']})"),
        ("certificate", "self-signed accepted" if info["accept_self_signed"] else "verified"),
        ("messages", str(info["messages"])),
        ("last success", when(info["last_success"])),
        (
            "last error",
            f"{when(info['last_error_at'])} {info['last_error']}".strip()
            if info["last_error"]
            else "-",
        ),
        ("next fetch", when(info["next_attempt"]) if info["next_attempt"] else "now"),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':18} {value}")


@external.command("add")
@click.argument("address")
@click.option("--label", required=True, help="Dostawca: names the account and its folder.")
@click.option("--name", "display_name", default="", help="Twoja nazwa: display name for From.")
@click.option("--email", required=True, help="The external e-mail address.")
@click.option("--login", default="", help="Login at the provider (default: the address).")
@_server_options
@click.option("--password-stdin", "stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--no-test", is_flag=True, help="Save without testing the connection.")
@config_option
def external_add(
    address: str,
    label: str,
    display_name: str,
    email: str,
    login: str,
    protocol: str | None,
    host: str | None,
    port: int | None,
    security: str | None,
    accept_self_signed: bool | None,
    stdin: bool,
    no_test: bool,
    config: Path | None,
) -> None:
    """Add an external account for the user ADDRESS; the connection is tested first."""
    from mailsuite.fetcher import accounts

    settings = load_settings(config)
    fetcher = _fetcher(settings)
    server = accounts.chosen_server(
        accounts.suggested(email, protocol or "imap", label),
        host=host,
        port=port,
        security=security,
        accept_self_signed=bool(accept_self_signed),
    )
    password = _remote_password(stdin)
    with _saving():
        created = accounts.create(
            fetcher,
            address,
            label=label,
            display_name=display_name,
            email=email,
            password=password,
            server=server,
            login=login,
            test=not no_test,
        )
    click.echo(f"added {created.label} ({created.email}) for {created.owner}: {_server(created)}")


@external.command("edit")
@click.argument("address")
@click.argument("label")
@click.option("--label", "new_label", help="New label (the local folder is renamed).")
@click.option("--name", "display_name", help="New display name.")
@click.option("--email", help="New external address.")
@click.option("--login", help="New login.")
@_server_options
@click.option("--password-stdin", "stdin", is_flag=True, help="Read a new password from stdin.")
@click.option("--no-test", is_flag=True, help="Save without testing the connection.")
@config_option
def external_edit(
    address: str,
    label: str,
    new_label: str | None,
    display_name: str | None,
    email: str | None,
    login: str | None,
    protocol: str | None,
    host: str | None,
    port: int | None,
    security: str | None,
    accept_self_signed: bool | None,
    stdin: bool,
    no_test: bool,
    config: Path | None,
) -> None:
    """Change the external account LABEL of ADDRESS, its protocol included."""
    from mailsuite.fetcher import accounts, providers

    fetcher = _fetcher(load_settings(config))
    account = _external_account(fetcher, address, label)
    fields: dict[str, Any] = {
        k: v
        for k, v in {
            "label": new_label,
            "display_name": display_name,
            "email": email,
            "login": login,
            "protocol": protocol,
            "host": host,
            "port": port,
            "security": security,
            "accept_self_signed": accept_self_signed,
        }.items()
        if v is not None
    }
    if protocol and protocol != account.protocol:
        # The web wizard's rule: the provider's other preset, or the same host of one's own.
        current = accounts.ServerSettings(
            account.protocol,
            host or account.host,
            account.port,
            security or account.security,
            account.accept_self_signed,
        )
        moved = accounts.switched(
            current, protocol, email=email or account.email, label=new_label or account.label
        )
        fields.setdefault("host", moved.host)
        fields.setdefault("security", moved.security)
        if port is None and fields["security"] == moved.security:
            fields["port"] = moved.port
    if ("protocol" in fields or "security" in fields) and "port" not in fields:
        fields["port"] = providers.DEFAULT_PORTS[
            (fields.get("protocol", account.protocol), fields.get("security", account.security))
        ]
    password = _remote_password(True) if stdin else None
    with _saving():
        updated = accounts.edit(fetcher, account, password=password, test=not no_test, **fields)
    click.echo(f"changed {updated.label} of {updated.owner}: {_server(updated)}")


@external.command("list")
@click.argument("address", required=False)
@config_option
def external_list(address: str | None, config: Path | None) -> None:
    """List external accounts (of ADDRESS, or everyone's)."""
    from mailsuite.directory import external as ext_db

    directory = open_directory(load_settings(config))
    found = ext_db.list_external(directory, address)
    if not found:
        click.echo("no external accounts")
    for a in found:
        count = ext_db.copied_count(directory, a.id)
        error = f"  error: {a.last_error}" if a.last_error else ""
        click.echo(
            f"{a.owner}  {a.label}  {a.email}  {a.protocol} {a.host}:{a.port}  "
            f"{count} messages  last success {when(a.last_success)}{error}"
        )


@external.command("show")
@click.argument("address")
@click.argument("label")
@config_option
def external_show(address: str, label: str, config: Path | None) -> None:
    """Settings and fetch state of one external account."""
    from mailsuite.fetcher import accounts

    fetcher = _fetcher(load_settings(config))
    _print_external(
        accounts.describe(fetcher.directory, _external_account(fetcher, address, label))
    )


@external.command("test")
@click.argument("address")
@click.argument("label")
@config_option
def external_test(address: str, label: str, config: Path | None) -> None:
    """Connect and log in with the stored settings; say why it fails."""
    from mailsuite.remote import RemoteError
    from mailsuite.secrets import SecretError

    fetcher = _fetcher(load_settings(config))
    account = _external_account(fetcher, address, label)
    try:
        count = fetcher.test(fetcher.client_for(account))
    except (RemoteError, SecretError) as exc:
        fail(f"{account.label}: {exc}")
    click.echo(f"{account.label}: connection and login work; {count} messages in the inbox")


@external.command("fetch")
@click.argument("address")
@click.argument("label", required=False)
@config_option
def external_fetch(address: str, label: str | None, config: Path | None) -> None:
    """Fetch now: the account LABEL of ADDRESS, or all of its accounts."""
    from mailsuite.directory import external as ext_db

    fetcher = _fetcher(load_settings(config))
    if label:
        targets = [_external_account(fetcher, address, label)]
    else:
        fetcher.directory.require_account(address)
        targets = ext_db.list_external(fetcher.directory, address)
    failed = False
    for account in targets:
        result = fetcher.fetch(account)
        line = f"{account.label}: {result.copied} new"
        if result.skipped:
            line += f", {result.skipped} skipped (over the size limit)"
        if result.error:
            failed = True
            line += f"; error: {result.error}"
        click.echo(line)
    if failed:
        sys.exit(1)


@external.command("del")
@click.argument("address")
@click.argument("label")
@click.option(
    "--delete-folder",
    is_flag=True,
    help="Also delete the local folder and the mail copied into it (kept by default).",
)
@config_option
def external_del(address: str, label: str, delete_folder: bool, config: Path | None) -> None:
    """Remove an external account; nothing is deleted on the remote server."""
    from mailsuite.fetcher import accounts

    fetcher = _fetcher(load_settings(config))
    account = _external_account(fetcher, address, label)
    accounts.remove(fetcher, account, delete_folder=delete_folder)
    kept = "its local folder was deleted" if delete_folder else f"folder {account.label!r} kept"
    click.echo(f"deleted {account.label} of {account.owner}; {kept}")


@external.command("rotate-key")
@config_option
def external_rotate_key(config: Path | None) -> None:
    """Encrypt every stored external password with a new key; the old key is dropped."""
    from mailsuite.fetcher import accounts

    settings = load_settings(config)
    count = accounts.rotate_key(open_directory(settings), settings)
    click.echo(f"new key in {settings.paths.secret_key}; {count} passwords re-encrypted")
