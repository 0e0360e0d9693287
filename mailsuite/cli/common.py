"""What the commands share: the `--config` option, loading the settings (every problem
reported at once, then exit 1), one-line errors, dates, passwords read from standard input,
and handing the suite's own e-mails to the delivery path.

Passwords never appear on the command line (they would land in shell history and `ps`):
they are read from standard input, or generated and printed once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from mailsuite import policy
from mailsuite.accounts import Letter
from mailsuite.config import ConfigError, Settings, load_config
from mailsuite.directory import Directory
from mailsuite.passwords import MAX_PASSWORD_BYTES

if TYPE_CHECKING:
    from mailsuite.smtp.outgoing import SystemMailer

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

F = TypeVar("F", bound=Callable[..., Any])


def option_group(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options applied as one decorator; `--help` lists them in this order."""

    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Config file (default: $MAILSUITE_CONFIG, else config/mailsuite.yaml).",
    )(func)


def load_settings(path: Path | None, *, check_files: bool = False) -> Settings:
    try:
        return load_config(path, check_files=check_files)
    except ConfigError as exc:
        click.echo(exc.report(), err=True)
        sys.exit(1)


def open_directory(settings: Settings) -> Directory:
    return Directory(settings.paths.database, settings.domains)


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def stdin_line() -> str:
    """One line of standard input without its line ending: a secret piped in by a script."""
    return sys.stdin.readline().rstrip("\r\n")


def read_password(settings: Settings, logins: list[str]) -> str:
    """A new password for one of our accounts (prompted twice on a terminal), checked
    against the password policy; every broken rule is named at once."""
    if sys.stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = stdin_line()
    if not password:
        fail("no password on standard input")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        fail(f"the password is longer than {MAX_PASSWORD_BYTES} bytes")
    broken = policy.check(settings.password_policy, password, logins)
    if broken:
        rules = "; ".join(b.text("en") for b in broken)
        fail(f"the password breaks the policy: {rules}")
    return password


class Mail:
    """The suite's own e-mails from a command, through the same delivery path as the web
    site's (local recipients into their Maildir, remote ones into the outbound spool that the
    running server's queue picks up) but without a server: nothing but the settings, the
    directory, the store and the spool is opened, and only when the first letter goes."""

    def __init__(self, settings: Settings, directory: Directory) -> None:
        self.settings = settings
        self.directory = directory
        self._mailer: SystemMailer | None = None

    def send(self, letter: Letter) -> str | None:
        """None once the letter is durable, else what went wrong."""
        from mailsuite.smtp.outgoing import SystemMailer

        try:
            if self._mailer is None:
                self._mailer = SystemMailer.open(self.settings, self.directory)
            self._mailer.send(letter.to, letter.subject, letter.body)
        except (LookupError, ValueError, OSError) as exc:
            return str(exc)
        return None
