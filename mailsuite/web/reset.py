"""Forgot password (seeds 003, 004): a new temporary password e-mailed to the contact address.

The page answers the same whether or not the login exists, has a contact address, or is
disabled, and it answers at once: the hashing and mailing for a real account happen after the
reply, so neither words nor timing tell an account apart.

Requests are limited per client network (masked as for logins): per login
(`web.reset_max_per_account`) and for any login (`web.reset_max_per_ip`) within
`throttle.window`, and a network refused for logins is refused here too. So whoever asks in
the owner's name elsewhere never makes the owner's own request fail. Across networks an
account gets at most `web.reset_mails_per_account` e-mails per window: later requests get the
same answer and send nothing, which costs the owner nothing, because a reset never replaces
the password and the newest temporary password already e-mailed keeps working.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from mailsuite import accounts
from mailsuite.auth import RESET_TOKEN, client_network
from mailsuite.context import Context
from mailsuite.directory import DirectoryUnavailable
from mailsuite.smtp.outgoing import send_system_mail
from mailsuite.web import i18n
from mailsuite.web.pages import CTX_KEY, lang_of, read_form, remote_ip, render

log = logging.getLogger("mailsuite.web")

TASKS_KEY = web.AppKey("tasks", set)


async def reset_get(request: web.Request) -> web.Response:
    return render(request, "reset.html", errors=[], done=False, login="")


def _take_request(ctx: Context, login: str, ip: str | None) -> tuple[bool, str | None]:
    """Count one reset request (blocking: runs in an I/O thread): whether it is refused, and
    the address of the account to e-mail, if one should be."""
    throttle = ctx.settings.throttle
    limits = ctx.settings.web
    if ctx.auth.network_refused(ip):
        return True, None
    account = ctx.directory.resolve_login(login)
    name = account.address if account else login.lower()[:254]
    network = client_network(ip, throttle)
    since = ctx.directory.clock() - throttle.window
    taken = ctx.directory.reserve_attempt(
        [
            (f"reset:{name} {network}", limits.reset_max_per_account),
            (f"reset-net:{network}", limits.reset_max_per_ip),
        ],
        since=since,
        lockout=throttle.window,
    )
    if taken is None:
        return True, None
    if account is None:
        ctx.directory.audit("web.password-reset-unknown", None, f"login {login!r}", ip)
        return False, None
    mail = ctx.directory.reserve_attempt(
        [(f"reset-mail:{name}", limits.reset_mails_per_account)],
        since=since,
        lockout=throttle.window,
    )
    if mail is None:
        ctx.directory.audit("web.password-reset-capped", account.address, "no e-mail", ip)
        return False, None
    return False, account.address


def _store_temporary(ctx: Context, address: str, ip: str | None) -> accounts.Letter | None:
    """Store the reset token and return its e-mail (blocking: runs in an I/O thread)."""
    account = ctx.directory.get_account(address)
    if account is None or not account.contact or not account.active:
        return None
    temporary = accounts.new_temporary(ctx.settings, ctx.directory.clock())
    lifetime = ctx.settings.accounts.temporary_password_lifetime
    ctx.directory.create_token(RESET_TOKEN, address, temporary.password, lifetime)
    ctx.directory.audit("web.password-reset", address, "temporary password e-mailed", ip)
    return accounts.temporary_letter(
        ctx.settings, address, account.contact, temporary, reset=True, lang=account.language
    )


async def issue_temporary(ctx: Context, address: str, ip: str | None) -> None:
    """E-mail a temporary password to the contact address.

    The current password is left alone and keeps working: the temporary one is an extra
    way in (a single-use token, stored hashed) that must be changed on first use, so asking
    for a reset in someone else's name locks nobody out. A newer reset replaces an older one.
    """
    try:
        letter = await ctx.run_io(_store_temporary, ctx, address, ip)
    except DirectoryUnavailable:
        log.warning("no temporary password for %s: the directory is busy", address)
        return
    if letter is None:
        return
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
    refused, address = await ctx.run_io(_take_request, ctx, login, ip)
    if refused:
        errors = [i18n.text(lang, "reset.throttled")]
        return render(request, "reset.html", 429, errors=errors, done=False, login=login)
    if address is not None:
        task = asyncio.ensure_future(issue_temporary(ctx, address, ip))
        tasks = request.app[TASKS_KEY]
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    return render(request, "reset.html", errors=[], done=True, login="")
