"""Rendering: one Jinja2 environment (autoescaped), the page frame's values, client settings.

Every page gets `lang`, `t` (the words in that language), `csrf` (the token its forms post
back) and `nav`; handlers add their own values and never build HTML themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from mailsuite.clientconfig import Endpoint, endpoints
from mailsuite.context import Context
from mailsuite.urls import ACCOUNT_PATH, CHANGE_PASSWORD_PATH, RESET_PATH
from mailsuite.web import i18n
from mailsuite.web.security import CSRF_FIELD, csrf_ok, csrf_token, set_cookie

HERE = Path(__file__).parent
CTX_KEY = web.AppKey("ctx", Context)
ENV_KEY = web.AppKey("jinja", jinja2.Environment)

NAV = (
    (CHANGE_PASSWORD_PATH, "nav.change"),
    (RESET_PATH, "nav.reset"),
    (ACCOUNT_PATH, "nav.account"),
)


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        auto_reload=False,  # templates ship with the package; no stat() per page view
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def lang_of(request: web.Request) -> str:
    return i18n.choose(request)[0]


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    """The page in the request's language; remembers a language picked with `?lang=`."""
    lang, picked = i18n.choose(request)
    other = "en" if lang == "pl" else "pl"

    def t(key: str, **fmt: Any) -> str:
        return i18n.text(lang, key, **fmt)

    page = request.app[ENV_KEY].get_template(template)
    html = page.render(
        lang=lang,
        other=other,
        t=t,
        csrf=csrf_token(request),
        nav=NAV,
        path=request.path,
        static_url=str(request.app.router["static"].url_for(filename="style.css")),
        **values,
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    if picked:
        set_cookie(request, response, i18n.COOKIE, lang, 365 * 86400)
    return response


def see_other(location: str) -> web.Response:
    """RFC 9110 15.4.4: after a POST, send the browser to a page it fetches with GET."""
    return web.Response(status=303, headers={"Location": location})


def bound_ports(ctx: Context) -> dict[str, int]:
    """The ports the running listeners are bound to (the config may say 0)."""
    return {name: s.address[1] for name, s in ctx.services.items() if s.address is not None}


def client_endpoints(ctx: Context) -> list[Endpoint]:
    """What a mail client needs, with the ports actually bound."""
    return endpoints(ctx.settings, bound_ports(ctx))


FIELD_LIMIT = 256  # characters; logins are at most 254, passwords at most 72 bytes


async def read_form(request: web.Request) -> dict[str, str] | None:
    """The posted fields, each cut to FIELD_LIMIT; None when the CSRF token does not match."""
    data = await request.post()
    form = {k: v[:FIELD_LIMIT] for k, v in data.items() if isinstance(v, str)}
    if not csrf_ok(request, form.get(CSRF_FIELD, "")):
        return None
    return form


def remote_ip(request: web.Request) -> str | None:
    return request.remote
