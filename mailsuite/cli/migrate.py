"""`mailsuite migrate …`: moving users in from an old mail system.

The copying is `mailsuite.migrate`'s, through the store like every delivery; new accounts
get their temporary passwords from `mailsuite.accounts`, as the web site's resets do. This
module reads options, draws progress bars on standard error and prints the summaries.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailsuite import accounts
from mailsuite.cli.common import (
    CONTEXT,
    Mail,
    config_option,
    fail,
    load_settings,
    open_directory,
    option_group,
    stdin_line,
    when,
)
from mailsuite.directory import DirectoryError
from mailsuite.migrate.message import Filter, FilterError
from mailsuite.passwords import hash_password_sync

if TYPE_CHECKING:
    from mailsuite.migrate.importer import Summary
    from mailsuite.migrate.plan import PasswordFile, PlanRow


@click.group(context_settings=CONTEXT)
def migrate() -> None:
    """Move users from an old mail system: import since a date, bulk plans, status."""


def _day(ctx: click.Context, param: click.Parameter, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


# `--from-domain` and `--header-match`: which messages of the source are wanted.
_filter_options = option_group(
    click.option(
        "--from-domain",
        "from_domains",
        multiple=True,
        metavar="DOMAIN",
        help="Copy only messages from an address in DOMAIN or its subdomains; repeat for "
        "more domains.",
    ),
    click.option(
        "--header-match",
        "header_matches",
        multiple=True,
        metavar="FIELD:REGEX",
        help="Copy only messages whose header FIELD matches REGEX (case-insensitive), e.g. "
        "'Subject:statement'; repeat to require several.",
    ),
)


def _wanted(from_domains: tuple[str, ...], header_matches: tuple[str, ...]) -> Filter | None:
    try:
        wanted = Filter.parse(from_domains, header_matches)
    except FilterError as exc:
        raise click.UsageError(str(exc)) from None
    return wanted if wanted.active else None


def _summary_lines(
    address: str,
    summary: Summary,
    since: date,
    seconds: float | None,
    wanted: Filter | None = None,
) -> list[str]:
    """The end-of-import report: counts on one line, then each failure with its reason."""
    kb = summary.bytes / 1024
    lines = [
        f"{address}: copied {summary.copied}, skipped {summary.duplicates} as duplicates, "
        f"{summary.older} dated before {since}, "
        + (f"{summary.unmatched} not matching {wanted.describe()}, " if wanted else "")
        + f"failed {summary.failed}"
        + (f", {summary.recovered} confirmed from an interrupted run" if summary.recovered else "")
        + (f" ({kb:.0f} KB in {seconds:.1f} s)" if seconds is not None else "")
    ]
    if summary.uids_kept:
        lines.append(
            f"  UIDs kept in {', '.join(summary.uids_kept)}: mail clients keep what they "
            "downloaded"
            + (f" ({summary.renumbered} messages got new UIDs)" if summary.renumbered else "")
        )
    lines += [f"  new UIDs in {name}: {why}" for name, why in summary.uids_new]
    lines += [f"  failed: {what}: {why}" for what, why in summary.reasons]
    if summary.failed > len(summary.reasons):
        lines.append(f"  ... and {summary.failed - len(summary.reasons)} more")
    return lines


@migrate.command("import")
@click.argument("address", metavar="USER")
@click.option(
    "--from",
    "source",
    required=True,
    help="A Maildir, an mbox file, imap[s]://user[:pass]@host[:port] or pop3[s]://...",
)
@click.option(
    "--since", required=True, callback=_day, help="Copy messages dated on or after YYYY-MM-DD."
)
@click.option("--folder", help="Put every message into this folder instead of the source's.")
@_filter_options
@click.option(
    "--password-stdin", "stdin", is_flag=True, help="Read the remote source's password from stdin."
)
@config_option
def migrate_import(
    address: str,
    source: str,
    since: date,
    folder: str | None,
    from_domains: tuple[str, ...],
    header_matches: tuple[str, ...],
    stdin: bool,
    config: Path | None,
) -> None:
    """Copy USER's mail dated since a day from SOURCE, once: a re-run adds nothing.

    The source is only read. Flags and folders are kept where the source has them. With
    --from-domain or --header-match only the messages that match are copied (seed 000:
    "all messages sent by the Bank since 1 August" is --from-domain with --since).
    """
    from mailsuite.migrate.plan import import_user
    from mailsuite.migrate.sources import SourceError
    from mailsuite.store import Store

    wanted = _wanted(from_domains, header_matches)
    settings = load_settings(config)
    directory = open_directory(settings)
    password = stdin_line() if stdin else None
    if stdin and not password:
        fail("no password on standard input")
    store = Store(settings.paths.maildirs)
    started = time.monotonic()
    with ExitStack() as stack:
        bars: list[Any] = []

        def on_total(total: int) -> None:
            bar = click.progressbar(
                length=total, label=f"importing into {address}", file=sys.stderr, show_pos=True
            )
            bars.append(stack.enter_context(bar))

        try:
            summary = import_user(
                store,
                directory,
                address,
                source,
                since,
                folder=folder,
                wanted=wanted,
                password=password,
                timeout=settings.fetcher.timeout,
                on_total=on_total,
                advance=lambda n: bars[0].update(n),
            )
        except (SourceError, DirectoryError, OSError) as exc:
            fail(str(exc))
    seconds = time.monotonic() - started
    for line in _summary_lines(address.lower(), summary, since, seconds, wanted):
        click.echo(line)
    if summary.failed:
        sys.exit(1)


@migrate.command("plan")
@click.argument("plan_file", metavar="FILE.csv", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--since", required=True, callback=_day, help="Copy messages dated on or after YYYY-MM-DD."
)
@click.option(
    "--jobs",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Users imported at once.",
)
@click.option(
    "--passwords-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Temporary passwords that could not be e-mailed (mode 0600; default FILE.passwords.csv).",
)
@click.option("--rerun", is_flag=True, help="Import again for users whose import finished.")
@_filter_options
@config_option
def migrate_plan(
    plan_file: Path,
    since: date,
    jobs: int,
    passwords_file: Path | None,
    rerun: bool,
    from_domains: tuple[str, ...],
    header_matches: tuple[str, ...],
    config: Path | None,
) -> None:
    """Create the accounts listed in FILE.csv and import their mail, resumably.

    Columns: legacy login, new address, contact e-mail, source. New accounts get a temporary
    password, e-mailed to the contact (else written to --passwords-file), which the user
    changes on the web site; running the same plan again after a crash resumes where it
    stopped.
    """
    from mailsuite.migrate.plan import (
        PasswordFile,
        PlanError,
        ensure_accounts,
        read_plan,
        run_plan,
    )
    from mailsuite.store import Store

    wanted = _wanted(from_domains, header_matches)
    settings = load_settings(config)
    directory = open_directory(settings)
    try:
        rows = read_plan(plan_file)
    except (PlanError, OSError, UnicodeDecodeError) as exc:
        fail(str(exc))
    rounds = settings.accounts.bcrypt_rounds

    def new_password() -> tuple[str, str, float]:
        temporary = accounts.new_temporary(settings, time.time())
        password_hash = hash_password_sync(temporary.password, rounds)
        return temporary.password, password_hash, temporary.expires

    out = passwords_file or plan_file.with_suffix(".passwords.csv")
    passwords: PasswordFile | None = None
    mail = Mail(settings, directory)
    mailed = 0

    def deliver(row: PlanRow, password: str, expires: float) -> None:
        nonlocal passwords, mailed
        if row.contact:
            temporary = accounts.Temporary(password, expires)
            letter = accounts.temporary_letter(settings, row.address, row.contact, temporary)
            problem = mail.send(letter)
            if problem is None:
                mailed += 1
                return
            click.echo(f"warning: could not e-mail {row.contact}: {problem}", err=True)
        if passwords is None:
            passwords = PasswordFile(out)
        passwords.add(row.address, row.legacy_login, row.contact, password)

    try:
        created, existing = ensure_accounts(
            directory, rows, since, new_password=new_password, deliver=deliver
        )
    except DirectoryError as exc:
        fail(str(exc))
    finally:
        if passwords is not None:
            passwords.close()
    click.echo(f"{len(rows)} users: {created} accounts created, {existing} already existed")
    if mailed:
        click.echo(f"temporary passwords of {mailed} new accounts e-mailed to their contacts")
    if passwords is not None:
        click.echo(
            f"temporary passwords of {passwords.written} new accounts are in {out} (mode 0600): "
            "no contact address or the e-mail failed; hand them to the users"
        )
    store = Store(settings.paths.maildirs)
    failed = 0
    outcomes = run_plan(
        store,
        directory,
        rows,
        since,
        jobs=jobs,
        rerun=rerun,
        timeout=settings.fetcher.timeout,
        wanted=wanted,
    )
    with click.progressbar(
        outcomes, length=len(rows), label="importing", file=sys.stderr, show_pos=True
    ) as bar:
        for outcome in bar:
            if outcome.summary is None:
                failed += 1
                click.echo(f"{outcome.address}: failed: {outcome.error}")
            else:
                failed += bool(outcome.summary.failed)
                for line in _summary_lines(outcome.address, outcome.summary, since, None, wanted):
                    click.echo(line)
    if failed:
        click.echo(f"{failed} user(s) failed; run the plan again to retry them")
        sys.exit(1)


@migrate.command("status")
@config_option
def migrate_status(config: Path | None) -> None:
    """Per user: import state and counts, temporary password changed, last login."""
    from mailsuite.directory import migration as mstate

    directory = open_directory(load_settings(config))
    users = mstate.list_users(directory)
    if not users:
        click.echo("nobody is being migrated")
        return
    width = max(len(u.address) for u in users)
    click.echo(
        f"{'ADDRESS':<{width}}  STATUS   IMPORTED  DUPES  FAILED  PASSWORD CHANGED  "
        "LAST LOGIN        SOURCE"
    )
    for u in users:
        account = directory.get_account(u.address)
        changed = "-" if account is None or account.must_change else when(account.password_changed)
        last = when(account.last_login) if account else "-"
        click.echo(
            f"{u.address:<{width}}  {u.status:<7}  {mstate.copied_count(directory, u.address):>8}"
            f"  {u.duplicates:>5}  {u.failed:>6}  {changed:<16}  {last:<16}  {u.source}"
        )
        if u.error:
            click.echo(f"{'':<{width}}  error: {u.error}")
    counts = {s: sum(u.status == s for u in users) for s in mstate.STATUSES}
    click.echo(f"{len(users)} users: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
