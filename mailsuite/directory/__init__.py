"""The directory of accounts, aliases, tokens, throttling and audit (SQLite)."""

from mailsuite.directory.directory import Directory, token_digest
from mailsuite.directory.models import (
    Account,
    Alias,
    AlreadyExists,
    DirectoryError,
    DirectoryUnavailable,
    InvalidAddress,
    NoSuchAccount,
    Token,
    check_login_name,
    legacy_login_used,
    normalize_address,
)

__all__ = [
    "Account",
    "Alias",
    "AlreadyExists",
    "Directory",
    "DirectoryError",
    "DirectoryUnavailable",
    "InvalidAddress",
    "NoSuchAccount",
    "Token",
    "check_login_name",
    "legacy_login_used",
    "normalize_address",
    "token_digest",
]
