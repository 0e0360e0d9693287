"""LIST / LSUB answers (RFC 3501 6.3.8-6.3.9, RFC 5258, RFC 6154, RFC 3348) from folder names.

Pure functions over the store's `FolderInfo` list: wildcard matching, implied parent folders
(shown as ``\\Noselect``), child attributes and special-use attributes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mailsuite.imap import render

DELIMITER = "/"


@dataclass(frozen=True)
class Listed:
    name: str
    attributes: tuple[str, ...]


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 3501 6.3.8: ``*`` matches anything, ``%`` anything but the delimiter."""
    full = reference + pattern
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    # RFC 3501 5.1: INBOX is case-insensitive, so a pattern naming it matches any case
    flags = re.IGNORECASE if full[:5].upper() == "INBOX" else 0
    return re.compile("".join(out) + r"\Z", re.DOTALL | flags)


def list_folders(
    folders: Iterable,
    reference: str,
    pattern: str,
    *,
    subscribed_only: bool = False,
    special_use_only: bool = False,
    lsub: bool = False,
) -> list[Listed]:
    """The LIST (or LSUB) lines for `pattern`, in name order with INBOX first."""
    infos = {f.name: f for f in folders}
    names = set(infos)
    implied = set()
    for name in names:
        parts = name.split(DELIMITER)
        for i in range(1, len(parts)):
            parent = DELIMITER.join(parts[:i])
            if parent not in names:
                implied.add(parent)
    has_children = {
        DELIMITER.join(n.split(DELIMITER)[:i])
        for n in names
        for i in range(1, n.count(DELIMITER) + 1)
    }
    regex = pattern_regex(reference, pattern)
    out: list[Listed] = []
    for name in sorted(names | implied, key=lambda n: (n != "INBOX", n)):
        match_name = "INBOX" if name.upper() == "INBOX" else name
        if not regex.match(match_name):
            continue
        info = infos.get(name)
        if (subscribed_only or lsub) and (info is None or not info.subscribed):
            continue
        if special_use_only and (info is None or not info.special_use):
            continue
        attrs: list[str] = []
        if info is None:
            attrs.append("\\Noselect")
        # RFC 3348 / RFC 5258 4: children attributes
        attrs.append("\\HasChildren" if name in has_children else "\\HasNoChildren")
        if info is not None and info.special_use and not lsub:
            attrs.append(info.special_use)  # RFC 6154 2
        if subscribed_only and info is not None and info.subscribed:
            attrs.append("\\Subscribed")
        out.append(Listed(name, tuple(attrs)))
    return out


def list_line(verb: str, item: Listed) -> bytes:
    return (
        b"* "
        + verb.encode()
        + b" ("
        + " ".join(item.attributes).encode()
        + b') "/" '
        + render.astring_mailbox(item.name)
        + b"\r\n"
    )
