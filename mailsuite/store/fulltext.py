"""A full-text index of each folder's messages, for SEARCH BODY and SEARCH TEXT.

RFC 3501 6.4.4 asks for a case-insensitive substring match; scanning every file for it took
seconds on a few thousand messages and held a core. So each folder gets a SQLite FTS5 table
(`mailsuite-fts.sqlite` beside its index, a cache like the index: it can always be rebuilt)
with the `trigram` tokenizer, which answers substring queries of three characters or more
exactly: a phrase of trigrams is found only where the whole string occurs.

What is matched is the text as a reader sees it, "folded": case folded (str.casefold),
compatibility-decomposed with the diacritics dropped, so `zolw`, `ŻÓŁW` and `żółw` all find
"Żółw" (Polish letters included; ł has no decomposition and is mapped to l). Both the index
and the scan that answers while an index is being built use `fold`, `head_text` and
`body_text` below, so either way the answer is the same. BODY is the decoded text of the
message's text parts (transfer encoding and charset undone; attachments are not text);
TEXT is that and the decoded header.

The index knows which messages it holds by a high-water UID (UIDs only grow) and which
expunges it has seen by a modseq, so it catches up with any writer, this process or
another, the next time it is asked: a search first indexes what arrived since (a delivery
or two) and drops what was expunged, then queries. A folder with many messages not yet
indexed is indexed by a background thread of `Indexer`, a batch at a time, while searches
go on answering by the scan.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
import logging
import os
import re
import sqlite3
import threading
import unicodedata
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mailsuite.message.words import decode_words

from . import headers
from .errors import NoSuchFolder, NoSuchMessage, StoreError

log = logging.getLogger("mailsuite.store")

FILE = "mailsuite-fts.sqlite"
BATCH = 100  # messages indexed per transaction
BUILD_STEP = 500  # messages the background build indexes between two looks at the folder
INLINE_LIMIT = 300  # a search indexes up to this many new messages itself before answering
MIN_MATCH = 3  # shorter strings cannot be asked of trigrams; they are looked for in SQL
_SCHEMA = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5("
    "head, body, tokenize='trigram case_sensitive 1')",
    "CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID",
)
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
# letters with a stroke have no decomposition; NUL cannot reach SQLite's tokenizer
_UNSTROKE = (("ł", "l"), ("đ", "d"), ("ø", "o"), ("ħ", "h"), ("ŧ", "t"), ("\0", " "))
COLUMNS = {"BODY": "body", "TEXT": "{head body}"}


def fold(text: str) -> str:
    """`text` as SEARCH compares it: case folded, diacritics dropped."""
    if text.isascii():
        return text.lower().replace("\0", " ")
    bare = _COMBINING.sub("", unicodedata.normalize("NFKD", text.casefold()))
    for letter, plain in _UNSTROKE:
        if letter in bare:
            bare = bare.replace(letter, plain)
    return bare


def head_text(block: bytes) -> str:
    """The header block as TEXT searches it, folded."""
    return fold(decode_words(block))


_CONTENT_FIELD = re.compile(rb"(?im)^content-(type|transfer-encoding)[ \t]*:(.*(?:\r?\n[ \t].*)*)")
_PLAIN_TYPE = re.compile(rb'(?i)\s*text/plain\s*(?:;\s*charset\s*=\s*"?([a-z0-9_.:-]+)"?\s*)?;?\s*')
_PLAIN_ENCODING = re.compile(rb"(?i)\s*(?:7bit|8bit|binary)\s*")


def _plain_charset(block: bytes) -> str | None:
    """The charset of a message that is one text/plain part not transfer-encoded (most
    mail), whose body is then its text as it stands; None for anything else."""
    seen: dict[bytes, bytes] = {}
    for match in _CONTENT_FIELD.finditer(block):
        name = match.group(1).lower()
        if name in seen:
            return None  # repeated: left to the full reading
        seen[name] = match.group(2)
    ctype = seen.get(b"type")
    charset = "utf-8"
    if ctype is not None:
        plain = _PLAIN_TYPE.fullmatch(ctype)
        if plain is None:
            return None
        if plain.group(1):
            charset = plain.group(1).decode("ascii").lower()
    cte = seen.get(b"transfer-encoding")
    if cte is not None and _PLAIN_ENCODING.fullmatch(cte) is None:
        return None
    return "utf-8" if charset in ("us-ascii", "ascii") else charset


def body_text(data: bytes) -> str:
    """The message's text parts decoded, as BODY and TEXT search them, folded. A part that
    names no charset, or US-ASCII, is read as UTF-8 (its superset, and what 8-bit mail
    without a charset mostly is); bytes a charset cannot decode become U+FFFD."""
    block = headers.block_of(data)
    charset = _plain_charset(block) if len(block) < len(data) else None
    if charset is not None:
        try:
            return fold(data[len(block) :].decode(charset, "replace"))
        except LookupError:
            pass  # an unknown charset: the full reading says what to do
    chunks = []
    try:
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        for part in msg.walk():
            if part.get_content_maintype() != "text":
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            charset = part.get_content_charset() or "utf-8"
            if charset in ("us-ascii", "ascii"):
                charset = "utf-8"
            try:
                chunks.append(payload.decode(charset, "replace"))
            except LookupError:
                chunks.append(payload.decode("utf-8", "replace"))
    except (LookupError, ValueError, TypeError, AttributeError, IndexError):
        pass  # a message the parser cannot walk has no text it can show either
    return fold("\n".join(chunks))


def _phrase(needle: str) -> str:
    return '"' + needle.replace('"', '""') + '"'


class FullText:
    """The FTS5 file of one folder directory. Thread-safe; every call is blocking."""

    def __init__(self, folder_dir: Path) -> None:
        self.path = folder_dir / FILE
        self._conn: sqlite3.Connection | None = None
        self.lock = threading.RLock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=60.0
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # a cache: never worth an fsync
                for statement in _SCHEMA:
                    conn.execute(statement)
            except sqlite3.DatabaseError:
                conn.close()
                self._discard()
                raise
            self._conn = conn
        return self._conn

    def _discard(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def state(self) -> dict[str, int]:
        with self.lock:
            return dict(self._db().execute("SELECT k, v FROM state").fetchall())

    def _set(self, **values: int) -> None:
        self._db().executemany(
            "INSERT OR REPLACE INTO state (k, v) VALUES (?, ?)", list(values.items())
        )

    def reset(self, uidvalidity: int, modseq: int) -> None:
        """Start empty for a folder whose UIDs are `uidvalidity`'s, as of `modseq`."""
        with self.lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM docs")
            conn.execute("DELETE FROM state")
            self._set(uidvalidity=uidvalidity, through=0, modseq=modseq)
            conn.execute("COMMIT")

    def add(self, rows: Sequence[tuple[int, str, str]], through: int) -> None:
        """Index (uid, head text, body text) rows; every UID up to `through` is now done."""
        with self.lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM docs WHERE rowid = ?", [(r[0],) for r in rows])
                conn.executemany("INSERT INTO docs (rowid, head, body) VALUES (?, ?, ?)", rows)
                self._set(through=through)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def forget(self, uids: Iterable[int], modseq: int) -> None:
        """Drop expunged messages; expunges up to `modseq` are now accounted for."""
        with self.lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM docs WHERE rowid = ?", [(u,) for u in uids])
            self._set(modseq=modseq)
            conn.execute("COMMIT")

    def uids(self) -> set[int]:
        with self.lock:
            return {uid for (uid,) in self._db().execute("SELECT rowid FROM docs")}

    def match(self, kind: str, needle: str) -> set[int]:
        """UIDs whose BODY or TEXT (`kind`) holds `needle` (already folded)."""
        args: tuple[str, ...] = (needle,)
        if not needle:
            query, args = "SELECT rowid FROM docs", ()
        elif len(needle) >= MIN_MATCH:
            query = "SELECT rowid FROM docs WHERE docs MATCH ?"
            args = (f"{COLUMNS[kind]} : {_phrase(needle)}",)
        elif kind == "BODY":
            query = "SELECT rowid FROM docs WHERE instr(body, ?) > 0"
        else:
            query = "SELECT rowid FROM docs WHERE instr(head, ?) > 0 OR instr(body, ?) > 0"
            args = (needle, needle)
        with self.lock:
            return {uid for (uid,) in self._db().execute(query, args)}


def forget_now(folder_dir: Path, uids: Sequence[int]) -> None:
    """Drop expunged messages from the folder's index file, if it has one, right away, so
    that their text does not wait there for the next search (which would drop it too: the
    index also follows expunges by modseq, for those of other programs). Best effort."""
    path = folder_dir / FILE
    if not uids or not path.exists():
        return
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM docs WHERE rowid = ?", [(u,) for u in uids])
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("could not drop expunged messages from %s: %s", path, exc)


def texts_of(data: bytes) -> tuple[str, str]:
    """(head text, body text) of a whole message, as the index keeps them."""
    return head_text(headers.block_of(data)), body_text(data)


def catch_up(
    folder: Any,
    index: FullText,
    uids: Sequence[int],
    limit: int | None,
    stop: Callable[[], bool] = lambda: False,
) -> bool:
    """Bring `index` up to `folder`, whose messages are `uids` (ascending): drop expunged
    messages, then index new ones, at most `limit` of them (None: all) when more wait.
    Returns whether the index now holds every message of `uids`; `stop` is asked between
    two batches whether to give up (shutdown)."""
    with index.lock:
        top = folder.highest_modseq()
        state = index.state()
        if state.get("uidvalidity") != folder.uidvalidity:
            index.reset(folder.uidvalidity, top)
            state = index.state()
        if state["modseq"] != top:
            gone = folder.vanished_since(state["modseq"])
            if gone is None:  # the expunge log does not reach back: compare everything
                present = set(uids)
                gone = [uid for uid in index.uids() if uid not in present]
            index.forget(gone, top)
        through = state["through"]
    pending = uids[_first_above(uids, through) :]
    if limit is not None and len(pending) > limit:
        return False
    for start in range(0, len(pending), BATCH):
        if stop():
            return False
        batch = pending[start : start + BATCH]
        rows, blocks = [], []
        for uid in batch:
            try:
                data = folder.read(uid)
            except NoSuchMessage:
                continue  # expunged meanwhile
            block = headers.block_of(data)
            rows.append((uid, head_text(block), body_text(data)))
            if len(block) <= headers.MAX_BLOCK:
                blocks.append((uid, block))
        index.add(rows, batch[-1])
        if blocks:
            folder.cache_put_many(headers.CACHE_NAME, blocks)  # the scan's header blocks
    return True


def _first_above(uids: Sequence[int], through: int) -> int:
    lo, hi = 0, len(uids)
    while lo < hi:
        mid = (lo + hi) // 2
        if uids[mid] <= through:
            lo = mid + 1
        else:
            hi = mid
    return lo


class Indexer:
    """The full-text indexes of the folders a server has open (weakly, by Folder), and one
    background thread that builds those a search found far behind. Stopped by `close`,
    between two batches."""

    def __init__(self) -> None:
        self._indexes: weakref.WeakKeyDictionary[Any, FullText] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._wanted: list[weakref.ref[Any]] = []
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.building = 0  # folders being built right now (for tests and metrics)

    def index_of(self, folder: Any) -> FullText:
        with self._lock:
            found = self._indexes.get(folder)
            if found is None:
                found = self._indexes[folder] = FullText(folder.path)
            return found

    def lookup(
        self, folder: Any, uids: Sequence[int], queries: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], set[int]] | None:
        """UIDs matching each (BODY or TEXT, folded string), or None when the folder's index
        is too far behind to answer now (it is then built in the background). Blocking."""
        index = self.index_of(folder)
        try:
            if not catch_up(folder, index, uids, INLINE_LIMIT):
                self._build_soon(folder)
                return None
            return {q: index.match(*q) for q in set(queries)}
        except (sqlite3.Error, OSError) as exc:
            log.warning(
                "full-text index of %s unusable (%s); searching the files", folder.path, exc
            )
            index.close()
            return None

    def _build_soon(self, folder: Any) -> None:
        with self._lock:
            if self._stopping:
                return
            if not any(ref() is folder for ref in self._wanted):
                self._wanted.append(weakref.ref(folder))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mailsuite-fulltext", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._wanted and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                folder = self._wanted.pop(0)()
                self.building += 1
            try:
                if folder is not None:
                    self._build(folder)
            except (StoreError, NoSuchFolder, sqlite3.Error, OSError):
                log.exception("building the full-text index of a folder failed")
            finally:
                with self._lock:
                    self.building -= 1

    def _build(self, folder: Any) -> None:
        """Index the folder a step at a time, so that a search or shutdown never waits long
        and messages that arrive meanwhile are included."""
        index = self.index_of(folder)
        while not self._stopping:
            folder.sync()
            uids = [m.uid for m in folder.messages()]
            start = _first_above(uids, index.state().get("through", 0))
            catch_up(folder, index, uids[: start + BUILD_STEP], None, lambda: self._stopping)
            if start + BUILD_STEP >= len(uids):
                return

    def pending(self) -> bool:
        """Whether a build is queued or running."""
        with self._lock:
            return bool(self._wanted) or self.building > 0

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        with self._lock:
            indexes = list(self._indexes.values())
            self._indexes.clear()
        for index in indexes:
            index.close()
