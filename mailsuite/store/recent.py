"""`\\Recent` for one process: which session is the first to be told of each message.

RFC 3501 2.3.2 gives a message `\\Recent` in exactly one session, the first to see it. That
is session state, not mail, so it is kept here in memory and never written: opening a
folder (SELECT, EXAMINE) is a read, and a read makes no write and no fsync. IMAP4rev2
(RFC 9051) drops `\\Recent` altogether.

The `Store` holds one `RecentMarks`, keyed like its folders, so the marks outlive a `Folder`
object the store lets go of. Per folder it keeps a floor: every UID at or above it has been
given to no session of this process yet, every UID below it has. The floor starts at the
folder's UIDNEXT when this process first opens the folder; what was already there counts as
new only if it is still in `new/` (no mail program has looked at it), until the first claim
takes those too. Another process (a second worker, the CLI) has its own marks, so there a
message can be `\\Recent` in one session per process; a process that starts again starts
from `new/`.

Never touches files or the index; the caller (`Folder`) holds its own lock around a claim.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class RecentMark:
    """One folder's mark: UIDs from `floor` on are unclaimed; below it only those in new/
    when the process opened the folder, while `before_claimed` is false."""

    uidvalidity: int
    floor: int
    before_claimed: bool = False


class RecentMarks:
    """The marks of every folder this process has opened, by (address, folder name)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marks: dict[tuple[str, str], RecentMark] = {}

    def mark(self, key: tuple[str, str], uidvalidity: int, uidnext: int) -> RecentMark:
        """The folder's mark, started at `uidnext` when the folder is new to this process or
        its UIDs were given out again (a new UIDVALIDITY: the old floor means nothing)."""
        with self._lock:
            found = self._marks.get(key)
            if found is None or found.uidvalidity != uidvalidity:
                found = self._marks[key] = RecentMark(uidvalidity, uidnext)
            return found

    def forget(self, key: tuple[str, str]) -> None:
        """The folder was deleted or renamed: a folder made later under the name starts
        afresh."""
        with self._lock:
            self._marks.pop(key, None)
