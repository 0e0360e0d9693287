"""Password policy: which rules a new password breaks, each named so the user can fix it.

The checks return rule codes with parameters rather than sentences, so the web site can say
them in the page's language and the CLI in English; `Broken.text` and `describe` take their
words from the catalogues (mailsuite.i18n), numbers in each language's plural form.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

from mailsuite import i18n
from mailsuite.config.schema import PasswordPolicy
from mailsuite.i18n import N_, NP_

SPECIALS = set(string.punctuation) | {" "}


@dataclass(frozen=True)
class Broken:
    rule: str
    value: int | None = None

    def text(self, lang: str = "pl") -> str:
        """The rule as a requirement in `lang` ("co najmniej 8 znaków"), its number in the
        catalogue's plural form for that language."""
        key = f"policy.{self.rule}"
        if key in _COUNTED:
            return i18n.plural(lang, key, _COUNTED[key], self.value or 0)
        return i18n.text(lang, key)


# Rules that carry a number, with the plural key of their text.
_COUNTED = dict(
    (
        NP_("policy.min_length", "policy.min_length.plural"),
        NP_("policy.max_length", "policy.max_length.plural"),
        NP_("policy.history", "policy.history.plural"),
    )
)
# The keys of the other rules, named here so the catalogue tests find them.
_KEYS = (
    N_("policy.require_letter"),
    N_("policy.require_upper"),
    N_("policy.require_lower"),
    N_("policy.require_digit"),
    N_("policy.require_special"),
    N_("policy.forbid_special"),
    N_("policy.forbid_non_ascii"),
    N_("policy.forbid_login"),
    N_("policy.too_long_bytes"),
)


def _letters_ascii(password: str) -> bool:
    return all(ord(c) < 128 for c in password if unicodedata.category(c).startswith("L"))


def check(policy: PasswordPolicy, password: str, logins: list[str] = ()) -> list[Broken]:
    """Every rule `password` breaks, in the order the policy lists them (history aside: that
    needs the stored hashes and is checked by the caller with `Broken("history", n)`)."""
    broken: list[Broken] = []
    if len(password) < policy.min_length:
        broken.append(Broken("min_length", policy.min_length))
    if len(password) > policy.max_length:
        broken.append(Broken("max_length", policy.max_length))
    if len(password.encode()) > 72 and len(password) <= policy.max_length:
        broken.append(Broken("too_long_bytes"))
    if policy.require_letter and not any(c.isalpha() for c in password):
        broken.append(Broken("require_letter"))
    if policy.require_upper and not any(c.isupper() for c in password):
        broken.append(Broken("require_upper"))
    if policy.require_lower and not any(c.islower() for c in password):
        broken.append(Broken("require_lower"))
    if policy.require_digit and not any(c.isdigit() for c in password):
        broken.append(Broken("require_digit"))
    has_special = any(not c.isalnum() for c in password)
    if policy.require_special and not has_special:
        broken.append(Broken("require_special"))
    if policy.forbid_special and has_special:
        broken.append(Broken("forbid_special"))
    if policy.forbid_non_ascii and not _letters_ascii(password):
        broken.append(Broken("forbid_non_ascii"))
    if policy.forbid_login:
        lowered = password.lower()
        for login in logins:
            local = login.lower().partition("@")[0]
            parts = {login.lower(), local}
            # A name inside a dotted login (the "konarski" of p.konarski) counts as well.
            words = {w for w in re.split(r"[._+-]", local) if len(w) >= 4}
            if any(len(p) >= 3 and p in lowered for p in parts | words):
                broken.append(Broken("forbid_login"))
                break
    return broken


def describe(policy: PasswordPolicy, lang: str = "pl") -> list[str]:
    """The policy as a list of requirements, to show before the user types."""
    rules = [Broken("min_length", policy.min_length), Broken("max_length", policy.max_length)]
    for name in (
        "require_letter",
        "require_upper",
        "require_lower",
        "require_digit",
        "require_special",
        "forbid_special",
        "forbid_non_ascii",
        "forbid_login",
    ):
        if getattr(policy, name):
            rules.append(Broken(name))
    if policy.history:
        rules.append(Broken("history", policy.history))
    return [r.text(lang) for r in rules]
