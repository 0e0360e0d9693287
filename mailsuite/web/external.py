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
from mailsuite.web.i18n import N_
from mailsuite.web.pages import CTX_KEY, lang_of, read_form, render, see_other

BASE = ACCOUNT_PATH + "/zewnetrzne"
ADD_PATH = BASE + "/dodaj"
SECTION_ID = "zewnetrzne"

# Remote failures by family, for a reason the catalogues do not name.
_FAMILIES = {
    "connect": N_("ext.error.connect"),
    "tls": N_("ext.error.tls"),
    "login": N_("ext.error.login"),
}
# The words of each reason a remote client names (mailsuite.remote.errors.REASONS).
_REASONS = {
    key.removeprefix("remote."): key
    for key in (
        N_("remote.unknown_host"), N_("remote.refused"), N_("remote.timeout"),
        N_("remote.closed"), N_("remote.unreachable"), N_("remote.wrong_protocol"),
        N_("remote.other_service"), N_("remote.not_mail"), N_("remote.server_busy"),
        N_("remote.cert_self_signed"), N_("remote.cert_expired"),
        N_("remote.cert_hostname"), N_("remote.cert_untrusted"), N_("remote.not_tls"),
        N_("remote.tls_required"), N_("remote.no_starttls"), N_("remote.login_needs_tls"),
        N_("remote.tls_failed"), N_("remote.login"), N_("remote.refused_command"),
        N_("remote.bad_answer"),
    )
}  # fmt: skip


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


def _shown(ctx: Context) -> bool:
    return ctx.settings.web.external_accounts


register_section(
    Section(SECTION_ID, N_("section.external"), "section_external.html", _values, _shown)
)


def _remote_error(lang: str, exc: RemoteError) -> str:
    """The remote failure in the user's language: its reason's words, else its family's."""
    key = _REASONS.get(exc.reason)
    if key is not None:
        return i18n.text(lang, key, **{**exc.params, "detail": ""})
    return i18n.text(lang, _FAMILIES.get(exc.kind, N_("ext.error.protocol")))


def _refusal(lang: str, exc: DirectoryError) -> str:
    """A refusal of the directory in the user's language (its admin's English otherwise)."""
    if exc.key is None:
        return str(exc)
    return i18n.text(lang, exc.key, **exc.values)


def _server_from(form: dict[str, str], default: accounts.ServerSettings) -> Any:
    """Step 2's fields, or what step 1 suggests; a list of problems when unreadable."""
    protocol = form.get("protokol") or default.protocol
    security = form.get("szyfrowanie") or default.security
    host = form.get("serwer", "").strip() or default.host
    port_text = form.get("port", "").strip()
    if protocol not in ("imap", "pop3") or security not in ("tls", "starttls", "plain"):
        raise DirectoryError("choose IMAP or POP3 and an encryption", key=N_("ext.error.server"))
    port: int | None = None
    if port_text:
        if not port_text.isdigit():
            raise DirectoryError(
                "the port must be a number from 1 to 65535", key=N_("ext.error.port")
            )
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
    if current_account(request) is None or not _shown(request.app[CTX_KEY]):
        return see_other(ACCOUNT_PATH)
    return _wizard(request, 1, {}, [])


async def add_post(request: web.Request) -> web.StreamResponse:
    """Step 1 -> step 2 -> save (with the connection test)."""
    ctx = request.app[CTX_KEY]
    account = current_account(request)
    form = await read_form(request)
    if account is None or form is None or not _shown(ctx):
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
        return _wizard(request, 2, form, [_refusal(lang, exc)])
    if ctx.fetcher is not None:
        ctx.fetcher.fetch_now(created.id)
    return see_other(f"{ACCOUNT_PATH}#{SECTION_ID}")


def _step1_problems(ctx: Context, account: Account, form: dict[str, str], lang: str) -> list[str]:
    problems = []
    have = len(ext_db.list_external(ctx.directory, account.address))
    limit = ctx.settings.fetcher.max_accounts_per_user
    if have >= limit:
        return [i18n.plural(lang, "ext.limit", "ext.limit.plural", limit)]
    try:
        ext_db.check_label(form.get("dostawca", ""))
    except DirectoryError as exc:
        problems.append(_refusal(lang, exc))
    try:
        normalize_address(form.get("email", ""))
    except DirectoryError as exc:
        problems.append(_refusal(lang, exc))
    if not form.get("haslo"):
        problems.append(i18n.text(lang, "ext.error.password"))
    return problems


def _own(request: web.Request) -> tuple[Account, ExternalAccount] | None:
    ctx = request.app[CTX_KEY]
    account = current_account(request)
    if account is None or not _shown(ctx):
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
        return _edit_page(request, external, form, [_refusal(lang, exc)])
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
