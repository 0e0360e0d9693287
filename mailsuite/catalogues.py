"""Keeping the gettext catalogues in step with the code: extract, update, compile (Babel).

`python3 -m mailsuite.catalogues` finds every key the sources and templates use
(`i18n.text(lang, KEY)`, `i18n.plural(lang, KEY, KEY_PLURAL, n)`, `N_(KEY)`, `NP_(KEY,
KEY_PLURAL)` and `_say(account, KEY)` in Python,
`_(KEY)` and `ngettext(KEY, KEY_PLURAL, n)` in the Jinja2 templates of pages and e-mails),
adds the new ones to each language's `messages.po` with an empty translation for a person to
write, and compiles every `.po` to the `.mo` that `mailsuite.i18n` loads. The catalogue
tests use `extract` to fail on any key without words. Nothing here runs in a server.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from mailsuite.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

PACKAGE = Path(__file__).parent
METHODS = [
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**/templates/**.txt", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
OPTIONS = {
    "**/templates/**.html": {"extensions": "jinja2.ext.i18n"},
    "**/templates/**.txt": {"extensions": "jinja2.ext.i18n"},
}
# What a key looks like ("err.rule", "policy.min_length.plural"): anything else a keyword
# caught (a `text` attribute called with a string elsewhere) is not ours.
KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
KEYWORDS: dict[str, tuple[int, ...] | None] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
    "NP_": (1, 2),
    "text": (2,),
    "_say": (2,),  # the login path's words to mail clients (auth.py)
    "plural": (2, 3),
}


@dataclass(frozen=True)
class Use:
    """One key a source or template uses, with its plural key when it has one."""

    key: str
    plural: str | None
    where: str


def extract(root: Path = PACKAGE) -> dict[str, Use]:
    """Every key used under `root` (the package), by key."""
    found: dict[str, Use] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        root, METHODS, OPTIONS, KEYWORDS, strip_comment_tags=True
    ):
        if isinstance(message, tuple):
            key, plural = message[0], message[1]
        else:
            key, plural = message, None
        if not isinstance(key, str) or not KEY.match(key):
            continue
        found.setdefault(key, Use(key, plural, f"{filename}:{line}"))
    return found


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(lang: str) -> Catalog:
    with po_path(lang).open("rb") as fp:
        return read_po(fp, locale=lang, domain=DOMAIN)


def write(lang: str, catalog: Catalog) -> None:
    path = po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, omit_header=False, sort_output=True)
    path.write_bytes(buffer.getvalue())


def mo_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def update(uses: dict[str, Use]) -> dict[str, list[str]]:
    """Add every used key a catalogue lacks (empty, to be translated); returns them by
    language. Keys no longer used stay: a feature may be switched off, not removed."""
    added: dict[str, list[str]] = {}
    for lang in LANGUAGES:
        catalog = read(lang)
        for use in uses.values():
            if catalog.get(use.key) is None:
                catalog.add(
                    (use.key, use.plural) if use.plural else use.key,
                    ("",) * catalog.num_plurals if use.plural else "",
                    locations=[],
                )
                added.setdefault(lang, []).append(use.key)
        write(lang, catalog)
    return added


def compile_all() -> None:
    """Write each language's .mo from its .po."""
    for lang in LANGUAGES:
        po_path(lang).with_suffix(".mo").write_bytes(mo_bytes(read(lang)))


def main() -> int:
    added = update(extract())
    compile_all()
    for lang, keys in added.items():
        print(f"{lang}: {len(keys)} new key(s) to translate: {', '.join(keys)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
