"""Seed 001 in a real headless Chromium with JavaScript off: the external-account wizard.

The suite runs `mailsuite serve` on the seed's example config (config/examples/
seed-001-hosting.yaml, moved to loopback ports); Dovecot plays the remote provider. In Polish
and in English, on a 1280 px screen and a 390 px phone, a user picks a provider, switches to
POP3 with the "Zmień protokół" button and sees POP3's settings, gives the IMAP port by
mistake and is told what answered there, corrects it and is told the account is saved,
presses "Pobierz teraz" and sees the messages arrive, and deletes the account after
confirming. With MAILSUITE_SCREENSHOTS set to a folder, the pages are saved there as PNGs
(docs/screenshots/ in the README).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page

from tests.browser import chromium, errors, open_page, shot, status
from tests.conftest import ROOT, Suite
from tests.dovecot import PASSWORD, Dovecot, message

pytestmark = pytest.mark.timeout(240)

EXAMPLE = ROOT / "config" / "examples" / "seed-001-hosting.yaml"
REMOTE_USERS = ("pl1280", "pl390", "en1280", "en390")

WORDS: dict[str, dict[str, str]] = {
    "pl": {
        "locale": "pl-PL",
        "add": "Dodaj nowe konto",
        "label": "Dostawca",
        "name": "Twoja nazwa",
        "email": "Adres e-mail",
        "password": "Hasło",
        "next": "Dalej",
        "pop3": "POP3 (tylko skrzynka odbiorcza)",
        "switch": "Zmień protokół",
        "switched": "Pokazujemy ustawienia protokołu POP3. Sprawdź je i zapisz.",
        "host": "Serwer",
        "port": "Port",
        "login": "Login",
        "self_signed": "Akceptuj certyfikat z podpisem własnym",
        "save": "Zapisz i sprawdź połączenie",
        "wrong": "127.0.0.1:{port} to serwer IMAP, nie POP3; wybierz protokół IMAP albo podaj "
        "port serwera POP3 (zwykle 995 z TLS).",
        "added": "Konto Gmail dodane: połączenie i logowanie działają. Pobieranie wiadomości "
        "rozpocznie się za chwilę.",
        "fetch": "Pobierz teraz",
        "fetching": "Pobieranie konta Gmail rozpocznie się za chwilę.",
        "delete": "Usuń konto",
        "confirm_title": "Usunąć konto Gmail?",
        "confirm": "Tak, usuń konto",
        "deleted": "Konto Gmail usunięte. Katalog Gmail z pobranymi wiadomościami został w "
        "Twojej skrzynce.",
    },
    "en": {
        "locale": "en-GB",
        "add": "Add a new account",
        "label": "Provider",
        "name": "Your name",
        "email": "E-mail address",
        "password": "Password",
        "next": "Next",
        "pop3": "POP3 (the inbox only)",
        "switch": "Change protocol",
        "switched": "These are the POP3 settings. Check them and save.",
        "host": "Server",
        "port": "Port",
        "login": "Login",
        "self_signed": "Accept a self-signed certificate",
        "save": "Save and test the connection",
        "wrong": "127.0.0.1:{port} speaks IMAP, not POP3; choose IMAP, or give the port of the "
        "POP3 server (usually 995 with TLS).",
        "added": "Account Gmail added: the connection and the login work. Fetching starts in a "
        "moment.",
        "fetch": "Fetch now",
        "fetching": "Fetching Gmail starts in a moment.",
        "delete": "Delete account",
        "confirm_title": "Delete the account Gmail?",
        "confirm": "Yes, delete the account",
        "deleted": "Account Gmail deleted. The folder Gmail with the fetched messages stays in "
        "your mailbox.",
    },
}


def seed_001_config() -> dict[str, Any]:
    """The example config as shipped, on loopback: its own listeners and public address
    give way to the test's free ports."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data.pop("listen")
    data["web"].pop("base_url")
    return data


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    server = Dovecot(tmp_path_factory.mktemp("dovecot"), users=REMOTE_USERS).start()
    for user in REMOTE_USERS:
        for n in range(3):
            server.put(user, message(n, f"{user} {n}"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hosting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    suite = Suite(tmp_path_factory.mktemp("hosting"), seed_001_config())
    suite.start()
    yield suite
    suite.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def signed_in(suite: Suite, address: str) -> str:
    """A session for `address`, as after the password and the e-mailed code."""
    suite.add_user(address)
    suite.directory.update_account(address, terms_accepted=suite.directory.clock())
    session = secrets.token_urlsafe(32)
    suite.directory.create_token("web-session", address, session, 3600)
    return session


def fits(page: Page, width: int) -> bool:
    box = page.locator("main").bounding_box()
    return box is not None and box["x"] + box["width"] <= width + 1


@pytest.mark.parametrize(("lang", "width"), [("pl", 1280), ("pl", 390), ("en", 1280), ("en", 390)])
def test_the_wizard_without_javascript_from_provider_to_delete(
    browser: Browser,
    hosting: Suite,
    dovecot: Dovecot,
    tmp_path: Path,
    lang: str,
    width: int,
) -> None:
    w = WORDS[lang]
    remote = f"{lang}{width}"
    address = f"{remote}@hosting.example.pl"
    web = f"http://127.0.0.1:{hosting.port('web')}"
    phone = width < 600
    context, page = open_page(browser, w["locale"], width, java_script_enabled=False)
    context.add_cookies([{"name": "sesja", "value": signed_in(hosting, address), "url": web}])
    screenshots = lang == "pl"
    suffix = "-telefon" if phone else ""
    try:
        page.goto(f"{web}/konto")
        assert page.locator("html").get_attribute("lang") == lang
        page.get_by_role("link", name=w["add"]).first.click()
        # Step 1: the provider picked by name, the address and the password.
        page.get_by_label(w["label"], exact=True).fill("Gmail")
        page.get_by_label(w["name"], exact=True).fill("Ala Kowalska")
        page.get_by_label(w["email"], exact=True).fill(f"{remote}@gmail.com")
        page.get_by_label(w["password"], exact=True).fill(PASSWORD)
        page.get_by_role("button", name=w["next"]).click()
        assert page.get_by_label(w["host"], exact=True).input_value() == "imap.gmail.com"
        assert page.get_by_label(w["port"], exact=True).input_value() == "993"
        # POP3 chosen and asked for: its settings, no script involved.
        page.get_by_label(w["pop3"]).check()
        page.get_by_role("button", name=w["switch"]).click()
        assert status(page) == w["switched"]
        assert page.get_by_label(w["host"], exact=True).input_value() == "pop.gmail.com"
        assert page.get_by_label(w["port"], exact=True).input_value() == "995"
        assert page.get_by_label(w["pop3"]).is_checked()
        assert page.get_by_label(w["password"], exact=True).input_value() == ""
        assert PASSWORD not in page.content()
        assert fits(page, width)
        if screenshots:
            shot(page, f"zewnetrzne-krok2{suffix}", tmp_path)
        # The remote's IMAP port given for POP3 by mistake: named on the form.
        page.get_by_label(w["host"], exact=True).fill("127.0.0.1")
        imaps = dovecot.ports["imaps"]
        page.get_by_label(w["port"], exact=True).fill(str(imaps))
        page.get_by_label(w["login"], exact=True).fill(remote)
        page.get_by_label(w["self_signed"]).check()
        page.get_by_role("button", name=w["save"]).click()
        assert errors(page) == [w["wrong"].format(port=imaps)]
        assert page.get_by_label(w["pop3"]).is_checked()
        if screenshots:
            shot(page, f"zewnetrzne-blad{suffix}", tmp_path)
        # Corrected: saved, and the list page says so.
        page.get_by_label(w["port"], exact=True).fill(str(dovecot.ports["pop3s"]))
        page.get_by_role("button", name=w["save"]).click()
        assert status(page) == w["added"]
        account = page.locator("li.external")
        assert "POP3 127.0.0.1" in account.locator("dd.server").inner_text()
        # Pobierz teraz: said at once; the three messages arrive.
        page.get_by_role("button", name=w["fetch"]).click()
        assert status(page) == w["fetching"]
        for _ in range(100):
            if page.locator("dd.messages").inner_text() == "3":
                break
            page.wait_for_timeout(100)
            page.reload()
        assert page.locator("dd.messages").inner_text() == "3"
        if screenshots:
            shot(page, f"zewnetrzne-lista{suffix}", tmp_path)
        # Delete: asked first, then done and said.
        page.get_by_role("link", name=w["delete"]).click()
        assert page.get_by_role("heading", level=1).inner_text() == w["confirm_title"]
        page.get_by_role("button", name=w["confirm"]).click()
        assert status(page) == w["deleted"]
        assert page.locator("li.external").count() == 0
    finally:
        context.close()
