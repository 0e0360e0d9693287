"""`mailsuite dkim …`: signing keys for our domains' outbound mail."""

from __future__ import annotations

from pathlib import Path

import click

from mailsuite.cli.common import CONTEXT, config_option, fail, load_settings


@click.group(context_settings=CONTEXT)
def dkim() -> None:
    """DKIM keys for our domains' outbound mail."""


@dkim.command("keygen")
@click.argument("domain")
@click.option("--bits", default=2048, show_default=True, type=click.IntRange(1024, 4096))
@config_option
def dkim_keygen(domain: str, bits: int, config: Path | None) -> None:
    """Create DOMAIN's signing key and print the DNS TXT record to publish."""
    from mailsuite.smtp.signing import dns_record, generate_key

    settings = load_settings(config)
    domain = domain.lower()
    if domain not in settings.domains:
        fail(f"{domain!r} is not one of this server's domains ({', '.join(settings.domains)})")
    try:
        path = generate_key(settings.paths.dkim_keys, domain, bits=bits)
    except FileExistsError as exc:
        fail(str(exc))
    click.echo(f"created {path}; outbound mail from {domain} is signed from now on")
    click.echo("publish this DNS record:")
    click.echo(dns_record(settings.paths.dkim_keys, domain, settings.smtp.dkim_selector))
