"""The `mailsuite` command (click): serve the suite, check the config, manage accounts,
aliases, the queue, DKIM keys, external accounts, migrations and exports.

One module per command group; `common` holds what they share. Admin commands call the same
functions as the web site (the directory, `mailsuite.accounts`, `mailsuite.fetcher.accounts`)
and send their e-mails through the same delivery path, without starting a server: only
`serve` imports the server machinery.
"""

from __future__ import annotations

import click

from mailsuite.cli import alias, dkim, export, external, migrate, ops, queue, serve, user
from mailsuite.cli.common import CONTEXT


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="mailsuite")
def main() -> None:
    """mailsuite: SMTP, IMAP, POP3 and the haslo web site on one Maildir store."""


for command in (
    serve.serve,
    ops.check_config,
    ops.status,
    ops.dns,
    ops.config_example,
    user.user,
    alias.alias,
    migrate.migrate,
    export.export,
    queue.queue,
    dkim.dkim,
    external.external,
):
    main.add_command(command)

__all__ = ["main"]
