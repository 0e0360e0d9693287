"""The Store: the entry point to every user's Maildir, delivery and change notices."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import shutil
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import maildir
from .errors import StoreError, TooLarge
from .folder import MAX_MESSAGE_SIZE, Folder, posix_time
from .mailbox import Mailbox, create_maildir
from .model import Change
from .names import INBOX, folder_dirname, parse_flags, split_address
from .recent import RecentMarks
from .scans import Scans

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 1000
KEEP_OPEN = 32  # recently used folders kept in memory although no session holds them


@dataclass
class _MailboxLock:
    thread_lock: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    fd: int | None = None


@dataclass(frozen=True)
class Prepared:
    """A message written and fsynced in tmp/, not yet linked into any folder
    (`Store.prepare`); `Store.deliver_many` completes it."""

    targets: dict[str, Folder]  # account address -> folder, each once
    tmp: Path | None  # None when there are no targets
    key: str
    size: int
    mtime: float
    letters: str
    keywords: tuple[str, ...]


def _without(changes: list[Change], uids: set[int]) -> list[Change]:
    """Changes with the UIDs of taken-back deliveries left out (no one saw them)."""
    if not uids:
        return changes
    kept = []
    for change in changes:
        rest = tuple(u for u in change.uids if u not in uids)
        if rest or not change.uids:
            kept.append(Change(change.kind, change.folder, rest))
    return kept


class Watch:
    """A registration made by `Store.watch`; `cancel()` ends it."""

    def __init__(
        self,
        store: Store,
        key: tuple[str, str],
        folder: Folder,
        callback: Callable[[Change], object],
    ) -> None:
        self._store = store
        self._key = key
        self.folder = folder  # keeps the folder (and its memory copy) alive while watched
        self.callback = callback

    def cancel(self) -> None:
        self._store._unwatch(self._key, self)


class Store:
    """All Maildirs under `root`; synchronous and thread-safe.

    `fsync=False` is for tests and benchmark set-up only: deliveries are then not durable.
    `count_reads(n)` is told of every message file read (serve counts them in /metrics, which
    is how a test sees that a POP3 login or a header fetch left the bodies alone).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: bool = True,
        count_reads: Callable[[int], None] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.RLock()
        self._folders: weakref.WeakValueDictionary[tuple[str, str], Folder] = (
            weakref.WeakValueDictionary()
        )
        self._recently_used: collections.OrderedDict[tuple[str, str], Folder] = (
            collections.OrderedDict()
        )
        self._watchers: dict[tuple[str, str], list[Watch]] = {}
        self._mailbox_locks: dict[str, _MailboxLock] = {}
        self._opening: dict[tuple[str, str], threading.Lock] = {}
        self.scans = Scans()  # index builds: one at a time, stopped at shutdown (scans.py)
        self.recent = RecentMarks()  # \Recent of this process's sessions (recent.py)
        self._count_reads = count_reads

    def interrupt_scans(self) -> None:
        """Shutdown: index builds in progress give up at their next step (their work rolled
        back, redone at the next start) and none starts any more, so the I/O threads
        finish promptly."""
        self.scans.interrupt()

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Deliver change notices on `loop` (call_soon_threadsafe) instead of in the thread
        that made the change."""
        self._loop = loop

    # -- mailboxes -------------------------------------------------------------------------

    def mailbox_path(self, address: str) -> Path:
        """`<root>/<domain>/<local>` of an address; BadFolderName for unsafe addresses."""
        domain, local = split_address(address)
        return self.root / domain / local

    def mailbox(self, address: str) -> Mailbox:
        """The user's Mailbox, creating the Maildir (with the special-use folders) if new."""
        domain, local = split_address(address)
        path = self.root / domain / local
        if not (path / "cur").is_dir():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            create_maildir(path)
        return Mailbox(self, f"{local}@{domain}", path)

    def has_mailbox(self, address: str) -> bool:
        """Whether the user's Maildir exists (without creating it)."""
        return (self.mailbox_path(address) / "cur").is_dir()

    def purge(self, address: str) -> bool:
        """Delete a user's whole Maildir (`user del --purge`); False if there was none."""
        domain, local = split_address(address)
        path = self.root / domain / local
        if not path.is_dir():
            return False
        with self._lock:
            doomed = [k for k in self._folders.keys() if k[0] == f"{local}@{domain}"]
        self._forget_folders(f"{local}@{domain}", [k[1] for k in doomed])
        trash = path.parent / f".purge-{local}-{maildir.unique_key(0)}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    # -- delivery --------------------------------------------------------------------------

    def deliver(
        self,
        addresses: Iterable[str],
        data: bytes,
        *,
        folder: str = INBOX,
        flags: Iterable[str] = (),
        internal_date: float | datetime | None = None,
    ) -> dict[str, int]:
        """Deliver one message to every address; returns the UID per address.

        The bytes are written once to tmp/, fsynced, hard-linked into each recipient's new/
        (cur/ when flags are given), the directories fsynced, and the tmp file removed. When
        this returns the message is durable for every recipient; if any recipient fails, the
        copies already made are taken back and the error is raised.
        """
        prepared = self.prepare(
            addresses, data, folder=folder, flags=flags, internal_date=internal_date
        )
        (result,) = self.deliver_many([prepared])
        if isinstance(result, Exception):
            raise result
        return result

    def prepare(
        self,
        addresses: Iterable[str],
        data: bytes,
        *,
        folder: str = INBOX,
        flags: Iterable[str] = (),
        internal_date: float | datetime | None = None,
    ) -> Prepared:
        """First half of a delivery: resolve the target folders and write the message once
        into tmp/, fsynced. Nothing is visible to readers yet.

        Callers write concurrently (each in its own thread), then hand what they prepared to
        `deliver_many`, which links a whole batch under one lock section per folder.
        """
        if len(data) > MAX_MESSAGE_SIZE:
            raise TooLarge("message too large")
        targets: dict[str, Folder] = {}
        for address in addresses:
            domain, local = split_address(address)
            key = f"{local}@{domain}"
            if key not in targets:
                if len(targets) >= MAX_RECIPIENTS:
                    raise TooLarge("too many recipients")
                targets[key] = self.mailbox(key).folder(folder)
        letters, keywords = parse_flags(flags)
        mtime = posix_time(internal_date)
        if not targets:
            return Prepared(targets, None, "", len(data), mtime, letters, keywords)
        tmp, key = next(iter(targets.values()))._write_tmp(bytes(data), mtime)
        return Prepared(targets, tmp, key, len(data), mtime, letters, keywords)

    def deliver_many(self, batch: Sequence[Prepared]) -> list[dict[str, int] | Exception]:
        """Second half: make every prepared message durable; the UIDs or the error per item.

        Per target folder, all the batch's messages are linked under one lock section, with
        one fsync of new/ (and cur/) and one index commit, instead of one of each per message.
        Items are independent: one that fails, for any recipient, is taken back from every
        folder it reached and gets its error; the rest are delivered. When this returns, every
        item without an error is durable for all its recipients. The tmp files are removed.
        """
        results: list[dict[str, int] | Exception] = [{} for _ in batch]
        by_folder: dict[int, tuple[Folder, list[tuple[int, str]]]] = {}
        for n, item in enumerate(batch):
            for address, target in item.targets.items():
                by_folder.setdefault(id(target), (target, []))[1].append((n, address))
        emitted: list[tuple[Folder, list[Change]]] = []
        placed: dict[int, list[tuple[Folder, int]]] = {}
        try:
            for target, members in by_folder.values():
                rows = []
                for n, _ in members:
                    item = batch[n]
                    assert item.tmp is not None
                    rows.append(
                        (item.tmp, item.key, item.size, item.mtime, item.letters, item.keywords)
                    )
                try:
                    uids, changes = target._place_many(rows)
                except Exception as exc:
                    uids, changes = [exc] * len(members), []
                emitted.append((target, changes))
                for (n, address), uid in zip(members, uids, strict=True):
                    if isinstance(uid, Exception):
                        if not isinstance(results[n], Exception):
                            results[n] = uid
                        continue
                    placed.setdefault(n, []).append((target, uid))
                    outcome = results[n]
                    if isinstance(outcome, dict):
                        outcome[address] = uid
        finally:
            for item in batch:
                if item.tmp is not None:
                    maildir.unlink_quietly(item.tmp)
        taken_back: dict[int, set[int]] = {}
        for n, copies in placed.items():
            if isinstance(results[n], Exception):
                for target, uid in copies:
                    taken_back.setdefault(id(target), set()).add(uid)
                    try:
                        target._unplace(uid)
                    except (OSError, StoreError):
                        log.exception("could not take back a partial delivery in %s", target.path)
        for target, changes in emitted:
            hidden = taken_back.get(id(target), set())
            target._emit(_without(changes, hidden))
        return results

    # -- change notices --------------------------------------------------------------------

    def watch(self, address: str, folder: str, callback: Callable[[Change], object]) -> Watch:
        """Call `callback(Change)` for every change to the folder made in this process, and
        for changes by other processes once any session's `sync()` (or `sync_watched()`)
        notices them. On the attached loop if there is one."""
        target = self.mailbox(address).folder(folder)
        target.messages()  # the in-memory copy is the baseline changes are measured from
        key = (self._address_key(address), target.name)
        watch = Watch(self, key, target, callback)
        with self._lock:
            self._watchers.setdefault(key, []).append(watch)
        return watch

    def changed_watched(self) -> list[Folder]:
        """The watched folders whose change counter moved since their copy in memory was
        brought up to date (`Folder.changed_elsewhere`): one pread each, no query and no
        folder lock, so a poller may call it on the loop several times a second."""
        return [f for f in self._watched_folders() if f.changed_elsewhere()]

    def sync_watched(self, folders: Iterable[Folder] | None = None) -> int:
        """Sync every watched folder, or just `folders` (for a periodic background task,
        through run_io), so that changes made by other processes reach watchers; returns
        the changes found."""
        targets = self._watched_folders() if folders is None else list(folders)
        found = 0
        for target in targets:
            try:
                found += len(target.sync())
            except StoreError:
                continue
        return found

    # -- used by Mailbox and Folder --------------------------------------------------------

    def _folder(self, mailbox: Mailbox, canonical: str) -> Folder:
        """The one Folder object for (address, name). Opening (which may rebuild an index)
        happens outside the store-wide lock, so other users are not held up by it."""
        key = (mailbox.address, canonical)
        with self._lock:
            found = self._touch(key)
            if found is not None:
                return found
            opener = self._opening.setdefault(key, threading.Lock())
        with opener:
            with self._lock:
                found = self._touch(key)
                if found is not None:
                    return found
            dirname = folder_dirname(canonical)
            opened = Folder(
                canonical,
                mailbox.path if dirname is None else mailbox.path / dirname,
                fsync=self.fsync,
                new_uidvalidity=mailbox._next_uidvalidity,
                emit=lambda changes, key=key: self._emit(key, changes),
                recent=functools.partial(self.recent.mark, key),
                count_reads=self._count_reads,
                scans=self.scans,
            )
            with self._lock:
                self._folders[key] = opened
                self._opening.pop(key, None)
                return self._touch(key) or opened

    def _touch(self, key: tuple[str, str]) -> Folder | None:
        """Registry lookup that keeps recently used folders in memory (caller holds _lock)."""
        found = self._folders.get(key)
        if found is not None:
            self._recently_used[key] = found
            self._recently_used.move_to_end(key)
            while len(self._recently_used) > KEEP_OPEN:
                self._recently_used.popitem(last=False)
        return found

    def _forget_folders(self, address: str, names: list[str]) -> None:
        with self._lock:
            for name in names:
                key = (address, name)
                found = self._folders.pop(key, None)
                self._recently_used.pop(key, None)
                if found is not None:
                    found._forget()
                self._watchers.pop(key, None)
                self.recent.forget(key)

    def _watched_folders(self) -> list[Folder]:
        with self._lock:
            folders = {id(w.folder): w.folder for ws in self._watchers.values() for w in ws}
        return list(folders.values())

    def _mailbox_lock(self, address: str) -> _MailboxLock:
        with self._lock:
            return self._mailbox_locks.setdefault(address, _MailboxLock())

    def _emit(self, key: tuple[str, str], changes: list[Change]) -> None:
        with self._lock:
            watchers = list(self._watchers.get(key, ()))
        loop = self._loop
        for watch in watchers:
            for change in changes:
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(watch.callback, change)
                else:
                    try:
                        watch.callback(change)
                    except Exception:
                        log.exception("change callback failed")

    def _unwatch(self, key: tuple[str, str], watch: Watch) -> None:
        with self._lock:
            watchers = self._watchers.get(key, [])
            if watch in watchers:
                watchers.remove(watch)
            if not watchers:
                self._watchers.pop(key, None)

    @staticmethod
    def _address_key(address: str) -> str:
        domain, local = split_address(address)
        return f"{local}@{domain}"
