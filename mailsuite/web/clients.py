"""Documents mail clients fetch to configure themselves, and /metrics for admins.

Thunderbird asks for Mozilla autoconfig, Outlook POSTs a POX Autodiscover request (to a path
whose case varies between versions), and Apple devices install a profile downloaded from
the account page. The documents themselves are built in `mailsuite.clientconfig`; this module
only serves them. /metrics answers only the networks in `web.metrics_allow`.
"""

from __future__ import annotations

from aiohttp import web

from mailsuite import metrics
from mailsuite.clientconfig import (
    autoconfig_xml,
    autodiscover_error_xml,
    autodiscover_xml,
    mobileconfig,
    parse_autodiscover_request,
)
from mailsuite.urls import ACCOUNT_PATH
from mailsuite.web.account import MOBILECONFIG_PATH, current_account
from mailsuite.web.pages import CTX_KEY, bound_ports, remote_ip, see_other

XML = "application/xml"
MAX_AUTODISCOVER_BYTES = 16 * 1024


def _caseless(path: str) -> str:
    """An aiohttp route pattern that matches `path` in any letter case."""
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.isalpha() else "\\" + c if c == "." else c for c in path
    )


async def autoconfig(request: web.Request) -> web.Response:
    """Mozilla autoconfig, with or without `emailaddress` (refusing a request without it
    breaks Thunderbird for Android)."""
    ctx = request.app[CTX_KEY]
    email = request.query.get("emailaddress", "")
    domain = email.rpartition("@")[2].lower() or None
    body = autoconfig_xml(ctx.settings, domain, bound_ports(ctx))
    return web.Response(text=body, content_type=XML, charset="utf-8")


async def autodiscover(request: web.Request) -> web.Response:
    """POX Autodiscover: settings for an address of ours, Autodiscover's error otherwise."""
    ctx = request.app[CTX_KEY]
    body = await request.content.read(MAX_AUTODISCOVER_BYTES)
    email = parse_autodiscover_request(body) if body else None
    if not email:
        text = autodiscover_error_xml("600", "Invalid Request")
        return web.Response(text=text, status=400, content_type=XML, charset="utf-8")
    domain = email.rpartition("@")[2].lower()
    if domain not in ctx.settings.domains:
        text = autodiscover_error_xml("500", "The e-mail address cannot be found.")
        return web.Response(text=text, status=404, content_type=XML, charset="utf-8")
    text = autodiscover_xml(ctx.settings, email, bound_ports(ctx))
    return web.Response(text=text, content_type=XML, charset="utf-8")


async def apple_profile(request: web.Request) -> web.Response:
    """The signed-in user's mail account as an Apple configuration profile (no password)."""
    account = await current_account(request)
    if account is None:
        return see_other(ACCOUNT_PATH)
    ctx = request.app[CTX_KEY]
    data = mobileconfig(ctx.settings, account.address, account.name, bound_ports(ctx))
    return web.Response(
        body=data,
        content_type="application/x-apple-aspen-config",
        headers={"Content-Disposition": 'attachment; filename="poczta.mobileconfig"'},
    )


async def metrics_page(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    if not metrics.allowed(remote_ip(request), ctx.settings.web.metrics_allow):
        raise web.HTTPForbidden(text="metrics are not available to this address\n")
    if ctx.worker is not None:  # one of several workers: the scrape shows the whole host
        figures = await ctx.run_io(ctx.worker.host_figures, ctx)
    else:
        figures = metrics.figures(ctx)
    return web.Response(
        body=metrics.render_figures(figures), headers={"Content-Type": metrics.CONTENT_TYPE}
    )


def add_routes(app: web.Application) -> None:
    for path in ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"):
        app.router.add_get(path, autoconfig)
    app.router.add_route(
        "*", "/{path:" + _caseless("autodiscover/autodiscover.xml") + "}", autodiscover
    )
    app.router.add_get(MOBILECONFIG_PATH, apple_profile)
    app.router.add_get("/metrics", metrics_page)
