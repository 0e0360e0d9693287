"""The haslo site in a real headless Chromium against a running `mailsuite serve`.

A user with a temporary password is refused over IMAP, fills in the Polish form, sees each
broken rule named, succeeds, and then logs in over IMAP. The admin commands `user add
--temporary --contact` and `user invite` e-mail through the suite's own delivery path, and
the mails' links and passwords work in the browser. With MAILSUITE_SCREENSHOTS set to a
folder, the pages are saved there as PNGs (docs/screenshots/ in the README).
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, Page

from .browser import chromium, errors, open_page, shot
from .conftest import ROOT, Suite

TEMP = "Tymczas0wy1"
CONTACT = "kontakt@example.org"
SEED_000 = {
    "min_length": 8,
    "max_length": 16,
    "forbid_special": True,
    "forbid_non_ascii": True,
}


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """The suite configured like seed 000's bank: its password rules, and its site's name,
    organisation and help line as config/examples/seed-000-bank.yaml gives them."""
    example = yaml.safe_load((ROOT / "config" / "examples" / "seed-000-bank.yaml").read_text())
    config = {"password_policy": SEED_000, "site": example["site"]}
    suite = Suite(tmp_path_factory.mktemp("bank"), config)
    suite.start()
    suite.add_user(CONTACT, "Kontakt123")
    yield suite
    suite.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context, p = open_page(browser, "pl-PL", 1000, timeout=10_000)
    yield p
    context.close()


def fill_change(page: Page, login: str, current: str, new: str, repeat: str) -> None:
    page.get_by_label("Konto", exact=True).fill(login)
    page.get_by_label("Aktualne hasło", exact=True).fill(current)
    page.get_by_label("Nowe hasło", exact=True).fill(new)
    page.get_by_label("Nowe hasło (ponownie)", exact=True).fill(repeat)
    page.get_by_role("button", name="Zmień hasło").click()


def mails(suite: Suite, address: str = CONTACT) -> list[email.message.EmailMessage]:
    maildir = suite.maildir(address)
    files = sorted(
        (p for sub in ("new", "cur") for p in (maildir / sub).glob("*") if p.is_file()),
        key=lambda p: p.stat().st_mtime,
    )
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def last_body(suite: Suite, address: str = CONTACT) -> str:
    return mails(suite, address)[-1].get_body(("plain",)).get_content()


def imap_login(suite: Suite, login: str, password: str) -> str:
    with imaplib.IMAP4("127.0.0.1", suite.port("imap")) as imap:
        try:
            typ, _ = imap.login(login, password)
            return typ
        except imaplib.IMAP4.error as exc:
            return str(exc)


def test_change_the_initial_password_then_log_in_over_imap(
    bank: Suite, page: Page, tmp_path: Path
) -> None:
    bank.add_user("p.konarski@example.test", TEMP, temporary=True, legacy_login="pk12ab34")
    refused = imap_login(bank, "p.konarski@example.test", TEMP)
    assert "/zmien-haslo" in refused
    web = f"http://127.0.0.1:{bank.port('web')}"
    page.goto(f"{web}/zmien-haslo")
    assert page.locator("html").get_attribute("lang") == "pl"
    assert page.locator("form input:not([type=hidden])").count() == 4
    shot(page, "haslo-zmiana", tmp_path)

    cases = [
        ("nikt", TEMP, "Dobrehaslo1", "Dobrehaslo1", ["Nieprawidłowe konto lub hasło."]),
        ("pk12ab34", "zle-haslo", "Dobrehaslo1", "Dobrehaslo1", ["Nieprawidłowe konto lub hasło."]),
        (
            "pk12ab34",
            TEMP,
            "Dobrehaslo1",
            "Dobrehaslo2",
            ["Nowe hasło i jego powtórzenie różnią się."],
        ),
        ("pk12ab34", TEMP, TEMP, TEMP, ["Nowe hasło musi różnić się od aktualnego."]),
        ("pk12ab34", TEMP, "krotkie", "krotkie", ["Nowe hasło: co najmniej 8 znaków."]),
        (
            "pk12ab34",
            TEMP,
            "Bardzodlugiehaslo1",
            "Bardzodlugiehaslo1",
            ["Nowe hasło: najwyżej 16 znaków."],
        ),
        (
            "pk12ab34",
            TEMP,
            "Haslo!1234",
            "Haslo!1234",
            ["Nowe hasło: bez znaków specjalnych (tylko litery i cyfry)."],
        ),
        ("pk12ab34", TEMP, "Hasłoźle12", "Hasłoźle12", ["Nowe hasło: bez polskich liter."]),
        (
            "pk12ab34",
            TEMP,
            "konarski12",
            "konarski12",
            ["Nowe hasło: nie może zawierać nazwy konta."],
        ),
    ]
    for login, current, new, repeat, expected in cases:
        fill_change(page, login, current, new, repeat)
        assert errors(page) == expected, (login, new)
        # The error summary is announced, and the account typed is kept.
        assert page.locator(".errors").get_attribute("role") == "alert"
        assert page.get_by_label("Konto", exact=True).input_value() == login
        if new == "Haslo!1234":
            shot(page, "haslo-zmiana-bledy", tmp_path)

    fill_change(page, "pk12ab34", TEMP, "Nowehaslo7", "Nowehaslo7")
    assert page.get_by_role("status").inner_text().strip() == "Hasło zostało zmienione."
    assert page.locator("dd strong").inner_text() == "p.konarski@example.test"
    body = page.locator("table.servers").inner_text()
    assert str(bank.port("imap")) in body and str(bank.port("submission")) in body
    shot(page, "haslo-zmiana-sukces", tmp_path)

    assert imap_login(bank, "p.konarski@example.test", "Nowehaslo7") == "OK"
    assert TEMP not in bank.log() and "Nowehaslo7" not in bank.log()


def test_the_form_fits_a_phone_and_speaks_english(
    browser: Browser, bank: Suite, tmp_path: Path
) -> None:
    context = browser.new_context(
        locale="pl-PL", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        p = context.new_page()
        p.goto(f"http://127.0.0.1:{bank.port('web')}/zmien-haslo")
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        shot(p, "haslo-zmiana-telefon", tmp_path)
        p.get_by_role("link", name="English").click()
        assert p.locator("html").get_attribute("lang") == "en"
        assert p.get_by_label("New password (again)").count() == 1
        shot(p, "haslo-zmiana-en", tmp_path)
    finally:
        context.close()


def test_admin_registration_mails_the_temporary_password(
    bank: Suite, page: Page, tmp_path: Path
) -> None:
    done = bank.cli("user", "add", "ibok@example.test", "--temporary", "--contact", CONTACT)
    assert done.returncode == 0, done.stderr
    assert "e-mailed to kontakt@example.org" in done.stdout
    body = last_body(bank)
    temporary = re.search(r"Hasło tymczasowe: (\S+)", body).group(1)
    assert "Login: ibok@example.test" in body and temporary not in done.stdout
    assert "/zmien-haslo" in imap_login(bank, "ibok@example.test", temporary)
    page.goto(f"http://127.0.0.1:{bank.port('web')}/zmien-haslo")
    fill_change(page, "ibok@example.test", temporary, "Wodnehaslo9", "Wodnehaslo9")
    assert page.get_by_role("status").inner_text().strip() == "Hasło zostało zmienione."
    assert imap_login(bank, "ibok@example.test", "Wodnehaslo9") == "OK"


def test_invitation_link_sets_the_first_password_once(
    bank: Suite, page: Page, tmp_path: Path
) -> None:
    done = bank.cli("user", "invite", "portal@example.test", "--contact", CONTACT)
    assert done.returncode == 0, done.stderr
    link = re.search(r"https?://\S+(/aktywuj/\S+)", last_body(bank)).group(1)
    web = f"http://127.0.0.1:{bank.port('web')}"
    page.goto(web + link)
    assert page.get_by_role("heading", level=1).inner_text() == "Ustawienie hasła"
    assert "co najmniej 8 znaków" in page.locator(".policy").inner_text()
    shot(page, "haslo-aktywacja", tmp_path)
    page.get_by_label("Nowe hasło", exact=True).fill("Aktywne2024")
    page.get_by_label("Powtórz hasło", exact=True).fill("Aktywne2024")
    page.get_by_role("button", name="Dalej").click()
    assert "Hasło zostało ustawione" in page.get_by_role("status").inner_text()
    assert "portal@example.test" in last_body(bank)
    assert imap_login(bank, "portal@example.test", "Aktywne2024") == "OK"
    page.goto(web + link)
    assert page.get_by_role("heading", level=1).inner_text() == "Link został już użyty"
    shot(page, "haslo-link-uzyty", tmp_path)
    assert link.rpartition("/")[2] not in bank.log()


def test_forgotten_password_and_the_account_page(bank: Suite, page: Page, tmp_path: Path) -> None:
    bank.add_user("zapomnial@example.test", "Stare12345", contact=CONTACT)
    web = f"http://127.0.0.1:{bank.port('web')}"
    page.goto(f"{web}/nie-pamietam-hasla")
    shot(page, "haslo-nie-pamietam", tmp_path)
    page.get_by_label("Login").fill("zapomnial@example.test")
    page.get_by_role("button", name="Wyślij hasło tymczasowe").click()
    assert "Jeśli takie konto istnieje" in page.get_by_role("status").inner_text()
    for _ in range(100):
        body = last_body(bank)
        if "zapomnial@example.test" in body:
            break
        page.wait_for_timeout(50)
    temporary = re.search(r"Hasło tymczasowe: (\S+)", body).group(1)
    page.goto(f"{web}/zmien-haslo")
    fill_change(page, "zapomnial@example.test", temporary, "Nowe12345", "Nowe12345")
    assert page.get_by_role("status").inner_text().strip() == "Hasło zostało zmienione."

    page.goto(f"{web}/konto")
    shot(page, "konto-logowanie", tmp_path)
    page.get_by_label("Login").fill("zapomnial@example.test")
    page.get_by_label("Hasło", exact=True).fill("Nowe12345")
    page.get_by_role("button", name="Wyślij kod").click()
    code = re.search(r"kod autoryzacyjny: (\d{6})", last_body(bank)).group(1)
    shot(page, "konto-kod", tmp_path)
    page.get_by_label("Kod autoryzacyjny").fill(code)
    page.get_by_role("button", name="Zaloguj się").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Regulamin"
    shot(page, "konto-regulamin", tmp_path)
    page.get_by_label("akceptuję").check()
    page.get_by_role("button", name="Zapisz").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Moje konto"
    nav = page.get_by_role("navigation", name="Sekcje konta")
    # Other features add their own sections after these (register_section).
    sections = nav.get_by_role("link").all_inner_texts()
    assert sections[:3] == ["Dane konta", "Hasło", "Program pocztowy"]
    shot(page, "konto", tmp_path)
    page.get_by_role("button", name="Wyloguj").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Logowanie do konta"


def test_https_with_the_suite_certificate(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """With web.tls on, the site speaks HTTPS with the suite's certificate and sends HSTS."""
    suite = suite_factory({"web": {"tls": True}})
    context = ssl.create_default_context(cafile=suite.config["paths"]["tls_cert"])
    context.check_hostname = False
    url = f"https://127.0.0.1:{suite.port('web')}/zmien-haslo"
    with urllib.request.urlopen(url, context=context) as response:
        assert response.status == 200
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert "Secure" in response.headers["Set-Cookie"]


def test_plain_http_is_refused_off_loopback(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """web.tls: false is the loopback demo's setting; on a public address serve refuses."""
    suite = suite_factory({"listen": {"web": "0.0.0.0:0"}, "web": {"tls": False}}, start=False)
    with pytest.raises(RuntimeError, match=r"web\.tls is off, so the site may only listen on"):
        suite.start()
