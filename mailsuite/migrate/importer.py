"""Copy one user's mail from a source into their mailbox, once.

The importer reads the source (never changing it), keeps messages dated on or after the
`since` day that pass the import's `Filter` (a sender domain, header patterns), and appends
each through the store into the folder of the same name, with its flags and internal date.
Where the source knows the UIDs its server gave (a Dovecot Maildir), a folder that has never
held mail here takes the old UIDVALIDITY and every message its old UID, so mail clients
moved to this server keep what they downloaded; UIDNEXT is raised to the old server's, so
no UID it ever gave is given again.

Every copy is recorded in the directory by digest (Message-ID plus a content hash) around
the store write, so a second run, or a run after a crash, copies nothing twice and misses
nothing (see `mailsuite.directory.migration`).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

from mailsuite.directory import Directory
from mailsuite.directory import migration as state
from mailsuite.migrate.message import Filter, digest, message_date
from mailsuite.migrate.sources import Candidate, Source
from mailsuite.store import (
    BadFlag,
    Folder,
    Mailbox,
    NewMessage,
    NoSuchFolder,
    NotAllowed,
    Store,
    StoreError,
    UidInUse,
)
from mailsuite.store.names import INBOX, parse_flags
from mailsuite.store.uidlist import UidList

FETCH_BATCH = 200  # messages asked of the source at once (bounds memory and round trips)
READ_AHEAD = 8  # messages read but not yet handed to a writer
WRITERS = 4  # appends at once: the store fsyncs each message, and fsyncs overlap well
NUMBERED_BATCH = 64  # messages keeping their UIDs are appended in order, this many at once
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Draft"})
MAX_FAILURES_KEPT = 1000  # reasons listed in a summary; the count goes on


@dataclass
class Summary:
    copied: int = 0
    duplicates: int = 0
    older: int = 0  # dated before `since`, left in the source
    unmatched: int = 0  # not kept by the import's filter, left in the source
    recovered: int = 0  # copies a crashed run wrote and this run confirmed
    failed: int = 0
    bytes: int = 0
    reasons: list[tuple[str, str]] = field(default_factory=list)
    uids_kept: list[str] = field(default_factory=list)  # folders with the old server's UIDs
    uids_new: list[tuple[str, str]] = field(default_factory=list)  # (folder, why not)
    renumbered: int = 0  # messages of such folders that could not keep their old UID

    def fail(self, what: str, reason: str) -> None:
        self.failed += 1
        if len(self.reasons) < MAX_FAILURES_KEPT:
            self.reasons.append((what, reason))


class Importer:
    """One import of `source` into the account `address`.

    `prepare()` settles what a crashed run left behind and scans the source; `run()` copies.
    Both block (file and network I/O, fsync): call them from a worker thread, never the loop.
    """

    def __init__(
        self,
        store: Store,
        directory: Directory,
        address: str,
        source: Source,
        since: date,
        *,
        folder: str | None = None,
        wanted: Filter | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.address = directory.require_account(address).address
        self.source = source
        self.since = since
        self.folder = folder
        self.wanted = wanted if wanted is not None and wanted.active else None
        self.summary = Summary()
        self._work: list[tuple[str, list[Candidate], UidList | None]] = []
        self._lock = threading.Lock()

    def prepare(self) -> int:
        """Recover, scan every source folder, and return how many messages are to be read."""
        self.recover()
        total = 0
        for name in self.source.folders():
            target = self.folder or self.source.target_name(name)
            keep: list[Candidate] = []
            for item in self.source.scan(name, self.wanted):
                if item.dated and self._older(item):
                    self.summary.older += 1
                elif item.matched is False:
                    self.summary.unmatched += 1
                else:
                    keep.append(item)
            if keep:
                uids = None if self.folder else self.source.uid_list(name)
                self._work.append((target, keep, uids))
                total += len(keep)
        return total

    def recover(self) -> None:
        """Settle copies a crashed run began: confirmed when the store has them, else
        forgotten so they are copied again."""
        pending = state.pending_copies(self.directory, self.address)
        by_folder: dict[str, list[state.PendingCopy]] = {}
        for p in pending:
            by_folder.setdefault(p.folder, []).append(p)
        mailbox = self.store.mailbox(self.address)
        for name, copies in by_folder.items():
            wanted = {(p.digest, p.message_id) for p in copies}
            sizes = {p.size for p in copies}
            found: dict[str, int] = {}
            try:
                folder = mailbox.folder(name)
                for info in folder.messages():
                    if info.size not in sizes:
                        continue
                    data = folder.read(info.uid)
                    for d, mid in wanted:
                        if d not in found and digest(data, mid) == d:
                            found[d] = info.uid
            except NoSuchFolder:
                pass
            for p in copies:
                if p.digest in found:
                    state.finish_copy(
                        self.directory, self.address, p.folder, p.digest, found[p.digest]
                    )
                    self.summary.recovered += 1
                else:
                    state.drop_pending(self.directory, self.address, p.folder, p.digest)

    def run(self, advance: Callable[[int], None] = lambda n: None) -> Summary:
        """Copy what `prepare` found; `advance(n)` is told after every n messages.

        Reading runs ahead of writing in a second thread (`_read_ahead`), and WRITERS
        threads append at once, so the source's round trips and the store's fsyncs overlap.
        The store gives UIDs in the order appends finish, so neighbouring messages may swap
        places within that window. Folders that keep the old server's UIDs are written in
        UID order instead, in batches (`_Numbered`).
        """
        mailbox = self.store.mailbox(self.address)
        work: list[tuple[Folder, list[Candidate]]] = []
        numbered: dict[int, _Numbered] = {}
        for target, items, uids in self._work:
            try:
                try:
                    folder = mailbox.folder(target)
                except NoSuchFolder:
                    mailbox.create_folder(target)
                    mailbox.subscribe(target)
                    folder = mailbox.folder(target)
                kept = self._keep_uids(mailbox, folder, uids)
            except StoreError as exc:
                for item in items:
                    self.summary.fail(self._name(item), f"folder {target!r}: {exc}")
                advance(len(items))
                continue
            if kept is not None:
                numbered[id(folder)] = _Numbered(folder, kept)
            work.append((folder, items))
        in_flight: deque[Future[None]] = deque()
        current: _Numbered | None = None
        with ThreadPoolExecutor(WRITERS, thread_name_prefix="migrate-write") as writers:
            try:
                for folder, item, data in _read_ahead(self.source, work):
                    if current is not None and current.folder is not folder:
                        self._finish_numbered(current, advance)
                        current = None
                    if isinstance(data, Exception):
                        self._fail(item, _reason(data))
                    elif self._older(item):
                        with self._lock:
                            self.summary.older += 1  # a remote message, dated once read
                    elif self._unmatched(item, data):
                        with self._lock:
                            self.summary.unmatched += 1
                    elif id(folder) in numbered:
                        current = numbered[id(folder)]
                        current.batch.append((item, data))
                        if len(current.batch) >= NUMBERED_BATCH:
                            self._flush_numbered(current, advance)
                        continue
                    else:
                        in_flight.append(writers.submit(self._copy, folder, item, data))
                        if len(in_flight) < 2 * WRITERS:
                            continue
                        in_flight.popleft().result()
                    advance(1)
            finally:
                # Copies already handed to the store finish (and are recorded) even when
                # reading failed, so nothing written is left unconfirmed.
                if current is not None:
                    self._finish_numbered(current, advance)
                for future in in_flight:
                    future.result()
                    advance(1)
        return self.summary

    def _keep_uids(self, mailbox: Mailbox, folder: Folder, uids: UidList | None) -> UidList | None:
        """Whether `folder` takes the old server's UIDs: when it has never held mail here
        (it adopts the old UIDVALIDITY now), or when an earlier import gave it that
        UIDVALIDITY and wrote every message it holds (a second run). A folder with mail of
        its own keeps its numbering: an old UID could name another message there."""
        if uids is None:
            return None
        folder.sync()
        if folder.uidnext == 1 and not folder.messages():
            try:
                if folder.uidvalidity != uids.uidvalidity:
                    mailbox.adopt_uidvalidity(folder.name, uids.uidvalidity)
            except NotAllowed:  # mail arrived meanwhile
                self.summary.uids_new.append((folder.name, "it already held mail here"))
                return None
        elif folder.uidvalidity != uids.uidvalidity or not {
            m.uid for m in folder.messages()
        } <= state.copied_uids(self.directory, self.address, folder.name):
            self.summary.uids_new.append((folder.name, "it already held mail here"))
            return None
        self.summary.uids_kept.append(folder.name)
        return uids

    def _flush_numbered(self, numbered: _Numbered, advance: Callable[[int], None]) -> None:
        """Append the batch read so far with the old UIDs, in their order; messages whose
        UID cannot be given (below UIDNEXT) wait for the end of the folder."""
        batch, numbered.batch = numbered.batch, []
        later, _ = self._append_batch(numbered.folder, batch, keep_uids=True)
        numbered.later += later
        advance(len(batch))

    def _finish_numbered(self, numbered: _Numbered, advance: Callable[[int], None]) -> None:
        """The folder's last batch, then UIDNEXT raised to the old server's, then the
        messages that get new UIDs above every old one."""
        self._flush_numbered(numbered, advance)
        numbered.folder.reserve_uids(numbered.uids.uidnext)
        later, numbered.later = numbered.later, []
        for start in range(0, len(later), NUMBERED_BATCH):
            _, copied = self._append_batch(numbered.folder, later[start : start + NUMBERED_BATCH])
            with self._lock:
                self.summary.renumbered += copied

    def _append_batch(
        self, folder: Folder, batch: list[tuple[Candidate, bytes]], *, keep_uids: bool = False
    ) -> tuple[list[tuple[Candidate, bytes]], int]:
        """Copy a batch in one store call, each message once; returns those that could not
        have their old UID (`keep_uids`: each message asks for `item.uid`) and how many
        were copied."""
        target = folder.name
        todo: list[tuple[Candidate, bytes, str]] = []
        later: list[tuple[Candidate, bytes]] = []
        for item, data in batch:
            if keep_uids and (item.uid is None or item.uid < folder.uidnext):
                later.append((item, data))
                continue
            d = digest(data, item.message_id)
            if state.is_copied(self.directory, self.address, target, d) or not state.begin_copy(
                self.directory, self.address, target, d, item.message_id, len(data)
            ):
                with self._lock:
                    self.summary.duplicates += 1
                continue
            todo.append((item, data, d))
        if not todo:
            return later, 0
        news = [
            NewMessage(
                data, _storable(item.flags), item.internal_date, item.uid if keep_uids else None
            )
            for item, data, _ in todo
        ]
        try:
            results: list[int | Exception] = folder.append_many(news)
        except (StoreError, OSError) as exc:
            results = [exc] * len(todo)
        copied = 0
        for (item, data, d), result in zip(todo, results, strict=True):
            if isinstance(result, int):
                state.finish_copy(self.directory, self.address, target, d, result)
                copied += 1
                with self._lock:
                    self.summary.copied += 1
                    self.summary.bytes += len(data)
                continue
            state.drop_pending(self.directory, self.address, target, d)
            if isinstance(result, UidInUse):
                later.append((item, data))
            else:
                self._fail(item, _reason(result))
        return later, copied

    def _older(self, item: Candidate) -> bool:
        day = message_date(item.raw_date, item.internal_date)
        return day is not None and day < self.since

    def _unmatched(self, item: Candidate, data: bytes) -> bool:
        """Whether the filter refuses a message whose headers the scan did not see."""
        if self.wanted is None or item.matched is not None:
            return False
        return not self.wanted.keeps_message(data)

    def _copy(self, folder: Folder, item: Candidate, data: bytes) -> None:
        """Append one message once (runs in a writer thread)."""
        target = folder.name
        d = digest(data, item.message_id)
        if state.is_copied(self.directory, self.address, target, d) or not state.begin_copy(
            self.directory, self.address, target, d, item.message_id, len(data)
        ):
            with self._lock:
                self.summary.duplicates += 1
            return
        try:
            try:
                uid = folder.append(data, item.flags, item.internal_date)
            except BadFlag:
                # Keywords our store cannot hold (too long, odd characters) are dropped
                # rather than the message.
                uid = folder.append(data, item.flags & SYSTEM_FLAGS, item.internal_date)
        except (StoreError, OSError) as exc:
            state.drop_pending(self.directory, self.address, target, d)
            self._fail(item, _reason(exc))
            return
        state.finish_copy(self.directory, self.address, target, d, uid)
        with self._lock:
            self.summary.copied += 1
            self.summary.bytes += len(data)

    def _fail(self, item: Candidate, reason: str) -> None:
        with self._lock:
            self.summary.fail(self._name(item), reason)

    def _name(self, item: Candidate) -> str:
        where = "" if item.folder == INBOX else f"{item.folder}: "
        return f"{where}{item.ref}" + (f" {item.message_id}" if item.message_id else "")


@dataclass
class _Numbered:
    """A target folder that takes the old server's UIDs, with the messages read for it and
    not yet written, and those that will get new UIDs once the old ones are all placed."""

    folder: Folder
    uids: UidList
    batch: list[tuple[Candidate, bytes]] = field(default_factory=list)
    later: list[tuple[Candidate, bytes]] = field(default_factory=list)


def _storable(flags: frozenset[str]) -> frozenset[str]:
    """The flags the store can hold: keywords it cannot (too long, odd characters) are
    dropped rather than the message."""
    try:
        parse_flags(flags)
    except BadFlag:
        return flags & SYSTEM_FLAGS
    return flags


_DONE = object()


def _read_ahead(
    source: Source, work: list[tuple[Folder, list[Candidate]]]
) -> Iterator[tuple[Folder, Candidate, bytes | Exception]]:
    """Messages of every folder in order, read by a worker thread at most READ_AHEAD ahead.

    An exception that ends the reading (the connection is lost) is raised here, in the
    consumer; a consumer that stops early stops the reader too.
    """
    out: queue.Queue[object] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                out.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for folder, items in work:
                for start in range(0, len(items), FETCH_BATCH):
                    for item, data in source.fetch(items[start : start + FETCH_BATCH]):
                        if not put((folder, item, data)):
                            return
            put(_DONE)
        except BaseException as exc:
            put(exc)

    thread = threading.Thread(target=reader, name="migrate-read", daemon=True)
    thread.start()
    try:
        while True:
            value = out.get()
            if value is _DONE:
                return
            if isinstance(value, BaseException):
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300] if text else type(exc).__name__
