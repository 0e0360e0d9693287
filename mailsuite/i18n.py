"""The suite's words in each language it speaks, read from gettext catalogues (Babel).

Every text a user or a mail client sees is named by a key (`"err.throttled"`) and worded by
the catalogue of each language, English included:
`mailsuite/locale/<lang>/LC_MESSAGES/messages.po`, compiled to `messages.mo` beside it. A key
a catalogue lacks shows as the key itself, never as another language's words, and
`tests/test_i18n.py` fails on any key used in the sources or templates that a catalogue
lacks. Numbers take their plural form from the catalogue's Plural-Forms: Polish has three
(1 godzina, 2-4 godziny, 5-21 godzin, 22 godziny), so no word beside a number is fixed in
code.

Every catalogue text is a %-format string (`%(name)s`, `%%` for a percent sign), formatted
even when no values are given, as Jinja2's i18n extension does with templates. Maintenance
(extract, update, compile) is `python3 -m mailsuite.catalogues`.

This module owns the catalogues and nothing else; it imports nothing of mailsuite, so the
directory, the policy, the login path, the e-mails and the web site may all use it.
"""

from __future__ import annotations

import functools
import gettext
import io
import unicodedata
from pathlib import Path

LANGUAGES = ("pl", "en")
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).parent / "locale"


def N_(key: str) -> str:
    """Mark a key used later through a variable, so extraction finds it; returns it as is."""
    return key


def NP_(key: str, key_plural: str) -> tuple[str, str]:
    """Mark a plural key pair used later through a variable; returns the pair as is."""
    return key, key_plural


def _compiled(lang: str) -> gettext.NullTranslations:
    """The catalogue of `lang` compiled in memory from its .po file (a checkout whose .mo
    files were not built yet still speaks every language)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of `lang` (one of LANGUAGES); an unknown language gets keys back."""
    if lang not in LANGUAGES:
        return gettext.NullTranslations()
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])
    except OSError:
        return _compiled(lang)


def language(lang: str | None, default: str) -> str:
    """`lang` when the suite speaks it, else `default` (the site's language)."""
    return lang if lang in LANGUAGES else default


def text(lang: str, key: str, **values: object) -> str:
    """The text of `key` in `lang`, with `values` put in."""
    return translations(lang).gettext(key) % values


def plural(lang: str, key: str, key_plural: str, n: int, **values: object) -> str:
    """The text of `key` in `lang` in the plural form for `n`, which fills `%(num)d`."""
    return translations(lang).ngettext(key, key_plural, n) % {"num": n, **values}


# Letters whose compatibility decomposition keeps no ASCII base letter.
_FOLD = str.maketrans({"ł": "l", "Ł": "L", "„": '"', "”": '"', "“": '"', "—": "-", "–": "-"})


def ascii_text(value: str) -> str:
    """`value` with its letters stripped of diacritics and other characters made ASCII.

    Replies of IMAP (RFC 3501 9: resp-text is 7-bit TEXT-CHAR), POP3 (RFC 1939 3) and SMTP
    (RFC 5321 4.2: printable US-ASCII) carry no UTF-8 before a client enables it, and none
    can be enabled before login, so a notice in Polish reaches a mail client as "Zmien haslo
    tymczasowe": readable, where a replaced character would not be.
    """
    folded = unicodedata.normalize("NFKD", value.translate(_FOLD))
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return plain.encode("ascii", "replace").decode("ascii")
