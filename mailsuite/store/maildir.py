"""Maildir++ on disk: file names, writing, linking and scanning.

The store owns everything under the `maildirs:` root and nothing else; no other package
builds a path below it. One user's Maildir, as Dovecot would read it::

    <root>/
      example.org/                      domain, lower case
        alice/                          local part, lower case = the user's Maildir = INBOX
          cur/ new/ tmp/                INBOX messages (Maildir)
          subscriptions                 subscribed folders, one Maildir++ name per line
          mailsuite-uidvalidity         last UIDVALIDITY handed out in this mailbox
          mailsuite-mailbox.lock        flock() while folders are created, renamed, deleted
          mailsuite-index.sqlite        INBOX index (+ -wal, -shm): UIDs, flags, cache
          mailsuite-uids                INBOX UID journal "uid key" (rebuilds keep UIDs)
          mailsuite.lock                flock() held by every writer of INBOX
          dovecot-keywords              keyword letters a-z in file names, as Dovecot has them
          .Sent/                        folder "Sent": cur/ new/ tmp/ maildirfolder + the
          .Archive.2026/                  same mailsuite-* files; "Archive/2026" in the API
          .&AMk-t&AOk-/                 "Été" (names are modified UTF-7 on disk)

A message file is `<key>` in new/ or `<key>:2,<letters>` in cur/, where the key is
`<sec>.M<usec>P<pid>Q<counter>.<host>,S=<size>,W=<wire size>`, W= being the size with every
line end CRLF (what POP3 LIST reports and RETR sends; Dovecot's "virtual size" in the same
place), so that no file is read to learn it; letters D F R S T are \\Draft \\Flagged
\\Answered \\Seen \\Deleted, and a-z are keywords numbered in `dovecot-keywords` (the first
26; further keywords live in the index only). The key is the POP3 UIDL and is mapped to the
IMAP UID by the index, so both survive flag changes. Files in tmp/ are never messages;
leftovers older than 36 hours are removed, as the Maildir specification asks of readers.

This module never touches the index or anything outside one Maildir; it knows names, bytes
and fsync.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

TMP_MAX_AGE = 36 * 3600  # seconds; cr.yp.to/proto/maildir.html
SUBDIRS = ("cur", "new", "tmp")
INDEX_FILE = "mailsuite-index.sqlite"
JOURNAL_FILE = "mailsuite-uids"
LOCK_FILE = "mailsuite.lock"
MAILBOX_LOCK_FILE = "mailsuite-mailbox.lock"
UIDVALIDITY_FILE = "mailsuite-uidvalidity"
SUBSCRIPTIONS_FILE = "subscriptions"
KEYWORDS_FILE = "dovecot-keywords"  # Dovecot's "<n> <keyword>" lines; n = 0.. is letter a..
KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"
FOLDER_MARKER = "maildirfolder"  # Maildir++: present in every folder but INBOX

# A name we show: printable US-ASCII without "/" and not starting with "." (no hidden files,
# no "." or ".."), at most 240 characters. One regex, because a scan checks 100,000 names.
_MESSAGE_NAME = re.compile(r"[!-\-0-~][!-.0-~]{0,239}")
# The S= field of a key; the host part cannot hold a "," (it is written as \054).
_SIZE_FIELD = re.compile(r",S=([0-9]+)(?:,|$)")

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def _hostname() -> str:
    # Maildir: "/" and ":" in the host part are written as octal escapes.
    host = socket.gethostname() or "localhost"
    return host.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


_HOST = _hostname()


def unique_key(size: int, now: float | None = None, *, wire: int | None = None) -> str:
    """A new key `<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>[,W=<wire>]`, unique on this host.

    The counter makes it unique within the process, the pid across processes, the time
    across pid reuse. `wire` is the message's `wire_size`, recorded when known.
    """
    now = time.time() if now is None else now
    with _counter_lock:
        n = next(_counter)
    sec = int(now)
    usec = int((now - sec) * 1_000_000)
    key = f"{sec}.M{usec}P{os.getpid()}Q{n}.{_HOST},S={size}"
    return key if wire is None else f"{key},W={wire}"


def file_name(key: str, letters: str, extra: str = "") -> str:
    """The name of a message in cur/: key, `:2,` and the info letters in ASCII order."""
    return f"{key}:2,{''.join(sorted(letters + extra))}"


def split_name(name: str) -> tuple[str, str]:
    """(key, info) of a message file name; info is what follows the first `:`."""
    key, _, info = name.partition(":")
    return key, info


def size_from_key(key: str) -> int | None:
    """The S= size recorded in a key, so that no stat is needed; None when absent. Other
    fields (Dovecot's W=) may come before or after it."""
    found = _SIZE_FIELD.search(key)
    return None if found is None else int(found.group(1))


def wire_from_key(key: str) -> int | None:
    """The W= wire size recorded in a key (ours, Dovecot's); None when absent. W= is the last
    field in the names we and Dovecot write, which is the fast case: a login asks for
    every message's."""
    _, found, rest = key.rpartition(",W=")
    if not found:
        return None
    digits = rest if rest.isdigit() else rest.partition(",")[0]
    return int(digits) if digits.isdigit() and digits.isascii() else None


def wire_size(data: bytes) -> int:
    """Octets of the message with every line end (CRLF, bare LF, bare CR) written as CRLF and
    a CRLF at the end: what POP3 RETR sends before dot-stuffing and LIST reports (RFC 1939
    5), the W= of the file name. Counted, not converted: SMTP data is CRLF already, and
    this costs three byte counts."""
    crlf = data.count(b"\r\n")
    size = len(data) + (data.count(b"\n") - crlf) + (data.count(b"\r") - crlf)
    if data and data[-1] not in (0x0A, 0x0D):
        size += 2
    return size


def is_message_name(name: str) -> bool:
    """Whether a directory entry in new/ or cur/ can be a message we show."""
    return _MESSAGE_NAME.fullmatch(name) is not None


def fsync_dir(path: Path) -> None:
    """Make a directory entry change durable (a new link, rename or unlink in `path`)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_tmp(tmp_dir: Path, data: bytes, *, fsync: bool, mtime: float | None) -> tuple[Path, str]:
    """Write `data` to a new file in tmp/; return its path and the message key.

    The file is fsynced (when asked) before this returns, and its mtime is set to the
    internal date, which is where Maildir readers take the received date from.
    """
    key = unique_key(len(data), wire=wire_size(data))
    path = tmp_dir / key
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(path)
        raise
    os.close(fd)
    if mtime is not None:
        # atime stays "now": clean_tmp() must not take a back-dated message for a leftover.
        os.utime(path, (time.time(), mtime))
    return path, key


def link_or_copy(src: Path, dst: Path, *, fsync: bool) -> None:
    """Give `src` the name `dst` (a hard link; a fsynced copy across filesystems).

    Raises FileExistsError if `dst` exists: message names are never overwritten.
    """
    try:
        os.link(src, dst)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
    tmp = dst.parent.parent / "tmp" / (dst.name.partition(":")[0] + ".copy")
    try:
        shutil.copyfile(src, tmp)
        st = os.stat(src)
        os.utime(tmp, (st.st_atime, st.st_mtime))
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.link(tmp, dst)
    finally:
        _unlink_quietly(tmp)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def unlink_quietly(path: Path) -> bool:
    """Remove a file; False when it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def list_messages(folder_dir: Path, sub: str) -> list[str]:
    """The names of the message files in `sub` (cur or new): one listing of the directory,
    no stat."""
    ok = _MESSAGE_NAME.fullmatch
    return [name for name in os.listdir(folder_dir / sub) if ok(name)]


def scan(folder_dir: Path) -> Iterator[tuple[str, str]]:
    """Yield (subdir, name) for every message file, cur/ before new/."""
    for sub in ("cur", "new"):
        for name in list_messages(folder_dir, sub):
            yield sub, name


def stat_files(directory: Path, names: list[str]) -> list[os.stat_result | None]:
    """stat() of each name in one directory (None for a file gone meanwhile), relative to
    one open descriptor so the kernel does not walk the whole path again for every file."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    stat = os.stat
    out: list[os.stat_result | None] = []
    try:
        for name in names:
            try:
                out.append(stat(name, dir_fd=fd))
            except FileNotFoundError:
                out.append(None)
    finally:
        os.close(fd)
    return out


def find_key(folder_dir: Path, key: str) -> Path | None:
    """The current file of a message, looked up by key (a full directory listing)."""
    for sub, name in scan(folder_dir):
        if split_name(name)[0] == key:
            return folder_dir / sub / name
    return None


def clean_tmp(folder_dir: Path, now: float | None = None) -> int:
    """Remove tmp/ files untouched for 36 hours (crashed writers); return how many."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(folder_dir / "tmp"))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
            age = now - max(st.st_mtime, st.st_atime)
            if entry.is_file(follow_symlinks=False) and age > TMP_MAX_AGE:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def read_keywords(folder_dir: Path) -> dict[str, str]:
    """letter -> keyword from `dovecot-keywords`; malformed lines are skipped."""
    try:
        text = (folder_dir / KEYWORDS_FILE).read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    result: dict[str, str] = {}
    for line in text.splitlines():
        number, _, keyword = line.partition(" ")
        if number.isdigit() and int(number) < len(KEYWORD_LETTERS) and keyword:
            result[KEYWORD_LETTERS[int(number)]] = keyword
    return result


def write_keywords(folder_dir: Path, by_letter: dict[str, str]) -> None:
    """Write `dovecot-keywords` (caller holds the folder's write lock)."""
    lines = [f"{KEYWORD_LETTERS.index(c)} {kw}\n" for c, kw in sorted(by_letter.items())]
    write_private(folder_dir / KEYWORDS_FILE, "".join(lines))


def write_private(path: Path, text: str) -> None:
    """Replace a small control file atomically (via tmp/), readable by the owner only."""
    tmp = path.parent / "tmp" / f"{path.name}.{os.getpid()}.{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def make_folder_dirs(folder_dir: Path, *, marker: bool) -> None:
    """Create cur/ new/ tmp/ (and the Maildir++ `maildirfolder` marker) if missing."""
    folder_dir.mkdir(mode=0o700, exist_ok=True)
    for sub in SUBDIRS:
        (folder_dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    if marker:
        (folder_dir / FOLDER_MARKER).touch(mode=0o600, exist_ok=True)
