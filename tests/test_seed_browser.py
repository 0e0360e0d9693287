"""Each seed's own site in a real headless Chromium, from its example config to a mail login.

Every suite runs `mailsuite serve` on a config/examples/ file as shipped (moved to loopback
ports), in Polish and in English, on a 1280 px screen and a 390 px phone:

- seed 000, the bank: the home page names the site once, the header shows the bank's name
  and logo, the footer its help line; a customer types the old alias and the initial
  password, sees every broken rule named at once, changes the password, and POP3 lets them in.
- seed 002, the portal: an invitation link "ważny 72 godziny", the password set on it, the
  six-digit login e-mailed from the portal's own sender, the sign-in with that login and a
  code pasted as "733 383" into a field focused on arrival, the portal's terms, then IMAP.
- seed 003, the water utility: the admin registers a customer, whose letters-and-digits
  password is checked ("najwyżej 64 znaki"), then forgets it and gets a temporary one.
- seed 004, the other utility: a customer must change the temporary password before the
  account page, then signs in with a code and reads the utility's terms file.
- seed 001, the hosting company: the footer ends "sp. z o.o." once, and Enter on the
  external-account wizard's step 2 and on the edit page saves.

Each page is checked for English words in Polish (and Polish in English) with the word list
of tests/test_i18n.py, the organisation's own texts aside. With MAILSUITE_SCREENSHOTS set to
a folder, the bank's home page, the portal's code step on a phone and the utility's terms are
saved there as PNGs (docs/screenshots/ in the README).
"""

from __future__ import annotations

import email
import email.policy
import html
import imaplib
import poplib
import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from mailsuite.accounts import ACTIVATION
from mailsuite.directory import Directory

from .browser import chromium, errors, open_page, shot, status
from .conftest import ROOT, Suite, merge
from .dovecot import PASSWORD, Dovecot
from .test_external_browser import signed_in
from .test_i18n import ENGLISH, POLISH, untranslated_keys, visible_words

pytestmark = pytest.mark.timeout(300)

EXAMPLES = ROOT / "config" / "examples"
SCREENS = [("pl", 1280), ("pl", 390), ("en", 1280), ("en", 390)]
LOCALES = {"pl": "pl-PL", "en": "en-GB"}
# Mail for the seeds' users goes to contact mailboxes on the suite itself, read from disk.
LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40">'
    '<rect width="120" height="40" rx="6" fill="#0b5394"/>'
    '<text x="60" y="27" font-size="20" text-anchor="middle" fill="#fff">BANK</text></svg>'
)

# The words the tests look for, by language: labels, buttons and the texts a user reads.
WORDS: dict[str, dict[str, str]] = {
    "pl": {
        "account": "Konto",
        "current": "Aktualne hasło",
        "new": "Nowe hasło",
        "repeat": "Nowe hasło (ponownie)",
        "again": "Powtórz hasło",
        "change": "Zmień hasło",
        "change_title": "Zmiana hasła",
        "changed": "Hasło zostało zmienione.",
        "activate_title": "Ustawienie hasła",
        "activate": "Dalej",
        "activated": "Hasło zostało ustawione. Login wysłaliśmy na Twój adres kontaktowy.",
        "expired_title": "Link wygasł",
        "expired": "Link aktywacyjny był ważny 72 godziny i już wygasł.",
        "mail_link": "ważny 72 godziny",
        "login": "Login",
        "password": "Hasło",
        "send_code": "Wyślij kod",
        "code_title": "Kod autoryzacyjny",
        "code": "Kod autoryzacyjny",
        "code_valid": "Kod jest ważny 10 minut.",
        "sign_in": "Zaloguj się",
        "terms_title": "Regulamin",
        "accept": "Zapoznałem(-am) się z regulaminem i akceptuję go.",
        "save_terms": "Zapisz",
        "account_title": "Moje konto",
        "reset_title": "Nie pamiętam hasła",
        "reset": "Wyślij hasło tymczasowe",
        "reset_done": "Jeśli takie konto istnieje i ma adres kontaktowy, wysłaliśmy na niego "
        "hasło tymczasowe.",
        "temporary": "Hasło tymczasowe",
        "footer": "Serwis prowadzi {}.",
        "help": "Pomoc: {}",
        "logo": "Logo: {}",
        "rule": "Nowe hasło: {}.",
        "min8": "co najmniej 8 znaków",
        "max16": "najwyżej 16 znaków",
        "max64": "najwyżej 64 znaki",
        "special": "bez znaków specjalnych (tylko litery i cyfry)",
        "ascii": "bez polskich liter",
        "digit": "co najmniej jedna cyfra",
        "letter": "co najmniej jedna litera",
        "upper": "co najmniej jedna wielka litera",
        "lower": "co najmniej jedna mała litera",
        "need_special": "co najmniej jeden znak specjalny (np. ! @ # $ %)",
        "must_change": "Najpierw zmien haslo tymczasowe",
        "ext_add": "Dodaj nowe konto",
        "ext_label": "Dostawca",
        "ext_email": "Adres e-mail",
        "ext_password": "Hasło",
        "ext_next": "Dalej",
        "ext_host": "Serwer",
        "ext_port": "Port",
        "ext_login": "Login",
        "ext_self_signed": "Akceptuj certyfikat z podpisem własnym",
        "ext_added": "Konto {} dodane: połączenie i logowanie działają.",
        "ext_edit": "Edytuj konto",
        "ext_imap": "IMAP (cała struktura katalogów)",
        "ext_pop3": "POP3 (tylko skrzynka odbiorcza)",
        "ext_saved": "Konto {} zapisane.",
    },
    "en": {
        "account": "Account",
        "current": "Current password",
        "new": "New password",
        "repeat": "New password (again)",
        "again": "Repeat password",
        "change": "Change password",
        "change_title": "Change password",
        "changed": "Your password has been changed.",
        "activate_title": "Set your password",
        "activate": "Continue",
        "activated": "Your password is set. We have sent your login to your contact address.",
        "expired_title": "This link has expired",
        "expired": "The activation link was valid for 72 hours and has expired.",
        "mail_link": "valid for 72 hours",
        "login": "Login",
        "password": "Password",
        "send_code": "Send code",
        "code_title": "Authorisation code",
        "code": "Authorisation code",
        "code_valid": "It is valid for 10 minutes.",
        "sign_in": "Sign in",
        "terms_title": "Terms of service",
        "accept": "I have read and accept the terms.",
        "save_terms": "Save",
        "account_title": "My account",
        "reset_title": "Forgot password",
        "reset": "Send a temporary password",
        "reset_done": "If such an account exists and has a contact address, a temporary "
        "password has been sent there.",
        "temporary": "Temporary password",
        "footer": "This service is run by {}.",
        "help": "Help: {}",
        "logo": "Logo: {}",
        "rule": "New password: {}.",
        "min8": "at least 8 characters",
        "max16": "at most 16 characters",
        "max64": "at most 64 characters",
        "special": "letters and digits only",
        "ascii": "no Polish (non-ASCII) letters",
        "digit": "at least one digit",
        "letter": "at least one letter",
        "upper": "at least one upper-case letter",
        "lower": "at least one lower-case letter",
        "need_special": "at least one special character (e.g. ! @ # $ %)",
        "must_change": "Change your temporary password first",
        "ext_add": "Add a new account",
        "ext_label": "Provider",
        "ext_email": "E-mail address",
        "ext_password": "Password",
        "ext_next": "Next",
        "ext_host": "Server",
        "ext_port": "Port",
        "ext_login": "Login",
        "ext_self_signed": "Accept a self-signed certificate",
        "ext_added": "Account {} added: the connection and the login work.",
        "ext_edit": "Edit account",
        "ext_imap": "IMAP (the whole folder structure)",
        "ext_pop3": "POP3 (the inbox only)",
        "ext_saved": "Account {} saved.",
    },
}


# -- the suites, one per seed ----------------------------------------------------------------


def seed_config(name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """config/examples/<name>.yaml as shipped, on loopback: its listeners and public address
    give way to the test's free ports; `extra` adds what the example leaves to the admin."""
    data = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    data.pop("listen")
    data["web"].pop("base_url")
    return merge(data, extra or {})


def run(tmp: Path, config: dict[str, Any]) -> Iterator[Suite]:
    suite = Suite(tmp, config)
    suite.start()
    yield suite
    suite.close()


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """Seed 000 with a logo file, as an admin would add it, and the migration window moved
    to today (the example keeps the seed's dates of 2006, long past)."""
    tmp = tmp_path_factory.mktemp("seed-000")
    (tmp / "logo.svg").write_text(LOGO)
    today = date.today()
    extra = {
        "site": {"logo": str(tmp / "logo.svg")},
        "migration": {
            "window_start": (today - timedelta(days=1)).isoformat(),
            "cutoff": (today + timedelta(days=31)).isoformat(),
        },
    }
    yield from run(tmp, seed_config("seed-000-bank", extra))


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    yield from run(tmp_path_factory.mktemp("seed-002"), seed_config("seed-002-portal"))


@pytest.fixture(scope="module")
def kartuzy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    yield from run(tmp_path_factory.mktemp("seed-003"), seed_config("seed-003-water"))


TERMS_004 = [
    "1. Klient chcący skorzystać z usług świadczonych drogą elektroniczną przez WPWiK za "
    "pomocą systemu iBOK, składa pisemny wniosek w BOK w siedzibie WPWiK.",
    "6. Klient po otrzymaniu danych dostępowych, podczas pierwszego logowania się do systemu "
    "iBOK dokonuje zmiany hasła tymczasowego, przydzielonego przez WPWiK.",
    "8. W zakresie usuwania konta użytkownika ma zastosowanie postanowienie § 10 ust. 5 "
    "Regulaminu iBOK.",
]


@pytest.fixture(scope="module")
def wpwik(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """Seed 004 with the utility's registration rules as its terms file."""
    tmp = tmp_path_factory.mktemp("seed-004")
    (tmp / "regulamin.txt").write_text("\n\n".join(TERMS_004) + "\n")
    yield from run(
        tmp, seed_config("seed-004-water", {"site": {"terms_file": str(tmp / "regulamin.txt")}})
    )


@pytest.fixture(scope="module")
def hosting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    yield from run(tmp_path_factory.mktemp("seed-001"), seed_config("seed-001-hosting"))


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    users = tuple(f"{lang}{width}" for lang, width in SCREENS)
    server = Dovecot(tmp_path_factory.mktemp("dovecot"), users=users).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


# -- helpers ---------------------------------------------------------------------------------


def web(suite: Suite) -> str:
    return f"http://127.0.0.1:{suite.port('web')}"


def domain(suite: Suite) -> str:
    return str(suite.config["domains"][0])


def site_texts(suite: Suite) -> list[str]:
    """What the organisation wrote in its config: its words, in whatever language it chose."""
    site = suite.config.get("site", {})
    return [str(site[k]) for k in ("name", "organisation", "support") if site.get(k)]


def check_words(page: Page, lang: str, own: list[str] | None = None) -> None:
    """The page is in `lang`: no common English word on a Polish page, no Polish word on an
    English one, no catalogue key shown. `own` are the organisation's texts (its name, help
    line, terms), which stay as it wrote them in either language."""
    assert page.locator("html").get_attribute("lang") == lang
    text = re.sub(r"\s+", " ", html.unescape(visible_words(page.content())))
    for words in sorted(own or [], key=len, reverse=True):
        text = text.replace(words, " ")
    found = {w.lower() for w in re.findall(r"[^\W\d_]+", text)}
    foreign = found & (ENGLISH if lang == "pl" else POLISH)
    assert not foreign, f"{lang} page {page.url} has {sorted(foreign)}"
    assert not untranslated_keys(text), untranslated_keys(text)


def fits(page: Page, width: int) -> None:
    """Nothing wider than the screen: no sideways scrolling on a phone."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def title(page: Page) -> str:
    return page.title()


def heading(page: Page) -> str:
    return page.get_by_role("heading", level=1).inner_text().strip()


def mails(suite: Suite, address: str) -> list[EmailMessage]:
    maildir = suite.maildir(address)
    files = sorted(
        (p for sub in ("new", "cur") for p in (maildir / sub).glob("*") if p.is_file()),
        key=lambda p: p.stat().st_mtime_ns,
    )
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in files
    ]


def wait_mail(suite: Suite, address: str, seen: int, timeout: float = 10) -> EmailMessage:
    """The first mail to `address` after the `seen` it already had (sent by the server in
    its own time, as resets are)."""
    deadline = time.monotonic() + timeout
    while True:
        got = mails(suite, address)
        if len(got) > seen:
            return got[seen]
        assert time.monotonic() < deadline, f"no new mail for {address}"
        time.sleep(0.05)


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def imap_login(suite: Suite, login: str, password: str) -> str:
    with imaplib.IMAP4("127.0.0.1", suite.port("imap")) as imap:
        try:
            return str(imap.login(login, password)[0])
        except imaplib.IMAP4.error as exc:
            return str(exc)


def pop3_login(suite: Suite, login: str, password: str) -> str:
    pop = poplib.POP3("127.0.0.1", suite.port("pop3"), timeout=10)
    try:
        pop.user(login)
        return pop.pass_(password).decode()
    except poplib.error_proto as exc:
        return exc.args[0].decode()
    finally:
        pop.quit()


def fill_change(page: Page, w: dict[str, str], login: str, current: str, new: str) -> None:
    page.get_by_label(w["account"], exact=True).fill(login)
    page.get_by_label(w["current"], exact=True).fill(current)
    page.get_by_label(w["new"], exact=True).fill(new)
    page.get_by_label(w["repeat"], exact=True).fill(new)
    page.get_by_role("button", name=w["change"]).click()


def rules(page: Page) -> list[str]:
    return [r.strip() for r in page.locator(".policy li").all_inner_texts()]


def broken(w: dict[str, str], *names: str) -> list[str]:
    return [w["rule"].format(w[n]) for n in names]


def screenshot(page: Page, lang: str, width: int, name: str, tmp_path: Path, at: int) -> None:
    """The Polish page on the screen `at` wide, as the README shows it."""
    if lang == "pl" and width == at:
        shot(page, name, tmp_path)


# -- seed 000: the bank ----------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "width"), SCREENS)
def test_seed_000_the_banks_site_then_the_initial_password_changed_and_pop3(
    browser: Browser, bank: Suite, tmp_path: Path, lang: str, width: int
) -> None:
    """Seed 000: the home page, the bank's branding, the initial password changed with every
    broken rule named, and POP3 (the seed's incoming protocol) refusing then letting in."""
    w = WORDS[lang]
    own = site_texts(bank)
    alias = f"pk{lang}{width}"
    address = f"p.konarski.{lang}{width}@{domain(bank)}"
    initial = "Inicjal0wy1"
    bank.add_user(address, initial, temporary=True, legacy_login=alias)
    if lang == "en":
        bank.directory.update_account(address, language="en")
    # POP3 names the page in the account's language (ASCII, as POP3 replies are).
    assert w["must_change"] in pop3_login(bank, address, initial)
    context, page = open_page(browser, LOCALES[lang], width)
    try:
        page.goto(web(bank))
        # The site named once, by its own name and the bank's.
        assert title(page) == "Poczta klientów · Bank"
        assert heading(page) == "Poczta klientów"
        brand = page.locator(".brand")
        assert brand.locator(".organisation").inner_text() == "Bank"
        logo = brand.locator("img.logo")
        assert logo.get_attribute("alt") == w["logo"].format("Bank")
        assert logo.evaluate("img => img.complete && img.naturalWidth") == 120
        foot = page.locator("footer")
        assert foot.locator("p").first.inner_text() == w["footer"].format("Bank")
        assert foot.locator(".support").inner_text() == w["help"].format(
            bank.config["site"]["support"]
        )
        check_words(page, lang, own)
        fits(page, width)
        screenshot(page, lang, width, "bank-strona-glowna", tmp_path, at=1280)

        page.get_by_role("link", name=w["change_title"]).first.click()
        form_title = f"{w['change_title']} — Poczta klientów · Bank"
        assert title(page) == form_title
        assert rules(page)[:4] == [w["min8"], w["max16"], w["special"], w["ascii"]]
        check_words(page, lang, own)
        fits(page, width)
        # Short, with a special character and Polish letters: all three named at once.
        fill_change(page, w, alias, initial, "Zła!1")
        assert errors(page) == broken(w, "min8", "special", "ascii")
        assert title(page) == form_title
        assert page.get_by_label(w["account"], exact=True).input_value() == alias
        check_words(page, lang, own)
        fits(page, width)
        fill_change(page, w, alias, initial, "Dobrehaslo1234567")
        assert errors(page) == broken(w, "max16")

        fill_change(page, w, alias, initial, "Nowehaslo7")
        assert status(page) == w["changed"]
        assert title(page) == form_title
        assert page.locator("dd strong").inner_text() == address
        check_words(page, lang, own)
        fits(page, width)
    finally:
        context.close()
    assert pop3_login(bank, address, "Nowehaslo7").startswith("+OK")
    assert imap_login(bank, address, "Nowehaslo7") == "OK"
    assert initial not in bank.log() and "Nowehaslo7" not in bank.log()


# -- seed 002: the client portal -------------------------------------------------------------


def paste(page: Page, selector: str, text: str) -> None:
    """`text` put on the clipboard and pasted into the field with the keyboard, as a user
    copying the code from the e-mail does (maxlength and all)."""
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    page.locator(selector).press("Control+V")


@pytest.mark.parametrize(("lang", "width"), SCREENS)
def test_seed_002_activation_link_six_digit_login_pasted_code_terms_then_imap(
    browser: Browser, portal: Suite, tmp_path: Path, lang: str, width: int
) -> None:
    """Seed 002: the invitation valid 72 hours sets the password; the login, a six-digit
    number, comes from the portal's sender; the code step takes "733 383" pasted; then the
    portal's terms, the account page and IMAP with the number."""
    w = WORDS[lang]
    own = [*site_texts(portal), str(portal.config["web"]["terms"])]
    address = f"klient.{lang}{width}@{domain(portal)}"
    contact = f"kontakt.{lang}{width}@{domain(portal)}"
    portal.add_user(contact)
    done = portal.cli("user", "invite", address, "--contact", contact)
    assert done.returncode == 0, done.stderr
    if lang == "en":
        # The admin gives an English-speaking customer their language and a fresh link.
        assert portal.cli("user", "edit", address, "--language", "en").returncode == 0
        assert portal.cli("user", "invite", address, "--contact", contact).returncode == 0
    invitation = mails(portal, contact)[-1]
    assert str(invitation["From"]) == "Portal Klienta KUKE <portalklienta@portal.example.pl>"
    assert w["mail_link"] in body(invitation)
    link = re.search(r"https?://\S+(/aktywuj/\S+)", body(invitation)).group(1)  # type: ignore[union-attr]

    context, page = open_page(browser, LOCALES[lang], width)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web(portal))
    try:
        page.goto(web(portal) + link)
        form_title = f"{w['activate_title']} — Portal Klienta · KUKE"
        assert title(page) == form_title and heading(page) == w["activate_title"]
        assert rules(page)[:6] == [w["min8"], w["max64"], w["upper"], w["lower"], w["digit"],
                                   w["need_special"]]  # fmt: skip
        check_words(page, lang, own)
        fits(page, width)
        page.get_by_label(w["new"], exact=True).fill("haslo")
        page.get_by_label(w["again"], exact=True).fill("haslo")
        page.get_by_role("button", name=w["activate"]).click()
        assert errors(page) == broken(w, "min8", "upper", "digit", "need_special")
        check_words(page, lang, own)
        seen = len(mails(portal, contact))
        page.get_by_label(w["new"], exact=True).fill("Portal#2026")
        page.get_by_label(w["again"], exact=True).fill("Portal#2026")
        page.get_by_role("button", name=w["activate"]).click()
        assert status(page) == w["activated"]
        assert title(page) == form_title
        check_words(page, lang, own)
        welcome = wait_mail(portal, contact, seen)
        assert "portalklienta@portal.example.pl" in str(welcome["From"])
        found = re.search(r"^ +(\d{6})\s*$", body(welcome), re.M)
        assert found, body(welcome)
        number = found.group(1)

        # A link that has run out says how long it was valid, in the right plural.
        late = f"spozniony.{lang}{width}@{domain(portal)}"
        past = Directory(Path(portal.config["paths"]["database"]), portal.config["domains"],
                         clock=lambda: time.time() - 73 * 3600)  # fmt: skip
        try:
            past.add_account(late, password_hash=None, contact=contact)
            secret = f"wygasly-{lang}{width}-0123456789abcdefghijklmnopqrstuvwxyz"
            past.create_token(ACTIVATION, late, secret, 72 * 3600)
        finally:
            past.close()
        page.goto(f"{web(portal)}/aktywuj/{secret}")
        assert heading(page) == w["expired_title"]
        assert status(page).startswith(w["expired"])
        check_words(page, lang, own)

        page.goto(f"{web(portal)}/konto")
        page.get_by_label(w["login"], exact=True).fill(number)
        page.get_by_label(w["password"], exact=True).fill("Portal#2026")
        seen = len(mails(portal, contact))
        page.get_by_role("button", name=w["send_code"]).click()
        assert heading(page) == w["code_title"]
        assert w["code_valid"] in page.locator("main").inner_text()
        # The field is where the user's typing goes on arrival (autofocus, no script).
        expect(page.locator("#kod")).to_be_focused()
        check_words(page, lang, own)
        fits(page, width)
        message = wait_mail(portal, contact, seen)
        code = re.search(r"(\d{6})", body(message)).group(1)  # type: ignore[union-attr]
        assert code not in str(message["Subject"])
        paste(page, "#kod", f"{code[:3]} {code[3:]}")
        assert page.locator("#kod").input_value() == f"{code[:3]} {code[3:]}"
        screenshot(page, lang, width, "portal-kod-telefon", tmp_path, at=390)
        page.get_by_role("button", name=w["sign_in"]).click()

        assert heading(page) == w["terms_title"]
        assert page.locator(".terms").inner_text().strip() == portal.config["web"]["terms"]
        check_words(page, lang, own)
        fits(page, width)
        page.get_by_label(w["accept"]).check()
        page.get_by_role("button", name=w["save_terms"]).click()
        assert heading(page) == w["account_title"]
        assert address in page.locator("main").inner_text()
        check_words(page, lang, own)
        fits(page, width)
    finally:
        context.close()
    assert imap_login(portal, number, "Portal#2026") == "OK"
    assert code not in portal.log() and "Portal#2026" not in portal.log()


# -- seed 003: the water utility -------------------------------------------------------------


@pytest.mark.parametrize(("lang", "width"), SCREENS)
def test_seed_003_registered_by_the_admin_letters_and_digits_then_forgotten(
    browser: Browser, kartuzy: Suite, tmp_path: Path, lang: str, width: int
) -> None:
    """Seed 003: `user add --temporary` e-mails the login and a temporary password; the new
    one needs a letter and a digit and at most 64 characters; IMAP lets the customer in; a
    forgotten password brings a new temporary one, changed the same way."""
    w = WORDS[lang]
    own = site_texts(kartuzy)
    organisation = kartuzy.config["site"]["organisation"]
    assert organisation.endswith("Sp. z o.o.")
    address = f"odbiorca.{lang}{width}@{domain(kartuzy)}"
    contact = f"kontakt.{lang}{width}@{domain(kartuzy)}"
    kartuzy.add_user(contact)
    done = kartuzy.cli("user", "add", address, "--temporary", "--contact", contact)
    assert done.returncode == 0, done.stderr
    if lang == "en":
        assert kartuzy.cli("user", "edit", address, "--language", "en").returncode == 0
    registered = body(mails(kartuzy, contact)[-1])
    temporary = re.search(r"Hasło tymczasowe: (\S+)", registered).group(1)  # type: ignore[union-attr]
    assert f"Login: {address}" in registered and organisation in registered

    context, page = open_page(browser, LOCALES[lang], width)
    try:
        page.goto(f"{web(kartuzy)}/zmien-haslo")
        form_title = f"{w['change_title']} — iBOK · {organisation}"
        assert title(page) == form_title
        # The organisation's name ends its own abbreviation: one full stop, not two.
        footer = page.locator("footer p").first.inner_text()
        assert footer == w["footer"].format(organisation[:-1]) and ".." not in footer
        assert rules(page)[:2] == [w["min8"], w["max64"]]
        check_words(page, lang, own)
        fits(page, width)
        for new, expected in (
            ("abcdefgh", ["digit"]),
            ("12345678", ["letter"]),
            ("abc1234", ["min8"]),
            ("a1" * 32 + "b", ["max64"]),
            ("ab-12345", ["special"]),
        ):
            fill_change(page, w, address, temporary, new)
            assert errors(page) == broken(w, *expected), new
            check_words(page, lang, own)
        fill_change(page, w, address, temporary, "woda2026")
        assert status(page) == w["changed"] and title(page) == form_title
        assert imap_login(kartuzy, address, "woda2026") == "OK"

        # Forgotten: a new temporary password by e-mail; the page keeps its title.
        page.get_by_role("link", name=w["reset_title"]).first.click()
        reset_title = f"{w['reset_title']} — iBOK · {organisation}"
        assert title(page) == reset_title
        check_words(page, lang, own)
        fits(page, width)
        seen = len(mails(kartuzy, contact))
        page.get_by_label(w["login"], exact=True).fill(address)
        page.get_by_role("button", name=w["reset"]).click()
        assert status(page).startswith(w["reset_done"]) and title(page) == reset_title
        check_words(page, lang, own)
        reset = body(wait_mail(kartuzy, contact, seen))
        again = re.search(rf"{w['temporary']}: (\S+)", reset).group(1)  # type: ignore[union-attr]
        page.goto(f"{web(kartuzy)}/zmien-haslo")
        fill_change(page, w, address, again, "kanal2027")
        assert status(page) == w["changed"]
    finally:
        context.close()
    assert imap_login(kartuzy, address, "kanal2027") == "OK"
    assert imap_login(kartuzy, address, "woda2026") != "OK"


# -- seed 004: the other utility -------------------------------------------------------------


@pytest.mark.parametrize(("lang", "width"), SCREENS)
def test_seed_004_temporary_password_first_then_the_code_and_the_utilitys_terms(
    browser: Browser, wpwik: Suite, tmp_path: Path, lang: str, width: int
) -> None:
    """Seed 004: the account page sends a customer with a temporary password to change it
    (upper, lower, digit, no Polish letters); then the password and the e-mailed code sign
    in, the utility's terms file is shown by paragraphs, and IMAP lets the customer in."""
    w = WORDS[lang]
    own = [*site_texts(wpwik), *TERMS_004]
    support = wpwik.config["site"]["support"]
    address = f"klient.{lang}{width}@{domain(wpwik)}"
    contact = f"kontakt.{lang}{width}@{domain(wpwik)}"
    wpwik.add_user(contact)
    wpwik.add_user(address, "Tymczas0we", temporary=True, contact=contact)
    if lang == "en":
        wpwik.directory.update_account(address, language="en")

    context, page = open_page(browser, LOCALES[lang], width)
    try:
        page.goto(f"{web(wpwik)}/konto")
        assert page.locator("footer .support").inner_text() == w["help"].format(support)
        assert page.locator("footer p").first.inner_text() == w["footer"].format("WPWiK")
        page.get_by_label(w["login"], exact=True).fill(address)
        page.get_by_label(w["password"], exact=True).fill("Tymczas0we")
        page.get_by_role("button", name=w["send_code"]).click()
        check_words(page, lang, own)
        page.get_by_role("main").get_by_role("link", name=w["change_title"]).click()
        assert rules(page)[:5] == [w["min8"], w["max64"], w["upper"], w["lower"], w["digit"]]
        fill_change(page, w, address, "Tymczas0we", "łatwe")
        assert errors(page) == broken(w, "min8", "upper", "digit", "ascii")
        check_words(page, lang, own)
        fits(page, width)
        fill_change(page, w, address, "Tymczas0we", "Wodociag1")
        assert status(page) == w["changed"]

        page.goto(f"{web(wpwik)}/konto")
        page.get_by_label(w["login"], exact=True).fill(address)
        page.get_by_label(w["password"], exact=True).fill("Wodociag1")
        seen = len(mails(wpwik, contact))
        page.get_by_role("button", name=w["send_code"]).click()
        expect(page.locator("#kod")).to_be_focused()
        code = re.search(r"(\d{6})", body(wait_mail(wpwik, contact, seen))).group(1)  # type: ignore[union-attr]
        page.get_by_label(w["code"]).fill(code)
        page.get_by_role("button", name=w["sign_in"]).click()
        assert heading(page) == w["terms_title"]
        assert [p.strip() for p in page.locator(".terms p").all_inner_texts()] == TERMS_004
        check_words(page, lang, own)
        fits(page, width)
        screenshot(page, lang, width, "wodociagi-regulamin", tmp_path, at=1280)
        page.get_by_label(w["accept"]).check()
        page.get_by_role("button", name=w["save_terms"]).click()
        assert heading(page) == w["account_title"]
        check_words(page, lang, own)
        fits(page, width)
    finally:
        context.close()
    assert imap_login(wpwik, address, "Wodociag1") == "OK"


# -- seed 001: the hosting company -----------------------------------------------------------


@pytest.mark.parametrize(("lang", "width"), SCREENS)
def test_seed_001_enter_saves_the_external_account_and_the_footer_ends_once(
    browser: Browser, hosting: Suite, dovecot: Dovecot, tmp_path: Path, lang: str, width: int
) -> None:
    """Seed 001: Enter in a field of the wizard's step 2, and of the edit page, saves (it
    does not press "Zmień protokół", the first button on the page); the footer names
    "Hosting Przykładowy sp. z o.o." with one full stop."""
    w = WORDS[lang]
    remote = f"{lang}{width}"
    address = f"{remote}@{domain(hosting)}"
    context, page = open_page(browser, LOCALES[lang], width)
    # Signed in as after the password and the code (both walked through by seed 002's test).
    session = signed_in(hosting, address)
    context.add_cookies([{"name": "sesja", "value": session, "url": web(hosting)}])
    try:
        page.goto(f"{web(hosting)}/konto")
        footer = page.locator("footer p").first.inner_text()
        assert footer == w["footer"].format("Hosting Przykładowy sp. z o.o")
        assert ".." not in footer
        assert heading(page) == w["account_title"]

        page.get_by_role("link", name=w["ext_add"]).first.click()
        page.get_by_label(w["ext_label"], exact=True).fill("Firma")
        page.get_by_label(w["ext_email"], exact=True).fill(f"{remote}@firma.example.pl")
        page.get_by_label(w["ext_password"], exact=True).fill(PASSWORD)
        page.get_by_label(w["ext_password"], exact=True).press("Enter")
        # Step 2: the other protocol chosen and its server typed in by hand, then Enter.
        # Were Enter to press "Zmień protokół", the typed server would give way to the
        # protocol's suggested one.
        page.get_by_label(w["ext_pop3"]).check()
        page.get_by_label(w["ext_host"], exact=True).fill("127.0.0.1")
        page.get_by_label(w["ext_port"], exact=True).fill(str(dovecot.ports["pop3s"]))
        page.get_by_label(w["ext_login"], exact=True).fill(remote)
        page.get_by_label(w["ext_self_signed"]).check()
        check_words(page, lang, site_texts(hosting))
        fits(page, width)
        page.get_by_label(w["ext_login"], exact=True).press("Enter")
        assert status(page).startswith(w["ext_added"].format("Firma"))
        server = f"POP3 127.0.0.1:{dovecot.ports['pop3s']}"
        assert page.locator("li.external dd.server").inner_text() == server

        # The edit page: back to IMAP on the remote's IMAPS port, Enter in the port field.
        page.locator("li.external").get_by_role("link", name=w["ext_edit"]).click()
        page.get_by_label(w["ext_imap"]).check()
        page.get_by_label(w["ext_port"], exact=True).fill(str(dovecot.ports["imaps"]))
        page.get_by_label(w["ext_port"], exact=True).press("Enter")
        assert status(page).startswith(w["ext_saved"].format("Firma"))
        server = f"IMAP 127.0.0.1:{dovecot.ports['imaps']}"
        assert page.locator("li.external dd.server").inner_text() == server
    finally:
        context.close()
