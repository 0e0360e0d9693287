"""Legacy logins before, during and after the migration window, on every protocol.

Each phase is a running suite whose `migration.window_start` and `migration.cutoff` put today
before, inside or after the window. Migrated users sign in with their legacy logins through
real clients: imaplib, poplib, smtplib, and urllib on the web site's change-password page
(the first thing a migrated user with a temporary password does). Inside the window the old
login works and the user is told to switch; outside it the old login is refused, and the full
address is named only to someone who gave the right password. What the clients are told is
in the account's language (the site's, Polish, unless the account has its own), as ASCII.
"""

from __future__ import annotations

import html
import http.cookiejar
import imaplib
import poplib
import re
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, timedelta

import pytest

from mailsuite import i18n
from mailsuite.i18n import ascii_text
from tests.conftest import DEFAULT_PASSWORD, Suite

ADDRESS = "p.konarski@example.test"
LEGACY = "AB12CD34"
TODAY = date.today()
WINDOWS = {
    "before": (TODAY + timedelta(days=1), TODAY + timedelta(days=31)),
    "during": (TODAY - timedelta(days=1), TODAY + timedelta(days=30)),
    "after": (TODAY - timedelta(days=30), TODAY),
}
WEB_ADDRESS = "w.kowalski@example.test"
WEB_LEGACY = "WK000001"
TEMPORARY = "Tymczasowe-77"
EN_ADDRESS = "j.smith@example.test"
EN_LEGACY = "JS000001"


def switch(lang: str, address: str, login: str) -> str:
    """The notice of the window's end that a client gets for a legacy login in `lang`."""
    until = i18n.text(lang, "auth.legacy_until", date=WINDOWS["during"][1].isoformat())
    words = i18n.text(lang, "auth.legacy_notice", address=address, login=login, until=until)
    return ascii_text(words)


def changed(lang: str, address: str) -> str:
    return ascii_text(i18n.text(lang, "auth.legacy_expired", address=address))


SWITCH = switch("pl", ADDRESS, LEGACY)
CHANGED = changed("pl", ADDRESS)


@pytest.fixture(scope="module", params=list(WINDOWS))
def phase(request, tmp_path_factory) -> tuple[str, Suite]:
    start, cutoff = WINDOWS[request.param]
    suite = Suite(
        tmp_path_factory.mktemp(f"legacy-{request.param}"),
        {"migration": {"window_start": start.isoformat(), "cutoff": cutoff.isoformat()}},
    )
    suite.start()
    suite.add_user(ADDRESS, legacy_login=LEGACY)
    suite.add_user(WEB_ADDRESS, TEMPORARY, temporary=True, legacy_login=WEB_LEGACY)
    suite.add_user(EN_ADDRESS, legacy_login=EN_LEGACY)
    suite.directory.update_account(EN_ADDRESS, language="en")
    yield request.param, suite
    suite.close()


def imap_login(suite: Suite, login: str, password: str) -> tuple[str, str, list[bytes]]:
    """(status, tagged text, untagged OK lines) of one LOGIN."""
    conn = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
    try:
        try:
            typ, data = conn.login(login, password)
            text = data[0].decode()
        except imaplib.IMAP4.error as exc:
            typ, text = "NO", str(exc)
        return typ, text, list(conn.untagged_responses.get("OK", []))
    finally:
        conn.shutdown()


def pop3_login(suite: Suite, login: str, password: str) -> str:
    conn = poplib.POP3("127.0.0.1", suite.port("pop3"), timeout=10)
    try:
        conn.user(login)
        try:
            return conn.pass_(password).decode()
        except poplib.error_proto as exc:
            return exc.args[0].decode()
    finally:
        conn.close()


def smtp_login(suite: Suite, login: str, password: str) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", suite.port("submission"), timeout=10) as conn:
        conn.ehlo()
        try:
            code, text = conn.login(login, password)
        except smtplib.SMTPAuthenticationError as exc:
            code, text = exc.smtp_code, exc.smtp_error
        return code, text.decode()


def test_imap(phase):
    name, suite = phase
    typ, text, untagged = imap_login(suite, LEGACY, DEFAULT_PASSWORD)
    alerts = b" ".join(untagged).decode()
    if name == "during":
        assert typ == "OK"
        assert f"[ALERT] {SWITCH}" in alerts
        assert f"{LEGACY} przestanie dzialac {WINDOWS['during'][1]}." in alerts
    else:
        assert typ == "NO"
        assert f"[ALERT] {CHANGED}" in text
    typ, text, _ = imap_login(suite, LEGACY, "Wrong-Pass-1")
    assert typ == "NO" and "[AUTHENTICATIONFAILED]" in text and ADDRESS not in text
    typ, _, untagged = imap_login(suite, ADDRESS, DEFAULT_PASSWORD)
    assert typ == "OK" and b"ALERT" not in b" ".join(untagged)


def test_pop3(phase):
    name, suite = phase
    reply = pop3_login(suite, LEGACY, DEFAULT_PASSWORD)
    if name == "during":
        assert reply.startswith("+OK Logged in") and SWITCH in reply
    else:
        assert reply == f"-ERR [AUTH] {CHANGED}"
    wrong = pop3_login(suite, LEGACY, "Wrong-Pass-1")
    assert wrong.startswith("-ERR [AUTH]") and ADDRESS not in wrong
    assert pop3_login(suite, ADDRESS, DEFAULT_PASSWORD).startswith("+OK Logged in")


def test_smtp_auth(phase):
    name, suite = phase
    code, text = smtp_login(suite, LEGACY, DEFAULT_PASSWORD)
    if name == "during":
        assert code == 235 and SWITCH in text
    else:
        assert code == 535 and CHANGED in text
    code, text = smtp_login(suite, LEGACY, "Wrong-Pass-1")
    assert code == 535 and ADDRESS not in text
    code, _ = smtp_login(suite, ADDRESS, DEFAULT_PASSWORD)
    assert code == 235


def test_an_english_account_is_told_in_english_on_every_protocol(phase):
    """The account's own language decides what IMAP, POP3 and SMTP tell its user."""
    name, suite = phase
    typ, text, untagged = imap_login(suite, EN_LEGACY, DEFAULT_PASSWORD)
    pop3 = pop3_login(suite, EN_LEGACY, DEFAULT_PASSWORD)
    code, smtp = smtp_login(suite, EN_LEGACY, DEFAULT_PASSWORD)
    if name == "during":
        notice = switch("en", EN_ADDRESS, EN_LEGACY)
        assert notice.startswith("Please sign in with your full address")
        assert typ == "OK" and f"[ALERT] {notice}" in b" ".join(untagged).decode()
        assert pop3.startswith("+OK") and notice in pop3
        assert code == 235 and notice in smtp
    else:
        refusal = changed("en", EN_ADDRESS)
        assert refusal.startswith("Your login has changed")
        assert typ == "NO" and f"[ALERT] {refusal}" in text
        assert pop3 == f"-ERR [AUTH] {refusal}"
        assert code == 535 and refusal in smtp


def test_legacy_login_is_recorded_as_a_login_only_when_let_in(phase):
    """`migrate status` reads last_login: only a successful login may set it."""
    name, suite = phase
    account = suite.directory.get_account(ADDRESS)
    suite.directory.update_account(ADDRESS, last_login=None)
    imap_login(suite, LEGACY, DEFAULT_PASSWORD)
    after = suite.directory.get_account(ADDRESS).last_login
    assert (after is not None) == (name == "during"), account


def change_password(suite: Suite, login: str, current: str, new: str) -> tuple[int, str]:
    """Fill in the change-password form as a browser would: GET (CSRF cookie), then POST."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    url = f"http://127.0.0.1:{suite.port('web')}/zmien-haslo?lang=en"
    with opener.open(url, timeout=10) as page:
        token = re.search(r'name="csrf" value="([^"]+)"', page.read().decode())
    assert token is not None
    form = {"csrf": html.unescape(token.group(1)), "konto": login, "aktualne": current,
            "nowe": new, "powtorzone": new}  # fmt: skip
    data = urllib.parse.urlencode(form).encode()
    try:
        with opener.open(url, data=data, timeout=10) as reply:
            return reply.status, html.unescape(reply.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, html.unescape(exc.read().decode())


def test_web_change_password_page(phase):
    name, suite = phase
    status, page = change_password(suite, WEB_LEGACY, "Wrong-Pass-1", "Nowe-Haslo-2024")
    assert status == 400 and "Wrong account or password." in page and WEB_ADDRESS not in page

    status, page = change_password(suite, WEB_LEGACY, TEMPORARY, "Nowe-Haslo-2024")

    if name == "during":
        assert status == 200 and "Your password has been changed." in page
        assert (
            f'<p class="notice">From now on, sign in with your full address {WEB_ADDRESS}. '
            f"The old login {WEB_LEGACY} stops working on {WINDOWS['during'][1]}.</p>"
        ) in page
        assert not suite.directory.get_account(WEB_ADDRESS).must_change
    else:
        assert status == 400
        assert f"Your old login no longer works. Use your full address: {WEB_ADDRESS}" in page
        assert suite.directory.get_account(WEB_ADDRESS).must_change


def test_a_permanent_login_name_works_everywhere_in_every_phase_without_the_notice(phase):
    """Seed 002's six-digit login is not a legacy login: it works before, during and after
    the window, on IMAP, POP3, SMTP and the web site, and nobody is told to switch."""
    _, suite = phase
    address = "portal.klient@example.test"
    suite.add_user(address, TEMPORARY, temporary=True, login_names=["482913"])

    status, page = change_password(suite, "482913", TEMPORARY, "Nowe-Haslo-2024")
    assert status == 200 and "Your password has been changed." in page, page
    assert 'class="notice"' not in page

    typ, _, untagged = imap_login(suite, "482913", "Nowe-Haslo-2024")
    assert typ == "OK" and b"ALERT" not in b" ".join(untagged)
    assert (
        pop3_login(suite, "482913", "Nowe-Haslo-2024") == "+OK Logged in, 0 message(s) (0 octets)."
    )
    code, text = smtp_login(suite, "482913", "Nowe-Haslo-2024")
    assert code == 235 and address not in text
    typ, text, _ = imap_login(suite, "482914", "Nowe-Haslo-2024")
    assert typ == "NO" and address not in text
