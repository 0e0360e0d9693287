"""The admin command line, run as an admin runs it: a subprocess with a config file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailsuite.passwords import verify_password_sync

from .conftest import Admin

COMMANDS = [
    [],
    ["serve"],
    ["check-config"],
    ["config-example"],
    ["user"],
    ["user", "add"],
    ["user", "list"],
    ["user", "show"],
    ["user", "passwd"],
    ["user", "disable"],
    ["user", "enable"],
    ["user", "del"],
    ["user", "edit"],
    ["user", "invite"],
    ["export"],
    ["migrate", "import"],
    ["alias"],
    ["alias", "add"],
    ["alias", "del"],
    ["alias", "list"],
]


@pytest.fixture
def admin(tmp_path: Path) -> Admin:
    return Admin(tmp_path)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_every_command_has_help(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mailsuite", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_add_with_password_from_stdin(admin: Admin) -> None:
    result = admin(
        "user",
        "add",
        "Ala@example.test",
        "--name",
        "Ala Kot",
        "--password-stdin",
        stdin="Kot12345\n",
    )
    assert result.returncode == 0, result.stderr
    assert "created ala@example.test" in result.stdout
    account = admin.directory().get_account("ala@example.test")
    assert account.name == "Ala Kot" and not account.must_change
    assert verify_password_sync("Kot12345", account.password_hash)
    assert "Kot12345" not in result.stdout + result.stderr


def test_add_temporary_prints_the_password_once(admin: Admin) -> None:
    # Without --contact there is nobody to e-mail it to (tests/test_web_browser.py: with one).
    result = admin("user", "add", "ola@example.test", "--temporary")
    assert result.returncode == 0, result.stderr
    shown = result.stdout.split("temporary password (shown once): ")[1].split()[0]
    account = admin.directory().get_account("ola@example.test")
    assert account.must_change and account.temp_expires and account.contact is None
    assert verify_password_sync(shown, account.password_hash)
    listing = admin("user", "list").stdout
    assert "ola@example.test" in listing and "temporary" in listing and shown not in listing


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["user", "add", "x@elsewhere.test", "--temporary"],
            None,
            "not one of this server's domains",
        ),
        (["user", "add", "not-an-address", "--temporary"], None, "not an e-mail address"),
        (["user", "add", "y@example.test"], None, "exactly one of --password-stdin or --temporary"),
        (["user", "add", "y@example.test", "--password-stdin"], "short\n", "at least 8 characters"),
        (["user", "add", "y@example.test", "--password-stdin"], "\n", "no password"),
        (["user", "show", "ghost@example.test"], None, "no account 'ghost@example.test'"),
        (["user", "del", "ghost@example.test"], None, "no account"),
        (["alias", "add", "a@example.test", "ghost@example.test"], None, "no account"),
        (["alias", "del", "nothing@example.test"], None, "no alias"),
    ],
)
def test_mistakes_get_clear_errors(
    admin: Admin, args: list[str], stdin: str | None, message: str
) -> None:
    result = admin(*args, stdin=stdin)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_duplicate_account_is_refused(admin: Admin) -> None:
    assert admin("user", "add", "ala@example.test", "--temporary").returncode == 0
    result = admin("user", "add", "ALA@example.test", "--temporary")
    assert result.returncode == 1 and "already exists" in result.stderr


def test_passwd_disable_enable_and_show(admin: Admin) -> None:
    admin("user", "add", "ala@example.test", "--temporary")
    assert (
        admin(
            "user", "passwd", "ala@example.test", "--password-stdin", stdin="Nowe12345\n"
        ).returncode
        == 0
    )
    assert verify_password_sync(
        "Nowe12345", admin.directory().get_account("ala@example.test").password_hash
    )
    assert admin("user", "disable", "ala@example.test").returncode == 0
    assert "disabled" in admin("user", "show", "ala@example.test").stdout
    assert admin("user", "enable", "ala@example.test").returncode == 0
    shown = admin("user", "show", "ala@example.test").stdout
    assert "state:" in shown and "active" in shown and "Nowe12345" not in shown


def test_aliases(admin: Admin) -> None:
    admin("user", "add", "ala@example.test", "--temporary")
    assert admin("alias", "add", "biuro@example.test", "ala@example.test").returncode == 0
    assert "biuro@example.test -> ala@example.test" in admin("alias", "list").stdout
    assert "biuro@example.test" in admin("user", "show", "ala@example.test").stdout
    assert admin("alias", "del", "biuro@example.test").returncode == 0
    assert "no aliases" in admin("alias", "list").stdout


def test_delete_keeps_mail_unless_purged(admin: Admin) -> None:
    from mailsuite.store import Store

    store = Store(Path(admin.config["paths"]["maildirs"]))
    for name in ("keep", "gone"):
        admin("user", "add", f"{name}@example.test", "--temporary")
        store.deliver([f"{name}@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
    root = Path(admin.config["paths"]["maildirs"]) / "example.test"
    result = admin("user", "del", "keep@example.test")
    assert result.returncode == 0 and "kept" in result.stdout
    assert (root / "keep").is_dir()
    result = admin("user", "del", "gone@example.test", "--purge")
    assert result.returncode == 0
    assert not (root / "gone").exists()
    assert admin.directory().get_account("gone@example.test") is None
