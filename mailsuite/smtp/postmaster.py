"""The reserved postmaster mailbox (RFC 5321 4.5.1): who gets its mail, and why.

Every server that delivers mail MUST accept `<postmaster>` (any case) and `postmaster@` each
of its domains, and the suite's own mail is sent from `postmaster@` the first domain by
default, so replies to it must land somewhere. An account or alias of that name wins, as for
any recipient; otherwise the mail goes to `smtp.postmaster` (default `postmaster@` the first
domain); if that too names nobody, to the oldest active account, which is usually the
administrator's own. `explain` says which, for `check-config`.

Reads the directory only; never writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsuite.config import Settings
from mailsuite.directory import Directory


def is_postmaster(address: str, domains: list[str]) -> bool:
    """RFC 5321 4.5.1: "postmaster" alone or at one of our domains, in any case."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address.lower() == "postmaster"
    return local.lower() == "postmaster" and domain.lower() in domains


def configured_address(settings: Settings) -> str:
    """Where postmaster mail is meant to go: `smtp.postmaster`, else postmaster@ first domain."""
    return settings.smtp.postmaster or f"postmaster@{settings.domains[0]}"


@dataclass(frozen=True)
class Postmaster:
    """The accounts that receive postmaster mail, and how they were found."""

    targets: list[str]  # account addresses; empty when there is no account at all
    fallback: bool  # True: the configured address names nobody, the oldest account gets it


def postmaster_targets(settings: Settings, directory: Directory) -> Postmaster:
    """The accounts for postmaster mail when no account or alias has the recipient's name."""
    wanted = configured_address(settings)
    accounts = directory.resolve_recipient(wanted)
    if not accounts:
        catch_all = settings.smtp.catch_all.get(wanted.rpartition("@")[2].lower())
        accounts = directory.resolve_recipient(catch_all) if catch_all else []
    if accounts:
        return Postmaster([a.address for a in accounts], fallback=False)
    active = [a for a in directory.list_accounts() if a.state == "active"]
    oldest = min(active, key=lambda a: a.created, default=None)
    return Postmaster([oldest.address] if oldest else [], fallback=True)


def explain(settings: Settings, directory: Directory) -> str:
    """One line for `check-config`: where mail to postmaster goes, and what is wrong if any."""
    wanted = configured_address(settings)
    found = postmaster_targets(settings, directory)
    source = "smtp.postmaster" if settings.smtp.postmaster else "the default"
    if not found.fallback:
        return f"postmaster mail goes to {', '.join(found.targets)} ({source} {wanted})"
    if found.targets:
        return (
            f"warning: {wanted} ({source}) is no account or alias; postmaster mail goes to "
            f"{found.targets[0]}, the oldest account; set smtp.postmaster to choose"
        )
    return (
        f"warning: {wanted} ({source}) is no account or alias and there is no account: "
        "postmaster mail is refused for now (450)"
    )
