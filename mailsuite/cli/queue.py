"""`mailsuite queue …`: the outbound spool, read and changed in place.

The running server's queue runner keeps no state beyond the spool files, so changing them
here is all it takes: it rereads them on its next scan.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from mailsuite.cli.common import CONTEXT, config_option, fail, load_settings, when
from mailsuite.config import Settings
from mailsuite.smtp.spool import Spool


@click.group(context_settings=CONTEXT)
def queue() -> None:
    """Look at and act on the outbound mail queue (the spool under paths.spool)."""


def _spool(settings: Settings) -> Spool:
    return Spool(settings.paths.spool)


def _age(ts: float) -> str:
    seconds = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@queue.command("list")
@config_option
def queue_list(config: Path | None) -> None:
    """One line per queued message: id, age, size, attempts, next try, sender, recipients."""
    entries = _spool(load_settings(config)).entries()
    if not entries:
        click.echo("the queue is empty")
        return
    click.echo(
        f"{'ID':<19}  {'AGE':>4}  {'SIZE':>8}  TRIES  {'NEXT TRY':<16}  SENDER -> RECIPIENTS"
    )
    for e in entries:
        rcpts = ", ".join(r.address for r in e.pending)
        click.echo(
            f"{e.id:<19}  {_age(e.created):>4}  {e.size:>8}  {e.attempts:>5}  "
            f"{when(e.next_attempt):<16}  <{e.sender}> -> {rcpts}"
        )
        if e.last_error:
            click.echo(f"{'':<19}  last error: {e.last_error}")
    click.echo(f"{len(entries)} message(s)")


@queue.command("show")
@click.argument("queue_id")
@config_option
def queue_show(queue_id: str, config: Path | None) -> None:
    """The envelope, every recipient's state and the message header of QUEUE_ID."""
    from mailsuite.smtp.message import header_block

    spool = _spool(load_settings(config))
    entry = spool.load(queue_id.upper())
    if entry is None:
        fail(f"no queued message {queue_id!r}")
    rows = [
        ("id", entry.id),
        ("sender", f"<{entry.sender}>"),
        ("queued", when(entry.created)),
        ("size", str(entry.size)),
        ("attempts", str(entry.attempts)),
        ("next try", when(entry.next_attempt)),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':<11}{value}")
    for r in entry.recipients:
        detail = f" ({r.last_error})" if r.last_error else ""
        click.echo(f"{'recipient:':<11}<{r.address}> {r.state}{detail}")
    click.echo("")
    head = header_block(spool.read(entry.id)).decode("utf-8", "replace")
    click.echo(head.replace("\r\n", "\n"), nl=False)


@queue.command("flush")
@click.argument("queue_ids", nargs=-1)
@config_option
def queue_flush(queue_ids: tuple[str, ...], config: Path | None) -> None:
    """Retry QUEUE_IDS (default: every message) now; the server picks them up in seconds."""
    spool = _spool(load_settings(config))
    ids = [i.upper() for i in queue_ids] or spool.ids()
    flushed = 0
    for queue_id in ids:
        entry = spool.load(queue_id)
        if entry is None:
            click.echo(f"no queued message {queue_id!r}", err=True)
            continue
        entry.next_attempt = 0
        flushed += spool.save(entry)
    click.echo(f"{flushed} message(s) scheduled for delivery now")


@queue.command("delete")
@click.argument("queue_ids", nargs=-1)
@click.option("--all", "delete_all", is_flag=True, help="Delete every queued message.")
@config_option
def queue_delete(queue_ids: tuple[str, ...], delete_all: bool, config: Path | None) -> None:
    """Remove QUEUE_IDS from the queue without delivering or bouncing them."""
    spool = _spool(load_settings(config))
    if bool(queue_ids) == delete_all:
        fail("give queue ids or --all")
    ids = spool.ids() if delete_all else [i.upper() for i in queue_ids]
    missing = [i for i in ids if not spool.remove(i)]
    for queue_id in missing:
        click.echo(f"no queued message {queue_id!r}", err=True)
    click.echo(f"deleted {len(ids) - len(missing)} message(s)")
    if missing:
        sys.exit(1)
