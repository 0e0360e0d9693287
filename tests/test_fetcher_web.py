"""The external-accounts part of the account page: wizard, edit, fetch now, delete.

The site runs in-process (aiohttp's test server over the real app) with Dovecot as the
remote; the user is signed in through the directory's session token, as after the e-mailed
code.
"""

from __future__ import annotations

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

pytestmark = pytest.mark.timeout(120)

USER = "ala@example.test"


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    server = Dovecot(tmp_path_factory.mktemp("dovecot"), users=("w1", "w2")).start()
    yield server
    server.stop()


def build_ctx(tmp: Path, limit: int) -> Context:
    data = {
        "hostname": "mail.example.test",
        "domains": ["example.test"],
        "tls": {"self_signed": True},
        "web": {"tls": False},
        "fetcher": {"max_accounts_per_user": limit, "timeout": 10},
    }
    return in_process_context(tmp, data)


class Browser:
    def __init__(self, client: TestClient, ctx: Context) -> None:
        self.client = client
        self.ctx = ctx

    async def page(self, path: str) -> tuple[int, str, str]:
        response = await self.client.get(path)
        text = await response.text()
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        return response.status, text, found.group(1) if found else ""

    async def post(self, path: str, fields: dict[str, str], form: str) -> tuple[int, str, Any]:
        _, _, csrf = await self.page(form)
        response = await self.client.post(
            path, data={"csrf": csrf, **fields}, allow_redirects=False
        )
        return response.status, await response.text(), response.headers.get("Location")


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    ctx = build_ctx(tmp_path, limit=2)
    ctx.directory.add_account(USER, password_hash=hash_password_sync("Secret123", 4))
    ctx.directory.update_account(USER, terms_accepted=ctx.directory.clock())
    session = secrets.token_urlsafe(32)
    ctx.directory.create_token("web-session", USER, session, 3600)
    client = TestClient(TestServer(init_app(ctx, https=False)))
    await client.start_server()
    client.session.cookie_jar.update_cookies({"sesja": session})
    yield Browser(client, ctx)
    await client.close()
    ctx.io_pool.shutdown()
    ctx.directory.close()


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


async def test_wizard_tests_the_connection_and_names_the_reason(
    browser: Browser, dovecot: Dovecot
) -> None:
    status, html, _ = await browser.page("/konto")
    assert status == 200 and "Konta zewnętrzne" in html and "Nie masz kont" in html
    status, html, _ = await browser.page("/konto/zewnetrzne/dodaj")
    labels = re.findall(r'<label for="([^"]+)">([^<]+)</label>', html)
    assert labels == [
        ("dostawca", "Dostawca"),
        ("nazwa", "Twoja nazwa"),
        ("email", "Adres e-mail"),
        ("haslo", "Hasło"),
    ]
    first = {"krok": "1", "dostawca": "Gmail", "nazwa": "Ala", "email": "w1@gmail.com"}
    status, html, _ = await browser.post(
        "/konto/zewnetrzne/dodaj", {**first, "haslo": PASSWORD}, "/konto/zewnetrzne/dodaj"
    )
    assert status == 200 and "konfiguracja zaawansowana" in html
    assert 'value="imap.gmail.com"' in html and 'value="993"' in html
    form = "/konto/zewnetrzne/dodaj"
    imaps = dovecot.ports["imaps"]
    status, html, _ = await browser.post(form, step2("w1@gmail.com", imaps, haslo="zle"), form)
    assert status == 400 and "Serwer odrzucił login lub hasło" in html
    status, html, _ = await browser.post(form, step2("w1@gmail.com", 1), form)
    assert status == 400 and "Nie można połączyć się z serwerem" in html
    status, html, _ = await browser.post(form, step2("w1@gmail.com", imaps, samopodpisany=""), form)
    assert status == 400 and "Problem z bezpiecznym połączeniem (TLS)" in html
    assert ext_db.list_external(browser.ctx.directory, USER) == []
    status, _, location = await browser.post(form, step2("w1@gmail.com", imaps), form)
    assert status == 303 and location == "/konto#zewnetrzne"
    (created,) = ext_db.list_external(browser.ctx.directory, USER)
    assert (created.label, created.display_name, created.protocol) == (
        "Gmail",
        "Ala Kowalska",
        "imap",
    )
    assert ext_db.external_senders(
        browser.ctx.directory, browser.ctx.directory.get_account(USER)
    ) == [("w1@gmail.com", "Ala Kowalska")]


async def test_fetch_now_edit_limit_and_delete(browser: Browser, dovecot: Dovecot) -> None:
    ctx = browser.ctx
    form = "/konto/zewnetrzne/dodaj"
    dovecot.put("w2", message(1))
    dovecot.put("w2", message(2))
    fields = step2("w2@wp.pl", dovecot.ports["imaps"], login="w2", dostawca="WP")
    assert (await browser.post(form, fields, form))[0] == 303
    external = ext_db.get_external(ctx.directory, USER, "WP")
    base = f"/konto/zewnetrzne/{external.id}"
    ext_db.record_outcome(ctx.directory, external.id, error=None, next_attempt=9e9)
    status, _, _ = await browser.post(base + "/pobierz", {}, "/konto")
    assert status == 303
    assert ext_db.get_external(ctx.directory, USER, "WP").next_attempt == 0
    fetcher = Fetcher(ctx.directory, ctx.store, ctx.settings)
    result = await ctx.run_io(fetcher.fetch, ext_db.get_external(ctx.directory, USER, "WP"))
    assert result.copied == 2
    _, html, _ = await browser.page("/konto")
    assert re.search(r'<dd class="messages">2</dd>', html)
    assert re.search(r'<dd class="last-success">\d{4}-\d\d-\d\d \d\d:\d\d</dd>', html)
    # Switch to POP3 on the edit page; the connection is tested again.
    edit = {
        "dostawca": "WP",
        "nazwa": "Ala",
        "email": "w2@wp.pl",
        "login": "w2",
        "protokol": "pop3",
        "serwer": "127.0.0.1",
        "port": str(dovecot.ports["pop3s"]),
        "szyfrowanie": "tls",
        "samopodpisany": "1",
    }
    status, _, _ = await browser.post(base + "/edytuj", edit, base + "/edytuj")
    assert status == 303
    assert ext_db.get_external(ctx.directory, USER, "WP").protocol == "pop3"
    # Another account fills the limit of 2; a third is refused with a message.
    other = step2("w1@gmail.com", dovecot.ports["imaps"], dostawca="Druga")
    assert (await browser.post(form, other, form))[0] == 303
    _, html, _ = await browser.page("/konto")
    assert "Możesz dodać najwyżej 2 konta zewnętrzne." in html
    status, html, _ = await browser.post(
        form, {**other, "krok": "1", "dostawca": "Trzecia"}, "/konto"
    )
    assert status == 400 and "najwyżej 2" in html
    # Deleting with the folder kept, then without.
    remote_before = [n.split(":")[0] for n in dovecot.files("w2")]
    status, _, _ = await browser.post(base + "/usun", {"zachowaj": "1"}, "/konto")
    assert status == 303
    folder = ctx.store.mailbox(USER).folder("WP")
    folder.sync()
    assert len(folder.messages()) == 2
    druga = ext_db.get_external(ctx.directory, USER, "Druga")
    await browser.post(f"/konto/zewnetrzne/{druga.id}/usun", {}, "/konto")
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
    status, _, location = await browser.post(f"/konto/zewnetrzne/{theirs.id}/usun", {}, "/konto")
    assert status == 303 and location == "/konto"
    assert ext_db.external_by_id(ctx.directory, theirs.id) is not None
    status, html, _ = await browser.page(f"/konto/zewnetrzne/{theirs.id}/edytuj")
    assert "Jej" not in html
