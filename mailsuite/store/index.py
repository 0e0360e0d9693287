"""The per-folder index: one SQLite file (WAL) plus a plain-text UID journal.

The index maps each message key to its IMAP UID and keeps size, internal date, flags,
keywords and cached protocol blobs, so that opening a folder of 100,000 messages reads one
table instead of 100,000 directory entries. It is a cache of the files with one exception:
UIDs. Those are also appended to the journal (`mailsuite-uids`), so when the SQLite file is
lost or damaged it is rebuilt from the files with the same UIDs and the same UIDVALIDITY.

Every change bumps `modseq` in `meta` and stamps the rows it touched; expunged UIDs are
kept in `expunged` with their modseq. A reader that remembers the last modseq it saw can
pick up another process's changes with two indexed queries.

Callers hold the folder's lock (see folder.py); this module does no locking of its own.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .maildir import INDEX_FILE, JOURNAL_FILE

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE msgs (
    uid INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    sub TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    idate REAL NOT NULL,
    flags TEXT NOT NULL,
    keywords TEXT NOT NULL,
    modseq INTEGER NOT NULL
);
CREATE INDEX msgs_modseq ON msgs(modseq);
CREATE INDEX msgs_new ON msgs(sub) WHERE sub = 'new';
CREATE TABLE expunged (uid INTEGER PRIMARY KEY, modseq INTEGER NOT NULL);
CREATE INDEX expunged_modseq ON expunged(modseq);
CREATE TABLE cache (
    uid INTEGER NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (uid, name)
) WITHOUT ROWID;
"""
_JOURNAL_MAGIC = "mailsuite-uids 1"
# The folder's running totals (RFC 9208 MESSAGE and STORAGE usage) are kept by triggers, so
# every path that adds or removes a row (delivery, APPEND, COPY, EXPUNGE, a rescan, a
# rebuild) keeps them right in the same transaction, and reading them costs one meta row.
_TOTALS = (
    "CREATE TRIGGER IF NOT EXISTS msgs_total_add AFTER INSERT ON msgs BEGIN"
    " INSERT INTO meta (k, v) VALUES ('total_messages', 1)"
    " ON CONFLICT(k) DO UPDATE SET v = v + 1;"
    " INSERT INTO meta (k, v) VALUES ('total_bytes', new.size)"
    " ON CONFLICT(k) DO UPDATE SET v = v + new.size; END",
    "CREATE TRIGGER IF NOT EXISTS msgs_total_remove AFTER DELETE ON msgs BEGIN"
    " UPDATE meta SET v = v - 1 WHERE k = 'total_messages';"
    " UPDATE meta SET v = v - old.size WHERE k = 'total_bytes'; END",
)


class IndexDamaged(Exception):
    """The SQLite file is not an index we can use; it has to be rebuilt."""


class FolderIndex:
    """The SQLite connection and journal of one folder directory."""

    def __init__(self, folder_dir: Path, *, fsync: bool) -> None:
        self.dir = folder_dir
        self.path = folder_dir / INDEX_FILE
        self.journal_path = folder_dir / JOURNAL_FILE
        self.fsync = fsync
        self.conn: sqlite3.Connection | None = None
        self.inode: int | None = None

    # -- the SQLite file -------------------------------------------------------------------

    def open(self) -> None:
        """Open (creating the schema if the file is new); raise on a damaged file."""
        self.close()
        # Created owner-only before SQLite sees it: its -wal and -shm copy this mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=60.0
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                        for statement in _SCHEMA.split(";"):
                            if statement.strip():
                                conn.execute(statement)
                        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            elif version != SCHEMA_VERSION:
                raise IndexDamaged(f"unknown index version {version}")
            self._ensure_totals(conn)
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        self.inode = os.stat(self.path).st_ino

    @staticmethod
    def _ensure_totals(conn: sqlite3.Connection) -> None:
        """Install the running-total triggers; an index made before them is counted once."""
        if conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'msgs_total_remove'"
        ).fetchone():
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'msgs_total_remove'"
            ).fetchone():
                count, size = conn.execute(
                    "SELECT count(*), coalesce(sum(size), 0) FROM msgs"
                ).fetchone()
                conn.executemany(
                    "INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)",
                    [("total_messages", count), ("total_bytes", size)],
                )
                for statement in _TOTALS:
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def totals_counted_once(self) -> Iterator[None]:
        """Inside the transaction of a rebuild: the per-row total trigger is set aside while
        every row goes in and the totals are counted once at the end (the trigger's two meta
        upserts per row cost more than the insert itself). Dropping it is part of the
        transaction, so a rollback brings it back."""
        assert self.conn is not None
        self.conn.execute("DROP TRIGGER IF EXISTS msgs_total_add")
        yield
        count, size = self.conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM msgs"
        ).fetchone()
        self.set_meta(total_messages=count, total_bytes=size)
        self.conn.execute(_TOTALS[0])

    def totals(self) -> tuple[int, int]:
        """(messages, octets) in the folder, from the running totals."""
        assert self.conn is not None
        meta = dict(
            self.conn.execute(
                "SELECT k, v FROM meta WHERE k IN ('total_messages', 'total_bytes')"
            ).fetchall()
        )
        return meta.get("total_messages", 0), meta.get("total_bytes", 0)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass
        self.conn = None
        self.inode = None

    def replaced(self) -> bool:
        """Whether another process rebuilt (or someone removed) the file since we opened it."""
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return True

    def healthy(self) -> bool:
        """A full consistency check, used only when recovering from an error."""
        assert self.conn is not None
        try:
            row = self.conn.execute("PRAGMA quick_check").fetchone()
            return row is not None and row[0] == "ok"
        except sqlite3.DatabaseError:
            return False

    def discard(self) -> None:
        """Remove the file and its WAL so that the next open starts empty."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass

    def meta(self) -> dict[str, int]:
        assert self.conn is not None
        return dict(self.conn.execute("SELECT k, v FROM meta").fetchall())

    def set_meta(self, **values: int) -> None:
        assert self.conn is not None
        self.conn.executemany(
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            list(values.items()),
        )

    def set_durable(self, durable: bool) -> None:
        """Choose whether the next commits fsync (cache writes need not)."""
        assert self.conn is not None
        level = "FULL" if durable and self.fsync else "NORMAL"
        self.conn.execute(f"PRAGMA synchronous={level}")

    # -- the UID journal -------------------------------------------------------------------

    def journal_read(self) -> tuple[int | None, int, dict[str, int]]:
        """(uidvalidity, uidnext, key -> uid) from the journal; (None, 1, {}) if unusable.

        A torn last line (crash while appending) is ignored; every complete line counts.
        """
        try:
            text = self.journal_path.read_text("ascii", errors="replace")
        except FileNotFoundError:
            return None, 1, {}
        lines = text.split("\n")
        head = lines[0].split(" ")
        if " ".join(head[:2]) != _JOURNAL_MAGIC or len(head) != 4:
            return None, 1, {}
        try:
            uidvalidity = int(head[2].removeprefix("V"))
            uidnext = int(head[3].removeprefix("N"))
        except ValueError:
            return None, 1, {}
        known: dict[str, int] = {}
        used: set[int] = set()
        for line in lines[1:-1]:  # the last element follows the final newline
            uid_text, _, key = line.partition(" ")
            if not uid_text.isdigit() or not key or " " in key:
                continue
            uid = int(uid_text)
            if uid in used or key in known or uid <= 0:
                continue
            known[key] = uid
            used.add(uid)
            uidnext = max(uidnext, uid + 1)
        return uidvalidity, uidnext, known

    def journal_append(self, pairs: list[tuple[int, str]]) -> None:
        """Append `uid key` lines (one write); start a new journal if there is none."""
        if not pairs:
            return
        data = "".join(f"{uid} {key}\n" for uid, key in pairs).encode("ascii")
        try:
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            self.journal_rewrite()
            return
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def journal_rewrite(self, rows: list[tuple[int, str]] | None = None) -> int:
        """Write the journal afresh from the index, or from `rows` (every (uid, key) of
        the index, by UID, when the caller has them), atomically; return its line count."""
        assert self.conn is not None
        meta = self.meta()
        if rows is None:
            rows = self.conn.execute("SELECT uid, key FROM msgs ORDER BY uid").fetchall()
        head = f"{_JOURNAL_MAGIC} V{meta['uidvalidity']} N{meta['uidnext']}\n"
        tmp = self.dir / "tmp" / f"{JOURNAL_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="ascii") as out:
            out.write(head)
            out.writelines(f"{uid} {key}\n" for uid, key in rows)
            if self.fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, self.journal_path)
        return len(rows)
