"""One folder: its messages, flags, UIDs and change notices.

There is one `Folder` object per (user, folder) in a process, shared by every session. It
keeps an in-memory copy of the index once someone asks for the message list, and keeps that
copy current from the index's modseq, so sessions see each other's changes and those of
other processes.

Locking: a thread lock guards the object; writers also hold `flock()` on `mailsuite.lock`
in the folder directory, which every mailsuite process takes before it changes the files or
the index, so the CLI and a second server can write the same Maildir safely. SQLite
transactions make each change atomic in the index. Files changed by other Maildir software
are noticed by the mtimes of new/ and cur/ (recorded in the index) and picked up by a scan.

Change signal: every commit that changes the index bumps a counter kept in the first eight
bytes of `mailsuite.lock`, under the flock. A copy in memory remembers the value it was last
brought up to date at, so "has anyone changed this folder?" is one 8-byte pread, with no
SQLite query and no lock (`changed_elsewhere`, safe on the event loop); `sync()` asks SQLite
only when the counter moved, the index file was replaced, or new/ or cur/ changed.

Durability: arrivals, copies and expunges are fsynced (files, directories and index) before
the call returns. Flag changes are committed without fsync and made durable in groups: one
fsync of new/, cur/ and the index's WAL at most `FLAG_FLUSH_DELAY` after the first of them
(and by any durable commit that comes earlier). What a power loss can undo is said in
docs/internals.md.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

from . import fulltext, headers, maildir
from .errors import NoSuchFolder, NoSuchMessage, NotAllowed, StoreError, TooLarge, UidInUse
from .index import FolderIndex, IndexDamaged
from .listing import Frozen, Listing
from .model import Change, FolderStatus, MessageInfo, NewMessage
from .names import LETTER_FLAGS, letters_of, parse_flags
from .recent import RecentMark, RecentMarks
from .scans import Scans

MAX_MESSAGE_SIZE = 200 * 1024 * 1024
MAX_CACHE_BLOB = 1 << 20
MAX_CACHE_NAME = 64
_CACHE_BATCH = 500  # UIDs per cache query (SQLite allows 999 variables at least)
MAX_UIDS_PER_CALL = 1_000_000
_CHUNK = 500  # SQLite host parameters per IN (...) query
_DIRTY_WINDOW_NS = 2_000_000_000  # a scan trusts directory mtimes only once they are older
_EXPUNGE_LOG_KEEP = 20_000
_HOUSEKEEPING_EVERY = 1000  # expunges between expunge-log trims and journal checks
_MODES = ("add", "remove", "replace")
_STAT_BATCH = 5000  # files stat()ed between looks at the store's stop flag
FLAG_FLUSH_DELAY = 0.5  # seconds a flag change may wait for its fsync (group commit)

log = logging.getLogger(__name__)
# Cache entry of the wire size of a message whose file name has no W= (written by other
# software); the name is the one POP3 used when it kept these itself, so they stay valid.
WIRE_SIZE_CACHE = "pop3-size"


def posix_time(when: float | datetime | None) -> float:
    """An internal date as POSIX seconds; now when not given."""
    if when is None:
        return time.time()
    if isinstance(when, datetime):
        return when.timestamp()
    return float(when)


def _keywords_of(info: str, by_letter: dict[str, str]) -> list[str]:
    """Keywords named by the lower-case letters of a Maildir info part."""
    if not info.startswith("2,"):
        return []
    return [by_letter[c] for c in info[2:] if c in by_letter]


class _Txn:
    """What one write transaction has done so far."""

    def __init__(self, modseq: int, uidnext: int) -> None:
        self.modseq = modseq
        self.uidnext = uidnext
        self.journal: list[tuple[int, str]] = []
        self.dirty = False  # files changed under us: rescan on the next call
        self.compact = False  # rewrite the journal after commit
        # rows a scan inserted: (uid, key, sub, name, size, idate, flags, keywords, modseq)
        self.added: list[tuple[int, str, str, str, int, float, str, str, int]] = []


class Folder:
    """A Maildir folder; obtain it from `Mailbox.folder(name)`, never construct it directly."""

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        fsync: bool,
        new_uidvalidity: Callable[[], int],
        emit: Callable[[list[Change]], None],
        recent: Callable[[int, int], RecentMark] | None = None,
        count_reads: Callable[[int], None] | None = None,
        scans: Scans | None = None,
    ) -> None:
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise NoSuchFolder(name)
        self.name = name
        self.path = path
        self._fsync = fsync
        self._new_uidvalidity = new_uidvalidity
        self._emit_to_watchers = emit
        # \Recent marks live with the store, so they outlive this object (see recent.py)
        self._mark_of = recent or functools.partial(RecentMarks().mark, ("", name))
        self._count_reads = count_reads  # the store's tally of message files read
        self._scans = scans or Scans()  # the store's bound on concurrent index builds
        self._lock = threading.RLock()
        self._depth = 0
        self._gone = False
        (path / "tmp").mkdir(mode=0o700, exist_ok=True)
        self._lockfd = os.open(path / maildir.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        self._index = FolderIndex(path, fsync=fsync)
        self._msgs: Listing | None = None
        # a rebuild's copy in memory, (uidvalidity, modseq, listing), until first asked for
        self._built: tuple[int, int, Listing] | None = None
        self._status: tuple[tuple[int, int, bool], FolderStatus] | None = None
        self._modseq = 0
        self._uidvalidity = 0
        self._uidnext = 1
        self._flagsets: dict[tuple[str, str], frozenset[str]] = {}
        self._keywords_cache: tuple[int, dict[str, str]] | None = None
        self._signal_seen: bytes | None = None  # the change counter as of the last pull
        self._dirs_seen: tuple[object, ...] = ()  # new/ and cur/ mtimes, scan_after, from meta
        self._outside_checked = 0.0  # monotonic time of the last look at the files
        self._flush_timer: threading.Timer | None = None
        maildir.clean_tmp(path)
        with self._lock:
            try:
                self._index.open()
                meta = self._index.meta()
            except (sqlite3.DatabaseError, IndexDamaged):
                with self._writing():
                    self._recover_locked()
                meta = self._index.meta()
            if "uidvalidity" not in meta:
                with self._writing():
                    try:
                        self._populate_locked()
                    except (sqlite3.DatabaseError, IndexDamaged):
                        self._recover_locked()
                meta = self._index.meta()
            self._take_meta(meta)
            self._recent_mark()  # from now on, what arrives is \Recent to a session here

    def __del__(self) -> None:
        try:
            self._index.close()
            os.close(self._lockfd)
        except (AttributeError, OSError):
            pass

    # -- public reads ----------------------------------------------------------------------

    @property
    def uidvalidity(self) -> int:
        """RFC 3501 2.3.1.1: changes only when UIDs could not be kept."""
        return self._uidvalidity

    @property
    def uidnext(self) -> int:
        """The UID the next message will get, as of the last sync or change."""
        return self._uidnext

    def sync(self) -> list[Change]:
        """Pick up changes made on disk by others; cheap when nothing changed: one read of
        the change counter and three stats (the index file, new/ and cur/), no query.

        Effects: the in-memory copy is brought up to date and the changes found (relative to
        it, so none before the first `messages()`) are both returned and sent to this
        folder's watchers.
        """
        with self._lock:
            self._check_alive()
            self._outside_checked = time.monotonic()
            if self._quiet():
                return []
            try:
                meta = None if self._index.replaced() else self._index.meta()
                if meta is None or "uidvalidity" not in meta or self._dirs_changed(meta):
                    with self._writing():
                        self._ready_locked()
            except (sqlite3.DatabaseError, IndexDamaged):
                with self._writing():
                    self._recover_locked()
            changes = self._pull_locked()
        self._emit(changes)
        return changes

    def messages(self) -> Frozen:
        """Every message in UID order, from memory (loads the index on first use): a
        sequence that does not change, shared by every caller until the folder changes
        (see listing.py), so asking again costs nothing.

        Call `sync()` first to see changes made by other processes.
        """
        with self._lock:
            self._ensure_loaded()
            assert self._msgs is not None
            return self._msgs.frozen()

    def get(self, uid: int) -> MessageInfo | None:
        """One message from memory, or None when the UID is not in the folder."""
        with self._lock:
            self._ensure_loaded()
            assert self._msgs is not None
            return self._msgs.get(uid)

    def get_now(self, uids: Iterable[int]) -> dict[int, MessageInfo | None] | None:
        """Those messages from memory without waiting, for callers on the event loop: None
        when the copy in memory is not loaded or the folder's lock is held (a commit, sync
        or load in progress, which may be waiting on the disk); the caller then asks `get`
        in the I/O pool. Microseconds a message, so for a few messages at a time."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._msgs is None or self._gone:
                return None
            return {uid: self._msgs.get(uid) for uid in uids}
        finally:
            self._lock.release()

    def changed_elsewhere(self) -> bool:
        """Whether the index changed since the copy in memory was brought up to date (by
        another process, or by this one a moment ago, before its notices went out): then
        `sync()` has something to pick up. One 8-byte pread and no lock, so it may be called
        on the event loop before every command. False once the folder is gone (deleted or
        renamed here): there is nothing left to pick up."""
        return not self._gone and self._read_signal() != self._signal_seen

    def outside_check_due(self, interval: float) -> bool:
        """Whether `interval` seconds have passed since anyone last looked at the files
        (`sync()`), which is how changes by other Maildir software are found."""
        return time.monotonic() - self._outside_checked >= interval

    def recent(self) -> set[int]:
        """UIDs no session of this process has claimed yet (see `claim_recent`); reads only."""
        with self._lock:
            self._ensure_loaded()
            return self._unclaimed(self._recent_mark())

    def status(self) -> FolderStatus:
        """Counts for IMAP STATUS and POP3 STAT; does not load the message list."""
        self.sync()
        with self._lock:
            mark = self._recent_mark()
            stamp = (self._modseq, mark.floor, mark.before_claimed)  # a claim changes counts
            if self._status is not None and self._status[0] == stamp:
                return self._status[1]
            if self._msgs is not None:
                msgs = self._msgs.frozen()
                count, size = len(msgs), msgs.total_size()
                unseen = msgs.count_with("\\Seen", False)
                recent = len(self._unclaimed(self._recent_mark()))
                deleted = msgs.count_with("\\Deleted", True)
                deleted_size = msgs.total_size("\\Deleted")
            else:
                row = (
                    self._conn()
                    .execute(
                        "SELECT count(*), coalesce(sum(size), 0),"
                        " coalesce(sum(uid >= ? OR (sub = 'new' AND ?)), 0),"
                        " coalesce(sum(instr(flags, 'S') = 0), 0),"
                        " coalesce(sum(instr(flags, 'T') > 0), 0),"
                        " coalesce(sum(CASE WHEN instr(flags, 'T') > 0 THEN size END), 0)"
                        " FROM msgs",
                        (mark.floor, not mark.before_claimed),
                    )
                    .fetchone()
                )
                count, size, recent, unseen, deleted, deleted_size = row
            status = FolderStatus(
                count,
                recent,
                unseen,
                self._uidnext,
                self._uidvalidity,
                size,
                highest_modseq=self._modseq,
                deleted=deleted,
                deleted_size=deleted_size,
            )
            self._status = (stamp, status)
            return status

    def usage(self) -> tuple[int, int]:
        """(messages, octets) held, from the running totals the index keeps (one meta read,
        no walk over the messages), after picking up changes on disk."""
        self.sync()
        with self._lock:
            self._check_alive()
            return self._index.totals()

    def read(self, uid: int, *, head: bool = False) -> bytes:
        """The message's bytes exactly as stored; NoSuchMessage when it is gone. With `head`
        only its header block, read no further than the blank line (headers.read_block)."""
        for attempt in range(2):
            with self._lock:
                self._check_alive()
                row = (
                    self._conn()
                    .execute("SELECT sub, name FROM msgs WHERE uid = ?", (uid,))
                    .fetchone()
                )
            if row is None:
                break
            try:
                with open(self.path / row[0] / row[1], "rb") as f:
                    data = headers.read_block(f) if head else f.read()
            except FileNotFoundError:
                if attempt == 0:
                    self.sync()  # renamed by another process's flag change
                continue
            if self._count_reads is not None:
                self._count_reads(1)
            return data
        raise NoSuchMessage(f"UID {uid}")

    def read_many(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The bytes of several messages, their file names found by one query per few
        hundred UIDs instead of one each (POP3 read-ahead); UIDs gone are left out."""
        with self._lock:
            self._check_alive()
            rows = self._rows(sorted(set(uids)), "uid, sub, name")
        out: dict[int, bytes] = {}
        for uid, sub, name in rows:
            try:
                with open(self.path / sub / name, "rb") as f:
                    out[uid] = f.read()
            except FileNotFoundError:
                with suppress(NoSuchMessage):
                    out[uid] = self.read(uid)  # renamed by a flag change meanwhile
                continue
            if self._count_reads is not None:
                self._count_reads(1)
        return out

    def wire_sizes(self, infos: Frozen) -> dict[int, int]:
        """UID -> the message's size with CRLF line ends (`maildir.wire_size`, POP3 LIST),
        for a listing `messages()` gave.

        Taken from the W= of the file name, which every delivery, APPEND and COPY here
        writes, so no file is read for them. A file other software put in without W= is read
        once and its size kept in the cache. Messages gone meanwhile are left out.
        """
        out: dict[int, int] = {}
        unknown: list[int] = []
        wire_from_key = maildir.wire_from_key
        for uid, key in zip(infos.uids, infos.keys, strict=True):
            wire = wire_from_key(key)
            if wire is None:
                unknown.append(uid)
            else:
                out[uid] = wire
        if not unknown:
            return out
        for uid, value in self.cache_get_many(unknown, WIRE_SIZE_CACHE).items():
            if value.isdigit():
                out[uid] = int(value)
        missing = [uid for uid in unknown if uid not in out]
        learned: list[tuple[int, bytes]] = []
        for start in range(0, len(missing), _CACHE_BATCH):
            for uid, data in self.read_many(missing[start : start + _CACHE_BATCH]).items():
                out[uid] = maildir.wire_size(data)
                learned.append((uid, b"%d" % out[uid]))
        self.cache_put_many(WIRE_SIZE_CACHE, learned)
        return out

    def cache_get(self, uid: int, name: str) -> bytes | None:
        """A blob stored with cache_put (e.g. rendered ENVELOPE), or None."""
        with self._lock:
            self._check_alive()
            row = (
                self._conn()
                .execute("SELECT value FROM cache WHERE uid = ? AND name = ?", (uid, name))
                .fetchone()
            )
        return None if row is None else bytes(row[0])

    def cache_put(self, uid: int, name: str, value: bytes) -> None:
        """Keep a blob with the message; dropped when the message is expunged.

        Not fsynced: the cache can always be recomputed.
        """
        if len(value) > MAX_CACHE_BLOB or not name or len(name) > MAX_CACHE_NAME:
            raise TooLarge("cache entry too large")
        with self._lock:
            self._check_alive()
            conn = self._conn()
            self._index.set_durable(False)
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO cache (uid, name, value)"
                    " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM msgs WHERE uid = ?)",
                    (uid, name, bytes(value), uid),
                )
            finally:
                self._index.set_durable(True)

    def cache_get_many(self, uids: Sequence[int], name: str) -> dict[int, bytes]:
        """The blobs stored under `name` for those of `uids` that have one, a few hundred
        UIDs per query: a SORT over 100,000 messages makes 200 queries, not 100,000."""
        out: dict[int, bytes] = {}
        with self._lock:
            self._check_alive()
            conn = self._conn()
            for start in range(0, len(uids), _CACHE_BATCH):
                chunk = list(uids[start : start + _CACHE_BATCH])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT uid, value FROM cache WHERE name = ? AND uid IN ({marks})",
                    (name, *chunk),
                )
                out.update((uid, bytes(value)) for uid, value in rows)
        return out

    def cache_put_many(self, name: str, items: Sequence[tuple[int, bytes]]) -> None:
        """Keep many blobs under `name` in one transaction (as `cache_put`, not fsynced);
        values too large to keep and UIDs no longer in the folder are left out."""
        if not name or len(name) > MAX_CACHE_NAME:
            raise TooLarge("cache entry too large")
        rows = [(uid, name, bytes(v), uid) for uid, v in items if len(v) <= MAX_CACHE_BLOB]
        if not rows:
            return
        with self._lock:
            self._check_alive()
            conn = self._conn()
            self._index.set_durable(False)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(
                        "INSERT OR REPLACE INTO cache (uid, name, value)"
                        " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM msgs WHERE uid = ?)",
                        rows,
                    )
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                self._index.set_durable(True)

    # -- public changes --------------------------------------------------------------------

    def append(
        self,
        data: bytes,
        flags: Iterable[str] = (),
        internal_date: float | datetime | None = None,
        *,
        uid: int | None = None,
    ) -> int:
        """Add a message (IMAP APPEND); returns its UID once it is durable. `uid` asks for
        exactly that UID (see `append_many`)."""
        (result,) = self.append_many([NewMessage(data, tuple(flags), internal_date, uid)])
        if isinstance(result, Exception):
            raise result
        return result

    def append_many(self, items: Sequence[NewMessage]) -> list[int | Exception]:
        """Add several messages in order under one lock section: each is written to tmp/
        and fsynced, then all are linked with one fsync per directory and one index commit,
        which costs far less than one append each.

        An item with a `uid` gets exactly that UID, which must be at least UIDNEXT when its
        turn comes (UidInUse otherwise; UIDs only grow, RFC 3501 2.3.1.1); one without gets
        the next. Returns the UID, or the error of that item alone, per item; every UID
        returned is durable, and watchers are told once.
        """
        rows: list[tuple[Path, str, int, float, str, tuple[str, ...]]] = []
        results: list[int | Exception] = []
        placing: list[int] = []
        try:
            for n, item in enumerate(items):
                try:
                    if len(item.data) > MAX_MESSAGE_SIZE:
                        raise TooLarge("message too large")
                    letters, keywords = parse_flags(item.flags)
                    mtime = posix_time(item.internal_date)
                    tmp, key = self._write_tmp(item.data, mtime)
                except StoreError as exc:
                    results.append(exc)
                    continue
                results.append(0)
                placing.append(n)
                rows.append((tmp, key, len(item.data), mtime, letters, keywords))
            if rows:
                uids = [items[n].uid for n in placing]
                placed, changes = self._place_many(rows, uids)
                for n, uid in zip(placing, placed, strict=True):
                    results[n] = uid
                self._emit(changes)
        finally:
            for row in rows:
                maildir.unlink_quietly(row[0])
        return results

    def adopt_uidvalidity(self, uidvalidity: int) -> None:
        """Take another server's UIDVALIDITY (a migration that keeps its UIDs, so that mail
        clients keep what they downloaded). Only for a folder that is empty and has never
        given out a UID: no client can then hold a UID of ours that the value would make
        mean another message. NotAllowed otherwise. Call `Mailbox.adopt_uidvalidity`, which
        also keeps the mailbox's record of values handed out."""
        if not 0 < uidvalidity < 2**32:  # RFC 3501 9: nz-number, 32 bits
            raise ValueError(f"UIDVALIDITY {uidvalidity} is not a 32-bit number above 0")

        def txn_fn(txn: _Txn) -> None:
            count = self._conn().execute("SELECT count(*) FROM msgs").fetchone()[0]
            if count or txn.uidnext != 1:
                raise NotAllowed(f"{self.name} has held messages; its UIDs cannot be replaced")
            self._index.set_meta(uidvalidity=uidvalidity)
            txn.compact = True  # the journal's header carries it, for a rebuilt index

        self._mutate(txn_fn)

    def reserve_uids(self, uidnext: int) -> None:
        """Raise UIDNEXT to `uidnext` (never lower it): UIDs below it that another server
        gave out under the same UIDVALIDITY, even to messages since expunged, are never
        given again here (RFC 3501 2.3.1.1)."""

        def txn_fn(txn: _Txn) -> None:
            if uidnext > txn.uidnext:
                txn.uidnext = uidnext
                txn.compact = True  # the journal's header keeps it across a rebuild

        self._mutate(txn_fn)

    def store_flags(
        self, uids: Iterable[int], flags: Iterable[str], mode: str
    ) -> list[MessageInfo]:
        """Change flags (`mode` is add, remove or replace); returns the messages' new state.

        Effects: files whose system flags change are renamed within cur/ (a message still in
        new/ moves to cur/); keys and UIDs stay. UIDs not in the folder are skipped.
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}")
        letters, keywords = parse_flags(flags)
        want = self._uid_list(uids)
        return self._mutate(
            lambda txn: self._store_flags_txn(txn, want, letters, keywords, mode), durable=False
        )

    def store_flags_unchanged_since(
        self, uids: Iterable[int], flags: Iterable[str], mode: str, modseq: int
    ) -> tuple[list[MessageInfo], list[int]]:
        """`store_flags` only for messages whose modseq is at most `modseq`, checked in the
        same transaction as the change (RFC 7162 3.1.3 UNCHANGEDSINCE: no change by anyone
        can slip between the test and the store). Returns the messages' new state and the
        UIDs left alone because they had changed since."""
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}")
        letters, keywords = parse_flags(flags)
        want = self._uid_list(uids)
        modified: list[int] = []
        infos = self._mutate(
            lambda txn: self._store_flags_txn(txn, want, letters, keywords, mode, modseq, modified),
            durable=False,
        )
        return infos, modified  # type: ignore[return-value]

    def highest_modseq(self) -> int:
        """RFC 7162 3.1.2.1 HIGHESTMODSEQ of the in-memory copy (loads it on first use): every
        change the copy shows has a modseq at most this, and later changes get more. It grows
        with every append, flag change and expunge, and never goes back, even across an
        index rebuild (see `_populate_locked`)."""
        with self._lock:
            self._ensure_loaded()
            return self._modseq

    def vanished_since(self, modseq: int) -> list[int] | None:
        """UIDs expunged after `modseq` up to the in-memory copy's HIGHESTMODSEQ, ascending
        (RFC 7162 3.2.5.1 VANISHED (EARLIER)); None when the expunge log no longer reaches
        back that far (it keeps the last 20,000), and the caller must treat every UID that
        is not in the folder as possibly expunged."""
        with self._lock:
            self._ensure_loaded()
            meta = self._index.meta()
            if modseq < meta.get("expunge_floor", 0) or modseq < meta.get("modseq_floor", 0):
                return None
            rows = self._conn().execute(
                "SELECT uid FROM expunged WHERE modseq > ? AND modseq <= ?",
                (modseq, self._modseq),
            )
            assert self._msgs is not None
            return sorted(uid for (uid,) in rows if uid not in self._msgs)

    def expunge(self, uids: Iterable[int]) -> list[int]:
        """Remove messages for good; returns the UIDs that were removed, in order. Their
        text leaves the folder's full-text index too."""
        want = self._uid_list(uids)
        removed: list[int] = self._mutate(lambda txn: self._expunge_txn(txn, want))  # type: ignore[assignment]
        fulltext.forget_now(self.path, removed)
        return removed

    def copy(self, uids: Iterable[int], dest: Folder) -> list[tuple[int, int]]:
        """Copy messages (hard links) with their flags; returns (source UID, new UID) pairs.

        A UID expunged meanwhile is skipped. The copies are durable when this returns.
        """
        want = self._uid_list(uids)
        sources = self._sources(want)
        pairs, changes = dest._import(self, sources)
        dest._emit(changes)
        return pairs

    def move(self, uids: Iterable[int], dest: Folder) -> list[tuple[int, int]]:
        """RFC 6851 MOVE: copy, then expunge the originals; returns (source, new) UID pairs."""
        pairs = self.copy(uids, dest)
        self.expunge([src for src, _ in pairs])
        return pairs

    def claim_recent(self) -> set[int]:
        """Take the \\Recent messages for one session: the UIDs of every message in memory
        that no session of this process has claimed (RFC 3501 2.3.2: the first session to
        see a message gets it), added by anyone since this process opened the folder, with
        flags or not (RFC 3501 6.4.7: copies too), and, at the first claim, what was in new/
        before. Nothing is written: the marks are memory (recent.py), files stay where they
        are.
        """
        with self._lock:
            self._ensure_loaded()
            assert self._msgs is not None
            mark = self._recent_mark()
            claimed = self._unclaimed(mark)
            last = next(reversed(self._msgs), 0)
            mark.floor = max(mark.floor, self._uidnext, last + 1)
            mark.before_claimed = True
            return claimed

    # -- used by Store.deliver -------------------------------------------------------------

    def _place(
        self, tmp: Path, key: str, size: int, mtime: float, letters: str, keywords: tuple[str, ...]
    ) -> tuple[int, list[Change]]:
        """Link a written tmp file into new/ (or cur/ with flags) and index it, durably.

        The caller emits the returned changes (Store.deliver waits until every recipient has
        the message).
        """

        results, changes = self._place_many([(tmp, key, size, mtime, letters, keywords)], [None])
        if isinstance(results[0], Exception):
            raise results[0]
        return results[0], changes

    def _place_many(
        self,
        items: list[tuple[Path, str, int, float, str, tuple[str, ...]]],
        uids: Sequence[int | None] | None = None,
    ) -> tuple[list[int | Exception], list[Change]]:
        """Link several written tmp files (path, key, size, mtime, letters, keywords) under
        one lock section: every link, then one fsync per directory, then one index commit.
        `uids` asks for a UID per item (None: the next one); one below UIDNEXT at its turn
        gets UidInUse and is not linked.

        Returns a UID or the error per item, and the changes (the caller emits them). An item
        whose link fails gets its error and leaves nothing behind; the others go on. When the
        directory fsync or the commit fails, every link made here is removed again and the
        error is raised: no item is half-delivered.
        """
        linked: list[Path] = []

        def txn_fn(txn: _Txn) -> list[int | Exception]:
            results: list[int | Exception] = []
            placed: list[tuple[int, str, str, str, int, float, str, tuple[str, ...]]] = []
            wanted = list(uids) if uids is not None else [None] * len(items)
            uidnext = txn.uidnext
            for n, (tmp, key, size, mtime, letters, keywords) in enumerate(items):
                uid = wanted[n]
                if uid is not None and uid < uidnext:
                    results.append(UidInUse(f"UID {uid} is below UIDNEXT {uidnext}"))
                    continue
                uidnext = uidnext + 1 if uid is None else uid + 1
                try:
                    sub, name = self._target_name(key, letters, keywords)
                    maildir.link_or_copy(tmp, self.path / sub / name, fsync=self._fsync)
                except OSError as exc:
                    results.append(exc)
                    continue
                linked.append(self.path / sub / name)
                results.append(0)
                placed.append((n, key, sub, name, size, mtime, letters, keywords))
            if self._fsync:
                for sub in sorted({p.parent.name for p in linked}):
                    maildir.fsync_dir(self.path / sub)
            for n, *row in placed:
                results[n] = uid = self._insert_row(txn, *row, uid=wanted[n])
                headers.keep(self._conn(), uid, self.path / row[1] / row[2])
            return results

        try:
            return self._mutate(txn_fn, emit=False)  # type: ignore[return-value]
        except BaseException:
            self._take_back(linked)
            raise

    def _take_back(self, paths: list[Path]) -> None:
        """Remove links whose delivery failed, durably when possible (best effort: the
        caller is already raising the error that matters)."""
        for path in paths:
            maildir.unlink_quietly(path)
        if self._fsync:
            for sub in {p.parent for p in paths}:
                try:
                    maildir.fsync_dir(sub)
                except OSError:
                    pass

    def _write_tmp(self, data: bytes, mtime: float) -> tuple[Path, str]:
        """Write the message once into this folder's tmp/ (fsynced); (path, key)."""
        self._check_alive()
        try:
            return maildir.write_tmp(self.path / "tmp", data, fsync=self._fsync, mtime=mtime)
        except FileNotFoundError:
            self._gone = True
            raise NoSuchFolder(self.name) from None

    def _unplace(self, uid: int) -> None:
        """Take back a delivery that could not reach every recipient (nothing is emitted)."""
        self._mutate(lambda txn: self._expunge_txn(txn, [uid]), emit=False)

    def _emit(self, changes: list[Change]) -> None:
        if changes:
            self._emit_to_watchers(changes)

    def _forget(self) -> None:
        """The folder was deleted or renamed: every later call raises NoSuchFolder."""
        with self._lock:
            self._gone = True
            self._index.close()

    # -- locking and transactions ----------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the thread lock and the folder's flock (re-entrant within a thread)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                fcntl.flock(self._lockfd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if outer:
                    fcntl.flock(self._lockfd, fcntl.LOCK_UN)

    def _mutate(
        self, fn: Callable[[_Txn], object], *, emit: bool = True, durable: bool = True
    ) -> object:
        """Run `fn` in one write transaction, then refresh memory and notify watchers.
        `durable=False` (flag changes) commits without fsync and leaves the fsync to the
        group flush (`_flush_later`)."""
        with self._writing():
            self._check_alive()
            self._ready_locked()
            conn = self._conn()
            grouped = not durable and self._fsync
            try:
                if grouped:
                    self._index.set_durable(False)  # SQLite takes it only between transactions
                conn.execute("BEGIN IMMEDIATE")
                meta = self._index.meta()
                txn = _Txn(meta["modseq"] + 1, meta["uidnext"])
                changes_before = conn.total_changes
                result = fn(txn)
                if conn.total_changes == changes_before and not txn.journal:
                    # nothing changed (flags already so): HIGHESTMODSEQ stays, so a client
                    # resyncing learns of no change
                    txn.modseq = meta["modseq"]
                self._commit(txn, meta)
            except sqlite3.OperationalError as exc:
                # Busy past the timeout, disk full, I/O error: nothing to rebuild; files that
                # fn already moved are picked up by the next call's scan.
                self._rollback()
                raise StoreError(f"folder index unavailable: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                self._rollback()
                self._recover_locked()
                raise StoreError("the folder index was damaged and has been rebuilt") from exc
            except BaseException:
                self._rollback()
                raise
            finally:
                if grouped:
                    self._index.set_durable(True)
            if grouped:
                self._flush_later()
            changes = self._pull_locked()
        if emit:
            self._emit(changes)
            return result
        return result, changes

    def _rollback(self) -> None:
        try:
            self._conn().execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _commit(self, txn: _Txn, meta: dict[str, int], *, scanning: bool = False) -> None:
        """Record modseq, UIDNEXT and the directory mtimes, commit, then write the journal."""
        values = {"modseq": txn.modseq, "uidnext": txn.uidnext}
        values.update(self._dir_mtimes(scanning=scanning))
        if txn.dirty:
            values.update(new_mtime=-1, cur_mtime=-1)
        if txn.journal:
            values["journal_lines"] = meta.get("journal_lines", 0) + len(txn.journal)
        self._index.set_meta(**values)
        self._conn().execute("COMMIT")
        self._signal_changed()
        self._index.journal_append(txn.journal)
        if txn.compact:
            self._set_meta_autocommit(journal_lines=self._index.journal_rewrite())

    def _set_meta_autocommit(self, **values: int) -> None:
        self._index.set_durable(False)
        try:
            self._index.set_meta(**values)
        finally:
            self._index.set_durable(True)

    def _ready_locked(self) -> None:
        """Under the write lock: index open and current with the files on disk."""
        if self._quiet():
            return
        try:
            if self._index.replaced():
                self._index.open()
                self._full_reload_pending()
            meta = self._index.meta()
            if "uidvalidity" not in meta:
                self._populate_locked()
            elif self._dirs_changed(meta):
                self._scan_locked()
        except (sqlite3.DatabaseError, IndexDamaged):
            self._recover_locked()

    def _recover_locked(self) -> None:
        """Under the write lock: reopen the index, or rebuild it from files and journal.

        Another process may have rebuilt it already; a usable file is kept.
        """
        try:
            self._index.open()
            if self._index.healthy() and "uidvalidity" in self._index.meta():
                self._full_reload_pending()
                return
        except (sqlite3.DatabaseError, IndexDamaged, OSError):
            pass
        previous = 0
        try:
            previous = self._index.meta().get("modseq", 0)
        except (sqlite3.Error, AssertionError):
            pass
        self._index.discard()
        self._index.open()
        self._populate_locked(previous)
        self._full_reload_pending()

    def _full_reload_pending(self) -> None:
        if self._msgs is not None:
            self._modseq = -1  # forces _pull_locked to compare everything

    def _populate_locked(self, previous_modseq: int = 0) -> None:
        """Fill a new, empty index from the files, keeping journal UIDs where they exist;
        with them it keeps modseq above `previous_modseq` (the damaged index's, when it
        could still be read) and above anything a client saw (below)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if "uidvalidity" in self._index.meta():
                conn.execute("ROLLBACK")
                return
            for table in ("msgs", "expunged", "cache"):  # leftovers of a damaged index
                conn.execute(f"DELETE FROM {table}")
            uidvalidity, uidnext, known = self._index.journal_read()
            modseq = 1
            if uidvalidity is None:
                uidvalidity, uidnext, known = self._new_uidvalidity(), 1, {}
            else:
                # RFC 7162 3.1.2.1: HIGHESTMODSEQ never goes back while UIDVALIDITY stays.
                # The lost index held at most one modseq per transaction since the folder
                # began (or since an earlier rebuild, which started at the clock), and no
                # folder commits a million transactions a second, so the clock in
                # microseconds is above every modseq a client can hold. Expunges before it
                # are forgotten: modseq_floor makes VANISHED answers for older values
                # cover every missing UID.
                modseq = max(previous_modseq + 1, time.time_ns() // 1000)
            self._index.set_meta(
                uidvalidity=uidvalidity,
                uidnext=uidnext,
                modseq=modseq,
                expunge_floor=0,
                modseq_floor=modseq,
            )
            txn = _Txn(modseq, uidnext)
            with self._scans.turn(), self._index.totals_counted_once():
                self._scan_txn(txn, known)
            self._index.set_meta(uidnext=txn.uidnext, **self._dir_mtimes(scanning=True))
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._signal_changed()
        # The rows just written are the whole folder: the journal and, when nothing is in
        # memory yet (the first open), the copy in memory are made from them instead of
        # being read back from the index.
        built = sorted(txn.added)
        txn.added = []
        lines = self._index.journal_rewrite([(row[0], row[1]) for row in built])
        self._set_meta_autocommit(journal_lines=lines)
        if self._msgs is None:
            rows = [(r[0], r[1], r[4], r[5], r[6], r[7], r[8]) for r in built]
            self._built = (uidvalidity, modseq, self._listing_of(rows))

    def _scan_locked(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            meta = self._index.meta()
            txn = _Txn(meta["modseq"] + 1, meta["uidnext"])
            changes_before = conn.total_changes
            self._scan_txn(txn, {})
            if conn.total_changes == changes_before and not txn.journal:
                txn.modseq = meta["modseq"]  # found nothing: HIGHESTMODSEQ stays
            self._commit(txn, meta, scanning=True)
        except BaseException:
            self._rollback()
            raise
        maildir.clean_tmp(self.path)

    def _dir_mtimes(self, *, scanning: bool = False) -> dict[str, int]:
        """mtimes of new/ and cur/ to record. After a scan that saw an mtime younger than the
        clock-tick window, one more scan is asked for once the window has passed, so that a
        change by other software within the same tick is not missed."""
        result = {"new_mtime": 0, "cur_mtime": 0}
        for sub in ("new", "cur"):
            result[f"{sub}_mtime"] = os.stat(self.path / sub).st_mtime_ns
        if scanning:
            now = time.time_ns()
            young = now - max(result.values()) < _DIRTY_WINDOW_NS
            result["scan_after"] = now + _DIRTY_WINDOW_NS if young else 0
        return result

    def _dirs_changed(self, meta: dict[str, int]) -> bool:
        try:
            new = os.stat(self.path / "new").st_mtime_ns
            cur = os.stat(self.path / "cur").st_mtime_ns
        except FileNotFoundError:
            self._gone = True
            raise NoSuchFolder(self.name) from None
        if meta.get("new_mtime") != new or meta.get("cur_mtime") != cur:
            return True
        scan_after = meta.get("scan_after", 0)
        return bool(scan_after) and time.time_ns() >= scan_after

    def _check_alive(self) -> None:
        if self._gone:
            raise NoSuchFolder(self.name)

    # -- the change signal, \Recent marks and grouped flag commits ------------------------

    def _read_signal(self) -> bytes:
        """The change counter (eight bytes of the lock file; empty before the first bump)."""
        try:
            return os.pread(self._lockfd, 8, 0)
        except OSError:
            return b"?"  # cannot tell: treated as changed, so sync() asks the index

    def _signal_changed(self) -> None:
        """After a commit, under the flock: bump the counter so every other copy in memory
        (other processes', and sessions' cheap checks here) knows to look."""
        value = int.from_bytes(self._read_signal().ljust(8, b"\0")[:8], "little") + 1
        try:
            os.pwrite(self._lockfd, (value % 2**64).to_bytes(8, "little"), 0)
        except OSError:
            pass  # disk full: readers then find out at their next look at the files

    def _quiet(self) -> bool:
        """Whether nothing can have changed since the last pull: the counter is where it
        was, the index file is the one we opened, and new/ and cur/ have the mtimes the index
        recorded (no scan due). Three stats and a pread; no query."""
        if self._signal_seen is None or self._read_signal() != self._signal_seen:
            return False
        if self._index.replaced():
            return False
        new_mtime, cur_mtime, scan_after = self._dirs_seen or (None, None, None)
        try:
            new = os.stat(self.path / "new").st_mtime_ns
            cur = os.stat(self.path / "cur").st_mtime_ns
        except FileNotFoundError:
            return False
        if (new, cur) != (new_mtime, cur_mtime):
            return False
        return not scan_after or time.time_ns() < scan_after

    def _recent_mark(self) -> RecentMark:
        return self._mark_of(self._uidvalidity, self._uidnext)

    def _unclaimed(self, mark: RecentMark) -> set[int]:
        """UIDs in memory no session has claimed (caller holds the lock, memory loaded for
        an exact answer): those from the floor on, and until the first claim those below it
        that are still in new/ (one indexed query)."""
        msgs = self._msgs
        if msgs is None:
            return set()
        found = set()
        for uid in reversed(msgs):
            if uid < mark.floor:
                break
            found.add(uid)
        if not mark.before_claimed:
            rows = self._conn().execute(
                "SELECT uid FROM msgs WHERE sub = 'new' AND uid < ?", (mark.floor,)
            )
            found.update(uid for (uid,) in rows if uid in msgs)
        return found

    def _flush_later(self) -> None:
        """After a flag commit without fsync (caller holds the lock): make sure a group
        flush runs within FLAG_FLUSH_DELAY."""
        if self._flush_timer is None:
            # not a daemon: a process that exits (the CLI) still flushes before it ends
            timer = threading.Timer(FLAG_FLUSH_DELAY, self._flush_group)
            self._flush_timer = timer
            timer.start()

    def _flush_group(self) -> None:
        """Make every flag change committed so far durable: the renames (new/ and cur/)
        and the index's WAL, one fsync each for the whole group. SQLite's WAL replays every
        complete commit it holds, so syncing the file is what synchronous=FULL would have
        done commit by commit."""
        with self._lock:
            self._flush_timer = None
            if self._gone:
                return
        try:
            for sub in ("new", "cur"):
                maildir.fsync_dir(self.path / sub)
            fd = os.open(f"{self._index.path}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return  # checkpointed and removed: SQLite fsynced the index file itself
        except OSError:
            log.exception("could not flush flag changes in %s", self.path)
            return
        try:
            os.fsync(fd)
        except OSError:
            log.exception("could not flush flag changes in %s", self.path)
        finally:
            os.close(fd)

    def _conn(self) -> sqlite3.Connection:
        if self._index.conn is None:
            raise NoSuchFolder(self.name)
        return self._index.conn

    # -- transaction bodies (caller holds the write lock and an open transaction) ----------

    def _insert_row(
        self,
        txn: _Txn,
        key: str,
        sub: str,
        name: str,
        size: int,
        idate: float,
        letters: str,
        keywords: tuple[str, ...],
        *,
        uid: int | None = None,
    ) -> int:
        """Index a linked file under the next UID, or under `uid` (at least UIDNEXT: the
        caller checked), which becomes the new floor."""
        conn = self._conn()
        row = conn.execute("SELECT uid FROM msgs WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return int(row[0])
        if uid is not None:
            txn.uidnext = max(txn.uidnext, uid)
        uid = txn.uidnext
        txn.uidnext += 1
        conn.execute(
            "INSERT INTO msgs (uid, key, sub, name, size, idate, flags, keywords, modseq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (uid, key, sub, name, size, idate, letters, " ".join(keywords), txn.modseq),
        )
        txn.journal.append((uid, key))
        return uid

    def _rows(self, uids: list[int], columns: str) -> list[tuple]:
        conn = self._conn()
        rows: list[tuple] = []
        for i in range(0, len(uids), _CHUNK):
            chunk = uids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows.extend(conn.execute(f"SELECT {columns} FROM msgs WHERE uid IN ({marks})", chunk))
        rows.sort()
        return rows

    def _store_flags_txn(
        self,
        txn: _Txn,
        uids: list[int],
        letters: str,
        keywords: tuple[str, ...],
        mode: str,
        unchanged_since: int | None = None,
        modified: list[int] | None = None,
    ) -> list[MessageInfo]:
        if modified is None:
            modified = []
        result: list[MessageInfo] = []
        updates: list[tuple] = []
        lost = False
        for uid, key, sub, name, size, idate, old_letters, old_kw, old_modseq in self._rows(
            uids, "uid, key, sub, name, size, idate, flags, keywords, modseq"
        ):
            if unchanged_since is not None and old_modseq > unchanged_since:
                modified.append(uid)  # RFC 7162 3.1.3: changed since the client looked
                continue
            old_keywords = set(old_kw.split()) if old_kw else set()
            if mode == "add":
                new_letters = set(old_letters) | set(letters)
                new_keywords = old_keywords | set(keywords)
            elif mode == "remove":
                new_letters = set(old_letters) - set(letters)
                new_keywords = old_keywords - set(keywords)
            else:
                new_letters, new_keywords = set(letters), set(keywords)
            flags_text = "".join(sorted(new_letters))
            kw_text = " ".join(sorted(new_keywords))
            if flags_text != old_letters or kw_text != old_kw:
                new_sub, new_name = self._target_name(
                    key, flags_text, sorted(new_keywords), old_name=name, old_sub=sub
                )
                if (new_sub, new_name) != (sub, name):
                    try:
                        os.rename(self.path / sub / name, self.path / new_sub / new_name)
                    except FileNotFoundError:
                        lost = True  # renamed or removed by other software: rescan later
                        continue
                updates.append((new_sub, new_name, flags_text, kw_text, txn.modseq, uid))
            result.append(
                MessageInfo(
                    uid,
                    key,
                    size,
                    idate,
                    self._flagset(flags_text, kw_text),
                    txn.modseq if (flags_text, kw_text) != (old_letters, old_kw) else old_modseq,
                )
            )
        self._conn().executemany(
            "UPDATE msgs SET sub = ?, name = ?, flags = ?, keywords = ?, modseq = ? WHERE uid = ?",
            updates,
        )
        txn.dirty = txn.dirty or lost
        return result

    def _expunge_txn(self, txn: _Txn, uids: list[int]) -> list[int]:
        conn = self._conn()
        removed = []
        subs = set()
        for uid, sub, name in self._rows(uids, "uid, sub, name"):
            maildir.unlink_quietly(self.path / sub / name)
            removed.append(uid)
            subs.add(sub)
        if self._fsync:
            # an acknowledged expunge survives a crash: the unlinks are durable before the
            # index says so (a file back after a power loss would be a new message again)
            for sub in sorted(subs):
                maildir.fsync_dir(self.path / sub)
        params = [(uid,) for uid in removed]
        conn.executemany("DELETE FROM msgs WHERE uid = ?", params)
        conn.executemany("DELETE FROM cache WHERE uid = ?", params)
        conn.executemany(
            "INSERT OR REPLACE INTO expunged (uid, modseq) VALUES (?, ?)",
            [(uid, txn.modseq) for uid in removed],
        )
        self._after_expunges(txn, len(removed))
        return removed

    def _after_expunges(self, txn: _Txn, count: int) -> None:
        """Every thousand expunges: trim the expunge log and ask for journal compaction
        (counting rows on every expunge would cost more than the expunge itself)."""
        meta = self._index.meta()
        pending = meta.get("expunged_pending", 0) + count
        if pending >= _HOUSEKEEPING_EVERY:
            self._trim_expunge_log(txn)
            lines = meta.get("journal_lines", 0)
            live = self._conn().execute("SELECT count(*) FROM msgs").fetchone()[0]
            txn.compact = lines > 1000 and lines > 2 * live
            pending = 0
        self._index.set_meta(expunged_pending=pending)

    def _trim_expunge_log(self, txn: _Txn) -> None:
        conn = self._conn()
        count = conn.execute("SELECT count(*) FROM expunged").fetchone()[0]
        if count > 2 * _EXPUNGE_LOG_KEEP:
            floor = conn.execute(
                "SELECT modseq FROM expunged ORDER BY modseq DESC LIMIT 1 OFFSET ?",
                (_EXPUNGE_LOG_KEEP,),
            ).fetchone()[0]
            conn.execute("DELETE FROM expunged WHERE modseq <= ?", (floor,))
            self._index.set_meta(expunge_floor=floor)

    def _scan_txn(self, txn: _Txn, known: dict[str, int]) -> None:
        """Make the index match the files: drop rows of vanished files, follow renames,
        and give new files UIDs (from `known`, the journal, when rebuilding).

        One listing per directory and no stat but for files new to the index (for their
        internal date; the size comes from S= where the name has it); the flags of the few
        distinct info parts are worked out once each, and the rows go in by executemany.
        """
        conn = self._conn()
        indexed = {
            row[0]: row for row in conn.execute("SELECT key, uid, sub, name, keywords FROM msgs")
        }
        by_letter = self._keyword_map()
        # cur/ wins over a stale new/ copy of the same key
        found = {
            name.partition(":")[0]: ("new", name)
            for name in maildir.list_messages(self.path, "new")
        }
        found.update(
            (name.partition(":")[0], ("cur", name))
            for name in maildir.list_messages(self.path, "cur")
        )
        self._scans.check()
        gone = [(row[1],) for key, row in indexed.items() if key not in found]
        conn.executemany("DELETE FROM msgs WHERE uid = ?", gone)
        conn.executemany("DELETE FROM cache WHERE uid = ?", gone)
        conn.executemany(
            "INSERT OR REPLACE INTO expunged (uid, modseq) VALUES (?, ?)",
            [(uid, txn.modseq) for (uid,) in gone],
        )
        parsed: dict[str, tuple[str, str]] = {}  # info part -> (letters, lettered keywords)

        def flags_of(name: str, key: str) -> tuple[str, str]:
            info = name[len(key) + 1 :]
            found_flags = parsed.get(info)
            if found_flags is None:
                keywords = " ".join(sorted(set(_keywords_of(info, by_letter))))
                found_flags = parsed[info] = (letters_of(info), keywords)
            return found_flags

        moved = []
        fresh: dict[str, list[tuple[str, str]]] = {"cur": [], "new": []}
        for key, (sub, name) in found.items():
            row = indexed.get(key)
            if row is None:
                fresh[sub].append((key, name))
            elif (row[2], row[3]) != (sub, name):
                letters, lettered = flags_of(name, key)
                # Keywords with a letter follow the file name; the others only live here.
                unlettered = set(row[4].split()) - set(by_letter.values())
                keywords = " ".join(sorted(unlettered | set(lettered.split())))
                moved.append((sub, name, letters, keywords, txn.modseq, row[1]))
        conn.executemany(
            "UPDATE msgs SET sub = ?, name = ?, flags = ?, keywords = ?, modseq = ? WHERE uid = ?",
            moved,
        )
        added = []
        for sub, items in fresh.items():
            for start in range(0, len(items), _STAT_BATCH):
                self._scans.check()
                batch = items[start : start + _STAT_BATCH]
                stats = maildir.stat_files(self.path / sub, [name for _, name in batch])
                for (key, name), st in zip(batch, stats, strict=True):
                    if st is None:
                        continue  # gone since the listing
                    size = maildir.size_from_key(key)
                    added.append(
                        (st.st_mtime, key, sub, name, st.st_size if size is None else size)
                    )
        added.sort()
        self._scans.check()
        rows = []
        for mtime, key, sub, name, size in added:
            letters, keywords = flags_of(name, key)
            uid = known.get(key)
            if uid is None:
                uid = txn.uidnext
                txn.uidnext += 1
                txn.journal.append((uid, key))
            rows.append((uid, key, sub, name, size, mtime, letters, keywords, txn.modseq))
        conn.executemany(
            "INSERT INTO msgs (uid, key, sub, name, size, idate, flags, keywords, modseq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        txn.added = rows
        if gone:
            self._after_expunges(txn, len(gone))

    # -- file names and Dovecot's keyword letters ----------------------------------------

    def _target_name(
        self,
        key: str,
        letters: str,
        keywords: Iterable[str],
        *,
        old_name: str | None = None,
        old_sub: str | None = None,
    ) -> tuple[str, str]:
        """(subdir, file name) for a message with these flags (caller holds the write lock).

        Keywords get Dovecot's letters a-z from `dovecot-keywords` (new ones are assigned
        while letters last), so Dovecot sees them and a rebuilt index gets them back.
        Letters of keywords unknown to the file are kept as they are. A message without
        any letter stays in new/ only if it is new.
        """
        by_letter = self._keyword_map()
        by_keyword = {kw: letter for letter, kw in by_letter.items()}
        wanted = [kw for kw in keywords if kw not in by_keyword]
        free = [c for c in maildir.KEYWORD_LETTERS if c not in by_letter]
        if wanted and free:
            for kw, letter in zip(wanted, free, strict=False):
                by_letter[letter] = kw
                by_keyword[kw] = letter
            maildir.write_keywords(self.path, by_letter)
            self._keywords_cache = None
        extra = "".join(by_keyword[kw] for kw in keywords if kw in by_keyword)
        if old_name is not None:
            info = maildir.split_name(old_name)[1]
            if info.startswith("2,"):
                extra += "".join(c for c in info[2:] if c.islower() and c not in by_letter)
        if letters or extra or old_sub == "cur":
            return "cur", maildir.file_name(key, letters, "".join(sorted(set(extra))))
        return "new", key

    def _keyword_map(self) -> dict[str, str]:
        """letter -> keyword from `dovecot-keywords`, re-read when the file changes."""
        try:
            mtime = os.stat(self.path / maildir.KEYWORDS_FILE).st_mtime_ns
        except FileNotFoundError:
            return {}
        cached = self._keywords_cache
        if cached is None or cached[0] != mtime:
            cached = self._keywords_cache = (mtime, maildir.read_keywords(self.path))
        return dict(cached[1])

    # -- copying between folders -----------------------------------------------------------

    def _sources(self, uids: list[int]) -> list[tuple]:
        with self._lock:
            self._check_alive()
            with self._writing():
                self._ready_locked()
            return self._rows(uids, "uid, key, sub, name, size, idate, flags, keywords")

    def _import(self, source: Folder, rows: list[tuple]) -> tuple[list[tuple[int, int]], list]:
        """Link `source`'s files into this folder under new keys, durably."""

        def txn_fn(txn: _Txn) -> list[tuple[int, int]]:
            pairs = []
            touched = set()
            for src_uid, key, sub, name, size, idate, letters, keywords in rows:
                new_key = maildir.unique_key(size, wire=maildir.wire_from_key(key))
                kw = tuple(keywords.split()) if keywords else ()
                new_sub, new_name = self._target_name(new_key, letters, kw)
                target = self.path / new_sub / new_name
                try:
                    maildir.link_or_copy(source.path / sub / name, target, fsync=self._fsync)
                except FileNotFoundError:
                    # Renamed by a flag change since we looked; no folder lock is taken here,
                    # so two opposite copies cannot deadlock.
                    moved = maildir.find_key(source.path, key)
                    if moved is None:
                        continue  # expunged meanwhile
                    maildir.link_or_copy(moved, target, fsync=self._fsync)
                touched.add(new_sub)
                uid = self._insert_row(txn, new_key, new_sub, new_name, size, idate, letters, kw)
                headers.keep(self._conn(), uid, target)
                pairs.append((src_uid, uid))
            if self._fsync:
                for sub in touched:
                    maildir.fsync_dir(self.path / sub)
            return pairs

        return self._mutate(txn_fn, emit=False)

    # -- the in-memory copy ----------------------------------------------------------------

    def _uid_list(self, uids: Iterable[int]) -> list[int]:
        result = sorted({int(u) for u in uids})
        if len(result) > MAX_UIDS_PER_CALL:
            raise TooLarge("too many UIDs in one call")
        return result

    def _flagset(self, letters: str, keywords: str) -> frozenset[str]:
        cache_key = (letters, keywords)
        found = self._flagsets.get(cache_key)
        if found is None:
            names = [LETTER_FLAGS[c] for c in letters if c in LETTER_FLAGS]
            names.extend(keywords.split())
            found = self._flagsets[cache_key] = frozenset(names)
        return found

    def _take_meta(self, meta: dict[str, int]) -> None:
        self._uidvalidity = meta["uidvalidity"]
        self._uidnext = meta["uidnext"]
        self._dirs_seen = tuple(meta.get(k) for k in ("new_mtime", "cur_mtime", "scan_after"))

    def _ensure_loaded(self) -> None:
        self._check_alive()
        if self._msgs is None:
            with self._writing():
                self._ready_locked()
                self._load_locked()

    def _load_locked(self) -> None:
        """Make the copy in memory from the index, or take the one the rebuild made from
        the rows it wrote, if the index has not changed since."""
        self._signal_seen = self._read_signal()  # before meta, as in _pull_locked
        meta = self._index.meta()
        self._take_meta(meta)
        built, self._built = self._built, None
        if built is not None and built[:2] == (meta["uidvalidity"], meta["modseq"]):
            self._msgs = built[2]
        else:
            query = "SELECT uid, key, size, idate, flags, keywords, modseq FROM msgs ORDER BY uid"
            self._msgs = self._listing_of(self._conn().execute(query))
        self._modseq = meta["modseq"]

    def _listing_of(self, rows: Iterable[tuple[int, str, int, float, str, str, int]]) -> Listing:
        """The copy in memory of (uid, key, size, idate, flags, keywords, modseq) rows."""
        flagsets = self._flagsets
        flagset = self._flagset

        def entries() -> Iterator[tuple[int, str, int, float, frozenset[str], int]]:
            for uid, key, size, idate, letters, keywords, modseq in rows:
                flags = flagsets.get((letters, keywords)) or flagset(letters, keywords)
                yield uid, key, size, idate, flags, modseq

        return Listing.from_rows(entries())

    def _pull_locked(self) -> list[Change]:
        """Bring memory up to the index's modseq; return what changed."""
        self._signal_seen = self._read_signal()  # before meta: a later bump is seen again
        meta = self._index.meta()
        old_uidvalidity = self._uidvalidity
        self._take_meta(meta)
        if self._msgs is None:
            self._modseq = meta["modseq"]
            return []
        if meta["modseq"] == self._modseq:
            return []
        if meta["uidvalidity"] != old_uidvalidity:
            self._load_locked()
            return [Change("uidvalidity", self.name, ())]
        if self._modseq < meta.get("expunge_floor", 0) or self._modseq < 0:
            return self._reload_and_diff()
        since = self._modseq
        conn = self._conn()
        # Sorted here, not by SQL: "ORDER BY uid" makes SQLite walk the whole table in UID
        # order instead of using the modseq index, which costs milliseconds per change on a
        # 100,000-message folder.
        rows = sorted(
            conn.execute(
                "SELECT uid, key, size, idate, flags, keywords, modseq FROM msgs WHERE modseq > ?",
                (since,),
            ).fetchall()
        )
        gone = [
            uid
            for (uid,) in conn.execute("SELECT uid FROM expunged WHERE modseq > ?", (since,))
            if uid in self._msgs
        ]
        msgs = self._msgs
        msgs.discard_many(gone)
        new, flagged = [], []
        for uid, key, size, idate, letters, keywords, modseq in rows:
            info = MessageInfo(uid, key, size, idate, self._flagset(letters, keywords), modseq)
            old = msgs.get(uid)
            if old is None:
                new.append(uid)
            elif old.flags != info.flags:
                flagged.append(uid)
            msgs[uid] = info
        self._modseq = meta["modseq"]
        changes = []
        if gone:
            changes.append(Change("expunge", self.name, tuple(sorted(gone))))
        if new:
            changes.append(Change("new", self.name, tuple(new)))
        if flagged:
            changes.append(Change("flags", self.name, tuple(flagged)))
        return changes

    def _reload_and_diff(self) -> list[Change]:
        old = self._msgs or {}
        self._load_locked()
        assert self._msgs is not None
        gone = tuple(uid for uid in old if uid not in self._msgs)
        new = tuple(uid for uid in self._msgs if uid not in old)
        flagged = tuple(
            uid for uid, m in self._msgs.items() if uid in old and old[uid].flags != m.flags
        )
        changes = []
        for kind, uids in (("expunge", gone), ("new", new), ("flags", flagged)):
            if uids:
                changes.append(Change(kind, self.name, uids))
        return changes
