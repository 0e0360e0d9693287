"""Export one user's mailbox as a Maildir++ another server takes over with our UIDs.

Dovecot already reads our Maildirs as they are: the same folders (`.Sent`, `.Archive.2026`,
modified UTF-7 names), flags in the file names, keywords in `dovecot-keywords`, the
`subscriptions` file. What it cannot know is our UIDs, which live in our index; without
them every mail client downloads every message again after the move. The export writes, in
a new folder tree::

    <dest>/                     INBOX: cur/ new/ tmp/, dovecot-uidlist, dovecot-keywords,
      .Sent/ .Archive.2026/ …     subscriptions; each folder likewise, with maildirfolder
                                  and no mailsuite-* file (our index stays ours)

Message files are hard links to ours where `dest` is on the same filesystem (no space, and
Maildir files never change in place), copies elsewhere or when asked (a hard link shares its
owner and mode with our file, so a `chown` for the other server would change both). Each
folder is exported under its write lock, so its file names and its UID list agree. The
Maildir under `maildirs/` is only read.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import maildir
from .errors import StoreError
from .folder import Folder
from .names import INBOX, folder_dirname
from .store import Store
from .uidlist import UIDLIST_FILE, base_name, format_uidlist


class ExportError(StoreError):
    """The export cannot be written where it was asked (the message says why)."""


@dataclass(frozen=True)
class ExportedFolder:
    name: str
    uidvalidity: int
    uidnext: int
    messages: int


@dataclass
class ExportSummary:
    folders: list[ExportedFolder] = field(default_factory=list)
    linked: int = 0  # message files that are hard links to ours
    copied: int = 0  # message files copied (another filesystem)


def _empty_or_missing(dest: Path) -> None:
    """Refuse a destination that holds anything: an export never mixes with other mail."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a folder")
    subdirs = [dest / sub for sub in maildir.SUBDIRS if (dest / sub).is_dir()]
    leftovers = [p for p in dest.iterdir() if p.name not in maildir.SUBDIRS]
    if leftovers or any(any(sub.iterdir()) for sub in subdirs):
        raise ExportError(f"{dest} is not empty; export into a new folder")


def _link_message(src: Path, dst: Path, copy: bool, fsync: bool, summary: ExportSummary) -> None:
    """Give `dst` the content of `src`: a hard link when possible (unless `copy`), else a
    copy, fsynced when the store fsyncs."""
    if not copy:
        try:
            os.link(src, dst)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
        else:
            summary.linked += 1
            return
    tmp = dst.parent.parent / "tmp" / (base_name(dst.name) + ".export")
    try:
        shutil.copyfile(src, tmp)
        st = os.stat(src)
        os.utime(tmp, (st.st_atime, st.st_mtime))  # the internal date travels with the file
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.rename(tmp, dst)
    finally:
        maildir.unlink_quietly(tmp)
    summary.copied += 1


def _export_folder(
    folder: Folder, target: Path, copy: bool, fsync: bool, summary: ExportSummary
) -> None:
    """Under the folder's write lock: its files, its keywords and the UID list that names
    them, so a flag change cannot rename a file between the two."""
    with folder._writing():
        folder._ready_locked()
        meta = folder._index.meta()
        rows = (
            folder._conn().execute("SELECT uid, key, sub, name FROM msgs ORDER BY uid").fetchall()
        )
        maildir.make_folder_dirs(target, marker=folder.name != INBOX)
        files: list[tuple[int, str]] = []
        for uid, key, sub, name in rows:
            src = folder.path / sub / name
            if not src.exists():
                moved = maildir.find_key(folder.path, key)
                if moved is None:
                    continue  # removed by other Maildir software since the index looked
                src, sub, name = moved, moved.parent.name, moved.name
            _link_message(src, target / sub / name, copy, fsync, summary)
            files.append((uid, name))
        keywords = folder.path / maildir.KEYWORDS_FILE
        if keywords.exists():
            maildir.write_private(target / maildir.KEYWORDS_FILE, keywords.read_text("utf-8"))
        text = format_uidlist(meta["uidvalidity"], meta["uidnext"], files)
        maildir.write_private(target / UIDLIST_FILE, text)
    if fsync:
        for sub in ("cur", "new", ""):
            maildir.fsync_dir(target / sub if sub else target)
    summary.folders.append(
        ExportedFolder(folder.name, meta["uidvalidity"], meta["uidnext"], len(files))
    )


def export_mailbox(store: Store, address: str, dest: Path, *, copy: bool = False) -> ExportSummary:
    """Write `address`'s mailbox as a Maildir++ at `dest` (missing, or an empty Maildir)
    with a `dovecot-uidlist` per folder holding our UIDVALIDITY, UIDNEXT and UIDs; `copy`
    copies every message file instead of linking it.

    Raises ExportError for an unusable destination and NoSuchFolder-style StoreErrors as
    the store does; the user's own Maildir is not changed (an index may be brought up to
    date with its files first, as any reader does).
    """
    if not store.has_mailbox(address):
        raise ExportError(f"{address} has no mailbox yet (nothing was ever delivered)")
    dest = dest.resolve()
    if dest == store.root or store.root in dest.parents:
        raise ExportError(f"{dest} is inside the store's own folder {store.root}")
    _empty_or_missing(dest)
    mailbox = store.mailbox(address)
    summary = ExportSummary()
    dest.parent.mkdir(parents=True, exist_ok=True)
    maildir.make_folder_dirs(dest, marker=False)
    for info in mailbox.list_folders():
        target = dest / (folder_dirname(info.name) or "")
        _export_folder(mailbox.folder(info.name), target, copy, store.fsync, summary)
    subscriptions = mailbox.path / maildir.SUBSCRIPTIONS_FILE
    if subscriptions.exists():
        text = subscriptions.read_text("ascii", errors="replace")
        maildir.write_private(dest / maildir.SUBSCRIPTIONS_FILE, text)
    return summary
