"""The account page (seed 002): password, then a 6-digit code e-mailed to the contact address,
then the terms on first visit, then the account's sections.

State lives in the directory's token table, stored hashed like every other token:
`web-pending` (between password and code), `login-code` (the code, salted with the pending
secret so two accounts may get the same six digits), `web-session`. The browser holds only
random secrets in HttpOnly cookies. A code dies after `accounts.login_code_attempts` tries.
Wrong codes have their own counter per (account, client network), never the mail protocols'
throttle, so nobody locks IMAP, POP3 or SMTP by typing codes; a network with
`throttle.max_failures_per_account` wrong codes within `throttle.window` gets no new code.

Extension point: the page is a nav over `SECTIONS`. A feature adds its own section with
`register_section(...)` (its template receives `account` and whatever its `values` returns)
and guards its own handlers with `await current_account(request)`.

The directory may wait up to a second for another process's lock, so handlers never call
it on the loop: each gathers its directory work in one plain function run by `ctx.run_io`.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from mailsuite import mails
from mailsuite.auth import AuthCode, client_network
from mailsuite.context import Context
from mailsuite.directory import Account, Token
from mailsuite.smtp.outgoing import send_system_mail
from mailsuite.urls import ACCOUNT_PATH, CHANGE_PASSWORD_PATH
from mailsuite.web import i18n
from mailsuite.web.i18n import N_
from mailsuite.web.pages import (
    CTX_KEY,
    client_endpoints,
    lang_of,
    read_form,
    remote_ip,
    render,
    see_other,
)
from mailsuite.web.password import auth_error
from mailsuite.web.security import delete_cookie, set_cookie

log = logging.getLogger("mailsuite.web")

SESSION_COOKIE = "sesja"
PENDING_COOKIE = "logowanie"
CODE_PATH = ACCOUNT_PATH + "/kod"
MOBILECONFIG_PATH = ACCOUNT_PATH + "/poczta.mobileconfig"
TERMS_PATH = ACCOUNT_PATH + "/regulamin"
LOGOUT_PATH = ACCOUNT_PATH + "/wyloguj"


def _always(ctx: Context) -> bool:
    return True


@dataclass(frozen=True)
class Section:
    """One part of the account page: `id` is its anchor, `title` a catalogue key (marked
    with `N_`); `enabled` says whether this server shows it (a setting may turn it off).
    `values` runs in an I/O thread, so it may read the directory."""

    id: str
    title: str
    template: str
    values: Callable[[Context, Account], dict[str, Any]]
    enabled: Callable[[Context], bool] = _always


SECTIONS: list[Section] = []


def register_section(section: Section) -> None:
    """Add a section to the account page (replacing one with the same id)."""
    SECTIONS[:] = [s for s in SECTIONS if s.id != section.id] + [section]


def _profile(ctx: Context, account: Account) -> dict[str, Any]:
    return {"aliases": ctx.directory.addresses_of(account)[1:]}


def _client(ctx: Context, account: Account) -> dict[str, Any]:
    return {
        "endpoints": client_endpoints(ctx),
        "mobileconfig": MOBILECONFIG_PATH,
        "logins": ctx.directory.login_names(account.address),
    }


def _password(ctx: Context, account: Account) -> dict[str, Any]:
    return {"change_path": CHANGE_PASSWORD_PATH}


register_section(Section("dane", N_("section.profile"), "section_profile.html", _profile))
register_section(Section("haslo", N_("section.password"), "section_password.html", _password))
register_section(Section("program", N_("section.client"), "section_client.html", _client))


def _valid(ctx: Context, kind: str, secret: str) -> tuple[Token, Account] | None:
    """The live token `secret` of `kind` and its account, when both may still be used
    (blocking: runs in an I/O thread)."""
    if not secret or len(secret) > 64:
        return None
    token = ctx.directory.find_token(kind, secret)
    if token is None or token.used is not None or ctx.directory.clock() >= token.expires:
        return None
    account = ctx.directory.account_by_id(token.account_id)
    if account is None or not account.active or account.must_change:
        return None
    return token, account


def session_account(ctx: Context, secret: str) -> Account | None:
    """The account signed in with the session cookie `secret` (password and code both
    passed), else None. Blocking: for handlers' own I/O-thread work; else `current_account`."""
    found = _valid(ctx, "web-session", secret)
    return found[1] if found else None


async def current_account(request: web.Request) -> Account | None:
    """The signed-in account of this request, else None, looked up in an I/O thread."""
    ctx = request.app[CTX_KEY]
    return await ctx.run_io(session_account, ctx, request.cookies.get(SESSION_COOKIE, ""))


def _code_key(ctx: Context, account: Account, ip: str | None) -> str:
    """The counter of wrong codes for this account from this client's network."""
    return f"code:{account.address} {client_network(ip, ctx.settings.throttle)}"


def _codes_refused(ctx: Context, account: Account, ip: str | None) -> bool:
    """Whether this network has typed too many wrong codes for the account (blocking)."""
    limits = ctx.settings.throttle
    since = ctx.directory.clock() - limits.window
    wrong = ctx.directory.failures_since(_code_key(ctx, account, ip), since)[0]
    return wrong >= limits.max_failures_per_account


# Why no code is sent, by catalogue key, and the status the login page then has.
_NO_CODE = {N_("err.throttled"): 429, N_("login.no_contact"): 403}


def _issue_code(ctx: Context, account: Account, ip: str | None) -> tuple[str, str] | str:
    """Start the code step for `account`, whose password was right (blocking: runs in an
    I/O thread): the pending secret and the six digits, both stored hashed; or, when no
    code may be sent (this network typed too many wrong codes, or there is no contact
    address), that reason's `_NO_CODE` key."""
    if _codes_refused(ctx, account, ip):
        return "err.throttled"
    if not account.contact:
        return "login.no_contact"
    pending = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(1_000_000):06d}"
    lifetime = ctx.settings.accounts.login_code_lifetime
    ctx.directory.create_token("web-pending", account.address, pending, lifetime)
    ctx.directory.create_token("login-code", account.address, f"{pending}:{code}", lifetime)
    return pending, code


@dataclass(frozen=True)
class _Checked:
    """What a typed code did: `session` is the new session's secret when it was right,
    `left` the tries that remain after a wrong one; neither: the code is gone."""

    session: str = ""
    left: int = 0


def _check_code(
    ctx: Context, pending: Token, pending_secret: str, account: Account, typed: str, ip: str | None
) -> _Checked:
    """Check a typed code (blocking: runs in an I/O thread). A wrong one counts against
    this network and against the code; a code that is gone, or the last wrong try, ends the
    pending step; the right code ends both and starts a session."""
    code = ctx.directory.latest_token("login-code", account.address)
    limit = ctx.settings.accounts.login_code_attempts
    now = ctx.directory.clock()
    if code is None or code.used is not None or now >= code.expires or code.attempts >= limit:
        ctx.directory.use_token(pending)
        return _Checked()
    if not ctx.directory.token_matches(code, f"{pending_secret}:{typed}"):
        ctx.directory.record_failure([_code_key(ctx, account, ip)])
        ctx.directory.audit("web.code-wrong", account.address, "", ip)
        left = limit - code.attempts - 1
        if left <= 0:
            ctx.directory.use_token(code)
            ctx.directory.use_token(pending)
            return _Checked()
        return _Checked(left=left)
    if not ctx.directory.use_token(code):
        return _Checked()
    ctx.directory.use_token(pending)
    return _Checked(session=_start_session(ctx, account, ip))


def _read_terms(path: Path) -> list[str]:
    """The paragraphs of a terms file (blocking: runs in an I/O thread)."""
    text = path.read_text(encoding="utf-8")
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


async def _terms(ctx: Context) -> dict[str, Any]:
    """What the terms page shows: the organisation's file (read at each showing, so an edit
    needs no restart), a link to its terms, or one sentence."""
    site = ctx.settings.site
    paragraphs: list[str] = []
    if site.terms_file is not None and not site.terms_url:
        try:
            paragraphs = await ctx.run_io(_read_terms, site.terms_file)
        except (OSError, UnicodeDecodeError) as exc:
            log.error("cannot read the terms file %s: %s", site.terms_file, exc)
    return {
        "terms": ctx.settings.web.terms,
        "terms_url": site.terms_url,
        "terms_paragraphs": paragraphs,
    }


def _mask(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _account_page(
    ctx: Context, secret: str
) -> tuple[Account | None, list[tuple[Section, dict[str, Any]]]]:
    """The signed-in account and what its sections show (blocking: runs in an I/O thread);
    no sections until the terms are accepted."""
    account = session_account(ctx, secret)
    if account is None or account.terms_accepted is None:
        return account, []
    return account, [(s, s.values(ctx, account)) for s in SECTIONS if s.enabled(ctx)]


async def account_get(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    secret = request.cookies.get(SESSION_COOKIE, "")
    account, sections = await ctx.run_io(_account_page, ctx, secret)
    if account is None:
        return render(request, "login.html", errors=[], login="")
    if account.terms_accepted is None:
        return render(request, "terms.html", errors=[], **await _terms(ctx))
    return render(request, "account.html", account=account, sections=sections)


async def login_post(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    lang = lang_of(request)
    form = await read_form(request)
    if form is None:
        return render(request, "login.html", 400, errors=[i18n.text(lang, "err.csrf")], login="")
    login, password = form.get("konto", "").strip(), form.get("haslo", "")
    if not login or not password:
        errors = [i18n.text(lang, "err.credentials")]
        return render(request, "login.html", 400, errors=errors, login=login)
    ip = remote_ip(request)
    result = await ctx.auth.authenticate(login, password, protocol="web", remote_ip=ip)
    if result.code is AuthCode.MUST_CHANGE:
        errors = [i18n.text(lang, "login.must_change")]
        return render(request, "login.html", 403, errors=errors, login=login, must_change=True)
    if not result.ok or result.account is None:
        errors = [auth_error(lang, result.code, result.account)]
        status = 503 if result.code is AuthCode.UNAVAILABLE else 403
        return render(request, "login.html", status, errors=errors, login=login)
    account = result.account
    if not ctx.settings.web.login_code:
        # The password alone signs in here (web.login_code is off).
        return _signed_in(request, await ctx.run_io(_start_session, ctx, account, ip))
    issued = await ctx.run_io(_issue_code, ctx, account, ip)
    if isinstance(issued, str):
        errors = [i18n.text(lang, issued)]
        return render(request, "login.html", _NO_CODE[issued], errors=errors, login=login)
    pending, code = issued
    assert account.contact is not None
    lifetime = ctx.settings.accounts.login_code_lifetime
    subject, body = mails.login_code(
        ctx.settings, code, round(lifetime / 60), lang=account.language
    )
    try:
        await send_system_mail(ctx, account.contact, subject, body)
    except (LookupError, ValueError, OSError) as exc:
        log.warning("could not e-mail a login code for %s: %s", account.address, exc)
        return render(request, "login.html", 503, errors=[i18n.text(lang, "err.mail")], login="")
    await ctx.run_io(ctx.directory.audit, "web.code-sent", account.address, "", ip)
    response = see_other(CODE_PATH)
    set_cookie(request, response, PENDING_COOKIE, pending, int(lifetime))
    return response


def _code_page(
    request: web.Request, account: Account, errors: list[str], status: int = 200
) -> web.Response:
    ctx = request.app[CTX_KEY]
    minutes = round(ctx.settings.accounts.login_code_lifetime / 60)
    contact = _mask(account.contact or "")
    return render(request, "code.html", status, errors=errors, contact=contact, minutes=minutes)


async def code_get(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    found = await ctx.run_io(_valid, ctx, "web-pending", request.cookies.get(PENDING_COOKIE, ""))
    if found is None:
        return see_other(ACCOUNT_PATH)
    return _code_page(request, found[1], [])


async def code_post(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    lang = lang_of(request)
    pending_secret = request.cookies.get(PENDING_COOKIE, "")
    found = await ctx.run_io(_valid, ctx, "web-pending", pending_secret)
    if found is None:
        return render(request, "login.html", 403, errors=[i18n.text(lang, "code.gone")], login="")
    pending, account = found
    form = await read_form(request)
    if form is None:
        return _code_page(request, account, [i18n.text(lang, "err.csrf")], 400)
    typed = "".join(form.get("kod", "").split())[:6]
    ip = remote_ip(request)
    checked = await ctx.run_io(_check_code, ctx, pending, pending_secret, account, typed, ip)
    if checked.session:
        return _signed_in(request, checked.session)
    if checked.left:
        errors = [i18n.text(lang, "code.wrong", left=checked.left)]
        return _code_page(request, account, errors, 403)
    return render(request, "login.html", 403, errors=[i18n.text(lang, "code.gone")], login="")


def _start_session(ctx: Context, account: Account, ip: str | None) -> str:
    """A new session for `account`, who proved who they are (blocking: runs in an I/O
    thread); returns the secret for its cookie."""
    session = secrets.token_urlsafe(32)
    lifetime = ctx.settings.web.session_lifetime
    ctx.directory.create_token("web-session", account.address, session, lifetime)
    ctx.directory.audit("web.login", account.address, "", ip)
    return session


def _signed_in(request: web.Request, session: str) -> web.Response:
    """Give the browser the cookie of the session `_start_session` made, and go to the
    account page."""
    lifetime = request.app[CTX_KEY].settings.web.session_lifetime
    response = see_other(ACCOUNT_PATH)
    set_cookie(request, response, SESSION_COOKIE, session, int(lifetime))
    delete_cookie(request, response, PENDING_COOKIE)
    return response


def _accept_terms(ctx: Context, account: Account, ip: str | None) -> None:
    """Record that `account` accepted the terms (blocking: runs in an I/O thread)."""
    ctx.directory.update_account(account.address, terms_accepted=ctx.directory.clock())
    ctx.directory.audit("web.terms-accepted", account.address, "", ip)


async def terms_post(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    lang = lang_of(request)
    account = await current_account(request)
    if account is None:
        return see_other(ACCOUNT_PATH)
    form = await read_form(request)
    if form is None:
        errors = [i18n.text(lang, "err.csrf")]
        return render(request, "terms.html", 400, errors=errors, **await _terms(ctx))
    if form.get("akceptuje") != "tak":
        errors = [i18n.text(lang, "terms.required")]
        return render(request, "terms.html", 400, errors=errors, **await _terms(ctx))
    await ctx.run_io(_accept_terms, ctx, account, remote_ip(request))
    return see_other(ACCOUNT_PATH)


def _end_session(ctx: Context, secret: str, ip: str | None) -> None:
    """End the session of cookie `secret`, if it is live (blocking: runs in an I/O thread)."""
    found = _valid(ctx, "web-session", secret)
    if found is not None:
        ctx.directory.use_token(found[0])
        ctx.directory.audit("web.logout", found[1].address, "", ip)


async def logout_post(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    form = await read_form(request)
    if form is not None:
        secret = request.cookies.get(SESSION_COOKIE, "")
        await ctx.run_io(_end_session, ctx, secret, remote_ip(request))
    response = see_other(ACCOUNT_PATH)
    delete_cookie(request, response, SESSION_COOKIE)
    return response
