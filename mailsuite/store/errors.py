"""Errors raised by the store; protocol code maps each to its own reply."""

from __future__ import annotations


class StoreError(Exception):
    """Base class: something the caller asked of the store cannot be done."""


class BadFolderName(StoreError):
    """The folder name or address is not acceptable (it could leave the user's Maildir)."""


class NoSuchFolder(StoreError):
    """The folder does not exist (or was deleted or renamed meanwhile)."""


class FolderExists(StoreError):
    """A folder with that name already exists."""


class NotAllowed(StoreError):
    """The operation is refused by rule, e.g. deleting INBOX."""


class NoSuchMessage(StoreError):
    """The UID is not (or no longer) in the folder."""


class BadFlag(StoreError):
    """A flag is not a settable system flag or a valid keyword."""


class TooLarge(StoreError):
    """A message, cache blob or request exceeds the store's limits."""


class SpecialUseRefused(StoreError):
    """RFC 6154 3: the special-use attribute asked for at CREATE is not one the store keeps,
    or another folder already has it."""


class UidInUse(StoreError):
    """An append asked for a UID below the folder's UIDNEXT: RFC 3501 2.3.1.1 lets UIDs only
    grow, so a UID once handed out (even to a message since expunged) is never given again."""
