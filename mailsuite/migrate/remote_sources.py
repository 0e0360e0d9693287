"""Remote accounts as import sources, read through `mailsuite.remote` (read-only clients).

`imap://` uses STARTTLS, `imaps://` TLS from the first byte, likewise `pop3://` and
`pop3s://`. Two query parameters exist for old servers: `?security=plain` (no TLS at all; meant
for loopback or a trusted network) and `?verify=no` (accept a self-signed certificate).

Neither protocol lets the scan see Date headers cheaply through the shared client, so remote
candidates are dated after they are read: the importer checks the date of each downloaded
message before it writes anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs

from mailsuite.migrate.message import Filter, header_block, parse_headers
from mailsuite.migrate.sources import MAX_MESSAGE_BYTES, Candidate, RemoteSpec, SourceError
from mailsuite.remote import ConnectError, LoginError, RemoteError, RemoteIMAP, RemotePOP3, TLSError
from mailsuite.store.names import INBOX, SEPARATOR
from mailsuite.store.uidlist import UidList

# Failures that end the whole import; anything else costs one message.
FATAL = (ConnectError, LoginError, TLSError)
_NAME_SPECIALS = str.maketrans({c: "_" for c in "\\.*%/"})
_KEEP_SYSTEM = {"\\seen": "\\Seen", "\\answered": "\\Answered", "\\flagged": "\\Flagged",
                "\\draft": "\\Draft"}  # fmt: skip


def _security(spec: RemoteSpec, query: dict[str, list[str]]) -> tuple[str, bool]:
    security = "tls" if spec.tls else "starttls"
    wanted = query.get("security", [""])[-1].lower()
    if wanted:
        if wanted not in ("tls", "starttls", "plain"):
            raise SourceError(f"security={wanted!r}: use tls, starttls or plain")
        security = wanted
    verify = query.get("verify", ["yes"])[-1].lower() not in ("no", "0", "false")
    return security, verify


def _flags(raw: tuple[str, ...]) -> frozenset[str]:
    """IMAP flags worth carrying over: system flags except \\Deleted and \\Recent (an import
    keeps mail; \\Recent is the server's to set), and keywords."""
    out = set()
    for flag in raw:
        if flag.startswith("\\"):
            if flag.lower() in _KEEP_SYSTEM:
                out.add(_KEEP_SYSTEM[flag.lower()])
        elif flag:
            out.add(flag)
    return frozenset(out)


def _header_time(data: bytes) -> float | None:
    raw_date, _ = parse_headers(header_block(data))
    if not raw_date:
        return None
    try:
        return parsedate_to_datetime(raw_date).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _complete(item: Candidate, data: bytes) -> None:
    """Fill in what the scan could not see, from the downloaded message."""
    raw_date, message_id = parse_headers(header_block(data))
    item.raw_date = raw_date
    item.message_id = item.message_id or message_id
    if item.internal_date is None:
        item.internal_date = _header_time(data)
    item.dated = True


class IMAPSource:
    def __init__(self, client: RemoteIMAP, spec: RemoteSpec) -> None:
        self.client = client
        self.description = spec.redacted
        self._delims: dict[str, str | None] = {}

    def folders(self) -> list[str]:
        names = []
        for name, delim, flags in self.client.folders():
            lowered = {f.lower() for f in flags}
            if "\\noselect" in lowered or "\\nonexistent" in lowered:
                continue
            self._delims[name] = delim
            names.append(name)
        names.sort(key=lambda n: (n.upper() != INBOX, n))
        return names

    def target_name(self, folder: str) -> str:
        if folder.upper() == INBOX:
            return INBOX
        delim = self._delims.get(folder)
        parts = folder.split(delim) if delim else [folder]
        return SEPARATOR.join(p.translate(_NAME_SPECIALS) for p in parts)

    def scan(self, folder: str, wanted: Filter | None = None) -> list[Candidate]:
        out = []
        for uid, size in self.client.sizes(folder):
            out.append(
                Candidate(
                    folder=folder,
                    ref=f"UID {uid}",
                    raw_date=None,
                    message_id="",
                    internal_date=None,
                    size=size,
                    key=uid,
                    dated=False,
                )
            )
        return out

    def uid_list(self, folder: str) -> UidList | None:
        return None  # remote UIDs are not carried over (yet): the import numbers afresh

    def fetch(self, items: list[Candidate]) -> Iterator[tuple[Candidate, bytes | Exception]]:
        for item in items:
            if item.size is not None and item.size > MAX_MESSAGE_BYTES:
                yield item, SourceError(f"larger than {MAX_MESSAGE_BYTES} bytes")
                continue
            try:
                data, flags, internal = self.client.fetch(item.folder, int(item.key))
            except FATAL as exc:
                raise SourceError(f"{self.description}: {exc}") from None
            except RemoteError as exc:
                yield item, exc
                continue
            item.flags = _flags(flags)
            item.internal_date = internal
            _complete(item, data)
            yield item, data

    def close(self) -> None:
        self.client.close()


class POP3Source:
    """A POP3 maildrop: one folder (INBOX), no flags; the internal date is the Date header's."""

    def __init__(self, client: RemotePOP3, spec: RemoteSpec) -> None:
        self.client = client
        self.description = spec.redacted

    def folders(self) -> list[str]:
        return [INBOX]

    @staticmethod
    def target_name(folder: str) -> str:
        return folder

    def scan(self, folder: str, wanted: Filter | None = None) -> list[Candidate]:
        sizes = self.client.sizes()
        return [
            Candidate(
                folder=folder,
                ref=f"UIDL {uid}",
                raw_date=None,
                message_id="",
                internal_date=None,
                size=sizes.get(number),
                key=number,
                dated=False,
            )
            for number, uid in self.client.uidl()
        ]

    def uid_list(self, folder: str) -> UidList | None:
        return None  # remote UIDs are not carried over (yet): the import numbers afresh

    def fetch(self, items: list[Candidate]) -> Iterator[tuple[Candidate, bytes | Exception]]:
        for item in items:
            if item.size is not None and item.size > MAX_MESSAGE_BYTES:
                yield item, SourceError(f"larger than {MAX_MESSAGE_BYTES} bytes")
                continue
            try:
                data = self.client.retr(int(item.key))
            except FATAL as exc:
                raise SourceError(f"{self.description}: {exc}") from None
            except RemoteError as exc:
                yield item, exc
                continue
            _complete(item, data)
            yield item, data

    def close(self) -> None:
        # RFC 1939 6: a session that ends without QUIT never enters the UPDATE state, so the
        # server applies nothing (Dovecot, for one, marks RETRieved mail \Seen at QUIT).
        # The shared client only offers a QUIT-ing close, hence its drop.
        self.client._drop()


def open_remote(spec: RemoteSpec, password: str | None, timeout: float) -> IMAPSource | POP3Source:
    """Log in to the remote account (read-only); SourceError says why it failed."""
    if not password:
        raise SourceError(
            f"{spec.redacted}: no password (put it in the URL or use --password-stdin)"
        )
    security, verify = _security(spec, parse_qs(spec.query))
    kind = RemoteIMAP if spec.scheme.startswith("imap") else RemotePOP3
    client = kind(spec.host, spec.port, security, spec.user, password, timeout, verify=verify)
    try:
        client.open()
    except RemoteError as exc:
        raise SourceError(f"{spec.redacted}: {exc}") from None
    if isinstance(client, RemoteIMAP):
        return IMAPSource(client, spec)
    return POP3Source(client, spec)
