"""The per-account quota: which limit is in force and whether a message still fits.

One rule for every way mail comes in (SMTP delivery, IMAP APPEND and COPY), so that they
agree. The limit is the account's own (`user edit --quota`, in the directory) or else
`accounts.quota`; 0 means none. Usage is the store's running totals over every folder of
the mailbox (one quota root holds them all), never a walk over messages.
This module decides and counts; it neither writes mail nor speaks any protocol.

All functions read the directory and the store: call them in an I/O thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from mailsuite.store import StoreError

if TYPE_CHECKING:
    from mailsuite.config import Settings
    from mailsuite.directory import Account, Directory
    from mailsuite.store import Store


class OverQuota(StoreError):
    """Raised by callers that stop when a mailbox is full (the fetcher)."""


class Verdict(Enum):
    """Whether a message of a given size may be added to a mailbox."""

    FITS = "fits"
    FULL = "full"  # not now: the mailbox has too little room left (may change)
    NEVER = "never"  # the message alone is larger than the whole quota


@dataclass(frozen=True)
class Usage:
    """What a mailbox holds and may hold; `limit` is None when the account has no quota."""

    messages: int
    octets: int
    limit: int | None


def limit_of(settings: Settings, account: Account | None) -> int | None:
    """The limit in octets in force for `account`: its own quota when set (0: none), else
    the configured default (0: none); None means no limit."""
    own = account.quota if account is not None else None
    limit = own if own is not None else settings.accounts.quota
    return limit or None


def usage(settings: Settings, directory: Directory, store: Store, address: str) -> Usage:
    """The account's usage and limit."""
    limit = limit_of(settings, directory.get_account(address))
    messages, octets = store.mailbox(address).usage()
    return Usage(messages, octets, limit)


def judge(current: Usage, size: int) -> Verdict:
    """Whether `size` more octets fit under `current.limit`."""
    if current.limit is None:
        return Verdict.FITS
    if size > current.limit:
        return Verdict.NEVER
    if current.octets + size > current.limit:
        return Verdict.FULL
    return Verdict.FITS


def check(
    settings: Settings, directory: Directory, store: Store, address: str, size: int
) -> Verdict:
    """Whether a message of `size` octets fits into `address`'s mailbox now.

    The check and the write that follows are not one atomic step: two deliveries at once
    may both fit and together pass the limit by at most one message each, as with
    Dovecot's quota; the next one is refused. An account without a limit costs one directory
    read: the store is not asked what the mailbox holds."""
    limit = limit_of(settings, directory.get_account(address))
    if limit is None:
        return Verdict.FITS
    messages, octets = store.mailbox(address).usage()
    return judge(Usage(messages, octets, limit), size)
