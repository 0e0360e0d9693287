"""External accounts on the account page (seed 001): list, two-step wizard, edit, delete,
"pobierz teraz".

Step 1 asks for Dostawca (the label that names the account and its folder), Twoja nazwa,
the address and the password; step 2 ("konfiguracja zaawansowana") shows every field again
with the server settings filled in for well-known providers, so any of them can be corrected
there, and "Wstecz" returns to step 1 with nothing lost. The pages need no JavaScript:

- Choosing the other protocol and pressing "Zmień protokół" (or saving without touching the
  server fields) shows that protocol's settings (accounts.switched): POP3 presets are as
  reachable as IMAP ones. Server fields the user did not change follow the address too.
- The password is never written back into a page. Once typed, it travels between the
  wizard's pages sealed (Fernet, a key derived from the site's in-memory CSRF key, bound to
  the signed-in account, valid for a session's lifetime); the field stays empty and says so.
- Saving tests the connection and the login in a worker thread. Whatever the remote server
  answers, the form names it in the page's language (mailsuite.remote.errors reasons) and
  keeps what was typed; nothing a server does turns into an error page.
- Save, delete and "pobierz teraz" answer with POST-redirect-GET to the list page, which
  shows what happened once (a signed, short-lived cookie). Delete asks first.

The pages call the same functions as `mailsuite external` (mailsuite.fetcher.accounts); they
never touch Maildirs themselves, and reach the directory only in I/O threads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

from mailsuite.context import Context
from mailsuite.directory import Account, DirectoryError, normalize_address
from mailsuite.directory import external as ext_db
from mailsuite.directory.external import ExternalAccount
from mailsuite.fetcher import accounts, providers
from mailsuite.fetcher.accounts import ServerSettings
from mailsuite.fetcher.engine import Fetcher
from mailsuite.remote import RemoteError
from mailsuite.remote.transport import SECURITIES
from mailsuite.secrets import SecretError
from mailsuite.urls import ACCOUNT_PATH
from mailsuite.web import i18n
from mailsuite.web.account import (
    SESSION_COOKIE,
    Section,
    current_account,
    register_section,
    session_account,
)
from mailsuite.web.i18n import N_
from mailsuite.web.pages import CTX_KEY, lang_of, read_form, render, see_other
from mailsuite.web.security import CSRF_KEY, delete_cookie, set_cookie

log = logging.getLogger("mailsuite.web")

BASE = ACCOUNT_PATH + "/zewnetrzne"
ADD_PATH = BASE + "/dodaj"
SECTION_ID = "zewnetrzne"
PROTOCOLS = ("imap", "pop3")
SEALED_FIELD = "haslo_zapamietane"
SHOWN_FIELD = "pokazane"
FLASH_COOKIE = "komunikat"
FLASH_SECONDS = 120

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
# A fetch's own failures, beside the remote reasons (mailsuite.fetcher.engine.FetchResult).
_FETCH_ERRORS = {
    "secret": N_("ext.fetch_error.secret"),
    "store": N_("ext.fetch_error.store"),
    "bug": N_("ext.fetch_error.bug"),
    "folders": N_("ext.fetch_error.folders"),
}
# What the list page can report after a redirect.
_FLASHES = {
    "added": N_("ext.added"),
    "saved": N_("ext.saved"),
    "deleted": N_("ext.deleted"),
    "deleted_kept": N_("ext.deleted.kept"),
    "fetching": N_("ext.fetch.queued"),
}


def _fetcher(ctx: Context) -> Fetcher:
    """The running fetcher's engine, so a connection test sees its live settings; a site
    running without the fetcher gets an engine of its own."""
    if ctx.fetcher is not None:
        return ctx.fetcher.engine
    return Fetcher(ctx.directory, ctx.store, ctx.settings)


def _values(ctx: Context, account: Account) -> dict[str, Any]:
    """The section's values: the accounts and their state (blocking: runs in an I/O thread)."""
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
    """What the list shows of an account; `last_error_words(lang)` says the last failure in
    the page's language (templates know `lang`, section values do not)."""
    info = accounts.describe(ctx.directory, external)
    stamp = info["last_success"]
    info["last_success_text"] = (
        datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else ""
    )
    reason, params, english = (
        info["last_error_reason"],
        info["last_error_params"],
        info["last_error"],
    )
    info["last_error_words"] = lambda lang: _last_error(lang, reason, params, english)
    return info


def _last_error(lang: str, reason: str, params: dict[str, Any], english: str) -> str:
    """A recorded fetch failure in `lang`: its reason's words; a failure recorded without
    one is the admin's English on an English page and a plain sentence on any other."""
    key = _REASONS.get(reason) or _FETCH_ERRORS.get(reason)
    if key is not None:
        try:
            return i18n.text(lang, key, **{**params, "detail": ""})
        except (KeyError, ValueError, TypeError):
            pass
    if lang == "en" and english:
        return english
    return i18n.text(lang, "ext.fetch_error.other")


def _shown(ctx: Context) -> bool:
    return ctx.settings.web.external_accounts


register_section(
    Section(SECTION_ID, N_("section.external"), "section_external.html", _values, _shown)
)


# -- words ------------------------------------------------------------------------------------


def _remote_error(lang: str, exc: RemoteError) -> str:
    """The remote failure in the user's language: its reason's words, else its family's.
    The server's own words stay in the log: they are English, and not the user's to act on."""
    key = _REASONS.get(exc.reason)
    if key is not None:
        return i18n.text(lang, key, **{**exc.params, "detail": ""})
    return i18n.text(lang, _FAMILIES.get(exc.kind, N_("ext.error.protocol")))


def _refusal(lang: str, exc: DirectoryError) -> str:
    """A refusal of the directory in the user's language (its admin's English otherwise)."""
    if exc.key is None:
        return str(exc)
    return i18n.text(lang, exc.key, **exc.values)


def _limit(lang: str, limit: int) -> str:
    return i18n.plural(lang, "ext.limit", "ext.limit.plural", limit)


# -- what the forms carry ---------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """The account as the form holds it: what was typed, unchecked (the port as text)."""

    label: str = ""
    name: str = ""
    email: str = ""
    login: str = ""
    protocol: str = "imap"
    host: str = ""
    port: str = ""
    security: str = "tls"
    accept_self_signed: bool = False

    @classmethod
    def of(cls, form: dict[str, str]) -> Draft:
        protocol = form.get("protokol", "")
        security = form.get("szyfrowanie", "")
        return cls(
            label=form.get("dostawca", "").strip(),
            name=form.get("nazwa", "").strip(),
            email=form.get("email", "").strip(),
            login=form.get("login", "").strip(),
            protocol=protocol if protocol in PROTOCOLS else "imap",
            host=form.get("serwer", "").strip(),
            port=form.get("port", "").strip(),
            security=security if security in SECURITIES else "tls",
            accept_self_signed=form.get("samopodpisany") == "1",
        )

    @classmethod
    def of_external(cls, external: ExternalAccount) -> Draft:
        return cls(
            label=external.label,
            name=external.display_name,
            email=external.email,
            login=external.login,
            protocol=external.protocol,
            host=external.host,
            port=str(external.port),
            security=external.security,
            accept_self_signed=external.accept_self_signed,
        )

    def with_server(self, server: ServerSettings) -> Draft:
        return Draft(
            self.label,
            self.name,
            self.email,
            self.login,
            server.protocol,
            server.host,
            str(server.port),
            server.security,
            server.accept_self_signed,
        )

    def server(self, port: int | None = None) -> ServerSettings:
        """The server part; `port` replaces a port that is not a number."""
        number = int(self.port) if self.port.isdigit() else (port or 0)
        return ServerSettings(
            self.protocol, self.host, number, self.security, self.accept_self_signed
        )

    def shown(self) -> str:
        """What the page shows, posted back so the next request sees what the user changed."""
        return json.dumps(
            {
                "protocol": self.protocol,
                "host": self.host,
                "port": self.port,
                "security": self.security,
                "email": self.email,
                "label": self.label,
            }
        )


def _was_shown(form: dict[str, str]) -> dict[str, str] | None:
    """The settings the page that posted `form` showed (None when it said nothing)."""
    try:
        shown = json.loads(form.get(SHOWN_FIELD, ""))
    except ValueError:
        return None
    if not isinstance(shown, dict) or not all(isinstance(v, str) for v in shown.values()):
        return None
    return shown


def _follow(draft: Draft, form: dict[str, str]) -> tuple[Draft, str] | None:
    """The settings to show instead of saving, with the notice saying why, when the user
    picked the other protocol (pressing "Zmień protokół", or saving with the server fields
    as they were shown), or changed the address while the server fields still held the
    suggestion for the old one. None: save what was typed.

    Enter in a field presses the form's hidden save button, which comes before "Zmień
    protokół"; "Zmień protokół" with the protocol as it was shown is a save too."""
    shown = _was_shown(form)
    if shown is None or shown.get("protocol") not in PROTOCOLS:
        return None
    untouched = (draft.host, draft.port, draft.security) == (
        shown.get("host"),
        shown.get("port"),
        shown.get("security"),
    )
    asked = form.get("akcja") == "protokol"
    if draft.protocol != shown["protocol"] and (asked or untouched):
        before = replace(draft, protocol=shown["protocol"]).server(port=1)
        new = accounts.switched(before, draft.protocol, email=draft.email, label=draft.label)
        return draft.with_server(new), N_("ext.switched") + "|" + draft.protocol.upper()
    if untouched and (draft.email, draft.label) != (shown.get("email"), shown.get("label")):
        old = accounts.suggested(shown.get("email", ""), draft.protocol, shown.get("label", ""))
        new = accounts.suggested(draft.email, draft.protocol, draft.label)
        was = (old.host, str(old.port), old.security)
        if was == (draft.host, draft.port, draft.security) and new != old:
            moved = ServerSettings(
                new.protocol, new.host, new.port, new.security, draft.accept_self_signed
            )
            return draft.with_server(moved), N_("ext.followed") + "|" + draft.email
    return None


def _notice(lang: str, coded: str) -> str:
    key, _, value = coded.partition("|")
    if not key:
        return ""
    return i18n.text(lang, key, protocol=value, email=value)


# -- the password between pages ---------------------------------------------------------------


def _box(request: web.Request) -> Fernet:
    secret = hashlib.sha256(b"mailsuite external wizard\0" + request.app[CSRF_KEY]).digest()
    return Fernet(base64.urlsafe_b64encode(secret))


def _seal(request: web.Request, account: Account, password: str) -> str:
    """The password for the next page of this wizard, readable only by this site for this
    account within a session's lifetime; "" for no password."""
    if not password:
        return ""
    plain = json.dumps([account.address, password]).encode()
    return _box(request).encrypt(plain).decode("ascii")


def _unseal(request: web.Request, account: Account, token: str) -> str:
    if not token or len(token) > 4096:
        return ""
    ttl = int(request.app[CTX_KEY].settings.web.session_lifetime)
    try:
        owner, password = json.loads(_box(request).decrypt(token.encode("ascii"), ttl=ttl))
    except (InvalidToken, ValueError, TypeError, UnicodeError):
        return ""
    return password if owner == account.address and isinstance(password, str) else ""


def _password(request: web.Request, account: Account, form: dict[str, str]) -> str:
    """The password typed now, else the one sealed on an earlier page, else ""."""
    return form.get("haslo", "") or _unseal(request, account, form.get(SEALED_FIELD, ""))


# -- what happened, after a redirect ----------------------------------------------------------


def _sign(request: web.Request, payload: str) -> str:
    key = request.app[CSRF_KEY]
    return hmac.new(key, b"flash\0" + payload.encode(), hashlib.sha256).hexdigest()


def _flash_to_list(request: web.Request, what: str, label: str, anchor: str = "") -> web.Response:
    """303 to the list page, which then says `what` happened to `label` (once)."""
    raw = json.dumps([what, label]).encode()
    payload = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    response = see_other(BASE + (f"#{anchor}" if anchor else ""))
    value = f"{payload}.{_sign(request, payload)}"
    set_cookie(request, response, FLASH_COOKIE, value, FLASH_SECONDS)
    return response


def _flash(request: web.Request) -> str:
    """The message the last redirect left, in the page's language ("" for none)."""
    payload, _, signature = request.cookies.get(FLASH_COOKIE, "").partition(".")
    if not payload or not hmac.compare_digest(_sign(request, payload), signature):
        return ""
    try:
        what, label = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return ""
    key = _FLASHES.get(what) if isinstance(what, str) else None
    if key is None or not isinstance(label, str):
        return ""
    return i18n.text(lang_of(request), key, label=label)


def _listing(ctx: Context, secret: str) -> dict[str, Any] | None:
    """The list page's values for the session `secret`, None when nobody is signed in
    (blocking: runs in an I/O thread)."""
    account = session_account(ctx, secret)
    return _values(ctx, account) if account is not None else None


async def list_get(request: web.Request) -> web.StreamResponse:
    """The external accounts, and what the last action did."""
    ctx = request.app[CTX_KEY]
    if not _shown(ctx):
        return see_other(ACCOUNT_PATH)
    values = await ctx.run_io(_listing, ctx, request.cookies.get(SESSION_COOKIE, ""))
    if values is None:
        return see_other(ACCOUNT_PATH)
    message = _flash(request)
    response = render(request, "external_list.html", message=message, values=values)
    if request.cookies.get(FLASH_COOKIE):
        delete_cookie(request, response, FLASH_COOKIE)
    return response


# -- checking a form --------------------------------------------------------------------------


def _problems(
    ctx: Context,
    lang: str,
    draft: Draft,
    *,
    password: str | None,
    server: bool,
    owner: Account | None = None,
) -> list[str]:
    """Every problem of the form at once, in the user's language: the account part always,
    the password when it is required (`password` not None), the server part when shown.
    With `owner` (a new account: the limit) it reads the directory, so it runs in an I/O
    thread; without, it does no I/O."""
    problems: list[str] = []
    if owner is not None:
        have = len(ext_db.list_external(ctx.directory, owner.address))
        limit = ctx.settings.fetcher.max_accounts_per_user
        if have >= limit:
            return [_limit(lang, limit)]
    try:
        ext_db.check_label(draft.label)
    except DirectoryError as exc:
        problems.append(_refusal(lang, exc))
    try:
        normalize_address(draft.email)
    except DirectoryError as exc:
        problems.append(_refusal(lang, exc))
    if password is not None and not password:
        problems.append(i18n.text(lang, "ext.error.password"))
    if not server:
        return problems
    if not draft.host:
        problems.append(i18n.text(lang, "ext.error.host"))
    else:
        try:
            ext_db.check_fields(host=draft.host)
        except DirectoryError as exc:
            problems.append(_refusal(lang, exc))
    if not draft.port.isdigit() or not 1 <= int(draft.port) <= 65535:
        problems.append(i18n.text(lang, "ext.error.port"))
    return problems


async def _saved(request: web.Request, lang: str, work: Any) -> str | None:
    """Run the connection test and the save in a worker thread; None when saved, else the
    reason in the user's language. Nothing raised there reaches the user as an error page."""
    ctx = request.app[CTX_KEY]
    try:
        await ctx.run_io(work)
    except RemoteError as exc:
        log.info("external account not saved: %s", exc)
        return _remote_error(lang, exc)
    except SecretError:
        return i18n.text(lang, "ext.error.secret")
    except ext_db.LimitReached:
        return _limit(lang, ctx.settings.fetcher.max_accounts_per_user)
    except DirectoryError as exc:
        return _refusal(lang, exc)
    except Exception:
        log.exception("saving an external account failed")
        return i18n.text(lang, "ext.error.unexpected")
    return None


# -- the wizard -------------------------------------------------------------------------------


def _wizard(
    request: web.Request,
    account: Account,
    step: int,
    draft: Draft,
    password: str,
    *,
    errors: list[str] | None = None,
    notice: str = "",
) -> web.Response:
    lang = lang_of(request)
    errors = errors or []
    return render(
        request,
        "external_add.html",
        status=400 if errors else 200,
        errors=errors,
        notice=_notice(lang, notice),
        step=step,
        draft=draft,
        server=draft,
        sealed=_seal(request, account, password),
        shown=draft.shown(),
        providers=providers.PROVIDERS,
        path_add=ADD_PATH,
    )


async def add_get(request: web.Request) -> web.StreamResponse:
    account = await current_account(request)
    if account is None or not _shown(request.app[CTX_KEY]):
        return see_other(ACCOUNT_PATH)
    return _wizard(request, account, 1, Draft(), "")


async def add_post(request: web.Request) -> web.StreamResponse:
    """Step 1 -> step 2 -> save (with the connection test); "Wstecz" and "Zmień protokół"
    show a page again with nothing lost."""
    ctx = request.app[CTX_KEY]
    account = await current_account(request)
    form = await read_form(request)
    if account is None or form is None or not _shown(ctx):
        return see_other(ACCOUNT_PATH)
    lang = lang_of(request)
    draft = Draft.of(form)
    password = _password(request, account, form)
    if form.get("krok") != "2":
        problems = await ctx.run_io(
            _problems, ctx, lang, draft, password=password, server=False, owner=account
        )
        if problems:
            return _wizard(request, account, 1, draft, password, errors=problems)
        if not draft.host:  # first time on step 2: the provider's settings
            draft = draft.with_server(accounts.suggested(draft.email, "imap", draft.label))
        else:
            followed = _follow(draft, form)
            draft = followed[0] if followed else draft
        return _wizard(request, account, 2, draft, password)
    if form.get("akcja") == "wstecz":
        return _wizard(request, account, 1, draft, password)
    followed = _follow(draft, form)
    if followed is not None:
        return _wizard(request, account, 2, followed[0], password, notice=followed[1])
    problems = await ctx.run_io(
        _problems, ctx, lang, draft, password=password, server=True, owner=account
    )
    if problems:
        return _wizard(request, account, 2, draft, password, errors=problems)
    fetcher = _fetcher(ctx)
    created: list[ExternalAccount] = []

    def save() -> None:
        created.append(
            accounts.create(
                fetcher,
                account.address,
                label=draft.label,
                display_name=draft.name,
                email=draft.email,
                password=password,
                server=draft.server(),
                login=draft.login,
            )
        )

    failure = await _saved(request, lang, save)
    if failure is not None:
        return _wizard(request, account, 2, draft, password, errors=[failure])
    await _fetch_soon(ctx, created[0].id)
    return _flash_to_list(request, "added", created[0].label, f"zewnetrzne-{created[0].id}")


# -- one account ------------------------------------------------------------------------------


def _owned(ctx: Context, secret: str, external_id: int) -> tuple[Account, ExternalAccount] | None:
    """The account signed in with the session `secret` and its external account
    `external_id`, None unless both exist and belong together (blocking: runs in an I/O
    thread)."""
    account = session_account(ctx, secret)
    if account is None:
        return None
    found = ext_db.external_by_id(ctx.directory, external_id)
    if found is None or found.owner != account.address:
        return None
    return account, found


async def _own(request: web.Request) -> tuple[Account, ExternalAccount] | None:
    """The signed-in account and the external account the path names, if it is theirs."""
    ctx = request.app[CTX_KEY]
    if not _shown(ctx):
        return None
    try:
        external_id = int(request.match_info["id"])
    except ValueError:
        return None
    return await ctx.run_io(_owned, ctx, request.cookies.get(SESSION_COOKIE, ""), external_id)


async def _fetch_soon(ctx: Context, external_id: int) -> None:
    """Make the account due at once: the running fetcher starts it, or the next one does."""
    if ctx.fetcher is not None:
        await ctx.fetcher.fetch_now(external_id)
    else:
        await ctx.run_io(ext_db.request_fetch, ctx.directory, external_id)


def _edit_page(
    request: web.Request,
    account: Account,
    external: ExternalAccount,
    draft: Draft,
    password: str,
    *,
    errors: list[str] | None = None,
    notice: str = "",
) -> web.Response:
    errors = errors or []
    return render(
        request,
        "external_edit.html",
        status=400 if errors else 200,
        errors=errors,
        notice=_notice(lang_of(request), notice),
        external=external,
        draft=draft,
        server=draft,
        sealed=_seal(request, account, password),
        shown=draft.shown(),
        action=f"{BASE}/{external.id}/edytuj",
    )


async def edit_get(request: web.Request) -> web.StreamResponse:
    owned = await _own(request)
    if owned is None:
        return see_other(ACCOUNT_PATH)
    account, external = owned
    return _edit_page(request, account, external, Draft.of_external(external), "")


async def edit_post(request: web.Request) -> web.StreamResponse:
    """Save the changes (the connection is tested again when the server, the login or the
    password changed); "Zmień protokół" shows the other protocol's settings first."""
    ctx = request.app[CTX_KEY]
    owned = await _own(request)
    form = await read_form(request)
    if owned is None or form is None:
        return see_other(ACCOUNT_PATH)
    account, external = owned
    lang = lang_of(request)
    draft = Draft.of(form)
    password = _password(request, account, form)
    followed = _follow(draft, form)
    if followed is not None:
        return _edit_page(request, account, external, followed[0], password, notice=followed[1])
    problems = _problems(ctx, lang, draft, password=None, server=True)
    if problems:
        return _edit_page(request, account, external, draft, password, errors=problems)
    server = draft.server()
    fields = {
        "label": draft.label,
        "display_name": draft.name,
        "email": draft.email,
        "login": draft.login or external.login,
        "protocol": server.protocol,
        "host": server.host,
        "port": server.port,
        "security": server.security,
        "accept_self_signed": server.accept_self_signed,
    }
    fetcher = _fetcher(ctx)

    def save() -> None:
        accounts.edit(fetcher, external, password=password or None, **fields)

    failure = await _saved(request, lang, save)
    if failure is not None:
        return _edit_page(request, account, external, draft, password, errors=[failure])
    return _flash_to_list(request, "saved", draft.label, f"zewnetrzne-{external.id}")


async def delete_get(request: web.Request) -> web.StreamResponse:
    """Ask before deleting: what goes, what stays."""
    owned = await _own(request)
    if owned is None:
        return see_other(ACCOUNT_PATH)
    return _delete_page(request, owned[1])


def _delete_page(request: web.Request, external: ExternalAccount) -> web.Response:
    return render(
        request,
        "external_delete.html",
        external=external,
        action=f"{BASE}/{external.id}/usun",
    )


async def delete_post(request: web.Request) -> web.StreamResponse:
    """Deletes only when the confirmation page says so (anything else shows that page).
    Nothing changes on the remote server; the folder stays unless the box is unticked."""
    ctx = request.app[CTX_KEY]
    owned = await _own(request)
    form = await read_form(request)
    if owned is None or form is None:
        return see_other(ACCOUNT_PATH)
    external = owned[1]
    if form.get("potwierdzam") != "1":
        return _delete_page(request, external)
    keep = form.get("zachowaj") == "1"
    fetcher = _fetcher(ctx)
    await ctx.run_io(lambda: accounts.remove(fetcher, external, delete_folder=not keep))
    return _flash_to_list(request, "deleted_kept" if keep else "deleted", external.label)


async def fetch_post(request: web.Request) -> web.StreamResponse:
    """Pobierz teraz: the account is due at once; the fetcher service picks it up."""
    ctx = request.app[CTX_KEY]
    owned = await _own(request)
    form = await read_form(request)
    if owned is None or form is None:
        return see_other(ACCOUNT_PATH)
    external = owned[1]
    await _fetch_soon(ctx, external.id)
    return _flash_to_list(request, "fetching", external.label, f"zewnetrzne-{external.id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get(BASE, list_get)
    app.router.add_get(ADD_PATH, add_get)
    app.router.add_post(ADD_PATH, add_post)
    app.router.add_get(BASE + "/{id}/edytuj", edit_get)
    app.router.add_post(BASE + "/{id}/edytuj", edit_post)
    app.router.add_get(BASE + "/{id}/usun", delete_get)
    app.router.add_post(BASE + "/{id}/usun", delete_post)
    app.router.add_post(BASE + "/{id}/pobierz", fetch_post)
