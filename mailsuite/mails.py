"""The e-mails the site and the admin CLI send, as plain-text Jinja2 templates.

Each e-mail is a template in `mailsuite/templates/mail/` with a `subject` and a `body` block,
worded from the catalogues in the recipient's language (the account's, else the site's);
the admin replaces any of them with a file of the same name in `site.templates`/mail/, which
gets the same values (and `lang`) and may say everything in its own words. Every function
returns (subject, body). Bodies name the full address as the login, because that is what
mail clients must be given; secrets appear only in the message to the user, and never in a
subject.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from mailsuite import i18n
from mailsuite.config import Settings
from mailsuite.urls import ACCOUNT_PATH, ACTIVATE_PATH, CHANGE_PASSWORD_PATH, RESET_PATH, page

BUILT_IN = Path(__file__).parent / "templates" / "mail"


@functools.cache
def _environment(override: Path, lang: str) -> jinja2.Environment:
    """The mail templates in `lang`, the admin's folder first (read once per process)."""
    folders = [override] if override.is_dir() else []
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*folders, BUILT_IN]),
        autoescape=False,  # plain text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    catalogue = i18n.translations(lang)
    env.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
    return env


def mail_language(settings: Settings, lang: str | None) -> str:
    """The language of a mail to an account whose own language is `lang` (None: the site's)."""
    return i18n.language(lang, settings.site.language)


def render(settings: Settings, name: str, lang: str | None, **values: Any) -> tuple[str, str]:
    """The subject and body of template `name` (e.g. "reset") in the recipient's language."""
    lang = mail_language(settings, lang)
    env = _environment(settings.site.templates / "mail", lang)
    template = env.get_template(f"{name}.txt")
    site = settings.site
    context = template.new_context(
        {
            "lang": lang,
            "organisation": site.organisation,
            "site_name": site.name or i18n.text(lang, "site.name"),
            "support": site.support,
            **values,
        }
    )
    subject = " ".join("".join(template.blocks["subject"](context)).split())
    body = "".join(template.blocks["body"](context)).strip("\n") + "\n"
    return subject, body


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def temporary_password(
    settings: Settings,
    address: str,
    password: str,
    expires: float | None,
    *,
    reset: bool = False,
    lang: str | None = None,
    login: str | None = None,
) -> tuple[str, str]:
    """Login and temporary password for a new account (seeds 003, 004), or with `reset` the
    forgotten-password mail, which says the current password still works. `login` is the
    account's permanent login name when it has one; the address is named beside it."""
    return render(
        settings,
        "reset" if reset else "temporary",
        lang,
        address=address,
        login=login or address,
        password=password,
        until=_when(expires) if expires else "-",
        change_url=page(settings, CHANGE_PASSWORD_PATH),
    )


def activation_link(
    settings: Settings, address: str, secret: str, hours: int, *, lang: str | None = None
) -> tuple[str, str]:
    """The invitation (seed 002): a link that sets the first password."""
    link = page(settings, f"{ACTIVATE_PATH}/{secret}")
    return render(settings, "activation", lang, address=address, link=link, hours=hours)


def activated(
    settings: Settings, address: str, *, lang: str | None = None, login: str | None = None
) -> tuple[str, str]:
    """Sent once the first password is set: the login to use from now on, the account's
    permanent login name when it has one (seed 002: a six-digit number), else the address."""
    return render(
        settings,
        "activated",
        lang,
        address=address,
        login=login or address,
        account_url=page(settings, ACCOUNT_PATH),
    )


def login_code(
    settings: Settings, code: str, minutes: int, *, lang: str | None = None
) -> tuple[str, str]:
    """The 6-digit code for the account page (seed 002); the subject does not hold it."""
    return render(
        settings,
        "login_code",
        lang,
        code=code,
        minutes=minutes,
        reset_url=page(settings, RESET_PATH),
    )
