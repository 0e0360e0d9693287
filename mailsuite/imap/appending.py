"""APPEND of one or several messages (RFC 3502 MULTIAPPEND) through the store, all or none.

Owns the all-or-none rule and the APPENDUID uid-set; the messages reach the folder only
through `Folder.append_many`, never as files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailsuite import store as store_pkg
from mailsuite.imap.parser import AppendMessage


def append_all(folder: Any, messages: Sequence[AppendMessage]) -> list[int]:
    """Append `messages` in order with one commit; off the loop. RFC 3502 3: if any one
    cannot be appended, none is: those already placed are expunged again and the first
    failure is raised, so the folder ends as it began (apart from UIDNEXT, which never
    goes back, RFC 3501 2.3.1.1)."""
    items = [
        store_pkg.NewMessage(m.data, m.flags, m.date.timestamp() if m.date else None)
        for m in messages
    ]
    results = folder.append_many(items)
    failures = [r for r in results if isinstance(r, Exception)]
    if failures:
        placed = [r for r in results if isinstance(r, int)]
        if placed:
            folder.expunge(placed)
        raise failures[0]
    return [r for r in results if isinstance(r, int)]


def uid_set(uids: Sequence[int]) -> str:
    """RFC 4315 3 uid-set in the order given, consecutive runs as ranges: ``5:7,9``."""
    runs: list[list[int]] = []
    for uid in uids:
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)
