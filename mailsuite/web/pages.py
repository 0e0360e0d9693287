"""Rendering: a Jinja2 environment per language (autoescaped, with `jinja2.ext.i18n` and that
language's catalogue), the page frame's values, client settings.

Templates say their words as `_("key", name=value)` and `ngettext("key", "key.plural", n)`.
Every page gets `lang`, `site` (the organisation's name, logo and help line), `csrf` (the
token its forms post back) and `nav`; handlers add their own values and never build HTML
themselves. A template of the same name in `site.templates`/web/ replaces a built-in page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from mailsuite.clientconfig import Endpoint, endpoints
from mailsuite.config import Settings
from mailsuite.context import Context
from mailsuite.urls import ACCOUNT_PATH, CHANGE_PASSWORD_PATH, RESET_PATH
from mailsuite.web import i18n
from mailsuite.web.security import CSP, CSRF_FIELD, csrf_ok, csrf_token, set_cookie

HERE = Path(__file__).parent
LOGO_PATH = "/logo"


class Templates:
    """The site's templates in each language: one environment per language, made on first
    use, each with that language's words installed for `_` and `ngettext`."""

    def __init__(self, override: Path | None = None) -> None:
        folders = [override] if override is not None and override.is_dir() else []
        self.loader = jinja2.FileSystemLoader([*folders, HERE / "templates"])
        self._by_lang: dict[str, jinja2.Environment] = {}

    def get(self, lang: str) -> jinja2.Environment:
        env = self._by_lang.get(lang)
        if env is None:
            env = jinja2.Environment(
                loader=self.loader,
                autoescape=True,
                auto_reload=False,  # templates are read once; no stat() per page view
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                extensions=["jinja2.ext.i18n"],
            )
            env.install_gettext_callables(  # type: ignore[attr-defined]
                i18n.gettext_for(lang), i18n.ngettext_for(lang), newstyle=True
            )
            self._by_lang[lang] = env
        return env


CTX_KEY = web.AppKey("ctx", Context)
ENV_KEY = web.AppKey("jinja", Templates)

NAV = (
    (CHANGE_PASSWORD_PATH, i18n.N_("nav.change")),
    (RESET_PATH, i18n.N_("nav.reset")),
    (ACCOUNT_PATH, i18n.N_("nav.account")),
)


def environment(settings: Settings | None = None) -> Templates:
    """The site's templates, with the admin's replacements from `site.templates`/web/."""
    return Templates(settings.site.templates / "web" if settings is not None else None)


@dataclass(frozen=True)
class SiteFrame:
    """Who runs the site, as every page shows it."""

    name: str
    organisation: str
    support: str
    logo: str | None  # the image's address: our own LOGO_PATH or the configured https URL
    footer: str  # "Serwis prowadzi …", or "" without an organisation

    @property
    def title(self) -> str:
        """The end of every page title: the site's name, then the organisation's."""
        return " · ".join(x for x in (self.name, self.organisation) if x)


def site_frame(settings: Settings, lang: str) -> SiteFrame:
    site = settings.site
    logo = site.logo
    if logo and not logo.startswith("https://"):
        logo = LOGO_PATH
    return SiteFrame(
        name=site.name or i18n.text(lang, "site.name"),
        organisation=site.organisation,
        support=site.support,
        logo=logo,
        footer=footer(lang, site.organisation),
    )


def footer(lang: str, organisation: str) -> str:
    """The footer's sentence naming `organisation`, ended once: a name that ends a sentence
    itself ("Hosting sp. z o.o.", "Yahoo!") takes the place of the sentence's full stop, so
    no page shows "sp. z o.o..". "" when no organisation is configured."""
    if not organisation:
        return ""
    words = i18n.text(lang, "site.footer", organisation=organisation)
    if organisation[-1] in ".!?…" and words.endswith(organisation + "."):
        words = words[:-1]
    return words


def lang_of(request: web.Request) -> str:
    return i18n.choose(request, request.app[CTX_KEY].settings.site.language)[0]


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    """The page in the request's language; remembers a language picked with `?lang=`."""
    settings = request.app[CTX_KEY].settings
    lang, picked = i18n.choose(request, settings.site.language)
    other = "en" if lang == "pl" else "pl"

    frame = site_frame(settings, lang)
    page = request.app[ENV_KEY].get(lang).get_template(template)
    html = page.render(
        lang=lang,
        other=other,
        site=frame,
        csrf=csrf_token(request),
        nav=NAV,
        path=request.path,
        static_url=str(request.app.router["static"].url_for(filename="style.css")),
        **values,
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    if frame.logo and frame.logo.startswith("https://"):
        # The logo is the only thing a page loads from elsewhere: allow its origin for images.
        parts = urlsplit(frame.logo)
        origin = f"{parts.scheme}://{parts.netloc}"
        response.headers["Content-Security-Policy"] = CSP.replace(
            "img-src 'self'", f"img-src 'self' {origin}"
        )
    if picked:
        set_cookie(request, response, i18n.COOKIE, lang, 365 * 86400)
    return response


async def logo(request: web.Request) -> web.StreamResponse:
    """The organisation's logo file (`site.logo`), cached by browsers for a day."""
    path = request.app[CTX_KEY].settings.site.logo
    if not path or path.startswith("https://"):
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


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
