"""Setting a password: the change page (seed 000) and activation links (seed 002).

Both ask the same questions of a new password (`new_password_errors`) and list every broken
rule by name at once. The change page proves who is asking through the one login path
(`ctx.auth.authenticate(..., allow_temporary=True)`), so its failures count towards the same
throttling as IMAP, POP3 and SMTP, and a wrong account and a wrong password read the same.
The directory may wait for another process's lock, so it is only called in I/O threads.
"""

from __future__ import annotations

import logging

from aiohttp import web

from mailsuite import mails, policy
from mailsuite.accounts import ACTIVATION
from mailsuite.auth import AuthCode
from mailsuite.context import Context
from mailsuite.directory import Account, Token, legacy_login_used
from mailsuite.smtp.outgoing import send_system_mail
from mailsuite.web import i18n
from mailsuite.web.i18n import N_
from mailsuite.web.pages import CTX_KEY, client_endpoints, lang_of, read_form, remote_ip, render

log = logging.getLogger("mailsuite.web")


async def new_password_errors(
    ctx: Context,
    lang: str,
    new: str,
    repeat: str,
    logins: list[str],
    account: Account | None,
    current: str | None = None,
) -> list[str]:
    """Every reason `new` cannot be the password, in the user's language.

    `account` is None while the asker is not yet known: then only the typed login is checked
    against, and nothing that would need the account's data (history) is said.
    """
    errors: list[str] = []
    if new != repeat:
        errors.append(i18n.text(lang, "err.mismatch"))
    if current is not None and new == current:
        errors.append(i18n.text(lang, "err.same"))
    settings = ctx.settings.password_policy
    for broken in policy.check(settings, new, [x for x in logins if x]):
        errors.append(i18n.text(lang, "err.rule", rule=broken.text(lang)))
    if account is not None and settings.history and new and new != current:
        hashes = await ctx.run_io(ctx.directory.password_history, account.address, settings.history)
        if account.password_hash and not account.must_change:
            hashes.insert(0, account.password_hash)
        for old in hashes:
            if await ctx.auth.hasher.verify(new, old):
                rule = policy.Broken("history", settings.history).text(lang)
                errors.append(i18n.text(lang, "err.rule", rule=rule))
                break
    return errors


def _policy_list(ctx: Context, lang: str) -> list[str]:
    return policy.describe(ctx.settings.password_policy, lang)


# -- change the (initial) password ----------------------------------------------------------


async def change_get(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    lang = lang_of(request)
    return render(
        request,
        "change.html",
        errors=[],
        login=request.query.get("konto", "")[:254],
        rules=_policy_list(ctx, lang),
    )


def auth_error(lang: str, code: AuthCode, account: Account | None) -> str:
    if code is AuthCode.THROTTLED:
        return i18n.text(lang, "err.throttled")
    if code is AuthCode.UNAVAILABLE:
        return i18n.text(lang, "err.unavailable")
    if code is AuthCode.TEMP_EXPIRED:
        return i18n.text(lang, "err.temp_expired")
    if code is AuthCode.DISABLED:
        return i18n.text(lang, "err.disabled")
    if code is AuthCode.LEGACY_EXPIRED and account is not None:
        return i18n.text(lang, "err.legacy", address=account.address)
    return i18n.text(lang, "err.credentials")


async def change_post(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    lang = lang_of(request)
    form = await read_form(request)
    rules = _policy_list(ctx, lang)
    if form is None:
        return render(
            request, "change.html", 400, errors=[i18n.text(lang, "err.csrf")], login="", rules=rules
        )
    login = form.get("konto", "").strip()
    current = form.get("aktualne", "")
    new = form.get("nowe", "")
    repeat = form.get("powtorzone", "")
    errors = [
        i18n.text(lang, "err.required", field=i18n.text(lang, key))
        for key, value in (
            (N_("field.account"), login),
            (N_("field.current"), current),
            (N_("field.new"), new),
            (N_("field.repeat"), repeat),
        )
        if not value
    ]
    if errors:
        return render(request, "change.html", 400, errors=errors, login=login, rules=rules)
    ip = remote_ip(request)
    result = await ctx.auth.authenticate(
        login, current, protocol="web", remote_ip=ip, allow_temporary=True
    )
    if not result.ok:
        # Rules that need nothing but the typed words can still be named; nothing about the
        # account is, so the answer is the same whether or not it exists.
        errors = [auth_error(lang, result.code, result.account)]
        if result.code is AuthCode.BAD_CREDENTIALS:
            errors += await new_password_errors(ctx, lang, new, repeat, [login], None, current)
        status = 503 if result.code is AuthCode.UNAVAILABLE else 400
        return render(request, "change.html", status, errors=errors, login=login, rules=rules)
    account = result.account
    assert account is not None
    logins = [login, account.address, account.legacy_login or ""]
    errors = await new_password_errors(ctx, lang, new, repeat, logins, account, current)
    if errors:
        return render(request, "change.html", 400, errors=errors, login=login, rules=rules)
    password_hash = await ctx.auth.hasher.hash(new)
    await ctx.run_io(_change_password, ctx, account, password_hash, ip)
    log.info("password changed on the web for %s from %s", account.address, ip)
    notices = []
    if legacy_login_used(account, login):
        cutoff = ctx.settings.migration.cutoff
        until = (
            i18n.text(lang, "notice.until", date=cutoff.isoformat())
            if cutoff
            else i18n.text(lang, "notice.until_end")
        )
        notices.append(
            i18n.text(lang, "notice.legacy", address=account.address, login=login, until=until)
        )
    return render(
        request,
        "changed.html",
        address=account.address,
        endpoints=client_endpoints(ctx),
        notices=notices,
    )


def _change_password(ctx: Context, account: Account, password_hash: str, ip: str | None) -> None:
    """Store the new password (blocking: runs in an I/O thread)."""
    ctx.directory.set_password(account.address, password_hash)
    ctx.directory.audit("web.password-change", account.address, "", ip)


# -- activation links ------------------------------------------------------------------------


def _link_state(ctx: Context, token: Token | None) -> str:
    if token is None:
        return "invalid"
    if token.used is not None:
        return "used"
    if ctx.directory.clock() >= token.expires:
        return "expired"
    return "ok"


def _link(ctx: Context, secret: str) -> tuple[str, Token | None, Account | None]:
    """What activation link `secret` is ("ok", "used", "expired", "invalid"), its token and
    its account (blocking: runs in an I/O thread). "ok" comes with both."""
    token = ctx.directory.find_token(ACTIVATION, secret)
    state = _link_state(ctx, token)
    account = ctx.directory.account_by_id(token.account_id) if token else None
    if state == "ok" and account is None:
        state = "invalid"
    return state, token, account


def _activate(
    ctx: Context, token: Token, account: Account, password_hash: str, ip: str | None
) -> list[str] | None:
    """Set the first password through link `token` (blocking: runs in an I/O thread): None
    when another request used the link first, else the account's login names, which the
    mail to its contact address gives."""
    # Single use: of two requests racing with one link, exactly one sets the password.
    if not ctx.directory.use_token(token):
        return None
    ctx.directory.set_password(account.address, password_hash)
    ctx.directory.audit("web.activate", account.address, "", ip)
    return ctx.directory.login_names(account.address) if account.contact else []


def _link_page(request: web.Request, state: str) -> web.Response:
    ctx = request.app[CTX_KEY]
    hours = round(ctx.settings.accounts.activation_link_lifetime / 3600)
    status = 404 if state == "invalid" else 410
    return render(request, "link.html", status, state=state, hours=hours)


async def activate_get(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    state, _, account = await ctx.run_io(_link, ctx, request.match_info["token"])
    if state != "ok" or account is None:
        return _link_page(request, state)
    return render(
        request,
        "activate.html",
        errors=[],
        address=account.address,
        rules=_policy_list(ctx, lang_of(request)),
    )


async def activate_post(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    lang = lang_of(request)
    state, token, account = await ctx.run_io(_link, ctx, request.match_info["token"])
    if state != "ok" or token is None or account is None:
        return _link_page(request, state)
    rules = _policy_list(ctx, lang)
    form = await read_form(request)
    if form is None:
        errors = [i18n.text(lang, "err.csrf")]
        return render(
            request, "activate.html", 400, errors=errors, address=account.address, rules=rules
        )
    new, repeat = form.get("nowe", ""), form.get("powtorzone", "")
    logins = [account.address, account.legacy_login or ""]
    errors = await new_password_errors(ctx, lang, new, repeat, logins, account)
    if errors:
        return render(
            request, "activate.html", 400, errors=errors, address=account.address, rules=rules
        )
    password_hash = await ctx.auth.hasher.hash(new)
    names = await ctx.run_io(_activate, ctx, token, account, password_hash, remote_ip(request))
    if names is None:
        return _link_page(request, "used")
    if account.contact:
        subject, body = mails.activated(
            ctx.settings,
            account.address,
            lang=account.language,
            login=names[0] if names else None,
        )
        try:
            await send_system_mail(ctx, account.contact, subject, body)
        except (LookupError, ValueError, OSError) as exc:
            log.warning("could not send the login to %s's contact: %s", account.address, exc)
    return render(
        request,
        "changed.html",
        address=account.address,
        endpoints=client_endpoints(ctx),
        notices=[],
        activated=True,
    )
