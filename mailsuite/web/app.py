"""The haslo web site: an aiohttp application over the shared Context.

`init_app(ctx)` builds the application (tests drive it with aiohttp's test client over a real
directory); `start_web` serves it on `listen.web`, over HTTPS with the suite's certificate
unless `web.tls` is off (the loopback demo). Pages live in password.py (change, activation),
reset.py (forgot password) and account.py (the account page); this module only wires them.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import secrets
import socket
from collections.abc import AsyncIterator

from aiohttp import web

from mailsuite.context import Context
from mailsuite.directory import DirectoryUnavailable
from mailsuite.urls import ACCOUNT_PATH, ACTIVATE_PATH, CHANGE_PASSWORD_PATH, RESET_PATH
from mailsuite.web import account, clients, external, password, reset
from mailsuite.web.pages import CTX_KEY, ENV_KEY, HERE, LOGO_PATH, environment, logo, render
from mailsuite.web.security import (
    CSRF_KEY,
    HTTPS_KEY,
    AccessLogger,
    Handler,
    access_log,
    headers_middleware,
)

log = logging.getLogger("mailsuite.web")

MAX_REQUEST_BYTES = 64 * 1024


async def index(request: web.Request) -> web.Response:
    return render(request, "index.html")


@web.middleware
async def not_found_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown pages and methods get the site's own page, in the user's language."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return render(request, "notfound.html", 404)
    except web.HTTPMethodNotAllowed as exc:
        response = render(request, "notfound.html", 405)
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return response


@web.middleware
async def unavailable_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A directory that cannot answer in time (another process holds its write lock) gets a
    503 page that says to try again shortly, never a traceback."""
    try:
        return await handler(request)
    except DirectoryUnavailable:
        log.warning("%s %s: the directory is busy", request.method, request.path)
        response = render(request, "unavailable.html", 503)
        response.headers["Retry-After"] = "5"
        return response


async def _background(app: web.Application) -> AsyncIterator[None]:
    """Work started after a reply (reset e-mails) finishes before the site closes."""
    app[reset.TASKS_KEY] = set()
    yield
    tasks = app[reset.TASKS_KEY]
    if tasks:
        await asyncio.wait(tasks, timeout=5)


def init_app(ctx: Context, *, https: bool | None = None) -> web.Application:
    """The site's application; `https` says whether it is served over TLS (cookie and HSTS
    flags), by default `web.tls`."""
    app = web.Application(
        middlewares=[headers_middleware, not_found_middleware, unavailable_middleware],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[CTX_KEY] = ctx
    app[ENV_KEY] = environment(ctx.settings)
    app[CSRF_KEY] = secrets.token_bytes(32)
    app[HTTPS_KEY] = ctx.settings.web.tls if https is None else https
    app.cleanup_ctx.append(_background)
    app.router.add_get("/", index)
    app.router.add_get(CHANGE_PASSWORD_PATH, password.change_get)
    app.router.add_post(CHANGE_PASSWORD_PATH, password.change_post)
    app.router.add_get(ACTIVATE_PATH + "/{token}", password.activate_get)
    app.router.add_post(ACTIVATE_PATH + "/{token}", password.activate_post)
    app.router.add_get(RESET_PATH, reset.reset_get)
    app.router.add_post(RESET_PATH, reset.reset_post)
    app.router.add_get(ACCOUNT_PATH, account.account_get)
    app.router.add_post(ACCOUNT_PATH, account.login_post)
    app.router.add_get(account.CODE_PATH, account.code_get)
    app.router.add_post(account.CODE_PATH, account.code_post)
    app.router.add_post(account.TERMS_PATH, account.terms_post)
    app.router.add_post(account.LOGOUT_PATH, account.logout_post)
    clients.add_routes(app)
    external.add_routes(app)
    app.router.add_get(LOGO_PATH, logo)
    app.router.add_static("/static", HERE / "static", name="static", append_version=True)
    return app


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebServer:
    """The running site: `address` is where it is bound (port 0 picks one)."""

    def __init__(self, runner: web.AppRunner) -> None:
        self.runner = runner
        bound = runner.addresses
        self.address: tuple[str, int] | None = (bound[0][0], bound[0][1]) if bound else None

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_web(ctx: Context, sock: socket.socket) -> WebServer:
    """Serve the site on `sock`, the listening socket serve bound: HTTPS with the suite's
    certificate, or plain HTTP when `web.tls` is off (meant for loopback in the demo)."""
    tls = ctx.settings.web.tls
    if not tls and not _loopback(sock.getsockname()[0]):
        # Passwords would cross the network in clear text: the demo setting stays on loopback.
        sock.close()
        raise OSError(errno.EACCES, "web.tls is off, so the site may only listen on loopback")
    app = init_app(ctx)
    runner = web.AppRunner(
        app, access_log=access_log, access_log_class=AccessLogger, shutdown_timeout=3.0
    )
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=ctx.tls.server_context() if tls else None)
    await site.start()
    return WebServer(runner)
