"""Dovecot's `dovecot-uidlist`: the UIDs another server gave the messages of a Maildir folder.

Dovecot keeps, in every Maildir folder it serves, a file that maps each message file to its
IMAP UID, under the folder's UIDVALIDITY and next UID. Reading it lets an import keep the
UIDs mail clients already know (so they download nothing again); writing it beside an
exported Maildir lets Dovecot show our UIDs. This module knows the file's format and nothing
else; it opens no folder.

Version 3, which Dovecot 2 writes::

    3 V1700000000 N43 G3085f01b7f11094c501100008c4a11c1
    1 :1700000001.M1P2.host,S=1355,W=1394:2,S
    42 W2481 :1700000099.M5P6.host:2,

The header holds `V` (UIDVALIDITY), `N` (the next UID) and optional fields; each record is a
UID, optional extension fields, then `:` and the file name. Versions 1 and 2 (older Dovecot)
write `1 <uidvalidity> <next uid>` and `<uid> <file name>`. A message is matched by the base
of its file name, before the first `:`, since flags change the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

UIDLIST_FILE = "dovecot-uidlist"
MAX_UIDLIST_BYTES = 256 * 1024 * 1024  # 2.5 million messages' worth; beyond that: not read


@dataclass(frozen=True)
class UidList:
    """A folder's UIDs as another server gave them: `uids` maps a file's base name (the part
    before the first `:`) to its UID."""

    uidvalidity: int
    uidnext: int
    uids: dict[str, int] = field(default_factory=dict)


def base_name(file_name: str) -> str:
    """The unique part of a Maildir file name, which flag changes leave alone."""
    return file_name.partition(":")[0]


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 2**32 else None


def parse_uidlist(text: str) -> UidList | None:
    """The UID list in `text`, or None when the header is not one we know. Records that do
    not parse, or repeat a UID or a name already seen, are skipped; the next UID is at
    least one above every UID listed."""
    lines = text.split("\n")
    head = lines[0].split()
    if not head:
        return None
    version = head[0]
    if version in ("1", "2"):
        if len(head) < 3:
            return None
        uidvalidity, uidnext = _number(head[1]), _number(head[2])
    elif version == "3":
        fields = {part[:1]: part[1:] for part in head[1:] if part}
        uidvalidity, uidnext = _number(fields.get("V", "")), _number(fields.get("N", ""))
    else:
        return None
    if uidvalidity is None or uidnext is None:
        return None
    uids: dict[str, int] = {}
    used: set[int] = set()
    for line in lines[1:]:
        uid_text, _, rest = line.partition(" ")
        uid = _number(uid_text)
        if uid is None or not rest:
            continue
        colon = rest.find(":") if version == "3" else -1
        if colon >= 0 and (colon == 0 or rest[colon - 1] == " "):
            name = rest[colon + 1 :]
        else:
            name = rest.split()[-1]
        key = base_name(name.strip())
        if not key or key in uids or uid in used:
            continue
        uids[key] = uid
        used.add(uid)
        uidnext = max(uidnext, uid + 1)
    return UidList(uidvalidity, uidnext, uids)


def read_uidlist(folder_dir: Path) -> UidList | None:
    """The `dovecot-uidlist` of a Maildir folder, or None when it has none we can read."""
    path = folder_dir / UIDLIST_FILE
    try:
        if path.stat().st_size > MAX_UIDLIST_BYTES:
            return None
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return None
    return parse_uidlist(text)


def format_uidlist(uidvalidity: int, uidnext: int, files: Iterable[tuple[int, str]]) -> str:
    """A version-3 `dovecot-uidlist` for (UID, file name) pairs given in UID order."""
    lines = [f"3 V{uidvalidity} N{uidnext}\n"]
    lines += [f"{uid} :{name}\n" for uid, name in files]
    return "".join(lines)
