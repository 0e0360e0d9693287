"""The external-accounts part of the account page: wizard, edit, fetch now, delete.

The site runs in-process (aiohttp's test server over the real app) with Dovecot as the
remote, and tiny misbehaving servers (tests/peers.py) for the answers Dovecot never gives;
the user is signed in through the directory's session token, as after the e-mailed code.
Forms are posted as a browser without JavaScript posts them: every field the page holds
(hidden ones included) goes back with the button pressed.
"""

from __future__ import annotations

import html as htmllib
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mailsuite.context import Context
from mailsuite.directory import external as ext_db
from mailsuite.fetcher.engine import Fetcher
from mailsuite.passwords import hash_password_sync
from mailsuite.store import NoSuchFolder
from mailsuite.web.app import init_app
from tests.conftest import in_process_context
from tests.dovecot import PASSWORD, Dovecot, message
from tests.peers import Peers

pytestmark = pytest.mark.timeout(180)

USER = "ala@example.test"
ADD = "/konto/zewnetrzne/dodaj"
LIST = "/konto/zewnetrzne"


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    server = Dovecot(tmp_path_factory.mktemp("dovecot"), users=("w1", "w2", "w3")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    with Peers(tmp_path_factory.mktemp("peers")) as running:
        yield running


def build_ctx(tmp: Path, limit: int, timeout: float = 10) -> Context:
    data = {
        "hostname": "mail.example.test",
        "domains": ["example.test"],
        "tls": {"self_signed": True},
        "web": {"tls": False},
        "fetcher": {"max_accounts_per_user": limit, "timeout": timeout},
    }
    return in_process_context(tmp, data)


def fields_of(html: str) -> dict[str, str]:
    """What a browser would post from the page's form: inputs with their values, checked
    radio buttons and boxes only; buttons are added by the caller."""
    out: dict[str, str] = {}
    for tag in re.findall(r"<input\b[^>]*>", html):
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag))
        name, kind = attrs.get("name"), attrs.get("type", "text")
        if not name:
            continue
        if kind in ("radio", "checkbox") and " checked" not in tag:
            continue
        out[name] = htmllib.unescape(attrs.get("value", ""))
    return out


class Browser:
    """A browser without JavaScript: GET pages, post their forms back."""

    def __init__(self, client: TestClient, ctx: Context) -> None:
        self.client = client
        self.ctx = ctx
        self.html = ""
        self.lang = "pl"

    @property
    def headers(self) -> dict[str, str]:
        """A browser states its languages with every request."""
        return {"Accept-Language": self.lang}

    async def page(self, path: str, lang: str | None = None) -> tuple[int, str]:
        self.lang = lang or self.lang
        response = await self.client.get(path, headers=self.headers)
        self.html = await response.text()
        return response.status, self.html

    async def submit(
        self, action: str, changes: dict[str, str] | None = None, button: tuple[str, str] = ("", "")
    ) -> tuple[int, str, str | None]:
        """Post the current page's form with `changes` typed in and `button` pressed."""
        data = {**fields_of(self.html), **(changes or {})}
        data = {k: v for k, v in data.items() if v is not None}
        if button[0]:
            data[button[0]] = button[1]
        response = await self.client.post(
            action, data=data, allow_redirects=False, headers=self.headers
        )
        location = response.headers.get("Location")
        text = await response.text()
        if response.status != 303:
            self.html = text
        return response.status, text, location

    async def post(self, path: str, fields: dict[str, str], form: str) -> tuple[int, str, Any]:
        """Post `fields` alone (with the CSRF token of the page `form`)."""
        _, html = await self.page(form)
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        csrf = found.group(1) if found else ""
        response = await self.client.post(
            path, data={"csrf": csrf, **fields}, allow_redirects=False, headers=self.headers
        )
        text = await response.text()
        self.html = text
        return response.status, text, response.headers.get("Location")


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with signed_in(tmp_path, limit=2) as b:
        yield b


class signed_in:
    """A site with one signed-in user (its fetcher timeout as given)."""

    def __init__(self, tmp: Path, limit: int = 2, timeout: float = 10) -> None:
        self.ctx = build_ctx(tmp, limit, timeout)

    async def __aenter__(self) -> Browser:
        ctx = self.ctx
        ctx.directory.add_account(USER, password_hash=hash_password_sync("Secret123", 4))
        ctx.directory.update_account(USER, terms_accepted=ctx.directory.clock())
        session = secrets.token_urlsafe(32)
        ctx.directory.create_token("web-session", USER, session, 3600)
        self.client = TestClient(TestServer(init_app(ctx, https=False)))
        await self.client.start_server()
        self.client.session.cookie_jar.update_cookies({"sesja": session})
        return Browser(self.client, ctx)

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        self.ctx.io_pool.shutdown()
        self.ctx.directory.close()


def step2(email: str, port: int, **extra: str) -> dict[str, str]:
    fields = {
        "krok": "2",
        "dostawca": "Gmail",
        "nazwa": "Ala Kowalska",
        "email": email,
        "haslo": PASSWORD,
        "login": "w1",
        "protokol": "imap",
        "serwer": "127.0.0.1",
        "port": str(port),
        "szyfrowanie": "tls",
        "samopodpisany": "1",
    }
    fields.update(extra)
    return fields


def errors_in(html: str) -> list[str]:
    block = re.search(r'<div class="errors".*?</div>', html, re.S)
    if not block:
        return []
    return [htmllib.unescape(e).strip() for e in re.findall(r"<li>(.*?)</li>", block.group(0))]


def value_of(html: str, name: str) -> str:
    return fields_of(html).get(name, "")


async def start_wizard(b: Browser, label: str, email: str, lang: str = "pl") -> str:
    """Step 1 filled in and sent; returns step 2's page."""
    await b.page(ADD, lang)
    status, html, _ = await b.submit(
        ADD, {"dostawca": label, "nazwa": "Ala", "email": email, "haslo": PASSWORD}
    )
    assert status == 200, errors_in(html)
    return html


async def test_wizard_tests_the_connection_and_names_the_reason(
    browser: Browser, dovecot: Dovecot
) -> None:
    status, html = await browser.page("/konto")
    assert status == 200 and "Konta zewnętrzne" in html and "Nie masz kont" in html
    status, html = await browser.page(ADD)
    labels = re.findall(r'<label for="([^"]+)">([^<]+)</label>', html)
    assert labels == [
        ("dostawca", "Dostawca"),
        ("nazwa", "Twoja nazwa"),
        ("email", "Adres e-mail"),
        ("haslo", "Hasło"),
    ]
    html = await start_wizard(browser, "Gmail", "w1@gmail.com")
    assert "konfiguracja zaawansowana" in html
    assert value_of(html, "serwer") == "imap.gmail.com" and value_of(html, "port") == "993"
    imaps = dovecot.ports["imaps"]
    server = {"serwer": "127.0.0.1", "port": str(imaps), "login": "w1", "samopodpisany": "1"}
    status, html, _ = await browser.submit(ADD, {**server, "haslo": "zle"})
    assert status == 400 and errors_in(html) == [
        "Serwer odrzucił login lub hasło. Sprawdź je i spróbuj ponownie."
    ]
    status, html, _ = await browser.submit(ADD, {"port": "1", "haslo": PASSWORD})
    assert status == 400 and "127.0.0.1:1: połączenie odrzucone" in errors_in(html)[0]
    status, html, _ = await browser.submit(ADD, {"port": str(imaps), "samopodpisany": None})
    assert status == 400 and "ma podpis własny" in errors_in(html)[0]
    assert ext_db.list_external(browser.ctx.directory, USER) == []
    status, _, location = await browser.submit(ADD, {"samopodpisany": "1"})
    assert status == 303 and location is not None and location.startswith(LIST + "#zewnetrzne-")
    (created,) = ext_db.list_external(browser.ctx.directory, USER)
    assert (created.label, created.display_name, created.protocol) == ("Gmail", "Ala", "imap")
    assert ext_db.external_senders(
        browser.ctx.directory, browser.ctx.directory.get_account(USER)
    ) == [("w1@gmail.com", "Ala")]


# -- the wrong protocol for the port, and anything else a server answers -------------------------


@pytest.mark.parametrize("lang", ["pl", "en"])
async def test_the_wrong_protocol_for_the_port_is_named_on_the_wizard_and_the_edit_page(
    browser: Browser, dovecot: Dovecot, lang: str
) -> None:
    """POP3 on the IMAP port and IMAP on the POP3 port: the form says what answered, in the
    page's language, keeps every field, and saves nothing."""
    await start_wizard(browser, "Poczta", "w1@example.org", lang)
    await browser.submit(ADD, {"protokol": "pop3"}, ("akcja", "protokol"))
    wrong = {"serwer": "127.0.0.1", "port": str(dovecot.ports["imaps"]), "login": "w1"}
    status, html, _ = await browser.submit(ADD, {**wrong, "samopodpisany": "1"})
    imaps = dovecot.ports["imaps"]
    expected = {
        "pl": f"127.0.0.1:{imaps} to serwer IMAP, nie POP3; wybierz protokół IMAP albo podaj "
        "port serwera POP3 (zwykle 995 z TLS).",
        "en": f"127.0.0.1:{imaps} speaks IMAP, not POP3; choose IMAP, or give the port of the "
        "POP3 server (usually 995 with TLS).",
    }
    assert (status, errors_in(html)) == (400, [expected[lang]])
    assert value_of(html, "protokol") == "pop3" and value_of(html, "port") == str(imaps)
    assert value_of(html, "dostawca") == "Poczta" and PASSWORD not in html
    assert ext_db.list_external(browser.ctx.directory, USER) == []
    status, _, _ = await browser.submit(ADD, {"port": str(dovecot.ports["pop3s"])})
    assert status == 303
    external = ext_db.get_external(browser.ctx.directory, USER, "Poczta")
    edit = f"{LIST}/{external.id}/edytuj"
    await browser.page(edit, lang)
    status, html, _ = await browser.submit(edit, {"port": str(dovecot.ports["imap"])})
    imap = dovecot.ports["imap"]
    expected = {
        "pl": f"127.0.0.1:{imap} to serwer IMAP, nie POP3; wybierz protokół IMAP albo podaj "
        "port serwera POP3 (zwykle 995 z TLS).",
        "en": f"127.0.0.1:{imap} speaks IMAP, not POP3; choose IMAP, or give the port of the "
        "POP3 server (usually 995 with TLS).",
    }
    assert (status, errors_in(html)) == (400, [expected[lang]])
    saved = ext_db.get_external(browser.ctx.directory, USER, "Poczta")
    assert (saved.protocol, saved.port) == ("pop3", dovecot.ports["pop3s"])


ANSWERS = [
    # (what listens, over TLS, protocol, security, words of the Polish error)
    ("smtp", False, "pop3", "plain", "działa serwer SMTP, a nie POP3"),
    ("http", False, "imap", "starttls", "działa serwer HTTP, a nie IMAP"),
    ("garbage", False, "pop3", "plain", "nie odpowiada jak serwer POP3"),
    ("noise", False, "imap", "tls", "nie odpowiada jak serwer IMAP"),
    ("silent", False, "pop3", "starttls", "brak odpowiedzi w ciągu 1 s"),
    ("hangup", False, "imap", "plain", "niespodziewanie zamknął połączenie"),
    ("imap", True, "imap", "plain", "wymaga szyfrowania od początku"),
    ("imap", False, "imap", "tls", "nie szyfruje połączenia od początku"),
    ("imap", False, "imap", "starttls", "nie oferuje STARTTLS"),
    ("pop3_busy", False, "pop3", "plain", "odmówił"),
]


@pytest.mark.parametrize(("behaviour", "tls", "protocol", "security", "words"), ANSWERS)
async def test_whatever_the_server_answers_the_form_names_it(
    tmp_path: Path,
    peers: Peers,
    behaviour: str,
    tls: bool,
    protocol: str,
    security: str,
    words: str,
) -> None:
    port = peers.start(behaviour, tls=tls)
    async with signed_in(tmp_path, timeout=1) as b:
        await start_wizard(b, "Inna", "u@peer.test")
        if protocol == "pop3":
            await b.submit(ADD, {"protokol": "pop3"}, ("akcja", "protokol"))
        changes = {"serwer": "127.0.0.1", "port": str(port), "szyfrowanie": security}
        status, html, _ = await b.submit(ADD, {**changes, "samopodpisany": "1"})
        problems = errors_in(html)
        assert status == 400 and len(problems) == 1 and words in problems[0], problems
        assert ext_db.list_external(b.ctx.directory, USER) == []


async def test_an_unknown_server_name_is_named(browser: Browser) -> None:
    await start_wizard(browser, "Nikt", "x@nowhere.invalid")
    status, html, _ = await browser.submit(ADD, {"serwer": "imap.nowhere.invalid"})
    assert status == 400
    assert errors_in(html) == [
        "Nie można połączyć się z serwerem: nazwa „imap.nowhere.invalid” jest nieznana "
        "(sprawdź serwer)."
    ]


# -- switching protocol without JavaScript ------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "imap_host", "pop3_host"),
    [
        ("ala@gmail.com", "imap.gmail.com", "pop.gmail.com"),
        ("ala@yahoo.com", "imap.mail.yahoo.com", "pop.mail.yahoo.com"),
        ("ala@aol.com", "imap.aol.com", "pop.aol.com"),
        ("ala@firma.example.pl", "imap.firma.example.pl", "pop3.firma.example.pl"),
    ],
)
async def test_changing_protocol_shows_that_protocols_settings(
    browser: Browser, email: str, imap_host: str, pop3_host: str
) -> None:
    """ "Zmień protokół" (or saving with the server fields untouched) shows the chosen
    protocol's server, port and security, and back again."""
    html = await start_wizard(browser, "Konto", email)
    assert (value_of(html, "serwer"), value_of(html, "port")) == (imap_host, "993")
    status, html, _ = await browser.submit(ADD, {"protokol": "pop3"}, ("akcja", "protokol"))
    assert status == 200 and errors_in(html) == []
    assert value_of(html, "protokol") == "pop3"
    assert (value_of(html, "serwer"), value_of(html, "port")) == (pop3_host, "995")
    assert value_of(html, "szyfrowanie") == "tls"
    assert "Pokazujemy ustawienia protokołu POP3. Sprawdź je i zapisz." in html
    status, html, _ = await browser.submit(ADD, {"protokol": "imap"}, ("akcja", "zapisz"))
    assert status == 200 and errors_in(html) == []
    assert (value_of(html, "serwer"), value_of(html, "port")) == (imap_host, "993")
    assert ext_db.list_external(browser.ctx.directory, USER) == []


async def test_a_server_of_the_users_own_stays_when_the_protocol_changes(
    browser: Browser,
) -> None:
    await start_wizard(browser, "Firma", "ala@firma.example.pl")
    changes = {"serwer": "poczta.firma.example.pl", "szyfrowanie": "starttls", "port": "143"}
    status, html, _ = await browser.submit(
        ADD, {**changes, "protokol": "pop3"}, ("akcja", "protokol")
    )
    assert status == 200
    assert (value_of(html, "serwer"), value_of(html, "port")) == ("poczta.firma.example.pl", "110")
    assert value_of(html, "szyfrowanie") == "starttls"


async def test_the_edit_page_switches_protocol_and_saves_pop3(
    browser: Browser, dovecot: Dovecot
) -> None:
    ctx = browser.ctx
    dovecot.put("w3", message(1, "switch"))
    assert (await browser.post(ADD, step2("w3@o2.pl", dovecot.ports["imaps"], login="w3",
                                          dostawca="O2"), ADD))[0] == 303  # fmt: skip
    external = ext_db.get_external(ctx.directory, USER, "O2")
    edit = f"{LIST}/{external.id}/edytuj"
    await browser.page(edit)
    status, html, _ = await browser.submit(edit, {"protokol": "pop3"}, ("akcja", "protokol"))
    assert status == 200 and value_of(html, "port") == "995"
    status, _, location = await browser.submit(edit, {"port": str(dovecot.ports["pop3s"])})
    assert status == 303 and location == f"{LIST}#zewnetrzne-{external.id}"
    saved = ext_db.get_external(ctx.directory, USER, "O2")
    assert (saved.protocol, saved.port) == ("pop3", dovecot.ports["pop3s"])
    _, html = await browser.page(LIST)
    assert "Konto O2 zapisane." in html


# -- step 2 corrects everything, and never shows the password ---------------------------------


async def test_step2_corrects_every_field_and_never_echoes_the_password(
    browser: Browser, dovecot: Dovecot
) -> None:
    ctx = browser.ctx
    await browser.page(ADD)
    status, html, _ = await browser.submit(
        ADD, {"dostawca": "Literowka", "nazwa": "Ala", "email": "w2@wp.pl", "haslo": "mistyped"}
    )
    assert status == 200 and "mistyped" not in html
    assert value_of(html, "haslo") == "" and value_of(html, "haslo_zapamietane")
    assert "Wpisane wcześniej hasło jest zapamiętane" in html
    # Back to step 1 and forward again: nothing lost, the password still unseen.
    status, html, _ = await browser.submit(ADD, {}, ("akcja", "wstecz"))
    assert status == 200 and "Krok 1 z 2" in html and value_of(html, "dostawca") == "Literowka"
    assert "mistyped" not in html
    status, html, _ = await browser.submit(ADD, {"dostawca": "WP"})
    assert status == 200 and "Krok 2 z 2" in html and value_of(html, "serwer") == "imap.wp.pl"
    server = {"serwer": "127.0.0.1", "port": str(dovecot.ports["imaps"]), "samopodpisany": "1"}
    status, html, _ = await browser.submit(ADD, {**server, "login": "w2"})
    assert status == 400 and errors_in(html) == [
        "Serwer odrzucił login lub hasło. Sprawdź je i spróbuj ponownie."
    ]
    assert "mistyped" not in html and PASSWORD not in html
    # The right password typed on step 2, a corrected label and address: saved.
    changes = {"haslo": PASSWORD, "dostawca": "Praca", "email": "w2@praca.example.pl"}
    status, _, _ = await browser.submit(ADD, changes)
    assert status == 303
    saved = ext_db.get_external(ctx.directory, USER, "Praca")
    assert (saved.email, saved.login) == ("w2@praca.example.pl", "w2")
    fetcher = Fetcher(ctx.directory, ctx.store, ctx.settings)
    assert fetcher.secrets.decrypt(saved.secret) == PASSWORD


async def test_a_sealed_password_is_of_no_use_to_another_account(
    browser: Browser, dovecot: Dovecot
) -> None:
    html = await start_wizard(browser, "Gmail", "w1@gmail.com")
    sealed = value_of(html, "haslo_zapamietane")
    ctx = browser.ctx
    ctx.directory.add_account("ola@example.test", password_hash=hash_password_sync("x" * 9, 4))
    ctx.directory.update_account("ola@example.test", terms_accepted=ctx.directory.clock())
    other = secrets.token_urlsafe(32)
    ctx.directory.create_token("web-session", "ola@example.test", other, 3600)
    browser.client.session.cookie_jar.update_cookies({"sesja": other})
    fields = step2("w1@gmail.com", dovecot.ports["imaps"], haslo="")
    status, html, _ = await browser.post(ADD, {**fields, "haslo_zapamietane": sealed}, ADD)
    assert status == 400 and errors_in(html) == ["Podaj hasło."]


# -- feedback, confirmation, the count -----------------------------------------------------------


@pytest.mark.parametrize("lang", ["pl", "en"])
async def test_save_fetch_and_delete_say_what_happened(
    browser: Browser, dovecot: Dovecot, lang: str
) -> None:
    ctx = browser.ctx
    words = {
        "pl": (
            "Konto WP dodane: połączenie i logowanie działają.",
            "Pobieranie konta WP rozpocznie się za chwilę.",
            "Usunąć konto WP?",
            "Konto WP usunięte. Katalog WP z pobranymi wiadomościami został w Twojej skrzynce.",
        ),
        "en": (
            "Account WP added: the connection and the login work.",
            "Fetching WP starts in a moment.",
            "Delete the account WP?",
            "Account WP deleted. The folder WP with the fetched messages stays in your mailbox.",
        ),
    }[lang]
    dovecot.put("w2", message(1))
    await browser.page(ADD, lang)
    fields = step2("w2@wp.pl", dovecot.ports["imaps"], login="w2", dostawca="WP")
    status, _, location = await browser.post(ADD, fields, ADD)
    assert status == 303
    _, html = await browser.page(location or "", lang)
    assert words[0] in html and 'role="status"' in html
    _, html = await browser.page(LIST, lang)
    assert words[0] not in html  # said once
    external = ext_db.get_external(ctx.directory, USER, "WP")
    base = f"{LIST}/{external.id}"
    ext_db.record_outcome(ctx.directory, external.id, error=None, next_attempt=9e9)
    status, _, location = await browser.submit(base + "/pobierz")
    assert status == 303 and ext_db.get_external(ctx.directory, USER, "WP").next_attempt == 0
    _, html = await browser.page(location or "", lang)
    assert words[1] in html
    # Delete asks first; a bare POST only shows the question again.
    status, html, _ = await browser.post(base + "/usun", {"zachowaj": "1"}, LIST)
    assert status == 200 and words[2] in html
    assert ext_db.external_by_id(ctx.directory, external.id) is not None
    status, html = await browser.page(base + "/usun", lang)
    assert status == 200 and words[2] in html
    status, _, location = await browser.submit(base + "/usun")
    assert status == 303 and ext_db.external_by_id(ctx.directory, external.id) is None
    _, html = await browser.page(location or "", lang)
    assert words[3] in html


async def test_fetch_now_edit_limit_and_delete(browser: Browser, dovecot: Dovecot) -> None:
    ctx = browser.ctx
    dovecot.put("w2", message(1))
    dovecot.put("w2", message(2))
    fields = step2("w2@wp.pl", dovecot.ports["imaps"], login="w2", dostawca="WP")
    assert (await browser.post(ADD, fields, ADD))[0] == 303
    external = ext_db.get_external(ctx.directory, USER, "WP")
    base = f"{LIST}/{external.id}"
    fetcher = Fetcher(ctx.directory, ctx.store, ctx.settings)
    result = await ctx.run_io(fetcher.fetch, ext_db.get_external(ctx.directory, USER, "WP"))
    assert result.copied >= 2
    _, html = await browser.page("/konto")
    count = int(re.search(r'<dd class="messages">(\d+)</dd>', html).group(1))
    assert re.search(r'<dd class="last-success">\d{4}-\d\d-\d\d \d\d:\d\d</dd>', html)
    # Switch to POP3 on the edit page; the connection is tested again; the count stays.
    await browser.page(base + "/edytuj")
    await browser.submit(base + "/edytuj", {"protokol": "pop3"}, ("akcja", "protokol"))
    status, _, _ = await browser.submit(base + "/edytuj", {"port": str(dovecot.ports["pop3s"])})
    assert status == 303
    assert ext_db.get_external(ctx.directory, USER, "WP").protocol == "pop3"
    result = await ctx.run_io(fetcher.fetch, ext_db.get_external(ctx.directory, USER, "WP"))
    assert result.copied == 0 and result.error is None
    _, html = await browser.page("/konto")
    assert f'<dd class="messages">{count}</dd>' in html
    # Another account fills the limit of 2; a third is refused with a message.
    other = step2("w1@gmail.com", dovecot.ports["imaps"], dostawca="Druga")
    assert (await browser.post(ADD, other, ADD))[0] == 303
    _, html = await browser.page("/konto")
    assert "Możesz dodać najwyżej 2 konta zewnętrzne." in html
    status, html, _ = await browser.post(ADD, {**other, "krok": "1", "dostawca": "Trzecia"}, ADD)
    assert status == 400 and "najwyżej 2" in html
    # Deleting with the folder kept, then without.
    remote_before = [n.split(":")[0] for n in dovecot.files("w2")]
    status, _, _ = await browser.post(base + "/usun", {"zachowaj": "1", "potwierdzam": "1"}, LIST)
    assert status == 303
    folder = ctx.store.mailbox(USER).folder("WP")
    folder.sync()
    assert len(folder.messages()) == count
    druga = ext_db.get_external(ctx.directory, USER, "Druga")
    await browser.post(f"{LIST}/{druga.id}/usun", {"potwierdzam": "1"}, LIST)
    assert ext_db.list_external(ctx.directory, USER) == []
    assert [n.split(":")[0] for n in dovecot.files("w2")] == remote_before
    with pytest.raises(NoSuchFolder):
        ctx.store.mailbox(USER).folder("Druga")


async def test_other_users_accounts_are_out_of_reach(browser: Browser, dovecot: Dovecot) -> None:
    ctx = browser.ctx
    ctx.directory.add_account("ola@example.test", password_hash=hash_password_sync("x" * 9, 4))
    fetcher = Fetcher(ctx.directory, ctx.store, ctx.settings)
    theirs = ext_db.add_external(
        ctx.directory,
        "ola@example.test",
        label="Jej",
        display_name="",
        email="w1@o2.pl",
        login="w1",
        secret=fetcher.secrets.encrypt(PASSWORD),
        protocol="pop3",
        host="127.0.0.1",
        port=dovecot.ports["pop3s"],
        security="tls",
        limit=4,
    )
    for path in (f"{LIST}/{theirs.id}/usun", f"{LIST}/{theirs.id}/pobierz"):
        status, _, location = await browser.post(path, {"potwierdzam": "1"}, LIST)
        assert status == 303 and location == "/konto"
    assert ext_db.external_by_id(ctx.directory, theirs.id) is not None
    for path in (f"{LIST}/{theirs.id}/edytuj", f"{LIST}/{theirs.id}/usun"):
        status, html = await browser.page(path)
        assert "Jej" not in html


async def test_the_last_fetch_error_is_in_the_pages_language(
    browser: Browser, dovecot: Dovecot
) -> None:
    """A fetch refused by the server is named in Polish on Polish pages and in English on
    English ones; one recorded without a reason never shows its English on a Polish page."""
    ctx = browser.ctx
    fields = step2("w1@gmail.com", dovecot.ports["pop3s"], protokol="pop3", dostawca="Blad")
    assert (await browser.post(ADD, fields, ADD))[0] == 303
    external = ext_db.get_external(ctx.directory, USER, "Blad")
    fetcher = Fetcher(ctx.directory, ctx.store, ctx.settings)
    ext_db.update_external(ctx.directory, external.id, secret=fetcher.secrets.encrypt("zle"))
    result = await ctx.run_io(fetcher.fetch, ext_db.get_external(ctx.directory, USER, "Blad"))
    assert result.reason == "login"
    shown = {}
    for lang in ("pl", "en"):
        _, html = await browser.page(LIST, lang)
        shown[lang] = re.search(r'<dd class="last-error">([^<]*)</dd>', html).group(1)
    assert shown == {
        "pl": "Serwer odrzucił login lub hasło. Sprawdź je i spróbuj ponownie.",
        "en": "The server refused the login or password. Check them and try again.",
    }
    saved = ext_db.get_external(ctx.directory, USER, "Blad")
    assert saved.last_error.startswith("the server refused the user name or password")
    ext_db.record_outcome(ctx.directory, external.id, error="something odd", next_attempt=9e9)
    _, html = await browser.page(LIST, "pl")
    assert "something odd" not in html
    assert "Ostatnie pobieranie nie powiodło się." in html
    _, html = await browser.page(LIST, "en")
    assert "something odd" in html


async def test_a_forged_message_cookie_says_nothing(browser: Browser) -> None:
    browser.client.session.cookie_jar.update_cookies({"komunikat": "WyJhZGRlZCIsIkV2aWwiXQ.00"})
    status, html = await browser.page(LIST)
    assert status == 200 and "Evil" not in html and 'role="status"' not in html


async def walk_external(b: Browser, dovecot: Dovecot, lang: str) -> dict[str, str]:
    """Every page and state of the external-accounts part, as served in `lang`."""
    pages: dict[str, str] = {}
    label = f"Konto{lang}"
    _, pages["step 1"] = await b.page(ADD, lang)
    _, pages["step 1 errors"], _ = await b.submit(ADD, {})
    pages["step 2"] = await start_wizard(b, label, "w1@gmail.com", lang)
    _, pages["step 2 switched"], _ = await b.submit(
        ADD, {"protokol": "pop3"}, ("akcja", "protokol")
    )
    wrong = {"serwer": "127.0.0.1", "port": str(dovecot.ports["imaps"]), "samopodpisany": "1"}
    _, pages["step 2 wrong protocol"], _ = await b.submit(ADD, {**wrong, "login": "w1"})
    _, pages["step 2 bad fields"], _ = await b.submit(
        ADD, {"serwer": "", "port": "x", "email": "@"}
    )
    _, pages["step 1 again"], _ = await b.submit(ADD, {}, ("akcja", "wstecz"))
    await b.page(ADD, lang)
    fields = step2("w1@gmail.com", dovecot.ports["pop3s"], protokol="pop3", dostawca=label)
    _, _, location = await b.post(ADD, fields, ADD)
    _, pages["list: added"] = await b.page(location or "", lang)
    external = ext_db.get_external(b.ctx.directory, USER, label)
    base = f"{LIST}/{external.id}"
    _, pages["edit"] = await b.page(base + "/edytuj", lang)
    _, pages["edit switched"], _ = await b.submit(
        base + "/edytuj", {"protokol": "imap"}, ("akcja", "protokol")
    )
    _, pages["edit error"], _ = await b.submit(base + "/edytuj", {"haslo": "zle"})
    _, _, location = await b.submit(base + "/pobierz")
    _, pages["list: fetching"] = await b.page(location or "", lang)
    _, pages["delete"] = await b.page(base + "/usun", lang)
    _, _, location = await b.submit(base + "/usun", {"zachowaj": None})
    _, pages["list: deleted"] = await b.page(location or "", lang)
    return pages


async def test_every_external_page_speaks_the_users_language(
    browser: Browser, dovecot: Dovecot
) -> None:
    """No English word on a Polish page, no Polish on an English one, no key shown."""
    from tests.test_i18n import ENGLISH, POLISH, untranslated_keys, visible_words

    problems: list[str] = []
    for lang in ("pl", "en"):
        for name, html in (await walk_external(browser, dovecot, lang)).items():
            assert f'<html lang="{lang}">' in html, (lang, name)
            text = visible_words(html)
            words = {w.lower() for w in re.findall(r"[^\W\d_]+", text)}
            foreign = words & (ENGLISH if lang == "pl" else POLISH)
            if foreign:
                problems.append(f"{lang} {name}: {sorted(foreign)}")
            keys = untranslated_keys(text)
            if keys:
                problems.append(f"{lang} {name}: keys {keys}")
    assert not problems, "\n".join(problems)
