"""Admin tasks done with the CLI alone, never with SQLite: editing accounts, what `user show`
and `user list` say, temporary passwords, and the rules `check-config` and `user add` share."""

from __future__ import annotations

import email
import email.policy
import html
import http.cookiejar
import imaplib
import poplib
import re
import smtplib
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailsuite.passwords import verify_password_sync

from .conftest import Admin

CONTACT = "kontakt@example.test"


@pytest.mark.parametrize(
    ("domain", "valid"),
    [("intranet", True), ("poczta.example.pl", True), ("10.0.0.1", False), ("-x.pl", False)],
)
def test_check_config_and_user_add_accept_the_same_domains(
    tmp_path: Path, domain: str, valid: bool
) -> None:
    """A domain check-config passes can hold accounts; one it refuses is refused by both."""
    admin = Admin(tmp_path, {"domains": [domain]})
    checked = admin("check-config")
    added = admin("user", "add", f"ala@{domain}", "--temporary")
    assert (checked.returncode == 0) is valid, checked.stderr
    assert (added.returncode == 0) is valid, added.stderr
    assert "Traceback" not in checked.stderr + added.stderr
    if valid:
        assert f"created ala@{domain}" in added.stdout
    else:
        assert "not valid domain names" in checked.stderr


def show(run: Callable[..., Any], address: str) -> dict[str, str]:
    """`user show` as a mapping of its rows (`run`: an Admin, or a suite's `cli`)."""
    done = run("user", "show", address)
    assert done.returncode == 0, done.stderr
    rows = (line.split(":", 1) for line in done.stdout.splitlines())
    return {key.strip(): value.strip() for key, value in rows}


def listed(run: Callable[..., Any], address: str) -> list[str]:
    """The columns of ADDRESS's line in `user list`."""
    done = run("user", "list")
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith(address + " ")]
    return line.split()


def test_user_edit_changes_every_field_and_show_tells_them(tmp_path: Path) -> None:
    admin = Admin(tmp_path)
    assert admin("user", "add", "ala@example.test", "--temporary").returncode == 0
    assert show(admin, "ala@example.test")["quota"] == "none"

    done = admin(
        "user", "edit", "ala@example.test", "--name", "Ala Kot", "--contact", "ala@home.example",
        "--language", "en", "--add-login", "482913", "--add-login", "ala.kot", "--quota", "2G",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    shown = show(admin, "ala@example.test")
    assert shown["name"] == "Ala Kot" and shown["contact"] == "ala@home.example"
    assert shown["language"] == "en" and shown["quota"] == "2G"
    assert shown["login names"] == "482913, ala.kot"
    directory = admin.directory()
    assert directory.resolve_login("482913").address == "ala@example.test"
    assert directory.resolve_login("ALA.KOT").address == "ala@example.test"
    assert directory.get_account("ala@example.test").quota == 2 * 1024**3

    done = admin(
        "user", "edit", "ala@example.test", "--language", "site", "--remove-login", "ala.kot",
        "--quota", "none", "--contact", "",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = show(admin, "ala@example.test")
    assert shown["language"] == "pl (the site's)" and shown["login names"] == "482913"
    assert shown["quota"] == "none" and shown["contact"] == "-"
    events = [e["event"] for e in directory.audit_log("ala@example.test")]
    assert events.count("account.edit") == 2


def test_a_refused_edit_changes_nothing(tmp_path: Path) -> None:
    admin = Admin(tmp_path)
    admin("user", "add", "ala@example.test", "--temporary", "--login", "482913")
    admin("user", "add", "ola@example.test", "--temporary", "--legacy-login", "OL000001")
    before = show(admin, "ola@example.test")
    for args, message in [
        (["--name", "Ola", "--add-login", "482913"], "login '482913' is already in use"),
        (["--name", "Ola", "--add-login", "ol000001"], "login 'ol000001' is already in use"),
        (["--name", "Ola", "--add-login", "ola@example.test"], "cannot be a login name"),
        (["--name", "Ola", "--remove-login", "777777"], "has no login name '777777'"),
        (["--name", "Ola", "--contact", "not an address"], "not an e-mail address"),
        (["--quota", "lots"], "expected a size such as 500M or 2G"),
        ([], "nothing to change"),
    ]:
        done = admin("user", "edit", "ola@example.test", *args)
        assert done.returncode in (1, 2) and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert show(admin, "ola@example.test") == before, args
    done = admin("user", "edit", "ala@example.test", "--legacy-login", "482913")
    assert done.returncode == 1 and "is in use" in done.stderr


def test_show_and_list_agree_on_the_password_of_an_invited_account(suite_factory: Any) -> None:
    """An invitation whose link was never used has no password, in both listings."""
    suite = suite_factory(start=False)
    suite.add_user("kontakt@example.test")
    done = suite.cli("user", "invite", "nowy@example.test", "--contact", "kontakt@example.test")
    assert done.returncode == 0, done.stderr
    suite.cli("user", "add", "tymczas@example.test", "--temporary")
    for address, state in [
        ("nowy@example.test", "none"),
        ("tymczas@example.test", "temporary"),
        ("kontakt@example.test", "set"),
    ]:
        assert listed(suite.cli, address)[2] == state
        assert show(suite.cli, address)["password"].split()[0] == state


def test_passwd_temporary_mails_the_contact_like_add_does(suite_factory: Any) -> None:
    suite = suite_factory(start=False)
    suite.add_user("kontakt@example.test")
    suite.add_user("ala@example.test", contact="kontakt@example.test", login_names=["482913"])

    done = suite.cli("user", "passwd", "ala@example.test", "--temporary")

    assert done.returncode == 0, done.stderr
    assert "login and temporary password e-mailed to kontakt@example.test" in done.stdout
    assert "shown once" not in done.stdout
    (mail,) = (suite.maildir("kontakt@example.test") / "new").iterdir()
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",)).get_content()
    assert "Login: 482913" in body and "Adres skrzynki: ala@example.test" in body
    temporary = re.search(r"Hasło tymczasowe: (\S+)", body).group(1)
    account = suite.directory.get_account("ala@example.test")
    assert account.must_change and verify_password_sync(temporary, account.password_hash)
    assert temporary not in done.stdout + done.stderr

    suite.cli("user", "edit", "ala@example.test", "--contact", "")
    done = suite.cli("user", "passwd", "ala@example.test", "--temporary")
    assert done.returncode == 0 and "temporary password (shown once): " in done.stdout


def activate(suite: Any, link: str, password: str) -> str:
    """Set the first password through the activation page, as a browser would."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    url = f"http://127.0.0.1:{suite.port('web')}{link}"
    with opener.open(url, timeout=10) as page:
        token = re.search(r'name="csrf" value="([^"]+)"', page.read().decode())
    assert token is not None
    form = {"csrf": html.unescape(token.group(1)), "nowe": password, "powtorzone": password}
    with opener.open(url, data=urllib.parse.urlencode(form).encode(), timeout=10) as reply:
        return html.unescape(reply.read().decode())


def test_seed_002_the_login_is_a_six_digit_number_mailed_after_the_password_is_set(
    suite_factory: Any,
) -> None:
    """Invited, the user sets a password by the link; then a mail gives the six-digit login,
    which signs in over IMAP, POP3 and SMTP with no notice to use the address instead."""
    suite = suite_factory({"accounts": {"login_digits": 6}})
    suite.add_user(CONTACT)
    done = suite.cli("user", "invite", "klient@example.test", "--contact", CONTACT)
    assert done.returncode == 0, done.stderr
    (login,) = suite.directory.login_names("klient@example.test")
    assert re.fullmatch(r"[1-9]\d{5}", login)
    assert show(suite.cli, "klient@example.test")["login names"] == login
    link = re.search(r"https?://\S+(/aktywuj/\S+)", last_body(suite)).group(1)

    page = activate(suite, link, "Portal-2024")

    assert "Hasło zostało ustawione" in page
    body = last_body(suite)
    assert f"Twój login to:\n\n  {login}\n" in body.replace("\r\n", "\n")
    assert "klient@example.test" in body
    with imaplib.IMAP4("127.0.0.1", suite.port("imap")) as imap:
        assert imap.login(login, "Portal-2024")[0] == "OK"
        assert b"ALERT" not in b" ".join(imap.untagged_responses.get("OK", []))
    pop = poplib.POP3("127.0.0.1", suite.port("pop3"), timeout=10)
    pop.user(login)
    assert pop.pass_("Portal-2024").startswith(b"+OK Logged in")
    pop.quit()
    with smtplib.SMTP("127.0.0.1", suite.port("submission"), timeout=10) as smtp:
        code, text = smtp.login(login, "Portal-2024")
        assert code == 235 and b"klient@example.test" not in text


def last_body(suite: Any, address: str = CONTACT) -> str:
    folder = suite.maildir(address)
    files = sorted(
        (p for sub in ("new", "cur") for p in (folder / sub).iterdir()),
        key=lambda p: p.stat().st_mtime_ns,
    )
    message = email.message_from_bytes(files[-1].read_bytes(), policy=email.policy.default)
    return message.get_body(("plain",)).get_content()
