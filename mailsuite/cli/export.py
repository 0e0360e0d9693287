"""`mailsuite export`: one user's mailbox as a Maildir++ another server takes over.

The writing is the store's (`mailsuite.store.export`); this module reads options and prints
what was written. Moving the other way is `mailsuite migrate import`, which keeps a Dovecot
Maildir's UIDs.
"""

from __future__ import annotations

from pathlib import Path

import click

from mailsuite.cli.common import CONTEXT, config_option, fail, load_settings
from mailsuite.directory import DirectoryError, normalize_address


@click.command("export", context_settings=CONTEXT)
@click.argument("address")
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A new (or empty) folder to write the Maildir into.",
)
@click.option(
    "--copy",
    is_flag=True,
    help="Copy the message files instead of hard-linking them (a link shares its owner and "
    "mode with our file).",
)
@config_option
def export(address: str, dest: Path, copy: bool, config: Path | None) -> None:
    """Write ADDRESS's mailbox as a Maildir++ for another server, with our UIDs.

    Dovecot reads the folders, flags, keywords and subscriptions as they are; the
    dovecot-uidlist written into each folder gives it our UIDVALIDITY and UIDs, so mail
    clients pointed at it download nothing again. Our Maildir is only read; mail delivered
    here after the export is not in it.
    """
    from mailsuite.store import Store, StoreError
    from mailsuite.store.export import export_mailbox

    settings = load_settings(config)
    try:
        address = normalize_address(address)
    except DirectoryError as exc:
        fail(str(exc))
    store = Store(settings.paths.maildirs)
    try:
        summary = export_mailbox(store, address, dest, copy=copy)
    except (StoreError, OSError) as exc:
        fail(str(exc))
    for folder in summary.folders:
        click.echo(
            f"{folder.name}: {folder.messages} messages, UIDVALIDITY {folder.uidvalidity}, "
            f"UIDNEXT {folder.uidnext}"
        )
    click.echo(
        f"exported {address} to {dest} ({summary.linked} files linked, {summary.copied} copied)"
    )
