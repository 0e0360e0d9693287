"""Which language a request gets, and the site's words in it (from the gettext catalogues).

The site's language (`site.language`, Polish unless configured) is the default when the
browser states no preference. `?lang=en` (a plain link, no script) switches and is remembered
in a cookie; otherwise Accept-Language decides (RFC 9110 12.5.4: the highest q-value among
the languages we have wins). The words themselves live in `mailsuite.i18n`'s catalogues; this
module only adds what a page needs to reach them: `text`, and the gettext callables a
template environment is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web

from mailsuite import i18n
from mailsuite.i18n import LANGUAGES, N_, plural

__all__ = ["COOKIE", "DEFAULT", "LANGUAGES", "N_", "TEXTS", "choose", "plural", "text"]

DEFAULT = "pl"
COOKIE = "lang"

# Words a module registers for itself as (Polish, English) pairs in str.format style, for
# keys the catalogues do not hold yet; the catalogue tests name every such key.
TEXTS: dict[str, tuple[str, str]] = {}

_FORMAT_FIELD = re.compile(r"\{(\w+)\}")


def _accept_language(header: str) -> str | None:
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().partition("-")[0]
        quality = 1.0
        params = params.strip().lower()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if primary in LANGUAGES and quality > 0:
            # Earlier entries win ties: the sort key puts a lower position first.
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None


def choose(request: web.Request, default: str = DEFAULT) -> tuple[str, bool]:
    """The language for this request, and whether it came from `?lang=` (to remember it);
    `default` is the site's language."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked, True
    cookie = request.cookies.get(COOKIE, "")
    if cookie in LANGUAGES:
        return cookie, False
    return _accept_language(request.headers.get("Accept-Language", "")) or default, False


def _registered(lang: str, key: str) -> str | None:
    """A registered text of `key` as a %-format string, when the catalogue lacks the key."""
    pair = TEXTS.get(key)
    if pair is None:
        return None
    words = pair[0] if lang == "pl" else pair[1]
    return _FORMAT_FIELD.sub(r"%(\1)s", words.replace("%", "%%"))


def gettext_for(lang: str) -> Callable[[str], str]:
    """`gettext` of `lang` for a template environment (not yet formatted)."""
    catalogue = i18n.translations(lang)

    def gettext(key: str) -> str:
        words = catalogue.gettext(key)
        if words == key:
            return _registered(lang, key) or key
        return words

    return gettext


def ngettext_for(lang: str) -> Callable[[str, str, int], str]:
    """`ngettext` of `lang` for a template environment (not yet formatted)."""
    return i18n.translations(lang).ngettext


def text(lang: str, key: str, **values: object) -> str:
    """The words of `key` in `lang` with `values` put in."""
    return gettext_for(lang)(key) % values
