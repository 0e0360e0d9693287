"""Forgot password (seeds 003, 004): a new temporary password e-mailed to the contact address.

The page answers the same whether or not the login exists, has a contact address, or is
disabled, and it answers at once: the hashing and mailing for a real account happen after the
reply, so neither words nor timing tell an account apart. Requests are limited per client
address and per login within `throttle.window`; a client locked out of logins (the shared
throttle) is refused here too.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from mailsuite import accounts
from mailsuite.auth import RESET_TOKEN
from mailsuite.context import Context
from mailsuite.smtp.outgoing import send_system_mail
from mailsuite.web import i18n
from mailsuite.web.pages import CTX_KEY, lang_of, read_form, remote_ip, render

log = logging.getLogger("mailsuite.web")

TASKS_KEY = web.AppKey("tasks", set)


async def reset_get(request: web.Request) -> web.Response:
    return render(request, "reset.html", errors=[], done=False, login="")


def _over_limit(ctx: Context, ip: str | None, login_key: str) -> bool:
    throttle = ctx.settings.throttle
    web_settings = ctx.settings.web
    since = ctx.directory.clock() - throttle.window
    if ip and ctx.auth.throttled([f"ip:{ip}"]):
        return True
    if ip and ctx.directory.failures_since(f"reset-ip:{ip}", since)[0] >= (
        web_settings.reset_max_per_ip
    ):
        return True
    return ctx.directory.failures_since(login_key, since)[0] >= web_settings.reset_max_per_account


async def issue_temporary(ctx: Context, address: str, ip: str | None) -> None:
    """E-mail a temporary password to the contact address.

    The current password is left alone and keeps working: the temporary one is an extra
    way in (a single-use token, stored hashed) that must be changed on first use, so asking
    for a reset in someone else's name locks nobody out. A newer reset replaces an older one.
    """
    account = ctx.directory.get_account(address)
    if account is None or not account.contact or not account.active:
        return
    temporary = accounts.new_temporary(ctx.settings, ctx.directory.clock())
    lifetime = ctx.settings.accounts.temporary_password_lifetime
    ctx.directory.create_token(RESET_TOKEN, address, temporary.password, lifetime)
    ctx.directory.audit("web.password-reset", address, "temporary password e-mailed", ip)
    letter = accounts.temporary_letter(
        ctx.settings, address, account.contact, temporary, reset=True
    )
    try:
        await send_system_mail(ctx, letter.to, letter.subject, letter.body)
    except (LookupError, ValueError, OSError) as exc:
        log.warning("could not e-mail a temporary password for %s: %s", address, exc)


async def reset_post(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    lang = lang_of(request)
    form = await read_form(request)
    if form is None:
        errors = [i18n.text(lang, "err.csrf")]
        return render(request, "reset.html", 400, errors=errors, done=False, login="")
    login = form.get("konto", "").strip()
    if not login:
        errors = [i18n.text(lang, "err.required", field=i18n.text(lang, "field.login"))]
        return render(request, "reset.html", 400, errors=errors, done=False, login="")
    ip = remote_ip(request)
    account = ctx.directory.resolve_login(login)
    login_key = f"reset:{account.address if account else login.lower()}"
    if _over_limit(ctx, ip, login_key):
        errors = [i18n.text(lang, "reset.throttled")]
        return render(request, "reset.html", 429, errors=errors, done=False, login=login)
    ctx.directory.record_failure([login_key] + ([f"reset-ip:{ip}"] if ip else []))
    if account is not None:
        task = asyncio.ensure_future(issue_temporary(ctx, account.address, ip))
        tasks = request.app[TASKS_KEY]
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    else:
        ctx.directory.audit("web.password-reset-unknown", None, f"login {login!r}", ip)
    return render(request, "reset.html", errors=[], done=True, login="")
