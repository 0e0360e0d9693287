"""The haslo site through aiohttp's test client over a real directory, store and login path.

Every page, rule and error path: the seed-000 change form, each seed's password policy,
activation links (used, expired, unknown), forgotten passwords (same answer either way,
rate-limited), the account page's e-mailed code and terms, CSRF, cookie flags and headers.
E-mails go through the suite's own delivery path to local contact mailboxes and are read back
from the store.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from mailsuite.auth import AuthCode
from mailsuite.context import Context
from mailsuite.passwords import hash_password_sync
from mailsuite.web.app import init_app
from mailsuite.web.reset import TASKS_KEY

from .conftest import in_process_context

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "config" / "examples"
OLD = "Tymczas0wy1"
CONTACT = "kontakt@example.org"


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


BASE = {
    "hostname": "mail.example.test",
    "domains": ["example.test", "example.org"],
    "listen": {"imaps": "127.0.0.1:993", "pop3s": "127.0.0.1:995", "submission": "0.0.0.0:587"},
    "tls": {"self_signed": True},
    "web": {"tls": False, "base_url": "https://haslo.example.test"},
    "accounts": {"bcrypt_rounds": 4},
    "throttle": {"max_failures_per_ip": 50, "max_failures_per_account": 4},
    "password_policy": {
        "min_length": 8,
        "max_length": 16,
        "forbid_special": True,
        "forbid_non_ascii": True,
        "history": 2,
    },
}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def build_ctx(tmp: Path, overrides: dict[str, Any], clock: Clock) -> Context:
    data = merge(BASE, overrides)
    if "password_policy" in overrides:  # a seed's policy replaces the default one whole
        data["password_policy"] = overrides["password_policy"]
    return in_process_context(tmp, data, clock)


class Site:
    """A test client plus the context it runs over, with helpers that read like a user."""

    def __init__(self, client: TestClient, ctx: Context, clock: Clock) -> None:
        self.client = client
        self.ctx = ctx
        self.clock = clock

    def add(self, address: str, password: str = OLD, *, temporary: bool = True, **kw: Any) -> Any:
        expires = self.clock.now + 86400 if temporary else None
        return self.ctx.directory.add_account(
            address,
            password_hash=hash_password_sync(password, 4),
            temporary=temporary,
            temp_expires=expires,
            **kw,
        )

    async def page(self, path: str, **kw: Any) -> tuple[int, str, str]:
        response = await self.client.get(path, **kw)
        text = await response.text()
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        return response.status, text, found.group(1) if found else ""

    async def post(
        self, path: str, fields: dict[str, str], *, form: str | None = None, **kw: Any
    ) -> tuple[int, str]:
        """Fill in the form found on `form` (default: `path` itself) and post it to `path`."""
        _, _, csrf = await self.page(form or path)
        response = await self.client.post(path, data={"csrf": csrf, **fields}, **kw)
        return response.status, await response.text()

    async def change(self, login: str, current: str, new: str, repeat: str | None = None) -> Any:
        fields = {
            "konto": login,
            "aktualne": current,
            "nowe": new,
            "powtorzone": new if repeat is None else repeat,
        }
        return await self.post("/zmien-haslo", fields)

    async def drain(self) -> None:
        tasks = self.client.app[TASKS_KEY]
        if tasks:
            await asyncio.wait(tasks)

    def mail(self, address: str = CONTACT) -> list[email.message.EmailMessage]:
        folder = self.ctx.store.mailbox(address).folder("INBOX")
        folder.sync()
        return [
            email.message_from_bytes(folder.read(m.uid), policy=email.policy.default)
            for m in folder.messages()
        ]

    def last_body(self, address: str = CONTACT) -> str:
        return self.mail(address)[-1].get_body(("plain",)).get_content()


async def open_site(tmp: Path, overrides: dict[str, Any], https: bool = False) -> Site:
    clock = Clock()
    ctx = build_ctx(tmp, overrides, clock)
    client = TestClient(TestServer(init_app(ctx, https=https)))
    await client.start_server()
    site = Site(client, ctx, clock)
    site.add(CONTACT, "Kontakt123", temporary=False)
    return site


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    s = await open_site(tmp_path, {})
    yield s
    await s.client.close()
    s.ctx.io_pool.shutdown()
    s.ctx.directory.close()


def errors_of(html: str) -> list[str]:
    block = re.search(r'<div class="errors".*?</div>', html, re.S)
    return re.findall(r"<li>(.*?)</li>", block.group(0)) if block else []


# -- the change page (seed 000) ----------------------------------------------------------------


async def test_change_page_has_exactly_the_four_polish_fields(site: Site) -> None:
    status, html, csrf = await site.page("/zmien-haslo")
    assert status == 200 and csrf
    assert '<html lang="pl">' in html
    labels = re.findall(r'<label for="([^"]+)">([^<]+)</label>', html)
    assert labels == [
        ("konto", "Konto"),
        ("aktualne", "Aktualne hasło"),
        ("nowe", "Nowe hasło"),
        ("powtorzone", "Nowe hasło (ponownie)"),
    ]
    inputs = re.findall(r'<input id="([^"]+)"', html)
    assert inputs == ["konto", "aktualne", "nowe", "powtorzone"]
    assert "<script" not in html
    # The policy is shown before the user types.
    assert "co najmniej 8 znaków" in html and "bez polskich liter" in html


async def test_english_by_accept_language_and_by_the_switch(site: Site) -> None:
    _, html, _ = await site.page("/zmien-haslo", headers={"Accept-Language": "en-GB,pl;q=0.5"})
    assert '<html lang="en">' in html and "Current password" in html
    _, html, _ = await site.page("/zmien-haslo", headers={"Accept-Language": "de, pl;q=0.9"})
    assert '<html lang="pl">' in html
    _, html, _ = await site.page("/zmien-haslo?lang=en")
    assert "New password (again)" in html
    _, html, _ = await site.page("/zmien-haslo")  # the choice is remembered
    assert '<html lang="en">' in html


async def test_success_shows_login_and_servers_then_protocols_let_the_user_in(site: Site) -> None:
    site.add("p.konarski@example.test", legacy_login="pk12ab34")
    before = await site.ctx.auth.authenticate(
        "p.konarski@example.test", OLD, protocol="imap", remote_ip="127.0.0.1"
    )
    assert before.code is AuthCode.MUST_CHANGE and before.change_url.endswith("/zmien-haslo")
    status, html = await site.change("pk12ab34", OLD, "Nowehaslo7")
    assert status == 200, errors_of(html)
    assert "Hasło zostało zmienione." in html
    assert "<strong>p.konarski@example.test</strong>" in html
    assert "Od teraz logując się, podawaj pełny adres p.konarski@example.test." in html
    assert "pk12ab34 przestanie działać po zakończeniu migracji" in html
    cells = re.sub(r"<td[^>]*>", "<td>", html)  # each cell also carries its column's label
    assert "<td>mail.example.test</td><td>993</td>" in cells
    assert "<td>mail.example.test</td><td>995</td>" in cells
    assert "<td>mail.example.test</td><td>587</td>" in cells
    after = await site.ctx.auth.authenticate(
        "p.konarski@example.test", "Nowehaslo7", protocol="imap", remote_ip="127.0.0.1"
    )
    assert after.ok
    entries = site.ctx.directory.audit_log("p.konarski@example.test")
    events = [e["event"] for e in entries]
    assert "web.password-change" in events and "password.change" in events
    assert not any(OLD in e["detail"] or "Nowehaslo7" in e["detail"] for e in entries)


async def test_alias_is_accepted_as_the_account(site: Site) -> None:
    site.add("ala@example.test")
    site.ctx.directory.add_alias("ala.kot@example.org", "ala@example.test")
    status, html = await site.change("Ala.Kot@example.org", OLD, "Nowehaslo7")
    assert status == 200, errors_of(html)
    assert "<strong>ala@example.test</strong>" in html


async def test_wrong_account_and_wrong_password_read_the_same(site: Site) -> None:
    site.add("ola@example.test")
    s1, h1 = await site.change("nikt@example.test", OLD, "Nowehaslo7")
    s2, h2 = await site.change("ola@example.test", "Zlehaslo99", "Nowehaslo7")
    assert s1 == s2 == 400
    assert errors_of(h1) == errors_of(h2) == ["Nieprawidłowe konto lub hasło."]


async def test_mismatch_same_and_login_are_each_named(site: Site) -> None:
    site.add("jan@example.test")
    _, html = await site.change("jan@example.test", OLD, "Nowehaslo7", "Nowehaslo8")
    assert errors_of(html) == ["Nowe hasło i jego powtórzenie różnią się."]
    _, html = await site.change("jan@example.test", OLD, OLD)
    assert errors_of(html) == ["Nowe hasło musi różnić się od aktualnego."]
    _, html = await site.change("jan@example.test", OLD, "jan12345X")
    assert errors_of(html) == ["Nowe hasło: nie może zawierać nazwy konta."]


async def test_every_broken_rule_is_listed_at_once(site: Site) -> None:
    site.add("ewa@example.test")
    _, html = await site.change("ewa@example.test", OLD, "żółw!")
    assert errors_of(html) == [
        "Nowe hasło: co najmniej 8 znaków.",
        "Nowe hasło: bez znaków specjalnych (tylko litery i cyfry).",
        "Nowe hasło: bez polskich liter.",
    ]
    _, html = await site.change("ewa@example.test", OLD, "a" * 17)
    assert errors_of(html) == ["Nowe hasło: najwyżej 16 znaków."]
    assert site.ctx.directory.get_account("ewa@example.test").must_change


async def test_missing_fields_are_named(site: Site) -> None:
    status, html = await site.change("", "", "", "")
    assert status == 400
    assert errors_of(html) == [
        "Wypełnij pole „Konto”.",
        "Wypełnij pole „Aktualne hasło”.",
        "Wypełnij pole „Nowe hasło”.",
        "Wypełnij pole „Nowe hasło (ponownie)”.",
    ]


async def test_recent_passwords_are_refused(site: Site) -> None:
    site.add("rob@example.test", "Pierwsze1", temporary=False)
    assert (await site.change("rob@example.test", "Pierwsze1", "Drugie22"))[0] == 200
    assert (await site.change("rob@example.test", "Drugie22", "Trzecie3"))[0] == 200
    _, html = await site.change("rob@example.test", "Trzecie3", "Pierwsze1")
    assert errors_of(html) == ["Nowe hasło: nie może być jednym z 2 ostatnich haseł."]


async def test_expired_temporary_password_points_to_the_reset_page(site: Site) -> None:
    site.add("stary@example.test")
    site.clock.now += 2 * 86400
    _, html = await site.change("stary@example.test", OLD, "Nowehaslo7")
    assert errors_of(html) == [
        "Hasło tymczasowe wygasło. Poproś o nowe na stronie „Nie pamiętam hasła”."
    ]


async def test_failures_are_throttled_together_with_the_protocols(site: Site) -> None:
    """Failures on the web page and over POP3 from one address count together and refuse
    that address on every protocol; the same account from elsewhere is still checked."""
    site.add("cel@example.test")
    for _ in range(2):
        r = await site.ctx.auth.authenticate(
            "cel@example.test", "x", protocol="pop3", remote_ip="127.0.0.1"
        )
        assert r.code is AuthCode.BAD_CREDENTIALS
    for _ in range(2):
        await site.change("cel@example.test", "zle", "Nowehaslo7")
    _, html = await site.change("cel@example.test", OLD, "Nowehaslo7")
    assert errors_of(html) == ["Zbyt wiele nieudanych prób. Spróbuj ponownie później."]
    r = await site.ctx.auth.authenticate(
        "cel@example.test", OLD, protocol="imap", remote_ip="127.0.0.1"
    )
    assert r.code is AuthCode.THROTTLED
    r = await site.ctx.auth.authenticate(
        "cel@example.test", OLD, protocol="imap", remote_ip="10.0.0.2"
    )
    assert r.code is AuthCode.MUST_CHANGE  # checked: the temporary password is right


async def test_a_form_without_its_csrf_token_changes_nothing(site: Site) -> None:
    site.add("csrf@example.test")
    fields = {"konto": "csrf@example.test", "aktualne": OLD, "nowe": "Nowehaslo7"}
    response = await site.client.post("/zmien-haslo", data={**fields, "powtorzone": "Nowehaslo7"})
    assert response.status == 400
    assert "Formularz wygasł" in await response.text()
    response = await site.client.post(
        "/zmien-haslo", data={**fields, "powtorzone": "Nowehaslo7", "csrf": "0" * 64}
    )
    assert response.status == 400
    assert site.ctx.directory.get_account("csrf@example.test").must_change


# -- each seed's policy is a config example and behaves as the seed says -------------------------

SEED_CASES = {
    "seed-000-bank.yaml": (
        "Bankowe12",
        {
            "krotkie": ["co najmniej 8 znaków"],
            "Dlugiehaslo12345678": ["najwyżej 16 znaków"],
            "Haslo#1234": ["bez znaków specjalnych (tylko litery i cyfry)"],
            "Hasłoęę123": ["bez polskich liter"],
        },
    ),
    "seed-002-portal.yaml": (
        "Portal#2024",
        {
            "portal#2024": ["co najmniej jedna wielka litera"],
            "PORTAL#2024": ["co najmniej jedna mała litera"],
            "Portal#abc": ["co najmniej jedna cyfra"],
            "Portal2024": ["co najmniej jeden znak specjalny (np. ! @ # $ %)"],
            "P#1a": ["co najmniej 8 znaków"],
        },
    ),
    "seed-003-water.yaml": (
        "woda2024",
        {
            "woda24": ["co najmniej 8 znaków"],
            "woda_2024": ["bez znaków specjalnych (tylko litery i cyfry)"],
            # "8 characters of letters and digits": both kinds are needed.
            "abcdefgh": ["co najmniej jedna cyfra"],
            "12345678": ["co najmniej jedna litera"],
        },
    ),
    "seed-004-water.yaml": (
        "Wodociag1",
        {
            "wodociag1": ["co najmniej jedna wielka litera"],
            "WODOCIAG1": ["co najmniej jedna mała litera"],
            "Wodociagi": ["co najmniej jedna cyfra"],
            "Wodociąg1": ["bez polskich liter"],
        },
    ),
}


@pytest.mark.parametrize("example", sorted(SEED_CASES))
async def test_seed_policy_examples(tmp_path: Path, example: str) -> None:
    """The shipped example config's policy: each broken rule named, a good password taken."""
    loaded = yaml.safe_load((EXAMPLES / example).read_text())
    site = await open_site(tmp_path, {"password_policy": loaded["password_policy"]})
    try:
        good, bad = SEED_CASES[example]
        site.add("klient@example.test")
        for password, rules in bad.items():
            _, html = await site.change("klient@example.test", OLD, password)
            assert errors_of(html) == [f"Nowe hasło: {r}." for r in rules], password
        status, html = await site.change("klient@example.test", OLD, good)
        assert status == 200, errors_of(html)
    finally:
        await site.client.close()
        site.ctx.directory.close()


# -- activation links (seed 002) ------------------------------------------------------------------


def invite(site: Site, address: str, secret: str = "link-secret-0123456789abcdefghijklmnop") -> str:
    site.ctx.directory.add_account(address, password_hash=None, contact=CONTACT)
    lifetime = site.ctx.settings.accounts.activation_link_lifetime
    site.ctx.directory.create_token("activation", address, secret, lifetime)
    return f"/aktywuj/{secret}"


async def test_activation_sets_the_password_once_and_mails_the_login(site: Site) -> None:
    link = invite(site, "nowy@example.test")
    status, html, _ = await site.page(link)
    assert status == 200 and "Ustawienie hasła" in html and "co najmniej 8 znaków" in html
    status, html = await site.post(link, {"nowe": "krotkie", "powtorzone": "krotkie"})
    assert status == 400 and errors_of(html) == ["Nowe hasło: co najmniej 8 znaków."]
    status, html = await site.post(link, {"nowe": "Aktywne12", "powtorzone": "Aktywne12"})
    assert status == 200, errors_of(html)
    assert "<strong>nowy@example.test</strong>" in html
    assert "Login wysłaliśmy" in html
    body = site.last_body()
    assert "nowy@example.test" in body and "Aktywne12" not in body
    r = await site.ctx.auth.authenticate(
        "nowy@example.test", "Aktywne12", protocol="imap", remote_ip=None
    )
    assert r.ok
    status, html, _ = await site.page(link)
    assert status == 410 and "Link został już użyty" in html and "Nie pamiętam hasła" in html
    status, html = await site.post(link, {"nowe": "Inne12345", "powtorzone": "Inne12345"})
    assert status == 410
    assert "web.activate" in [e["event"] for e in site.ctx.directory.audit_log("nowy@example.test")]


async def test_expired_and_unknown_links_say_what_to_do(site: Site) -> None:
    link = invite(site, "spoznialski@example.test")
    site.clock.now += 72 * 3600 + 1
    status, html, _ = await site.page(link)
    assert status == 410 and "Link wygasł" in html and "72 godziny" in html
    status, _ = await site.post(link, {"nowe": "Aktywne12", "powtorzone": "Aktywne12"})
    assert status == 410
    status, html, _ = await site.page("/aktywuj/nie-ma-takiego")
    assert status == 404 and "Link jest nieprawidłowy" in html


# -- forgot password (seeds 003, 004) -------------------------------------------------------------


async def test_reset_mails_a_temporary_password_that_must_be_changed(site: Site) -> None:
    site.add("zapominalski@example.test", "Stare1234", temporary=False, contact=CONTACT)
    status, known = await site.post("/nie-pamietam-hasla", {"konto": "zapominalski@example.test"})
    assert status == 200
    await site.drain()
    status, unknown = await site.post("/nie-pamietam-hasla", {"konto": "nikt@example.test"})
    assert status == 200
    assert re.sub(r'value="[^"]+"', "", known) == re.sub(r'value="[^"]+"', "", unknown)
    body = site.last_body()
    temporary = re.search(r"Hasło tymczasowe: (\S+)", body).group(1)
    assert "Login: zapominalski@example.test" in body
    # Its own words: the current password still works, and nothing of a first login.
    assert "dotychczasowe hasło nadal działa" in body and "Przed pierwszym" not in body
    r = await site.ctx.auth.authenticate(
        "zapominalski@example.test", temporary, protocol="pop3", remote_ip=None
    )
    assert r.code is AuthCode.MUST_CHANGE
    # Asking for a reset locks nobody out: the old password still works meanwhile.
    r = await site.ctx.auth.authenticate(
        "zapominalski@example.test", "Stare1234", protocol="pop3", remote_ip=None
    )
    assert r.ok
    lifetime = site.ctx.settings.accounts.temporary_password_lifetime
    token = site.ctx.directory.latest_token("reset", "zapominalski@example.test")
    assert token.expires == site.clock.now + lifetime
    status, html = await site.change("zapominalski@example.test", temporary, "Nowsze123")
    assert status == 200, errors_of(html)
    # The temporary password was single use, and the old one is gone with the change.
    for old in (temporary, "Stare1234"):
        r = await site.ctx.auth.authenticate(
            "zapominalski@example.test", old, protocol="pop3", remote_ip=None
        )
        assert r.code is AuthCode.BAD_CREDENTIALS


async def test_reset_expires_after_the_temporary_password_lifetime(site: Site) -> None:
    site.add("spoznialski@example.test", "Stare1234", temporary=False, contact=CONTACT)
    await site.post("/nie-pamietam-hasla", {"konto": "spoznialski@example.test"})
    await site.drain()
    temporary = re.search(r"Hasło tymczasowe: (\S+)", site.last_body()).group(1)
    site.clock.now += site.ctx.settings.accounts.temporary_password_lifetime + 1
    r = await site.ctx.auth.authenticate(
        "spoznialski@example.test", temporary, protocol="pop3", remote_ip=None
    )
    assert r.code is AuthCode.BAD_CREDENTIALS


async def test_reset_without_contact_answers_the_same_and_changes_nothing(site: Site) -> None:
    site.add("bezkontaktu@example.test", "Stare1234", temporary=False)
    status, html = await site.post("/nie-pamietam-hasla", {"konto": "bezkontaktu@example.test"})
    await site.drain()
    assert status == 200 and "Jeśli takie konto istnieje" in html
    assert not site.ctx.directory.get_account("bezkontaktu@example.test").must_change


async def test_reset_is_rate_limited(site: Site) -> None:
    site.add("limit@example.test", "Stare1234", temporary=False, contact=CONTACT)
    for _ in range(3):
        status, _ = await site.post("/nie-pamietam-hasla", {"konto": "limit@example.test"})
        assert status == 200
    status, html = await site.post("/nie-pamietam-hasla", {"konto": "limit@example.test"})
    assert status == 429 and errors_of(html) == ["Zbyt wiele próśb. Spróbuj ponownie później."]
    await site.drain()
    assert len([m for m in site.mail() if "limit@example.test" in m.get_body().get_content()]) == 3


# -- the account page (seed 002) ------------------------------------------------------------------


async def sign_in(site: Site, login: str, password: str) -> str:
    status, html = await site.post("/konto", {"konto": login, "haslo": password})
    assert status == 200 and "Kod autoryzacyjny" in html, errors_of(html)
    return re.search(r"kod autoryzacyjny: (\d{6})", site.last_body()).group(1)


async def test_code_then_terms_then_sections(site: Site) -> None:
    site.add("konto@example.test", "Konto1234", temporary=False, contact=CONTACT)
    code = await sign_in(site, "konto@example.test", "Konto1234")
    assert "k***@example.org" in (await site.page("/konto/kod"))[1]
    status, html = await site.post("/konto/kod", {"kod": code})
    assert status == 200 and "Regulamin" in html and "akceptuję regulamin" in html
    status, html = await site.post("/konto/regulamin", {}, form="/konto")
    assert status == 400 and errors_of(html) == ["Aby przejść dalej, zaakceptuj regulamin."]
    status, html = await site.post("/konto/regulamin", {"akceptuje": "tak"}, form="/konto")
    assert status == 200 and "Moje konto" in html
    for anchor in ("dane", "haslo", "program"):
        assert f'<section id="{anchor}"' in html and f'href="#{anchor}"' in html
    assert site.ctx.directory.get_account("konto@example.test").terms_accepted
    # The code is single use.
    status, _ = await site.post("/konto/kod", {"kod": code})
    assert status == 403
    status, html = await site.post("/konto/wyloguj", {}, form="/konto")
    assert status == 200 and "Logowanie do konta" in html
    events = [e["event"] for e in site.ctx.directory.audit_log("konto@example.test")]
    assert {"web.code-sent", "web.login", "web.terms-accepted", "web.logout"} <= set(events)


async def test_five_wrong_codes_end_the_attempt(site: Site) -> None:
    site.add("zgaduj@example.test", "Konto1234", temporary=False, contact=CONTACT)
    code = await sign_in(site, "zgaduj@example.test", "Konto1234")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        status, html = await site.post("/konto/kod", {"kod": wrong})
        assert status == 403 and errors_of(html) == [f"Nieprawidłowy kod. Pozostało prób: {left}."]
    status, html = await site.post("/konto/kod", {"kod": wrong})
    assert errors_of(html) == ["Kod wygasł lub wykorzystano wszystkie próby. Zaloguj się ponownie."]
    status, html = await site.post("/konto/kod", {"kod": code})
    assert status == 403 and "Logowanie do konta" in html


async def test_code_expires_after_ten_minutes(site: Site) -> None:
    site.add("wolny@example.test", "Konto1234", temporary=False, contact=CONTACT)
    code = await sign_in(site, "wolny@example.test", "Konto1234")
    site.clock.now += 601
    status, html = await site.post("/konto/kod", {"kod": code})
    assert status == 403 and "Logowanie do konta" in html


async def test_account_login_refusals(site: Site) -> None:
    site.add("tymczas@example.test", contact=CONTACT)
    site.add("samotny@example.test", "Konto1234", temporary=False)
    status, html = await site.post("/konto", {"konto": "tymczas@example.test", "haslo": OLD})
    assert status == 403 and errors_of(html) == ["Najpierw zmień hasło tymczasowe."]
    status, html = await site.post(
        "/konto", {"konto": "samotny@example.test", "haslo": "Konto1234"}
    )
    assert status == 403 and "nie ma adresu kontaktowego" in errors_of(html)[0]
    status, html = await site.post("/konto", {"konto": "nikt@example.test", "haslo": "x"})
    assert status == 403 and errors_of(html) == ["Nieprawidłowe konto lub hasło."]
    status, _, _ = await site.page("/konto/kod", allow_redirects=False)
    assert status == 303


# -- security properties ---------------------------------------------------------------------------


async def test_headers_and_cookie_flags_over_http(site: Site) -> None:
    response = await site.client.get("/zmien-haslo")
    h = response.headers
    assert "script-src" not in h["Content-Security-Policy"]
    assert "default-src 'none'" in h["Content-Security-Policy"]
    assert h["X-Frame-Options"] == "DENY" and h["Referrer-Policy"] == "no-referrer"
    assert h["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in h
    cookie = h["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie


async def test_https_cookies_are_secure_and_hsts_is_sent(tmp_path: Path) -> None:
    site = await open_site(tmp_path, {}, https=True)
    try:
        response = await site.client.get("/zmien-haslo")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        cookie = response.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        await site.client.close()
        site.ctx.directory.close()


async def test_unknown_pages_get_the_site_page(site: Site) -> None:
    status, html, _ = await site.page("/nie-ma")
    assert status == 404 and "Nie ma takiej strony" in html
    response = await site.client.put("/zmien-haslo")
    assert response.status == 405


async def test_tokens_and_codes_are_stored_hashed(site: Site) -> None:
    site.add("hash@example.test", "Konto1234", temporary=False, contact=CONTACT)
    code = await sign_in(site, "hash@example.test", "Konto1234")
    dump = "\n".join(site.ctx.directory.db.conn.iterdump())
    assert code not in dump
    assert "Konto1234" not in dump


async def test_the_session_ends_after_its_lifetime(site: Site) -> None:
    site.add("sesja@example.test", "Konto1234", temporary=False, contact=CONTACT)
    code = await sign_in(site, "sesja@example.test", "Konto1234")
    status, html = await site.post("/konto/kod", {"kod": code})
    assert status == 200 and "Regulamin" in html
    site.clock.now += site.ctx.settings.web.session_lifetime + 1
    status, html, _ = await site.page("/konto")
    assert status == 200 and "Logowanie do konta" in html


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("", "pl"),
        ("en", "en"),
        ("EN-us", "en"),
        ("pl-PL,pl;q=0.9,en;q=0.8", "pl"),
        ("en;q=0.5, pl;q=0.6", "pl"),
        ("fr, de;q=0.9, en;q=0.1", "en"),
        ("en;q=0, fr", "pl"),
        ("en;q=abc, pl;q=0.1", "pl"),
        ("*", "pl"),
    ],
)
async def test_accept_language_table(site: Site, header: str, lang: str) -> None:
    _, html, _ = await site.page("/", headers={"Accept-Language": header})
    assert f'<html lang="{lang}">' in html


async def test_the_stylesheet_is_cached_by_its_versioned_address(site: Site) -> None:
    _, html, _ = await site.page("/")
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', html).group(1)
    assert "?v=" in href
    response = await site.client.get(href)
    assert response.status == 200 and "max-width" in await response.text()
    assert "immutable" in response.headers["Cache-Control"]
