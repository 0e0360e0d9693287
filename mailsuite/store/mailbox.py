"""One user's Maildir++: the folder list, folder create/rename/delete and subscriptions.

Folder operations that change the list hold `flock()` on `mailsuite-mailbox.lock` in the
Maildir, so two processes cannot create or rename over each other.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from . import maildir
from .errors import FolderExists, NoSuchFolder, NotAllowed, SpecialUseRefused, TooLarge
from .folder import Folder
from .model import FolderInfo
from .names import (
    INBOX,
    SEPARATOR,
    SPECIAL_USE,
    canonical_folder,
    folder_dirname,
    folder_from_dirname,
)

if TYPE_CHECKING:
    from .store import Store

MAX_FOLDERS = 1000
# RFC 6154 2: the attributes a folder may be created with; \All and \Flagged would be views
# of other folders, which the store does not keep
CREATABLE_USES = frozenset({"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"})
SPECIAL_USE_FILE = "mailsuite-special-use"  # inside the folder's directory: moves with it
FOLDER_ID_FILE = "mailsuite-folder-id"  # the same: RFC 8474 MAILBOXID follows renames
_FOLDER_ID = re.compile(r"F[0-9a-f]{24}")
MAX_SUBSCRIPTIONS = 1000


class Mailbox:
    """A user's Maildir; get it from `Store.mailbox(address)`."""

    def __init__(self, store: Store, address: str, path: Path) -> None:
        self.address = address
        self.path = path
        self._store = store

    def folder(self, name: str) -> Folder:
        """The shared Folder object for `name`; NoSuchFolder when it does not exist."""
        return self._store._folder(self, canonical_folder(name))

    def list_folders(self) -> list[FolderInfo]:
        """INBOX first, then every folder by name."""
        subscribed = set(self.subscriptions())
        names = [INBOX, *sorted(self._folder_dirs())]
        return [FolderInfo(name, self._special_use(name), name in subscribed) for name in names]

    def usage(self) -> tuple[int, int]:
        """(messages, octets) in every folder: what a quota counts (RFC 9208 MESSAGE and
        STORAGE). Each folder's share is its index's running total; a folder deleted or
        renamed meanwhile is skipped."""
        messages = octets = 0
        for name in [INBOX, *self._folder_dirs()]:
            try:
                count, size = self.folder(name).usage()
            except NoSuchFolder:
                continue
            messages += count
            octets += size
        return messages, octets

    def create_folder(self, name: str, special_use: str | None = None) -> None:
        """Create an empty folder (parents are implied, as in Maildir++), with an RFC 6154
        special-use attribute if given: one of CREATABLE_USES that no other folder has
        (SpecialUseRefused otherwise). The attribute is kept in the folder's directory, so
        it follows renames and goes with a delete."""
        canonical = canonical_folder(name)
        if canonical == INBOX:
            raise FolderExists(INBOX)
        if special_use is not None:
            special_use = _CREATABLE_BY_LOWER.get(special_use.lower())
            if special_use is None:
                raise SpecialUseRefused("special-use attribute not supported")
        with self._locked():
            dirs = self._folder_dirs()
            if canonical in dirs:
                raise FolderExists(canonical)
            if len(dirs) >= MAX_FOLDERS:
                raise TooLarge("too many folders")
            if special_use is not None and any(self._special_use(n) == special_use for n in dirs):
                raise SpecialUseRefused("another folder has that special use")  # RFC 6154 3
            self._make_folder(canonical, special_use)

    def delete_folder(self, name: str) -> None:
        """Delete a folder and its messages; its sub-folders stay (RFC 3501 6.3.4), and so
        does its subscription (RFC 3501 6.3.6: never removed unilaterally)."""
        canonical = canonical_folder(name)
        if canonical == INBOX:
            raise NotAllowed("INBOX cannot be deleted")  # RFC 3501 6.3.4
        with self._locked():
            path = self._folder_path(canonical)
            if not path.is_dir():
                raise NoSuchFolder(canonical)
            self._store._forget_folders(self.address, [canonical])
            trash = self.path / f"..deleted-{maildir.unique_key(0)}"
            os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def rename_folder(self, old: str, new: str) -> None:
        """Rename a folder with all its sub-folders; subscriptions follow.

        RFC 3501 6.3.5: renaming INBOX moves its messages to a new folder and leaves INBOX
        empty; INBOX's own sub-folders stay where they are.
        """
        source, target = canonical_folder(old), canonical_folder(new)
        if target == INBOX:
            raise FolderExists(target)
        if source == INBOX:
            self.create_folder(target)
            inbox, dest = self.folder(INBOX), self.folder(target)
            inbox.sync()
            inbox.move([m.uid for m in inbox.messages()], dest)
            return
        if target == source or target.startswith(source + SEPARATOR):
            raise NotAllowed("a folder cannot be moved into itself")
        with self._locked():
            dirs = self._folder_dirs()
            if source not in dirs:
                raise NoSuchFolder(source)
            moving = [n for n in dirs if n == source or n.startswith(source + SEPARATOR)]
            renames = [(n, target + n[len(source) :]) for n in moving]
            for _, to in renames:
                canonical_folder(to)  # the longer names must still be acceptable
                if to in dirs:
                    raise FolderExists(to)
            self._store._forget_folders(self.address, moving)
            for frm, to in renames:
                os.rename(self._folder_path(frm), self._folder_path(to))
            subs = self.subscriptions()
            mapping = dict(renames)
            self._write_subscriptions([mapping.get(n, n) for n in subs])

    def subscriptions(self) -> list[str]:
        """Subscribed names (RFC 3501 6.3.6), which need not exist as folders."""
        try:
            text = (self.path / maildir.SUBSCRIPTIONS_FILE).read_text("ascii", errors="replace")
        except FileNotFoundError:
            return []
        names = []
        for line in text.splitlines():
            name = INBOX if line.upper() == INBOX else folder_from_dirname("." + line)
            if name is not None and name not in names:
                names.append(name)
        return names

    def subscribe(self, name: str) -> None:
        """RFC 3501 6.3.6: the name need not exist (yet)."""
        canonical = canonical_folder(name)
        with self._locked():
            subs = self.subscriptions()
            if canonical not in subs:
                if len(subs) >= MAX_SUBSCRIPTIONS:
                    raise TooLarge("too many subscriptions")
                self._write_subscriptions([*subs, canonical])

    def unsubscribe(self, name: str) -> None:
        """RFC 3501 6.3.7: unsubscribing a name that is not subscribed is not an error."""
        canonical = canonical_folder(name)
        with self._locked():
            subs = self.subscriptions()
            if canonical in subs:
                self._write_subscriptions([n for n in subs if n != canonical])

    # -- internals -------------------------------------------------------------------------

    def _folder_path(self, canonical: str) -> Path:
        dirname = folder_dirname(canonical)
        return self.path if dirname is None else self.path / dirname

    def _folder_dirs(self) -> set[str]:
        names = set()
        with os.scandir(self.path) as entries:
            for entry in entries:
                name = folder_from_dirname(entry.name)
                if name is not None and name != INBOX and entry.is_dir(follow_symlinks=False):
                    names.add(name)
        return names

    def folder_id(self, name: str) -> str:
        """The folder's RFC 8474 MAILBOXID: made the first time it is asked for and kept in
        the folder's directory, so it stays across sessions and renames, and a folder
        deleted and made again under the same name gets a new one (RFC 8474 4).
        NoSuchFolder when the folder does not exist."""
        canonical = canonical_folder(name)
        path = self._folder_path(canonical)
        try:
            kept = (path / FOLDER_ID_FILE).read_text("ascii").strip()
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            kept = ""
        if _FOLDER_ID.fullmatch(kept):
            return kept
        with self._locked():
            if not (path / "cur").is_dir():
                raise NoSuchFolder(canonical)
            try:
                kept = (path / FOLDER_ID_FILE).read_text("ascii").strip()
            except (FileNotFoundError, UnicodeDecodeError):
                kept = ""
            if not _FOLDER_ID.fullmatch(kept):
                kept = "F" + secrets.token_hex(12)
                maildir.write_private(path / FOLDER_ID_FILE, kept + "\n")
            return kept

    def _special_use(self, canonical: str) -> str | None:
        """The folder's RFC 6154 attribute: the one it was created with, else the one its
        name has in every new mailbox (SPECIAL_USE)."""
        if canonical != INBOX:
            try:
                kept = (self._folder_path(canonical) / SPECIAL_USE_FILE).read_text("ascii")
            except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
                pass
            else:
                use = _CREATABLE_BY_LOWER.get(kept.strip().lower())
                if use is not None:
                    return use
        return SPECIAL_USE.get(canonical)

    def _make_folder(self, canonical: str, special_use: str | None = None) -> None:
        """Build the folder under a temporary name and rename it into place, so that no
        one ever sees a folder without cur/ new/ tmp/ (or without its special use)."""
        staging = self.path / f"..new-{maildir.unique_key(0)}"
        maildir.make_folder_dirs(staging, marker=True)
        if special_use is not None:
            maildir.write_private(staging / SPECIAL_USE_FILE, special_use + "\n")
        try:
            os.rename(staging, self._folder_path(canonical))
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            raise FolderExists(canonical) from None

    def _write_subscriptions(self, names: list[str]) -> None:
        lines = [INBOX if n == INBOX else (folder_dirname(n) or "")[1:] for n in names]
        # One Maildir++ name per line, which is what Dovecot reads and writes here.
        text = "".join(f"{line}\n" for line in lines)
        maildir.write_private(self.path / maildir.SUBSCRIPTIONS_FILE, text)

    def adopt_uidvalidity(self, name: str, uidvalidity: int) -> None:
        """Give the folder `name` another server's UIDVALIDITY (`Folder.adopt_uidvalidity`:
        only while it is empty and has never given out a UID), and remember the value as
        handed out, so a folder made later under any name gets a larger one."""
        folder = self.folder(name)
        with self._locked():
            path = self.path / maildir.UIDVALIDITY_FILE
            try:
                last = int(path.read_text("ascii").strip() or 0)
            except (FileNotFoundError, ValueError):
                last = 0
            folder.adopt_uidvalidity(uidvalidity)
            if uidvalidity > last:
                maildir.write_private(path, f"{uidvalidity}\n")

    def _next_uidvalidity(self) -> int:
        """A UIDVALIDITY larger than any this mailbox handed out before (RFC 3501 2.3.1.1:
        a folder re-created under an old name must not reuse the old value)."""
        with self._locked():
            path = self.path / maildir.UIDVALIDITY_FILE
            try:
                last = int(path.read_text("ascii").strip() or 0)
            except (FileNotFoundError, ValueError):
                last = 0
            value = max(int(time.time()), last + 1)
            maildir.write_private(path, f"{value}\n")
            return value

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The mailbox lock: a thread lock shared per address, then flock (taken once per
        thread even when nested, since a second flock in one process would wait forever)."""
        lock = self._store._mailbox_lock(self.address)
        with lock.thread_lock:
            if lock.depth == 0:
                fd = os.open(self.path / maildir.MAILBOX_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                lock.fd = fd
            lock.depth += 1
            try:
                yield
            finally:
                lock.depth -= 1
                if lock.depth == 0 and lock.fd is not None:
                    os.close(lock.fd)
                    lock.fd = None


_CREATABLE_BY_LOWER = {u.lower(): u for u in CREATABLE_USES}


def create_maildir(path: Path) -> None:
    """Create a new user's Maildir with the special-use folders, subscribed, atomically:
    it is assembled under a temporary name beside it and renamed into place."""
    staging = path.parent / f".new-{path.name}-{maildir.unique_key(0)}"
    maildir.make_folder_dirs(staging, marker=False)
    for name in SPECIAL_USE:
        maildir.make_folder_dirs(staging / (folder_dirname(name) or ""), marker=True)
    text = "".join(f"{n}\n" for n in (INBOX, *SPECIAL_USE))
    maildir.write_private(staging / maildir.SUBSCRIPTIONS_FILE, text)
    try:
        os.rename(staging, path)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not path.is_dir():
            raise
