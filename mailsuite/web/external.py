"""External accounts on the account page (seed 001): list, two-step wizard, edit, delete,
"pobierz teraz".

Step 1 asks for Dostawca (the label that names the account and its folder), Twoja nazwa,
the address and the password; step 2 ("konfiguracja zaawansowana") shows the server
settings filled in for well-known providers and lets the user change them. Saving tests the
connection and the login in a worker thread and names the reason when it fails. The pages
call the same functions as `mailsuite external` (mailsuite.fetcher.accounts); they never
touch Maildirs themselves, and a password is never rendered back into a page except as the
hidden field that carries it from step 1 to step 2 of one wizard (pages are no-store).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from mailsuite.context import Context
from mailsuite.directory import Account, DirectoryError, normalize_address
from mailsuite.directory import external as ext_db
from mailsuite.directory.external import ExternalAccount
from mailsuite.fetcher import accounts, providers
from mailsuite.fetcher.engine import Fetcher
from mailsuite.remote import RemoteError
from mailsuite.secrets import SecretError
from mailsuite.urls import ACCOUNT_PATH
from mailsuite.web import i18n
from mailsuite.web.account import Section, current_account, register_section
from mailsuite.web.pages import CTX_KEY, lang_of, read_form, render, see_other

BASE = ACCOUNT_PATH + "/zewnetrzne"
ADD_PATH = BASE + "/dodaj"
SECTION_ID = "zewnetrzne"

TEXTS = {
    "section.external": ("Konta zewnętrzne", "External accounts"),
    "ext.none": ("Nie masz kont zewnętrznych.", "You have no external accounts."),
    "ext.add": ("Dodaj nowe konto", "Add a new account"),
    "ext.limit": (
        "Możesz dodać najwyżej {limit} konta zewnętrzne.",
        "You can add at most {limit} external accounts.",
    ),
    "ext.intro": (
        "Wiadomości z kont zewnętrznych są kopiowane do Twojej skrzynki, każde konto do "
        "własnego katalogu. Na zdalnym serwerze nic nie jest zmieniane ani usuwane.",
        "Messages of external accounts are copied into your mailbox, each account into its "
        "own folder. Nothing is changed or deleted on the remote server.",
    ),
    "ext.step1": ("Krok 1 z 2: konto", "Step 1 of 2: the account"),
    "ext.step2": (
        "Krok 2 z 2: konfiguracja zaawansowana",
        "Step 2 of 2: advanced settings",
    ),
    "ext.step2.intro": (
        "Sprawdź ustawienia serwera. Dla znanych dostawców są wypełnione automatycznie; "
        "w razie wątpliwości skontaktuj się ze swoim dostawcą.",
        "Check the server settings. They are filled in for well-known providers; if in "
        "doubt, ask your provider.",
    ),
    "ext.label": ("Dostawca", "Provider"),
    "ext.label.hint": (
        "Nazwa identyfikująca konto; tak będzie się nazywał jego katalog.",
        "A name for the account; its folder gets this name.",
    ),
    "ext.name": ("Twoja nazwa", "Your name"),
    "ext.name.hint": (
        "Używana w polu Od, gdy wysyłasz z tego adresu.",
        "Used in the From field when you send from this address.",
    ),
    "ext.email": ("Adres e-mail", "E-mail address"),
    "ext.login": ("Login", "Login"),
    "ext.password": ("Hasło", "Password"),
    "ext.password.keep": (
        "Zostaw puste, aby zachować obecne hasło.",
        "Leave empty to keep the current password.",
    ),
    "ext.protocol": ("Protokół", "Protocol"),
    "ext.protocol.imap": (
        "IMAP (cała struktura katalogów)",
        "IMAP (the whole folder structure)",
    ),
    "ext.protocol.pop3": ("POP3 (tylko skrzynka odbiorcza)", "POP3 (the inbox only)"),
    "ext.host": ("Serwer", "Server"),
    "ext.port": ("Port", "Port"),
    "ext.security": ("Szyfrowanie", "Encryption"),
    "ext.security.tls": ("TLS (SSL)", "TLS (SSL)"),
    "ext.security.starttls": ("STARTTLS", "STARTTLS"),
    "ext.security.plain": ("Brak (niezalecane)", "None (not recommended)"),
    "ext.self_signed": (
        "Akceptuj certyfikat z podpisem własnym",
        "Accept a self-signed certificate",
    ),
    "ext.next": ("Dalej", "Next"),
    "ext.save": ("Zapisz i sprawdź połączenie", "Save and test the connection"),
    "ext.edit": ("Edytuj konto", "Edit account"),
    "ext.delete": ("Usuń konto", "Delete account"),
    "ext.keep_folder": (
        "Zachowaj katalog z pobranymi wiadomościami",
        "Keep the folder with the fetched messages",
    ),
    "ext.fetch": ("Pobierz teraz", "Fetch now"),
    "ext.fetch.queued": (
        "Pobieranie konta {label} rozpocznie się za chwilę.",
        "Fetching {label} starts in a moment.",
    ),
    "ext.saved": ("Konto {label} zapisane.", "Account {label} saved."),
    "ext.deleted": ("Konto {label} usunięte.", "Account {label} deleted."),
    "ext.messages": ("Wiadomości", "Messages"),
    "ext.last_success": ("Ostatnie pobranie", "Last fetched"),
    "ext.last_error": ("Ostatni błąd", "Last error"),
    "ext.never": ("jeszcze nie", "not yet"),
    "ext.server": ("Serwer", "Server"),
    "ext.back": ("Wróć do konta", "Back to the account"),
    "ext.error.connect": (
        "Nie można połączyć się z serwerem ({detail}).",
        "Cannot connect to the server ({detail}).",
    ),
    "ext.error.tls": (
        "Problem z bezpiecznym połączeniem (TLS): {detail}.",
        "Secure connection (TLS) problem: {detail}.",
    ),
    "ext.error.login": (
        "Serwer odrzucił login lub hasło. Sprawdź je i spróbuj ponownie.",
        "The server refused the login or password. Check them and try again.",
    ),
    "ext.error.protocol": (
        "Serwer odpowiedział błędem: {detail}.",
        "The server answered with an error: {detail}.",
    ),
    "ext.error.password": ("Podaj hasło.", "Enter the password."),
    "ext.error.secret": (
        "Zapisanego hasła nie da się odczytać; wpisz je ponownie.",
        "The stored password cannot be read; enter it again.",
    ),
}
i18n.TEXTS.update(TEXTS)


def _fetcher(ctx: Context) -> Fetcher:
    """The running fetcher's engine, so a connection test sees its live settings; a site
    running without the fetcher gets an engine of its own."""
    if ctx.fetcher is not None:
        return ctx.fetcher.engine
    return Fetcher(ctx.directory, ctx.store, ctx.settings)


def _values(ctx: Context, account: Account) -> dict[str, Any]:
    found = ext_db.list_external(ctx.directory, account.address)
    limit = ctx.settings.fetcher.max_accounts_per_user
    return {
        "externals": [(a, _describe(ctx, a)) for a in found],
        "limit": limit,
        "can_add": len(found) < limit,
        "add_path": ADD_PATH,
        "base": BASE,
    }


def _describe(ctx: Context, external: ExternalAccount) -> dict[str, Any]:
    info = accounts.describe(ctx.directory, external)
    stamp = info["last_success"]
    info["last_success_text"] = (
        datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else ""
    )
    return info


register_section(Section(SECTION_ID, "section.external", "section_external.html", _values))


def _remote_error(lang: str, exc: RemoteError) -> str:
    detail = str(exc)
    return i18n.text(lang, f"ext.error.{exc.kind}", detail=detail)


def _server_from(form: dict[str, str], default: accounts.ServerSettings) -> Any:
    """Step 2's fields, or what step 1 suggests; a list of problems when unreadable."""
    protocol = form.get("protokol") or default.protocol
    security = form.get("szyfrowanie") or default.security
    host = form.get("serwer", "").strip() or default.host
    port_text = form.get("port", "").strip()
    if protocol not in ("imap", "pop3") or security not in ("tls", "starttls", "plain"):
        raise DirectoryError("choose IMAP or POP3 and an encryption")
    port: int | None = None
    if port_text:
        if not port_text.isdigit():
            raise DirectoryError("the port must be a number from 1 to 65535")
        port = int(port_text)
    return accounts.chosen_server(
        default,
        protocol=protocol,
        host=host,
        port=port,
        security=security,
        accept_self_signed=form.get("samopodpisany") == "1",
    )


def _wizard(request: web.Request, step: int, form: dict[str, str], errors: list[str]) -> Any:
    server = accounts.suggested(
        form.get("email", ""), form.get("protokol") or "imap", form.get("dostawca", "")
    )
    if step == 2 and form.get("serwer"):
        try:
            server = _server_from(form, server)
        except DirectoryError:
            pass
    return render(
        request,
        "external_add.html",
        status=200 if not errors else 400,
        errors=errors,
        step=step,
        form=form,
        server=server,
        providers=providers.PROVIDERS,
        path_add=ADD_PATH,
    )


async def add_get(request: web.Request) -> web.StreamResponse:
    if current_account(request) is None:
        return see_other(ACCOUNT_PATH)
    return _wizard(request, 1, {}, [])


async def add_post(request: web.Request) -> web.StreamResponse:
    """Step 1 -> step 2 -> save (with the connection test)."""
    ctx = request.app[CTX_KEY]
    account = current_account(request)
    form = await read_form(request)
    if account is None or form is None:
        return see_other(ACCOUNT_PATH)
    lang = lang_of(request)
    step = 2 if form.get("krok") == "2" else 1
    problems = _step1_problems(ctx, account, form, lang)
    if problems:
        return _wizard(request, 1, form, problems)
    if step == 1:
        return _wizard(request, 2, form, [])
    suggested = accounts.suggested(form["email"], "imap", form["dostawca"])
    try:
        server = _server_from(form, suggested)
        fetcher = _fetcher(ctx)
        created = await ctx.run_io(
            lambda: accounts.create(
                fetcher,
                account.address,
                label=form["dostawca"],
                display_name=form.get("nazwa", ""),
                email=form["email"],
                password=form["haslo"],
                server=server,
                login=form.get("login", ""),
            )
        )
    except RemoteError as exc:
        return _wizard(request, 2, form, [_remote_error(lang, exc)])
    except DirectoryError as exc:
        return _wizard(request, 2, form, [str(exc)])
    if ctx.fetcher is not None:
        ctx.fetcher.fetch_now(created.id)
    return see_other(f"{ACCOUNT_PATH}#{SECTION_ID}")


def _step1_problems(ctx: Context, account: Account, form: dict[str, str], lang: str) -> list[str]:
    problems = []
    have = len(ext_db.list_external(ctx.directory, account.address))
    limit = ctx.settings.fetcher.max_accounts_per_user
    if have >= limit:
        return [i18n.text(lang, "ext.limit", limit=limit)]
    try:
        ext_db.check_label(form.get("dostawca", ""))
    except DirectoryError as exc:
        problems.append(str(exc))
    try:
        normalize_address(form.get("email", ""))
    except DirectoryError as exc:
        problems.append(str(exc))
    if not form.get("haslo"):
        problems.append(i18n.text(lang, "ext.error.password"))
    return problems


def _own(request: web.Request) -> tuple[Account, ExternalAccount] | None:
    ctx = request.app[CTX_KEY]
    account = current_account(request)
    if account is None:
        return None
    try:
        external_id = int(request.match_info["id"])
    except ValueError:
        return None
    found = ext_db.external_by_id(ctx.directory, external_id)
    if found is None or found.owner != account.address:
        return None
    return account, found


def _edit_page(
    request: web.Request, external: ExternalAccount, form: dict[str, str], errors: list[str]
) -> web.Response:
    return render(
        request,
        "external_edit.html",
        status=400 if errors else 200,
        errors=errors,
        external=external,
        form=form,
        action=f"{BASE}/{external.id}/edytuj",
    )


async def edit_get(request: web.Request) -> web.StreamResponse:
    owned = _own(request)
    if owned is None:
        return see_other(ACCOUNT_PATH)
    return _edit_page(request, owned[1], {}, [])


async def edit_post(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    owned = _own(request)
    form = await read_form(request)
    if owned is None or form is None:
        return see_other(ACCOUNT_PATH)
    external = owned[1]
    lang = lang_of(request)
    current = accounts.ServerSettings(
        external.protocol, external.host, external.port, external.security
    )
    try:
        server = _server_from(form, current)
        fields = {
            "label": form.get("dostawca", external.label),
            "display_name": form.get("nazwa", external.display_name),
            "email": form.get("email", external.email),
            "login": form.get("login", "").strip() or external.login,
            "protocol": server.protocol,
            "host": server.host,
            "port": server.port,
            "security": server.security,
            "accept_self_signed": server.accept_self_signed,
        }
        password = form.get("haslo") or None
        fetcher = _fetcher(ctx)
        await ctx.run_io(lambda: accounts.edit(fetcher, external, password=password, **fields))
    except RemoteError as exc:
        return _edit_page(request, external, form, [_remote_error(lang, exc)])
    except SecretError:
        return _edit_page(request, external, form, [i18n.text(lang, "ext.error.secret")])
    except DirectoryError as exc:
        return _edit_page(request, external, form, [str(exc)])
    return see_other(f"{ACCOUNT_PATH}#{SECTION_ID}")


async def delete_post(request: web.Request) -> web.StreamResponse:
    """Nothing changes on the remote server; the folder stays unless the box is unticked."""
    ctx = request.app[CTX_KEY]
    owned = _own(request)
    form = await read_form(request)
    if owned is None or form is None:
        return see_other(ACCOUNT_PATH)
    keep = form.get("zachowaj") == "1"
    fetcher = _fetcher(ctx)
    await ctx.run_io(accounts.remove, fetcher, owned[1], delete_folder=not keep)
    return see_other(f"{ACCOUNT_PATH}#{SECTION_ID}")


async def fetch_post(request: web.Request) -> web.StreamResponse:
    """Pobierz teraz: the account is due at once; the fetcher service picks it up."""
    ctx = request.app[CTX_KEY]
    owned = _own(request)
    form = await read_form(request)
    if owned is None or form is None:
        return see_other(ACCOUNT_PATH)
    if ctx.fetcher is not None:
        ctx.fetcher.fetch_now(owned[1].id)
    else:
        ext_db.request_fetch(ctx.directory, owned[1].id)
    return see_other(f"{ACCOUNT_PATH}#{SECTION_ID}")


def add_routes(app: web.Application) -> None:
    app.router.add_get(ADD_PATH, add_get)
    app.router.add_post(ADD_PATH, add_post)
    app.router.add_get(BASE + "/{id}/edytuj", edit_get)
    app.router.add_post(BASE + "/{id}/edytuj", edit_post)
    app.router.add_post(BASE + "/{id}/usun", delete_post)
    app.router.add_post(BASE + "/{id}/pobierz", fetch_post)
