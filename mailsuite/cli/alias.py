"""`mailsuite alias …`: extra addresses that deliver to an account."""

from __future__ import annotations

from pathlib import Path

import click

from mailsuite.cli.common import CONTEXT, config_option, fail, load_settings, open_directory
from mailsuite.directory import DirectoryError


@click.group(context_settings=CONTEXT)
def alias() -> None:
    """Extra addresses that deliver to an account (and that it may send as)."""


@alias.command("add")
@click.argument("alias_address", metavar="ALIAS")
@click.argument("target")
@config_option
def alias_add(alias_address: str, target: str, config: Path | None) -> None:
    """Deliver mail for ALIAS to the account TARGET."""
    directory = open_directory(load_settings(config))
    try:
        created = directory.add_alias(alias_address, target)
    except DirectoryError as exc:
        fail(str(exc))
    click.echo(f"{created.alias} -> {created.target}")


@alias.command("del")
@click.argument("alias_address", metavar="ALIAS")
@config_option
def alias_del(alias_address: str, config: Path | None) -> None:
    """Remove ALIAS."""
    directory = open_directory(load_settings(config))
    try:
        directory.delete_alias(alias_address)
    except DirectoryError as exc:
        fail(str(exc))
    click.echo(f"deleted alias {alias_address.lower()}")


@alias.command("list")
@config_option
def alias_list(config: Path | None) -> None:
    """List aliases and their targets."""
    aliases = open_directory(load_settings(config)).list_aliases()
    if not aliases:
        click.echo("no aliases")
    for a in aliases:
        click.echo(f"{a.alias} -> {a.target}")
