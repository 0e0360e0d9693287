"""Maildir++ store: the only code that touches `maildirs/` (layout in `maildir.py`)."""

from .errors import (
    BadFlag,
    BadFolderName,
    FolderExists,
    NoSuchFolder,
    NoSuchMessage,
    NotAllowed,
    StoreError,
    TooLarge,
)
from .folder import Folder
from .mailbox import Mailbox
from .model import Change, FolderInfo, FolderStatus, MessageInfo
from .store import Store, Watch

__all__ = [
    "BadFlag",
    "BadFolderName",
    "Change",
    "Folder",
    "FolderExists",
    "FolderInfo",
    "FolderStatus",
    "Mailbox",
    "MessageInfo",
    "NoSuchFolder",
    "NoSuchMessage",
    "NotAllowed",
    "Store",
    "StoreError",
    "TooLarge",
    "Watch",
]
