"""The `mailsuite` command: serve the suite, check the config, manage accounts and aliases.

Admin commands call the same directory functions as the web site. Passwords never appear on
the command line (they would land in shell history and `ps`): they are read from standard
input with `--password-stdin`, or generated with `--temporary` and printed once.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from mailsuite import policy
from mailsuite.config import ConfigError, Settings, config_path, load_config
from mailsuite.directory import Directory, DirectoryError
from mailsuite.passwords import MAX_PASSWORD_BYTES, generate_temporary, hash_password_sync

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def config_option(func: Any) -> Any:
    return click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Config file (default: $MAILSUITE_CONFIG, else config/mailsuite.yaml).",
    )(func)


def _settings(path: Path | None, *, check_files: bool = False) -> Settings:
    try:
        return load_config(path, check_files=check_files)
    except ConfigError as exc:
        click.echo(exc.report(), err=True)
        sys.exit(1)


def _directory(settings: Settings) -> Directory:
    return Directory(settings.paths.database, settings.domains)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="mailsuite")
def main() -> None:
    """mailsuite: SMTP, IMAP, POP3 and the haslo web site on one Maildir store."""


@main.command()
@config_option
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Once every listener is up, write their bound addresses here as JSON.",
)
def serve(config: Path | None, ready_file: Path | None) -> None:
    """Run every configured service until SIGTERM or SIGINT."""
    from mailsuite.logs import setup_logging
    from mailsuite.serve import StartupError
    from mailsuite.serve import serve as run

    path = config_path(config)
    settings = _settings(path, check_files=True)
    setup_logging(settings.log_level)
    try:
        asyncio.run(run(settings, path.resolve(), ready_file))
    except StartupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@main.command("check-config")
@config_option
def check_config(config: Path | None) -> None:
    """Report every problem in the config at once (exit 1), or summarise a valid one."""
    path = config_path(config)
    settings = _settings(path, check_files=True)
    listeners = [f"{k}={h}:{p}" for k, v in settings.listen if v for h, p in [v]]
    click.echo(
        f"{path}: OK: {settings.hostname}, domains {', '.join(settings.domains)}; "
        f"{len(listeners)} listener(s): {' '.join(listeners) or 'none'}"
    )


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON report.")
def status(config: Path | None, as_json: bool) -> None:
    """Ask the running server for its listeners, counters, queue and fetcher state."""
    import json

    from mailsuite.control import ask

    settings = _settings(config)
    try:
        reply = ask(settings.paths.control_socket)
    except OSError:
        _fail(f"no running server answers at {settings.paths.control_socket} (is serve running?)")
    report = reply["status"]
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    hours, rest = divmod(int(report["uptime"]), 3600)
    click.echo(
        f"mailsuite on {report['hostname']}, pid {report['pid']}, up {hours}h{rest // 60:02d}m"
    )
    click.echo("listeners:")
    for name, (host, port) in sorted(report["listeners"].items()):
        click.echo(f"  {name:<12} {host}:{port}")
    lag = report["loop_lag_ms"]
    click.echo(f"event loop lag: {lag['last']} ms now, {lag['worst']} ms worst")
    for section in sorted(
        k
        for k, v in report.items()
        if isinstance(v, dict) and k not in {"listeners", "loop_lag_ms", "counters"}
    ):
        click.echo(f"{section}:")
        for key, value in sorted(report[section].items()):
            click.echo(f"  {key:<20} {value}")
    if report["counters"]:
        click.echo("counters:")
        for key, value in sorted(report["counters"].items()):
            click.echo(f"  {key:<28} {value}")


@main.command()
@click.argument("domain")
@config_option
def dns(domain: str, config: Path | None) -> None:
    """Print the DNS records to publish for DOMAIN (MX, SPF, DKIM, DMARC, SRV, autoconfig)."""
    from mailsuite.clientconfig import dns_records
    from mailsuite.smtp.signing import dns_record, key_path

    settings = _settings(config)
    domain = domain.lower()
    if domain not in settings.domains:
        _fail(f"{domain!r} is not one of this server's domains ({', '.join(settings.domains)})")
    keys = settings.paths.dkim_keys
    dkim = (
        dns_record(keys, domain, settings.smtp.dkim_selector)
        if key_path(keys, domain).exists()
        else None
    )
    click.echo(dns_records(settings, domain, dkim), nl=False)


@main.command("config-example")
def config_example() -> None:
    """Print every config key with its default and description, as YAML."""
    from mailsuite.config.example import example_yaml

    click.echo(example_yaml(), nl=False)


# -- users ----------------------------------------------------------------------------------


@main.group(context_settings=CONTEXT)
def user() -> None:
    """Add, list, change and remove mail accounts."""


def _read_password(settings: Settings, logins: list[str]) -> str:
    """One line from standard input, checked against the password policy."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("no password on standard input")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        _fail(f"the password is longer than {MAX_PASSWORD_BYTES} bytes")
    broken = policy.check(settings.password_policy, password, logins)
    if broken:
        rules = "; ".join(b.text("en") for b in broken)
        _fail(f"the password breaks the policy: {rules}")
    return password


def _password_args(settings: Settings, address: str, stdin: bool, temporary: bool) -> tuple:
    if stdin == temporary:
        _fail("give exactly one of --password-stdin or --temporary")
    rounds = settings.accounts.bcrypt_rounds
    if temporary:
        password = generate_temporary()
        expires = time.time() + settings.accounts.temporary_password_lifetime
        return password, hash_password_sync(password, rounds), expires
    password = _read_password(settings, [address])
    return None, hash_password_sync(password, rounds), None


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
    settings = _settings(config)
    directory = _directory(settings)
    try:
        address = directory.check_address(address)
        if directory.get_account(address):
            _fail(f"account {address!r} already exists")
        shown, password_hash, expires = _password_args(settings, address, stdin, temporary)
        account = directory.add_account(
            address,
            password_hash=password_hash,
            name=name,
            contact=contact,
            temporary=temporary,
            temp_expires=expires,
            legacy_login=legacy_login,
        )
    except DirectoryError as exc:
        _fail(str(exc))
    click.echo(f"created {account.address}")
    if shown and account.contact:
        from mailsuite.web import mails

        subject, body = mails.temporary_password(settings, account.address, shown, expires)
        problem = _mail(settings, config, account.contact, subject, body)
        if problem is None:
            click.echo(f"login and temporary password e-mailed to {account.contact}")
            click.echo(f"it expires {_when(expires)}; the user changes it at the web site first")
            return
        click.echo(f"warning: could not e-mail {account.contact}: {problem}", err=True)
    if shown:
        click.echo(f"temporary password (shown once): {shown}")
        click.echo(f"it expires {_when(expires)}; the user changes it at the web site first")


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
    import secrets

    from mailsuite.web import mails

    settings = _settings(config)
    directory = _directory(settings)
    lifetime = settings.accounts.activation_link_lifetime
    try:
        address = directory.check_address(address)
        account = directory.get_account(address)
        if account is None:
            account = directory.add_account(
                address, password_hash=None, name=name, contact=contact, legacy_login=legacy_login
            )
        elif account.password_hash:
            _fail(f"account {address!r} already has a password; use `user passwd`")
        else:
            account = directory.update_account(address, contact=contact)
        secret = secrets.token_urlsafe(32)
        directory.create_token("activation", account.address, secret, lifetime)
        directory.audit("account.invite", account.address, f"link sent to {account.contact}")
    except DirectoryError as exc:
        _fail(str(exc))
    assert account.contact is not None
    subject, body = mails.activation_link(settings, account.address, secret, round(lifetime / 3600))
    problem = _mail(settings, config, account.contact, subject, body)
    if problem is not None:
        _fail(f"could not e-mail {account.contact}: {problem}")
    click.echo(f"invited {account.address}: activation link e-mailed to {account.contact}")
    click.echo(f"the link works once, until {_when(time.time() + lifetime)}")


def _mail(settings: Settings, config: Path | None, to: str, subject: str, body: str) -> str | None:
    """Hand an e-mail to the suite's own delivery path (a local Maildir or the outbound spool,
    which the running server's queue picks up), exactly as the web site sends its mail.
    Returns None once it is durable, else what went wrong."""
    from mailsuite.serve import build_context
    from mailsuite.smtp.outgoing import send_system_mail

    async def send() -> None:
        ctx = build_context(settings, config_path(config).resolve(), asyncio.get_running_loop())
        try:
            await send_system_mail(ctx, to, subject, body)
        finally:
            ctx.io_pool.shutdown(wait=True)
            ctx.auth.hasher.shutdown()
            ctx.directory.close()

    try:
        asyncio.run(send())
    except (LookupError, ValueError, OSError) as exc:
        return str(exc)
    return None


@user.command("passwd")
@click.argument("address")
@click.option("--password-stdin", "stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--temporary", is_flag=True, help="Generate a temporary password, print it once.")
@config_option
def user_passwd(address: str, stdin: bool, temporary: bool, config: Path | None) -> None:
    """Set a new password for ADDRESS."""
    settings = _settings(config)
    directory = _directory(settings)
    try:
        account = directory.require_account(address)
        shown, password_hash, expires = _password_args(settings, account.address, stdin, temporary)
        directory.set_password(
            account.address, password_hash, temporary=temporary, temp_expires=expires
        )
    except DirectoryError as exc:
        _fail(str(exc))
    click.echo(f"password changed for {account.address}")
    if shown:
        click.echo(f"temporary password (shown once): {shown}")


@user.command("list")
@click.option("--domain", help="Only this domain.")
@config_option
def user_list(domain: str | None, config: Path | None) -> None:
    """List accounts with their state."""
    directory = _directory(_settings(config))
    accounts = directory.list_accounts(domain)
    if not accounts:
        click.echo("no accounts")
        return
    width = max(len(a.address) for a in accounts)
    click.echo(f"{'ADDRESS':<{width}}  STATE     PASSWORD   LAST LOGIN        NAME")
    for a in accounts:
        pw = "temporary" if a.must_change else "set" if a.password_hash else "none"
        click.echo(
            f"{a.address:<{width}}  {a.state:<8}  {pw:<9}  {_when(a.last_login):<16}  {a.name}"
        )


@user.command("show")
@click.argument("address")
@config_option
def user_show(address: str, config: Path | None) -> None:
    """Show one account in full (never its password)."""
    settings = _settings(config)
    directory = _directory(settings)
    try:
        a = directory.require_account(address)
    except DirectoryError as exc:
        _fail(str(exc))
    aliases = directory.addresses_of(a)[1:]
    rows = [
        ("address", a.address),
        ("name", a.name or "-"),
        ("contact", a.contact or "-"),
        ("state", a.state),
        ("password", "temporary (must change)" if a.must_change else "set"),
        ("temporary expires", _when(a.temp_expires)),
        ("legacy login", a.legacy_login or "-"),
        ("aliases", ", ".join(aliases) or "-"),
        ("created", _when(a.created)),
        ("password changed", _when(a.password_changed)),
        ("last login", _when(a.last_login)),
        ("maildir", str(settings.paths.maildirs / a.domain / a.local)),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':<19}{value}")


def _set_state(config: Path | None, address: str, state: str, done: str) -> None:
    directory = _directory(_settings(config))
    try:
        directory.set_state(address, state)
    except DirectoryError as exc:
        _fail(str(exc))
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
    settings = _settings(config)
    directory = _directory(settings)
    try:
        account = directory.delete_account(address)
    except DirectoryError as exc:
        _fail(str(exc))
    if purge:
        from mailsuite.store import Store

        Store(settings.paths.maildirs).purge(account.address)
        click.echo(f"deleted {account.address} and its mail")
    else:
        kept = settings.paths.maildirs / account.domain / account.local
        click.echo(f"deleted {account.address}; its mail is kept in {kept}")


# -- aliases --------------------------------------------------------------------------------


@main.group(context_settings=CONTEXT)
def alias() -> None:
    """Extra addresses that deliver to an account (and that it may send as)."""


@alias.command("add")
@click.argument("alias_address", metavar="ALIAS")
@click.argument("target")
@config_option
def alias_add(alias_address: str, target: str, config: Path | None) -> None:
    """Deliver mail for ALIAS to the account TARGET."""
    directory = _directory(_settings(config))
    try:
        created = directory.add_alias(alias_address, target)
    except DirectoryError as exc:
        _fail(str(exc))
    click.echo(f"{created.alias} -> {created.target}")


@alias.command("del")
@click.argument("alias_address", metavar="ALIAS")
@config_option
def alias_del(alias_address: str, config: Path | None) -> None:
    """Remove ALIAS."""
    directory = _directory(_settings(config))
    try:
        directory.delete_alias(alias_address)
    except DirectoryError as exc:
        _fail(str(exc))
    click.echo(f"deleted alias {alias_address.lower()}")


@alias.command("list")
@config_option
def alias_list(config: Path | None) -> None:
    """List aliases and their targets."""
    aliases = _directory(_settings(config)).list_aliases()
    if not aliases:
        click.echo("no aliases")
    for a in aliases:
        click.echo(f"{a.alias} -> {a.target}")


# -- migration from an old mail system ------------------------------------------------------


@main.group(context_settings=CONTEXT)
def migrate() -> None:
    """Move users from an old mail system: import since a date, bulk plans, status."""


def _day(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


def _summary_lines(address: str, summary: Any, since: Any, seconds: float | None) -> list[str]:
    """The end-of-import report: counts on one line, then each failure with its reason."""
    kb = summary.bytes / 1024
    lines = [
        f"{address}: copied {summary.copied}, skipped {summary.duplicates} as duplicates, "
        f"{summary.older} dated before {since}, failed {summary.failed}"
        + (f", {summary.recovered} confirmed from an interrupted run" if summary.recovered else "")
        + (f" ({kb:.0f} KB in {seconds:.1f} s)" if seconds is not None else "")
    ]
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
@click.option(
    "--password-stdin", "stdin", is_flag=True, help="Read the remote source's password from stdin."
)
@config_option
def migrate_import(
    address: str, source: str, since: Any, folder: str | None, stdin: bool, config: Path | None
) -> None:
    """Copy USER's mail dated since a day from SOURCE, once: a re-run adds nothing.

    The source is only read. Flags and folders are kept where the source has them.
    """
    from contextlib import ExitStack

    from mailsuite.migrate.plan import import_user
    from mailsuite.migrate.sources import SourceError
    from mailsuite.store import Store

    settings = _settings(config)
    directory = _directory(settings)
    password = sys.stdin.readline().rstrip("\r\n") if stdin else None
    if stdin and not password:
        _fail("no password on standard input")
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
                password=password,
                timeout=settings.fetcher.timeout,
                on_total=on_total,
                advance=lambda n: bars[0].update(n),
            )
        except (SourceError, DirectoryError, OSError) as exc:
            _fail(str(exc))
    for line in _summary_lines(address.lower(), summary, since, time.monotonic() - started):
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
@config_option
def migrate_plan(
    plan_file: Path,
    since: Any,
    jobs: int,
    passwords_file: Path | None,
    rerun: bool,
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
        PlanRow,
        ensure_accounts,
        read_plan,
        run_plan,
    )
    from mailsuite.store import Store

    settings = _settings(config)
    directory = _directory(settings)
    try:
        rows = read_plan(plan_file)
    except (PlanError, OSError, UnicodeDecodeError) as exc:
        _fail(str(exc))
    rounds = settings.accounts.bcrypt_rounds
    lifetime = settings.accounts.temporary_password_lifetime

    def new_password() -> tuple[str, str, float]:
        password = generate_temporary()
        return password, hash_password_sync(password, rounds), time.time() + lifetime

    out = passwords_file or plan_file.with_suffix(".passwords.csv")
    passwords: PasswordFile | None = None
    mailed = 0

    def deliver(row: PlanRow, password: str, expires: float) -> None:
        nonlocal passwords, mailed
        if row.contact:
            from mailsuite.web import mails

            subject, body = mails.temporary_password(settings, row.address, password, expires)
            problem = _mail(settings, config, row.contact, subject, body)
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
        _fail(str(exc))
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
        store, directory, rows, since, jobs=jobs, rerun=rerun, timeout=settings.fetcher.timeout
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
                for line in _summary_lines(outcome.address, outcome.summary, since, None):
                    click.echo(line)
    if failed:
        click.echo(f"{failed} user(s) failed; run the plan again to retry them")
        sys.exit(1)


@migrate.command("status")
@config_option
def migrate_status(config: Path | None) -> None:
    """Per user: import state and counts, temporary password changed, last login."""
    from mailsuite.directory import migration as mstate

    directory = _directory(_settings(config))
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
        changed = "-" if account is None or account.must_change else _when(account.password_changed)
        last = _when(account.last_login) if account else "-"
        click.echo(
            f"{u.address:<{width}}  {u.status:<7}  {mstate.copied_count(directory, u.address):>8}"
            f"  {u.duplicates:>5}  {u.failed:>6}  {changed:<16}  {last:<16}  {u.source}"
        )
        if u.error:
            click.echo(f"{'':<{width}}  error: {u.error}")
    counts = {s: sum(u.status == s for u in users) for s in mstate.STATUSES}
    click.echo(f"{len(users)} users: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


# -- outbound queue -------------------------------------------------------------------------


@main.group(context_settings=CONTEXT)
def queue() -> None:
    """Look at and act on the outbound mail queue (the spool under paths.spool)."""


def _spool(settings: Settings) -> Any:
    from mailsuite.smtp.spool import Spool

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
    entries = _spool(_settings(config)).entries()
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
            f"{_when(e.next_attempt):<16}  <{e.sender}> -> {rcpts}"
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

    spool = _spool(_settings(config))
    entry = spool.load(queue_id.upper())
    if entry is None:
        _fail(f"no queued message {queue_id!r}")
    rows = [
        ("id", entry.id),
        ("sender", f"<{entry.sender}>"),
        ("queued", _when(entry.created)),
        ("size", str(entry.size)),
        ("attempts", str(entry.attempts)),
        ("next try", _when(entry.next_attempt)),
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
    spool = _spool(_settings(config))
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
    spool = _spool(_settings(config))
    if bool(queue_ids) == delete_all:
        _fail("give queue ids or --all")
    ids = spool.ids() if delete_all else [i.upper() for i in queue_ids]
    missing = [i for i in ids if not spool.remove(i)]
    for queue_id in missing:
        click.echo(f"no queued message {queue_id!r}", err=True)
    click.echo(f"deleted {len(ids) - len(missing)} message(s)")
    if missing:
        sys.exit(1)


# -- DKIM -----------------------------------------------------------------------------------


@main.group(context_settings=CONTEXT)
def dkim() -> None:
    """DKIM keys for our domains' outbound mail."""


@dkim.command("keygen")
@click.argument("domain")
@click.option("--bits", default=2048, show_default=True, type=click.IntRange(1024, 4096))
@config_option
def dkim_keygen(domain: str, bits: int, config: Path | None) -> None:
    """Create DOMAIN's signing key and print the DNS TXT record to publish."""
    from mailsuite.smtp.signing import dns_record, generate_key

    settings = _settings(config)
    domain = domain.lower()
    if domain not in settings.domains:
        _fail(f"{domain!r} is not one of this server's domains ({', '.join(settings.domains)})")
    try:
        path = generate_key(settings.paths.dkim_keys, domain, bits=bits)
    except FileExistsError as exc:
        _fail(str(exc))
    click.echo(f"created {path}; outbound mail from {domain} is signed from now on")
    click.echo("publish this DNS record:")
    click.echo(dns_record(settings.paths.dkim_keys, domain, settings.smtp.dkim_selector))


# -- external accounts ----------------------------------------------------------------------


@main.group(context_settings=CONTEXT)
def external() -> None:
    """Users' external POP3/IMAP accounts, copied into their mailboxes (read-only remotely)."""


def _fetcher(settings: Settings) -> Any:
    from mailsuite.fetcher.engine import Fetcher
    from mailsuite.store import Store

    return Fetcher(_directory(settings), Store(settings.paths.maildirs), settings)


def _external_account(fetcher: Any, user_address: str, label: str) -> Any:
    from mailsuite.directory import external as ext_db

    try:
        return ext_db.get_external(fetcher.directory, user_address, label)
    except DirectoryError as exc:
        _fail(str(exc))


def _remote_password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password of the external account", hide_input=True)


def _server_options(func: Any) -> Any:
    options = [
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
    ]
    for option in reversed(options):
        func = option(func)
    return func


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
        ("last success", _when(info["last_success"])),
        (
            "last error",
            f"{_when(info['last_error_at'])} {info['last_error']}".strip()
            if info["last_error"]
            else "-",
        ),
        ("next fetch", _when(info["next_attempt"]) if info["next_attempt"] else "now"),
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
    from mailsuite.fetcher import accounts, providers
    from mailsuite.remote import RemoteError

    settings = _settings(config)
    fetcher = _fetcher(settings)
    guess = accounts.suggested(email, protocol or "imap", label)
    chosen_security = security or guess.security
    if port is None:
        # A port the user did not give follows the security the user did give.
        port = providers.DEFAULT_PORTS[(guess.protocol, security)] if security else guess.port
    server = accounts.ServerSettings(
        guess.protocol, host or guess.host, port, chosen_security, bool(accept_self_signed)
    )
    password = _remote_password(stdin)
    try:
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
    except RemoteError as exc:
        _fail(f"not saved: {exc}")
    except DirectoryError as exc:
        _fail(str(exc))
    click.echo(
        f"added {created.label} ({created.email}) for {created.owner}: {created.protocol} "
        f"{created.host}:{created.port} {created.security}"
    )


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
    from mailsuite.remote import RemoteError

    fetcher = _fetcher(_settings(config))
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
    if protocol and protocol != account.protocol and not host:
        guess = accounts.suggested(email or account.email, protocol, account.label)
        fields.setdefault("host", guess.host)
        fields.setdefault("security", guess.security)
    if ("protocol" in fields or "security" in fields) and port is None:
        fields["port"] = providers.DEFAULT_PORTS[
            (fields.get("protocol", account.protocol), fields.get("security", account.security))
        ]
    password = _remote_password(True) if stdin else None
    try:
        updated = accounts.edit(fetcher, account, password=password, test=not no_test, **fields)
    except RemoteError as exc:
        _fail(f"not saved: {exc}")
    except DirectoryError as exc:
        _fail(str(exc))
    click.echo(
        f"changed {updated.label} of {updated.owner}: {updated.protocol} "
        f"{updated.host}:{updated.port} {updated.security}"
    )


@external.command("list")
@click.argument("address", required=False)
@config_option
def external_list(address: str | None, config: Path | None) -> None:
    """List external accounts (of ADDRESS, or everyone's)."""
    from mailsuite.directory import external as ext_db

    directory = _directory(_settings(config))
    found = ext_db.list_external(directory, address)
    if not found:
        click.echo("no external accounts")
    for a in found:
        count = ext_db.copied_count(directory, a.id)
        error = f"  error: {a.last_error}" if a.last_error else ""
        click.echo(
            f"{a.owner}  {a.label}  {a.email}  {a.protocol} {a.host}:{a.port}  "
            f"{count} messages  last success {_when(a.last_success)}{error}"
        )


@external.command("show")
@click.argument("address")
@click.argument("label")
@config_option
def external_show(address: str, label: str, config: Path | None) -> None:
    """Settings and fetch state of one external account."""
    from mailsuite.fetcher import accounts

    fetcher = _fetcher(_settings(config))
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

    fetcher = _fetcher(_settings(config))
    account = _external_account(fetcher, address, label)
    try:
        count = fetcher.test(fetcher.client_for(account))
    except (RemoteError, SecretError) as exc:
        _fail(f"{account.label}: {exc}")
    click.echo(f"{account.label}: connection and login work; {count} messages in the inbox")


@external.command("fetch")
@click.argument("address")
@click.argument("label", required=False)
@config_option
def external_fetch(address: str, label: str | None, config: Path | None) -> None:
    """Fetch now: the account LABEL of ADDRESS, or all of its accounts."""
    from mailsuite.directory import external as ext_db

    fetcher = _fetcher(_settings(config))
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

    fetcher = _fetcher(_settings(config))
    account = _external_account(fetcher, address, label)
    accounts.remove(fetcher, account, delete_folder=delete_folder)
    kept = "its local folder was deleted" if delete_folder else f"folder {account.label!r} kept"
    click.echo(f"deleted {account.label} of {account.owner}; {kept}")


@external.command("rotate-key")
@config_option
def external_rotate_key(config: Path | None) -> None:
    """Encrypt every stored external password with a new key; the old key is dropped."""
    from mailsuite.fetcher import accounts

    settings = _settings(config)
    count = accounts.rotate_key(_directory(settings), settings)
    click.echo(f"new key in {settings.paths.secret_key}; {count} passwords re-encrypted")
