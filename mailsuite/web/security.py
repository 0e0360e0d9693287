"""What every response and form of the site gets: security headers, cookie flags, CSRF.

CSRF uses a signed double submit: the browser holds a random value in an HttpOnly,
SameSite=Strict cookie and every form carries HMAC(key, value). A forged cross-site form can
neither read the cookie nor compute the signature. The key lives only in memory, so a restart
makes open forms ask to be filled in again, and nothing in the database opens a form.

The access log records the route pattern (`/aktywuj/{token}`), never the path, so activation
links and query strings never reach a log file.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

CSRF_COOKIE = "csrf"
CSRF_FIELD = "csrf"
CSRF_KEY = web.AppKey("csrf_key", bytes)
HTTPS_KEY = web.AppKey("https", bool)
# The CSRF cookie value of this request, and whether the response must set it (a new one).
CSRF_COOKIE_KEY = web.RequestKey("csrf_cookie", str)
CSRF_NEW_KEY = web.RequestKey("csrf_new", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# No scripts anywhere: the site works without JavaScript, so none is allowed to run.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    """Cookies are HttpOnly and SameSite=Strict always, Secure whenever the site is HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.app[HTTPS_KEY],
    )


def delete_cookie(request: web.Request, response: web.StreamResponse, name: str) -> None:
    response.del_cookie(
        name, path="/", secure=request.app[HTTPS_KEY], httponly=True, samesite="Strict"
    )


def _sign(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: web.Request) -> str:
    """The value a form must post back; makes sure the browser has the cookie it pairs with."""
    value = request.get(CSRF_COOKIE_KEY) or request.cookies.get(CSRF_COOKIE, "")
    if len(value) != 43:
        value = secrets.token_urlsafe(32)
        request[CSRF_NEW_KEY] = value
    request[CSRF_COOKIE_KEY] = value
    return _sign(request.app[CSRF_KEY], value)


def csrf_ok(request: web.Request, posted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not posted:
        return False
    return hmac.compare_digest(_sign(request.app[CSRF_KEY], cookie), posted)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every response, the CSRF cookie when a form handed one out."""
    response = await handler(request)
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    # Links carry tokens: never hand the address of a page to another site.
    h["Referrer-Policy"] = "no-referrer"
    if request.path.startswith("/static/"):
        # The URL carries the file's hash (append_version), so it never goes stale.
        h["Cache-Control"] = "public, max-age=31536000, immutable"
    elif "Cache-Control" not in h:
        h["Cache-Control"] = "no-store"
    if request.app[HTTPS_KEY]:
        # RFC 6797 6.1: HSTS only over a secure transport.
        h["Strict-Transport-Security"] = "max-age=31536000"
    new = request.get(CSRF_NEW_KEY)
    if new:
        set_cookie(request, response, CSRF_COOKIE, new, 24 * 3600)
    return response


class AccessLogger(AbstractAccessLogger):
    """One line per request with the route pattern instead of the path (tokens stay out)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = "-"
        match = getattr(request, "match_info", None)
        if match is not None and match.route.resource is not None:
            route = match.route.resource.canonical
        self.logger.info(
            "%s %s %s %s %.1f ms",
            request.remote,
            request.method,
            route,
            response.status,
            time * 1000,
        )


access_log = logging.getLogger("mailsuite.web.access")
