"""Every word in the user's language: the catalogues, their plural forms, and every page.

The catalogue tests extract with Babel every key the sources and templates use and fail on
a key a catalogue lacks or leaves empty, on a plural entry without every form its language
needs, on a text that does not format, and on a compiled .mo that is older than its .po.
The page walk opens every page of the site, in each state a user can reach, in Polish and in
English, and fails on common English words in a Polish page and on any key shown as such.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo

from mailsuite import catalogues, i18n, mails, policy
from mailsuite.accounts import ACTIVATION
from mailsuite.config.schema import PasswordPolicy, Settings
from mailsuite.web import i18n as web_i18n
from mailsuite.web.pages import footer

from .test_web import CONTACT, OLD, Site, errors_of, open_site, sign_in

USES = catalogues.extract()


def test_the_extraction_finds_the_keys_of_code_and_templates() -> None:
    """Keys said in Python, in page templates and in mail templates are all found."""
    for key, where in (
        ("err.rule", "password.py"),
        ("policy.min_length", "policy.py"),
        ("code.submit", "code.html"),
        ("link.expired", "link.html"),
        ("mail.reset.ignore", "reset.txt"),
        ("auth.must_change", "auth.py"),
    ):
        assert key in USES, key
        assert where in USES[key].where or key == "policy.min_length"
    assert USES["link.expired"].plural == "link.expired.plural"


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_key_used_has_words_in_every_language(lang: str) -> None:
    catalog = catalogues.read(lang)
    missing = [f"{u.key} ({u.where})" for u in USES.values() if catalog.get(u.key) is None]
    assert not missing, f"{lang}: keys without words: {missing}"
    empty, wrong_forms, unformattable = [], [], []
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(forms):
            empty.append(key)
        if message.pluralizable and len(forms) != catalog.num_plurals:
            wrong_forms.append(key)
        use = USES.get(key)
        if use is not None and bool(use.plural) != message.pluralizable:
            wrong_forms.append(key)
        for form in forms:
            try:
                form % _Anything()
            except (TypeError, ValueError, KeyError):
                unformattable.append(key)
    assert not empty, f"{lang}: empty translations: {empty}"
    assert not wrong_forms, f"{lang}: plural forms do not match: {wrong_forms}"
    assert not unformattable, f"{lang}: not %-format strings (write %% for %): {unformattable}"


class _Anything(dict):
    """Values for any %(name)s or %(num)d a text asks for."""

    def __missing__(self, key: str) -> int:
        return 1


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_the_compiled_catalogues_match_their_sources(lang: str) -> None:
    """The .mo that servers load says what the .po says (python3 -m mailsuite.catalogues)."""
    source = catalogues.read(lang)
    compiled_path = catalogues.po_path(lang).with_suffix(".mo")
    with compiled_path.open("rb") as fp:
        compiled = read_mo(fp)
    expected = {_key(m.id): _forms(m.string) for m in source if m.id}
    got = {_key(m.id): _forms(m.string) for m in compiled if m.id}
    assert got == expected, "recompile with: python3 -m mailsuite.catalogues"


def _key(msgid: str | tuple[str, ...] | list[str]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def _forms(string: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (string,) if isinstance(string, str) else tuple(string)


def test_no_words_are_registered_outside_the_catalogues() -> None:
    """Texts a module registers for itself are in the catalogues too (and so translated)."""
    assert not [k for k in web_i18n.TEXTS if i18n.text("pl", k) == k]


@pytest.mark.parametrize(
    ("n", "polish"),
    [
        (1, "najwyżej 1 znak"),
        (2, "najwyżej 2 znaki"),
        (4, "najwyżej 4 znaki"),
        (5, "najwyżej 5 znaków"),
        (12, "najwyżej 12 znaków"),
        (16, "najwyżej 16 znaków"),
        (22, "najwyżej 22 znaki"),
        (64, "najwyżej 64 znaki"),
        (72, "najwyżej 72 znaki"),
        (111, "najwyżej 111 znaków"),
    ],
)
def test_polish_numbers_take_the_catalogues_plural_forms(n: int, polish: str) -> None:
    assert policy.Broken("max_length", n).text("pl") == polish
    english = policy.Broken("max_length", n).text("en")
    assert english == (f"at most {n} character" + ("s" if n != 1 else ""))


def test_the_default_policy_is_described_with_correct_plurals() -> None:
    rules = policy.describe(PasswordPolicy(), "pl")
    assert rules[:2] == ["co najmniej 8 znaków", "najwyżej 64 znaki"]
    assert policy.describe(PasswordPolicy(history=2), "pl")[-1] == (
        "nie może być jednym z 2 ostatnich haseł"
    )


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("Zmień hasło tymczasowe", "Zmien haslo tymczasowe"),
        ("ŁÓDŹ, żółw, gęś", "LODZ, zolw, ges"),
        ("„cudzysłów” — myślnik", '"cudzyslow" - myslnik'),
        ("already plain", "already plain"),
        ("emoji ☃", "emoji ?"),
    ],
)
def test_protocol_notices_are_folded_to_ascii(text: str, wire: str) -> None:
    assert i18n.ascii_text(text) == wire


def test_mails_follow_the_recipients_language_and_never_put_the_code_in_the_subject() -> None:
    settings = Settings.model_validate({"hostname": "mail.example.test", "domains": ["x.test"]})
    subject, body = mails.login_code(settings, "733383", 10)
    assert "733383" in body and "733383" not in subject
    assert "Kod jest ważny 10 minut." in body
    subject, body = mails.login_code(settings, "733383", 2, lang="en")
    assert subject == "Your authorisation code" and "valid for 2 minutes" in body
    reset = mails.temporary_password(settings, "a@x.test", "Tmp1", 2e9, reset=True)[1]
    first = mails.temporary_password(settings, "a@x.test", "Tmp1", 2e9)[1]
    assert "Przed pierwszym logowaniem" in first and "Przed pierwszym" not in reset
    assert "dotychczasowe hasło nadal działa" in reset
    assert "ważny 72 godziny" in mails.activation_link(settings, "a@x.test", "s", 72)[1]


def test_an_admins_template_replaces_a_mail(tmp_path: Path) -> None:
    """A file in site.templates/mail/ replaces the built-in mail of the same name."""
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "login_code.txt").write_text(
        "{% block subject %}Kod do {{ organisation }}{% endblock %}\n"
        "{% block body %}{{ 'Kod' if lang == 'pl' else 'Code' }}: {{ code }}\n"
        "{{ support }}{% endblock %}\n"
    )
    settings = Settings.model_validate(
        {
            "hostname": "mail.example.test",
            "domains": ["x.test"],
            "site": {"templates": str(tmp_path), "organisation": "KPWiK", "support": "tel. 1"},
        }
    )
    assert mails.login_code(settings, "123456", 10) == ("Kod do KPWiK", "Kod: 123456\ntel. 1\n")
    assert mails.login_code(settings, "123456", 10, lang="en")[1].startswith("Code: 123456")
    # The others stay built in.
    assert mails.activated(settings, "a@x.test")[0] == "Twój login do poczty"


# -- every page, in Polish and in English -----------------------------------------------------

ENGLISH = {
    "the", "is", "are", "must", "required", "number", "account", "password", "error", "server",
    "please", "not", "and", "for", "from", "with", "your", "you", "this", "has", "have", "been",
    "try", "again", "later", "invalid", "wrong", "enter", "change", "sign", "settings",
    "address", "code", "terms", "accept", "back", "save", "next", "step", "of", "in", "at",
    "or", "will", "cannot", "failed", "refused", "user", "name", "labelled", "exists", "here",
    "help", "new", "current", "forgot", "send", "valid", "expired", "set", "home",
}  # fmt: skip
POLISH = {"hasło", "konto", "zmień", "wyślij", "nie", "jest", "się", "dla", "oraz", "lub"}
KEY_PREFIXES = {
    "account", "activate", "auth", "change", "code", "err", "errors", "ext", "field", "index",
    "link", "login", "nav", "notfound", "notice", "password", "policy", "profile", "reset",
    "section", "settings", "site", "terms", "unavailable",
}  # fmt: skip
KEY_LIKE = re.compile(r"\b[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+\b")


def visible_words(html: str) -> str:
    """What a user reads or hears: text, alt and aria-label, not the values typed in."""
    labels = " ".join(re.findall(r'(?:alt|aria-label|title)="([^"]*)"', html))
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    # Addresses and host names are the user's data, not the site's words.
    return re.sub(r"\S+@\S+|\b(?:[\w-]+\.)+(?:test|org|com|pl)\b", " ", f"{body} {labels}")


def untranslated_keys(text: str) -> list[str]:
    keys = set(USES) | {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalogues.read("en")}
    found = KEY_LIKE.findall(text)
    return [k for k in found if k in keys or k.partition(".")[0] in KEY_PREFIXES]


async def walk(site: Site, lang: str) -> dict[str, str]:
    """Every page a user can reach, by a name, as served with Accept-Language `lang`."""
    h = {"Accept-Language": lang}
    pages: dict[str, str] = {}

    async def get(name: str, path: str) -> None:
        response = await site.client.get(path, headers=h)
        pages[name] = await response.text()

    async def post(name: str, path: str, fields: dict[str, str], form: str | None = None) -> str:
        _, html = await site.post(path, fields, form=form, headers=h)
        pages[name] = html
        return html

    for name, path in (
        ("home", "/"),
        ("change", "/zmien-haslo"),
        ("reset", "/nie-pamietam-hasla"),
        ("login", "/konto"),
        ("not found", "/nie-ma-takiej"),
    ):
        await get(name, path)
    await post("change: every field missing", "/zmien-haslo", {})
    await post("change: wrong account", "/zmien-haslo", {"konto": "nikt", "aktualne": "x",
               "nowe": "Hasl@", "powtorzone": "inne"})  # fmt: skip
    legacy = f"pk{lang}0001"
    site.add(f"legacy-{lang}@example.test", legacy_login=legacy)
    await post("change: rules broken", "/zmien-haslo", {"konto": legacy, "aktualne": OLD,
               "nowe": "ab", "powtorzone": "ab"})  # fmt: skip
    await post("change: done, with the legacy notice", "/zmien-haslo", {"konto": legacy,
               "aktualne": OLD, "nowe": "Nowehaslo7", "powtorzone": "Nowehaslo7"})  # fmt: skip

    directory, clock = site.ctx.directory, site.clock
    for state in ("fresh", "used", "expired"):
        address = f"invited-{state}-{lang}@example.test"
        directory.add_account(address, password_hash=None, contact=CONTACT)
        secret = f"link-{state}-{lang}-0123456789abcdefghijklmnopqrstuvwxyz"
        lifetime = site.ctx.settings.accounts.activation_link_lifetime
        token = directory.create_token(ACTIVATION, address, secret, lifetime)
        if state == "used":
            directory.use_token(token)
        if state == "expired":
            clock.now += lifetime + 1
        await get(f"activation: {state}", f"/aktywuj/{secret}")
        if state == "expired":
            clock.now -= lifetime + 1
        if state == "fresh":
            await post("activation: rules broken", f"/aktywuj/{secret}", {"nowe": "a",
                       "powtorzone": "b"})  # fmt: skip
            await post("activation: done", f"/aktywuj/{secret}", {"nowe": "Aktywne12",
                       "powtorzone": "Aktywne12"})  # fmt: skip
    await get("activation: unknown link", "/aktywuj/nieznany")
    await post("reset: login missing", "/nie-pamietam-hasla", {})
    await post("reset: done", "/nie-pamietam-hasla", {"konto": "nikt@example.test"})
    await post("login: wrong", "/konto", {"konto": "nikt@example.test", "haslo": "x"})
    site.add(f"temporary-{lang}@example.test", contact=CONTACT)
    await post("login: must change", "/konto", {"konto": f"temporary-{lang}@example.test",
               "haslo": OLD})  # fmt: skip
    site.add(f"nocontact-{lang}@example.test", temporary=False)
    await post("login: no contact", "/konto", {"konto": f"nocontact-{lang}@example.test",
               "haslo": OLD})  # fmt: skip
    user = f"user-{lang}@example.test"
    site.add(user, temporary=False, contact=CONTACT)
    code = await sign_in(site, user, OLD)
    await get("code", "/konto/kod")
    wrong = "000000" if code != "000000" else "111111"
    await post("code: wrong", "/konto/kod", {"kod": wrong})
    await post("terms", "/konto/kod", {"kod": code})
    await post("terms: not accepted", "/konto/regulamin", {}, form="/konto")
    await post("account", "/konto/regulamin", {"akceptuje": "tak"}, form="/konto")
    await get("external: step 1", "/konto/zewnetrzne/dodaj")
    await post("external: step 1 errors", "/konto/zewnetrzne/dodaj", {"krok": "1"})
    await post("external: step 2", "/konto/zewnetrzne/dodaj", {"krok": "1", "dostawca": "Ewa",
               "email": "ewa@gmail.com", "haslo": "x"})  # fmt: skip
    return pages


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    s = await open_site(tmp_path, {"site": {"organisation": "KPWiK", "support": "tel. 1"}})
    yield s
    await s.client.close()
    s.ctx.io_pool.shutdown()
    s.ctx.directory.close()


async def test_every_page_speaks_polish_or_english_and_shows_no_keys(site: Site) -> None:
    problems: list[str] = []
    for lang in i18n.LANGUAGES:
        pages = await walk(site, lang)
        assert len(pages) >= 25
        for name, html in pages.items():
            assert f'<html lang="{lang}">' in html, (lang, name, errors_of(html))
            text = visible_words(html)
            words = {w.lower() for w in re.findall(r"[^\W\d_]+", text)}
            if lang == "pl":
                english = sorted(words & ENGLISH)
                if english:
                    problems.append(f"pl {name}: English words {english}")
            else:
                polish = sorted(words & POLISH)
                if polish:
                    problems.append(f"en {name}: Polish words {polish}")
            keys = untranslated_keys(text)
            if keys:
                problems.append(f"{lang} {name}: untranslated keys {keys}")
    assert not problems, "\n".join(problems)


async def test_the_home_page_names_the_site_once_and_success_keeps_the_forms_title(
    site: Site,
) -> None:
    pages = await walk(site, "pl")
    title = re.search(r"<title>(.*?)</title>", pages["home"]).group(1)
    assert title == "Poczta · KPWiK"
    for form, done in (
        ("change", "change: done, with the legacy notice"),
        ("activation: fresh", "activation: done"),
        ("reset", "reset: done"),
    ):
        wanted = re.search(r"<title>(.*?)</title>", pages[form]).group(1)
        assert re.search(r"<title>(.*?)</title>", pages[done]).group(1) == wanted, done
        assert wanted.endswith(" — Poczta · KPWiK")


def test_every_reason_a_remote_client_names_has_words() -> None:
    """The wizard says every remote failure in the user's language, none in English."""
    from mailsuite.remote.errors import REASONS
    from mailsuite.web import external

    assert set(REASONS) <= set(external._REASONS)
    for lang in i18n.LANGUAGES:
        for key in external._REASONS.values():
            assert i18n.translations(lang).gettext(key) != key


async def test_the_organisations_switches_terms_and_code_step(tmp_path: Path) -> None:
    """The terms file is shown by paragraphs, the code step and the external-accounts section
    can be turned off, and the header and footer name the organisation."""
    terms = tmp_path / "regulamin.txt"
    terms.write_text("§ 1. Pierwszy akapit\nregulaminu.\n\n§ 2. Drugi akapit.\n")
    s = await open_site(
        tmp_path,
        {
            "site": {
                "organisation": "WPWiK",
                "support": "tel. 662 277 045",
                "terms_file": str(terms),
            },
            "web": {"login_code": False, "external_accounts": False},
        },
    )
    try:
        s.add("bez-kodu@example.test", temporary=False, contact=CONTACT)
        status, html = await s.post("/konto", {"konto": "bez-kodu@example.test", "haslo": OLD})
        assert status == 200, errors_of(html)
        assert (
            "<p>§ 1. Pierwszy akapit regulaminu.</p>" in html
            and "<p>§ 2. Drugi akapit.</p>" in html
        )
        assert "WPWiK" in html and "Pomoc: tel. 662 277 045" in html
        status, html = await s.post("/konto/regulamin", {"akceptuje": "tak"}, form="/konto")
        assert status == 200 and "Moje konto" in html and "Konta zewnętrzne" not in html
        response = await s.client.get("/konto/zewnetrzne/dodaj", allow_redirects=False)
        assert response.status == 303
    finally:
        await s.client.close()
        s.ctx.io_pool.shutdown()
        s.ctx.directory.close()


async def test_the_code_field_takes_a_pasted_code_with_spaces(site: Site) -> None:
    site.add("wklejony@example.test", temporary=False, contact=CONTACT)
    code = await sign_in(site, "wklejony@example.test", OLD)
    _, html, _ = await site.page("/konto/kod")
    field = re.search(r'<input id="kod"[^>]*>', html, re.S).group(0)
    assert "autofocus" in field and 'maxlength="16"' in field
    status, html = await site.post("/konto/kod", {"kod": f" {code[:3]} {code[3:]} "})
    assert status == 200 and "Regulamin" in html, errors_of(html)


@pytest.mark.parametrize(
    ("organisation", "polish"),
    [
        ("KPWiK", "Serwis prowadzi KPWiK."),
        ("Hosting sp. z o.o.", "Serwis prowadzi Hosting sp. z o.o."),
        ("Yahoo!", "Serwis prowadzi Yahoo!"),
        ("Wodociągi S.A", "Serwis prowadzi Wodociągi S.A."),
        ("", ""),
    ],
)
def test_the_footer_ends_its_sentence_once_whatever_the_name(
    organisation: str, polish: str
) -> None:
    """A name that ends with its own full stop ("sp. z o.o.") ends the footer's sentence."""
    assert footer("pl", organisation) == polish
    english = polish.replace("Serwis prowadzi", "This service is run by")
    assert footer("en", organisation) == english
