"""Names that reach the disk: addresses, folder names and flags.

Every path the store builds goes through here first, so a name can never leave the user's
Maildir: protocols hand in Unicode folder names with `/` as the hierarchy separator and get
`BadFolderName` for anything that is not a plain, bounded, printable name. On disk a folder
is the Maildir++ directory `.` + components joined by `.`, each component in IMAP modified
UTF-7 (RFC 3501 5.1.3), which is how Dovecot lays it out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailsuite import mutf7

from .errors import BadFlag, BadFolderName

INBOX = "INBOX"
SEPARATOR = "/"
MAX_FOLDER_NAME = 200  # Unicode characters of the whole API name
MAX_COMPONENT_BYTES = 200  # one encoded component; the directory name must stay under 255
MAX_DEPTH = 16
MAX_KEYWORD = 100
MAX_KEYWORDS = 64  # per message

# RFC 6154: the folders every new mailbox gets, with their special-use attribute.
SPECIAL_USE = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}

# Maildir info letters (cr.yp.to/proto/maildir.html), kept in ASCII order in file names.
FLAG_LETTERS = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
LETTER_FLAGS = {v: k for k, v in FLAG_LETTERS.items()}
_SYSTEM_BY_LOWER = {k.lower(): k for k in FLAG_LETTERS}

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+)*$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
# RFC 3501 9: atom-specials may not appear in a flag keyword.
_KEYWORD = re.compile(r"^[\x21-\x7e]+$")
_KEYWORD_SPECIALS = set('(){ %*"\\]')
# Characters refused anywhere in a folder name: IMAP wildcards, our path and disk separators.
_FOLDER_SPECIALS = set("\\.*%")


def split_address(address: str) -> tuple[str, str]:
    """Return (domain, local) in lower case, or raise BadFolderName.

    Only plain dot-atom local parts and LDH domains pass, so neither part can be empty, `.`,
    `..`, contain `/`, `\\`, NUL or a control character, or start with a dot.
    """
    if not isinstance(address, str) or len(address) > 254 or address.count("@") != 1:
        raise BadFolderName("not a mailbox address")
    local, domain = address.lower().split("@")
    if len(local) > 64 or not _LOCAL.fullmatch(local) or not _DOMAIN.fullmatch(domain):
        raise BadFolderName("not a mailbox address")
    return domain, local


def canonical_folder(name: str) -> str:
    """Check an API folder name and return it with INBOX in its canonical case.

    RFC 3501 5.1: INBOX is case-insensitive; every other name is case-sensitive.
    """
    if not isinstance(name, str) or not name:
        raise BadFolderName("empty folder name")
    if len(name) > MAX_FOLDER_NAME:
        raise BadFolderName("folder name too long")
    parts = name.split(SEPARATOR)
    if len(parts) > MAX_DEPTH:
        raise BadFolderName("folder hierarchy too deep")
    for part in parts:
        if not part:
            raise BadFolderName("empty hierarchy level (leading, trailing or double '/')")
        if part.strip() != part:
            raise BadFolderName("hierarchy level starts or ends with white space")
        for ch in part:
            code = ord(ch)
            if code < 0x20 or 0x7F <= code < 0xA0 or ch in _FOLDER_SPECIALS:
                raise BadFolderName(f"character not allowed in folder names: {ch!r}")
            if 0xD800 <= code < 0xE000 or code in (0xFFFE, 0xFFFF, 0x2028, 0x2029):
                raise BadFolderName("character not allowed in folder names")
        if len(mutf7_encode(part)) > MAX_COMPONENT_BYTES:
            raise BadFolderName("hierarchy level too long")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return SEPARATOR.join(parts)


def folder_dirname(canonical: str) -> str | None:
    """The Maildir++ directory of a canonical name; None for INBOX (the Maildir itself)."""
    if canonical == INBOX:
        return None
    return "." + ".".join(mutf7_encode(p) for p in canonical.split(SEPARATOR))


def folder_from_dirname(dirname: str) -> str | None:
    """The API name of a Maildir++ directory, or None when it is not one of ours to show."""
    if not dirname.startswith(".") or dirname.startswith(".."):
        return None
    try:
        name = canonical_folder(SEPARATOR.join(mutf7_decode(p) for p in dirname[1:].split(".")))
    except (BadFolderName, ValueError):
        return None
    # Only the one spelling we would write ourselves counts (no "/" inside a level, no
    # non-canonical encodings, INBOX in upper case).
    return name if folder_dirname(name) == dirname else None


def mutf7_encode(text: str) -> str:
    """A folder name as Dovecot writes it in a Maildir++ directory name (RFC 3501 5.1.3)."""
    return mutf7.encode(text).decode("ascii")


def mutf7_decode(raw: str) -> str:
    """The folder name of one directory-name component; ValueError if not canonical."""
    return mutf7.decode(raw.encode("ascii"))


def parse_flags(flags: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """Split IMAP flags into Maildir system letters (sorted) and keywords (sorted, unique).

    System flags match case-insensitively (RFC 3501 2.3.2); `\\Recent` and unknown
    backslash flags cannot be set by a client and raise BadFlag, as do malformed keywords.
    """
    letters: set[str] = set()
    keywords: set[str] = set()
    for flag in flags:
        if not isinstance(flag, str) or not flag:
            raise BadFlag("empty flag")
        if flag.startswith("\\"):
            system = _SYSTEM_BY_LOWER.get(flag.lower())
            if system is None:
                raise BadFlag(f"flag cannot be set: {flag}")
            letters.add(FLAG_LETTERS[system])
            continue
        if (
            len(flag) > MAX_KEYWORD
            or not _KEYWORD.fullmatch(flag)
            or any(c in _KEYWORD_SPECIALS for c in flag)
        ):
            raise BadFlag(f"not a valid keyword: {flag!r}")
        keywords.add(flag)
    if len(keywords) > MAX_KEYWORDS:
        raise BadFlag("too many keywords on one message")
    return "".join(sorted(letters)), tuple(sorted(keywords))


def letters_of(info: str) -> str:
    """The system-flag letters of a Maildir info part such as `2,FRS` (sorted, unique)."""
    if not info.startswith("2,"):
        return ""
    return "".join(sorted({c for c in info[2:] if c in LETTER_FLAGS}))
