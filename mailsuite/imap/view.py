"""What one session knows of its selected folder: sequence numbers, flags and pending changes.

Sequence numbers are per session (RFC 3501 2.3.1.2), so every session keeps its own snapshot of
the folder's index entries and moves it forward only where the protocol lets it: new messages
and flag changes at any command's end, expunges not during FETCH, STORE or SEARCH
(RFC 3501 7.4.1). Changes come from the store's notices; a poll (NOOP, CHECK, IDLE) syncs
the folder first, so changes made by other processes arrive as notices too. No step here
walks the whole folder except an expunge, which rebuilds the sequence list once.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailsuite.imap import render


@dataclass
class Pending:
    expunged: set[int] = field(default_factory=set)
    flags: set[int] = field(default_factory=set)
    new: bool = False
    rebuilt: bool = False

    def __bool__(self) -> bool:
        return bool(self.expunged or self.flags or self.new or self.rebuilt)


class View:
    """The selected folder as this session presents it."""

    def __init__(
        self, name: str, folder: Any, readonly: bool, messages: Sequence[Any], recent: set[int]
    ) -> None:
        self.name = name
        self.folder = folder
        self.readonly = readonly
        self.messages: list[Any] = list(messages)
        self.uids: list[int] = [m.uid for m in self.messages]
        self.recent = recent
        self.pending = Pending()
        self.uidvalidity: int = folder.uidvalidity

    def __len__(self) -> int:
        return len(self.messages)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def select(self, sequence: Any, by_uid: bool) -> list[int]:
        """UIDs named by a sequence set (message numbers or UIDs), ascending."""
        if by_uid:
            return sequence.select(self.uids)
        seqs = sequence.select(range(1, len(self.uids) + 1))
        return [self.uids[s - 1] for s in seqs]

    def entry(self, uid: int) -> Any | None:
        seq = self.seq_of(uid)
        return None if seq is None else self.messages[seq - 1]

    def update(self, info: Any) -> bool:
        """Replace a message's entry; True when its flags changed."""
        seq = self.seq_of(info.uid)
        if seq is None:
            return False
        old = self.messages[seq - 1]
        self.messages[seq - 1] = info
        return old.flags != info.flags

    def remove(self, uids: Iterable[int]) -> list[int]:
        """Drop expunged messages; their old sequence numbers, descending (safe to send so)."""
        gone = {u for u in uids if self.seq_of(u) is not None}
        if not gone:
            return []
        seqs = sorted((self.seq_of(u) or 0 for u in gone), reverse=True)
        self.messages = [m for m in self.messages if m.uid not in gone]
        self.uids = [m.uid for m in self.messages]
        self.recent -= gone
        return seqs

    def add(self, infos: Iterable[Any]) -> int:
        """Append messages newer than the last known UID; how many were added."""
        last = self.last_uid()
        added = [m for m in infos if m.uid > last]
        self.messages.extend(added)
        self.uids.extend(m.uid for m in added)
        return len(added)

    def note(self, kind: str, uids: Iterable[int]) -> None:
        """Record a store notice, to be announced at the next point that allows it."""
        if kind == "new":
            self.pending.new = True
        elif kind == "flags":
            self.pending.flags.update(uids)
        elif kind == "expunge":
            self.pending.expunged.update(uids)
        elif kind == "uidvalidity":
            self.pending.rebuilt = True

    def apply(
        self, changed: dict[int, Any], new: Sequence[Any], allow_expunge: bool, with_uid: bool
    ) -> bytes:
        """Untagged responses for the pending changes, applied to the view.

        `changed` maps UIDs with pending flag notices to their current entry (None when
        gone); `new` lists entries newer than the view's last UID. Expunges wait while
        `allow_expunge` is false.
        """
        out: list[bytes] = []
        p = self.pending
        if allow_expunge and p.expunged:
            # RFC 3501 7.4.1: each EXPUNGE renumbers, so descending numbers stay valid
            out.extend(b"* %d EXPUNGE\r\n" % s for s in self.remove(p.expunged))
            p.expunged = set()
        for uid in sorted(changed):
            info = changed[uid]
            if info is not None and self.update(info):
                extra = b" UID %d" % uid if with_uid else b""
                out.append(
                    b"* %d FETCH (FLAGS %s%s)\r\n"
                    % (self.seq_of(uid), render.flags(self.flags_of(info)), extra)
                )
        p.flags.difference_update(changed)
        if p.new:
            p.new = False
            if self.add(new):
                out.append(b"* %d EXISTS\r\n" % len(self.messages))
                out.append(b"* %d RECENT\r\n" % len(self.recent))
        return b"".join(out)

    def flags_of(self, info: Any) -> list[str]:
        if info.uid in self.recent:
            return sorted((*info.flags, "\\Recent"))
        return sorted(info.flags)
