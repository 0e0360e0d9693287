"""Where imported mail comes from: a Maildir, an mbox file, or a remote account.

A source is opened read-only and never changed: no flag is set, no file moved from `new/`
to `cur/`, no message deleted. Each source lists its folders, then `scan`s one folder
cheaply (flags, internal date, Date and Message-ID headers) so the importer can drop
messages before the date without downloading them, then `fetch`es the rest. A source that
knows the UIDs its server gave (a Dovecot Maildir's `dovecot-uidlist`) says so through
`uid_list`, and its candidates carry their UIDs, so the import can keep them.
"""

from __future__ import annotations

import mailbox
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from mailsuite.migrate.message import Filter, header_block, header_fields, parse_header_block
from mailsuite.store.names import INBOX, LETTER_FLAGS, SEPARATOR, mutf7_decode
from mailsuite.store.uidlist import UidList, base_name, read_uidlist

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a bigger message is reported as failed, not read
_HEADER_READ = 64 * 1024


class SourceError(Exception):
    """The source cannot be opened or read; the message says why, without secrets."""


@dataclass
class Candidate:
    """One message of a source folder, known by its headers only."""

    folder: str
    ref: str  # names the message in failure reasons (file name, mbox index, UID)
    raw_date: str | None
    message_id: str
    internal_date: float | None
    flags: frozenset[str] = field(default_factory=frozenset)
    size: int | None = None
    key: object = None  # how the source finds the message again (mbox key, IMAP UID)
    dated: bool = True  # False: the date is only known once the message is read
    matched: bool | None = None  # the import's Filter on the headers; None: not known yet
    uid: int | None = None  # the UID the old server gave it, when the source knows it


class Source(Protocol):
    description: str

    def folders(self) -> list[str]: ...

    def target_name(self, folder: str) -> str: ...

    def scan(self, folder: str, wanted: Filter | None = None) -> list[Candidate]:
        """The folder's messages; a source that reads headers here sets `matched` from
        `wanted`, the others leave it to the importer once the message is read."""
        ...

    def fetch(self, items: list[Candidate]) -> Iterator[tuple[Candidate, bytes | Exception]]: ...

    def uid_list(self, folder: str) -> UidList | None:
        """The folder's UIDVALIDITY, next UID and UIDs as the old server gave them, when
        the source knows them (a Dovecot Maildir); None otherwise."""
        ...

    def close(self) -> None: ...


# -- Maildir ---------------------------------------------------------------------------------

_MAILDIR_SUBDIRS = ("cur", "new")


def _maildir_flags(info: str) -> frozenset[str]:
    """`:2,FRS` -> IMAP flags. `T` (trashed) is left behind on purpose: an import keeps
    mail, and a message carried over as \\Deleted would vanish at the next EXPUNGE."""
    if not info.startswith("2,"):
        return frozenset()
    return frozenset(
        LETTER_FLAGS[c] for c in info[2:] if c in LETTER_FLAGS and LETTER_FLAGS[c] != "\\Deleted"
    )


class MaildirSource:
    """A Maildir or Maildir++ tree (`cur/ new/`, folders as `.Name.Sub` beside them).

    The old server may still be running: a message whose flags change is renamed in the
    meantime, so a file that vanished between scan and fetch is looked up again by its
    unique name.
    """

    def __init__(self, path: Path) -> None:
        self.root = path
        self.description = f"Maildir {path}"
        if not all((path / d).is_dir() for d in _MAILDIR_SUBDIRS):
            raise SourceError(f"{path} is not a Maildir (no cur/ and new/)")

    def _dir(self, folder: str) -> Path:
        if folder == INBOX:
            return self.root
        return self.root / ("." + folder.replace(SEPARATOR, "."))

    def folders(self) -> list[str]:
        names = [INBOX]
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if not entry.name.startswith(".") or entry.name in (".", ".."):
                continue
            if not entry.is_dir() or not (Path(entry.path) / "cur").is_dir():
                continue
            parts = entry.name[1:].split(".")
            if not all(parts):
                continue
            names.append(SEPARATOR.join(parts))
        return names

    @staticmethod
    def target_name(folder: str) -> str:
        """Folder names on disk are modified UTF-7 (RFC 3501 5.1.3); ours are Unicode."""
        try:
            return SEPARATOR.join(mutf7_decode(p) for p in folder.split(SEPARATOR))
        except ValueError:
            return folder

    def uid_list(self, folder: str) -> UidList | None:
        """Dovecot's `dovecot-uidlist` of the folder, when it has one."""
        return read_uidlist(self._dir(folder))

    def scan(self, folder: str, wanted: Filter | None = None) -> list[Candidate]:
        base = self._dir(folder)
        kept = self.uid_list(folder)
        out: list[Candidate] = []
        for sub in _MAILDIR_SUBDIRS:
            try:
                entries = list(os.scandir(base / sub))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    st = entry.stat()
                    with open(entry.path, "rb") as f:
                        head = f.read(_HEADER_READ)
                except FileNotFoundError:
                    continue  # expunged by the old server since listing
                headers = parse_header_block(header_block(head))
                raw_date, message_id = header_fields(headers)
                _, _, info = entry.name.partition(":")
                out.append(
                    Candidate(
                        folder=folder,
                        ref=f"{sub}/{entry.name}",
                        raw_date=raw_date,
                        message_id=message_id,
                        internal_date=st.st_mtime,
                        flags=_maildir_flags(info),
                        size=st.st_size,
                        matched=wanted.keeps(headers) if wanted else None,
                        uid=kept.uids.get(base_name(entry.name)) if kept else None,
                    )
                )
        # In the old server's UID order when it has one (messages it never numbered last),
        # so the UIDs can be given again in the order they must grow.
        out.sort(key=lambda c: (c.uid is None, c.uid or 0, c.internal_date or 0, c.ref))
        return out

    def _read(self, item: Candidate) -> bytes:
        base = self._dir(item.folder)
        path = base / item.ref
        try:
            return _read_bounded(path)
        except FileNotFoundError:
            unique = item.ref.split("/", 1)[1].partition(":")[0]
            for sub in _MAILDIR_SUBDIRS:
                for entry in os.scandir(base / sub):
                    if entry.name.partition(":")[0] == unique:
                        return _read_bounded(Path(entry.path))
            raise

    def fetch(self, items: list[Candidate]) -> Iterator[tuple[Candidate, bytes | Exception]]:
        for item in items:
            try:
                yield item, self._read(item)
            except OSError as exc:
                yield item, exc

    def close(self) -> None:
        pass


def _read_bounded(path: Path) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_MESSAGE_BYTES + 1)
    if len(data) > MAX_MESSAGE_BYTES:
        raise SourceError(f"larger than {MAX_MESSAGE_BYTES} bytes")
    return data


# -- mbox ------------------------------------------------------------------------------------

# mboxrd: a body line "From " is stored as ">From ", and ">From " as ">>From "; reading
# removes one ">" (this also undoes the mboxo quoting most writers use).
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_MBOX_FLAGS = {"R": "\\Seen", "F": "\\Flagged", "A": "\\Answered"}


def _from_line_date(from_line: str) -> float | None:
    """The asctime date at the end of an mbox `From sender date` line, as POSIX seconds."""
    parts = from_line.split()
    if len(parts) < 6:
        return None
    try:
        return time.mktime(time.strptime(" ".join(parts[-5:]), "%a %b %d %H:%M:%S %Y"))
    except (ValueError, OverflowError):
        return None


class MboxSource:
    """One mbox file read through the stdlib `mailbox` module (one folder: INBOX).

    Flags come from the Status and X-Status headers mail readers write; the internal date from
    the `From ` separator line, else the file's modification time.
    """

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise SourceError(f"{path} is not a file")
        self.path = path
        self.description = f"mbox {path}"
        self._mtime = path.stat().st_mtime
        # `mailbox.mbox` opens the file for writing when it can; nothing here ever flushes,
        # so the file is not changed (the tests compare it byte for byte).
        self._box = mailbox.mbox(str(path), create=False)

    def folders(self) -> list[str]:
        return [INBOX]

    @staticmethod
    def target_name(folder: str) -> str:
        return folder

    def scan(self, folder: str, wanted: Filter | None = None) -> list[Candidate]:
        out: list[Candidate] = []
        for key in self._box.iterkeys():
            with self._box.get_file(key, from_=True) as f:
                head = f.read(_HEADER_READ)
            from_line, _, rest = head.partition(b"\n")
            block = header_block(rest)
            headers = parse_header_block(block)
            raw_date, message_id = header_fields(headers)
            status = str(headers.get("Status", "")) + str(headers.get("X-Status", ""))
            out.append(
                Candidate(
                    folder=folder,
                    ref=f"message {key + 1}",
                    raw_date=raw_date,
                    message_id=message_id,
                    internal_date=_from_line_date(from_line.decode("latin-1")) or self._mtime,
                    flags=frozenset(_MBOX_FLAGS[c] for c in status if c in _MBOX_FLAGS),
                    key=key,
                    matched=wanted.keeps(headers) if wanted else None,
                )
            )
        return out

    def uid_list(self, folder: str) -> UidList | None:
        return None

    def fetch(self, items: list[Candidate]) -> Iterator[tuple[Candidate, bytes | Exception]]:
        for item in items:
            try:
                data = self._box.get_bytes(item.key, from_=False)
                if len(data) > MAX_MESSAGE_BYTES:
                    raise SourceError(f"larger than {MAX_MESSAGE_BYTES} bytes")
                yield item, _QUOTED_FROM.sub(rb"\1", data)
            except (OSError, KeyError, SourceError) as exc:
                yield item, exc

    def close(self) -> None:
        self._box.close()


# -- choosing a source -----------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteSpec:
    """A remote account parsed from `imap[s]://user:pass@host:port` or `pop3[s]://...`."""

    scheme: str
    host: str
    port: int
    user: str
    password: str | None
    query: str = ""

    @property
    def tls(self) -> bool:
        return self.scheme.endswith("s")

    @property
    def redacted(self) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}{query}"


_DEFAULT_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995}


def parse_remote(url: str) -> RemoteSpec | None:
    """A RemoteSpec for an imap/pop3 URL, None for anything else (a path)."""
    if "://" not in url:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise SourceError(f"unknown source scheme {scheme!r} (imap, imaps, pop3, pop3s)")
    if not parts.hostname or not parts.username:
        raise SourceError(f"{scheme} source needs user@host")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise SourceError("the source port is not a number") from None
    password = unquote(parts.password) if parts.password is not None else None
    return RemoteSpec(scheme, parts.hostname, port, unquote(parts.username), password, parts.query)


def redact(source: str) -> str:
    """The source as it may be shown and stored: never with its password."""
    try:
        spec = parse_remote(source)
    except SourceError:
        return "(a source that is not a path or an imap/pop3 URL)"
    return spec.redacted if spec else source


def open_source(source: str, *, password: str | None = None, timeout: float = 60) -> Source:
    """Open a source read-only; `password` (from stdin) wins over one in the URL."""
    spec = parse_remote(source)
    if spec is None:
        path = Path(source).expanduser()
        if path.is_dir():
            return MaildirSource(path)
        if path.is_file():
            return MboxSource(path)
        raise SourceError(f"{source}: no such Maildir or mbox file")
    from mailsuite.migrate.remote_sources import open_remote

    return open_remote(spec, password if password is not None else spec.password, timeout)
