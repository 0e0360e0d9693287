"""Password policy: which rules a new password breaks, each named so the user can fix it.

The checks return rule codes with parameters rather than sentences, so the web site can say
them in Polish or English and the CLI in English; `describe` gives both.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

from mailsuite.config.schema import PasswordPolicy

SPECIALS = set(string.punctuation) | {" "}


@dataclass(frozen=True)
class Broken:
    rule: str
    value: int | None = None

    def text(self, lang: str = "pl") -> str:
        pl, en = _TEXTS[self.rule]
        return (pl if lang == "pl" else en).format(n=self.value)


_TEXTS: dict[str, tuple[str, str]] = {
    "min_length": ("co najmniej {n} znaków", "at least {n} characters"),
    "max_length": ("najwyżej {n} znaków", "at most {n} characters"),
    "require_upper": ("co najmniej jedna wielka litera", "at least one upper-case letter"),
    "require_lower": ("co najmniej jedna mała litera", "at least one lower-case letter"),
    "require_digit": ("co najmniej jedna cyfra", "at least one digit"),
    "require_special": (
        "co najmniej jeden znak specjalny (np. ! @ # $ %)",
        "at least one special character (e.g. ! @ # $ %)",
    ),
    "forbid_special": ("bez znaków specjalnych (tylko litery i cyfry)", "letters and digits only"),
    "forbid_non_ascii": ("bez polskich liter", "no Polish (non-ASCII) letters"),
    "forbid_login": ("nie może zawierać nazwy konta", "must not contain the login"),
    "history": (
        "nie może być jednym z {n} ostatnich haseł",
        "must not be one of the last {n} passwords",
    ),
    "too_long_bytes": ("za długie (limit 72 bajty)", "too long (limit 72 bytes)"),
}


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
