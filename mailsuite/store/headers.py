"""Each message's header block, kept in the folder index's per-message cache.

Webmail clients sort by fetching one header field of every message, and search headers on
the server; answering those from the message files reads every file whole. So the header
block (the fields and the blank line after them, exactly as stored) is put in the cache
when a message arrives (delivery, APPEND, COPY, in the same transaction as its index row)
and, for messages found by a scan, the first time someone asks, reading only up to the end
of the header. Header fetches, ENVELOPE, sort keys and header searches read it from there;
the body is never read for them.

A message file never changes under its UID (Maildir files are written once), so a kept
block stays right until the message is expunged, which drops it with the rest of its cache.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from .errors import NoSuchMessage, StoreError

CACHE_NAME = "header1"  # the cache entry; bump if what is kept changes
MAX_BLOCK = 1 << 20  # larger header blocks are not kept (the cache's blob limit)
_READ = 16 << 10  # bytes read per step while looking for the end of a header


def block_end(data: bytes, start: int = 0) -> int | None:
    """Where the header block of `data` ends (after its blank line), or None when no blank
    line ends it in `data`: the same boundary the IMAP parser draws for the message's own
    header, the first line that is empty (CRLF or a bare LF). `start` skips bytes known to
    hold no end (a few before it are looked at again, for an end across the seam)."""
    if start == 0:
        if data[:1] == b"\n":
            return 1
        if data[:2] == b"\r\n":
            return 2
    start = max(0, start - 3)
    ends = [i for i in (data.find(b"\n\n", start), data.find(b"\n\r\n", start)) if i >= 0]
    if not ends:
        return None
    first = min(ends)
    return first + (2 if data[first + 1 : first + 2] == b"\n" else 3)


def block_of(data: bytes) -> bytes:
    """The header block of a whole message (all of it when no blank line ends the header)."""
    end = block_end(data)
    return data if end is None else data[:end]


def read_block(f: BinaryIO) -> bytes:
    """The header block of the message in `f`, read a few KB at a time and no further than
    its end (or the end of the file)."""
    buf = b""
    while True:
        chunk = f.read(_READ)
        if not chunk:
            return buf
        seen = len(buf)
        buf += chunk
        end = block_end(buf, seen)
        if end is not None:
            return buf[:end]
        if len(buf) > MAX_BLOCK:
            return buf + f.read()  # no blank line in sight: the header is the whole file


def keep(conn: sqlite3.Connection, uid: int, path: Path) -> None:
    """Put the header block of the file just linked as `uid` in the cache, inside the
    caller's write transaction (the file is in the page cache: it was just written)."""
    try:
        with open(path, "rb") as f:
            block = read_block(f)
    except OSError:
        return  # read on first use instead
    if len(block) <= MAX_BLOCK:
        conn.execute(
            "INSERT OR REPLACE INTO cache (uid, name, value) VALUES (?, ?, ?)",
            (uid, CACHE_NAME, block),
        )


class _Folder(Protocol):
    def cache_get_many(self, uids: Sequence[int], name: str) -> dict[int, bytes]: ...
    def cache_put_many(self, name: str, items: Sequence[tuple[int, bytes]]) -> None: ...
    def read(self, uid: int, *, head: bool = False) -> bytes: ...


def blocks(folder: _Folder, uids: Sequence[int]) -> dict[int, bytes]:
    """The header blocks of `uids` (those still in the folder): from the cache, else read
    from the head of the file and kept. Blocking; run off the loop."""
    out = folder.cache_get_many(uids, CACHE_NAME)
    new: list[tuple[int, bytes]] = []
    for uid in uids:
        if uid in out:
            continue
        try:
            out[uid] = block = folder.read(uid, head=True)
        except NoSuchMessage:
            continue  # expunged meanwhile: its EXPUNGE reaches the client later
        new.append((uid, block))
    if new:
        try:
            folder.cache_put_many(CACHE_NAME, new)
        except StoreError:
            pass  # the folder went away: read again next time
    return out
