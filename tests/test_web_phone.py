"""The account page on a 390 px phone in a real Chromium, in Polish and English: every
server's port and encryption are on screen, and the e-mail field looks like the others."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from .browser import chromium, open_page, shot
from .conftest import Suite
from .test_web_browser import CONTACT, last_body, mails

PHONE = {"width": 390, "height": 844}
PASSWORD = "Telefon123"
# Long host names, as a real organisation has (seed 000: a POP3 host of its own).
HOSTS = {
    "client_host": "poczta.klienci.bank-przyklad.example.pl",
    "pop3": {"client_host": "pop3.klienci.bank-przyklad.example.pl"},
}
WORDS = {
    "pl": ("Wyślij kod", "Zaloguj się", "akceptuję", "Zapisz", "Port", "Szyfrowanie"),
    "en": ("Send code", "Sign in", "I have read and accept", "Save", "Port", "Security"),
}


@pytest.fixture(scope="module")
def phone_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    suite = Suite(tmp_path_factory.mktemp("phone"), HOSTS)
    suite.start()
    suite.add_user(CONTACT, "Kontakt123")
    yield suite
    suite.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def sign_in(page: Page, suite: Suite, lang: str, address: str) -> None:
    send, enter, accept, save, _, _ = WORDS[lang]
    page.goto(f"http://127.0.0.1:{suite.port('web')}/konto?lang={lang}")
    page.locator("input[name=konto]").fill(address)
    page.locator("input[type=password]").fill(PASSWORD)
    before = len(mails(suite))
    page.get_by_role("button", name=send).click()
    page.locator("input[name=kod]").wait_for()
    for _ in range(100):
        if len(mails(suite)) > before:
            break
        page.wait_for_timeout(50)
    body = last_body(suite)
    found = re.search(r": (\d{6})\b", body)
    assert found, body
    code = found.group(1)
    page.locator("input[name=kod]").fill(code)
    page.get_by_role("button", name=enter).click()
    page.get_by_label(accept).check()
    page.get_by_role("button", name=save).click()


def inside(box: dict[str, float] | None, width: int) -> bool:
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_the_server_table_reads_on_a_phone(
    browser: Browser, phone_suite: Suite, lang: str, tmp_path: Path
) -> None:
    address = f"telefon-{lang}@example.test"
    phone_suite.add_user(address, PASSWORD, contact=CONTACT)
    context, page = open_page(browser, "pl-PL", PHONE["width"], timeout=10_000)
    try:
        sign_in(page, phone_suite, lang, address)
        assert page.locator("html").get_attribute("lang") == lang
        page.locator("#program").scroll_into_view_if_needed()
        shot(page, f"konto-telefon-{lang}", tmp_path)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        rows = page.locator("table.servers tbody tr")
        assert rows.count() == 6  # IMAP, POP3 and submission, each with and without TLS
        _, _, _, _, port_word, security_word = WORDS[lang]
        for n in range(rows.count()):
            cells = rows.nth(n).locator("td")
            host, port, security = (cells.nth(i) for i in range(3))
            for cell in (host, port, security):
                assert cell.is_visible()
                assert inside(cell.bounding_box(), PHONE["width"]), cell.inner_text()
            # Each value is labelled, since the column headings are not on screen.
            label = "e => getComputedStyle(e, '::before').content"
            assert port.evaluate(label) == f'"{port_word}"' and port.inner_text().isdigit()
            assert security.evaluate(label) == f'"{security_word}"'
        pop3 = rows.filter(has_text="POP3").first.locator("td").first
        assert "pop3.klienci.bank-przyklad.example.pl" in pop3.inner_text()
    finally:
        context.close()


def test_the_e_mail_field_looks_like_the_other_fields(browser: Browser, phone_suite: Suite) -> None:
    address = "pole@example.test"
    phone_suite.add_user(address, PASSWORD, contact=CONTACT)
    context, page = open_page(browser, "pl-PL", PHONE["width"], timeout=10_000)
    try:
        sign_in(page, phone_suite, "pl", address)
        page.goto(f"http://127.0.0.1:{phone_suite.port('web')}/konto/zewnetrzne/dodaj")
        style = (
            "e => { const s = getComputedStyle(e); return [s.borderTopWidth, s.borderTopColor,"
            " s.paddingLeft, s.borderRadius, s.fontSize, e.getBoundingClientRect().width]; }"
        )
        email = page.locator("input[type=email]").first.evaluate(style)
        text = page.locator("input[type=text]").first.evaluate(style)
        assert email == text
    finally:
        context.close()
