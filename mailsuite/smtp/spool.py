"""The outbound spool: messages waiting for remote delivery, durable across crashes.

Layout under `paths.spool`::

    tmp/                 files being written; never read as queue entries
    queue/<id>.msg       the message as it will be sent (DKIM signature included)
    queue/<id>.json      the envelope: sender, recipients and their state, attempts, times

An entry exists once its `.json` is in `queue/`. Enqueue writes and fsyncs the message, then
the envelope (written in `tmp/`, fsynced, renamed), then fsyncs `queue/`; only then may SMTP
answer 250. Every state change rewrites the envelope the same way, so a crash at any moment
leaves either the old or the new state. A `.msg` without its `.json` is a crash during
enqueue (never acknowledged) and is swept after an hour. This module is synchronous; the loop
calls it through `ctx.run_io`, and the CLI uses it directly.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ORPHAN_AGE = 3600.0


@dataclass
class Recipient:
    address: str
    state: str = "pending"  # pending, sent, failed (bounce due), bounced
    last_error: str = ""
    remote_mta: str = ""


@dataclass
class Entry:
    id: str
    sender: str
    recipients: list[Recipient]
    created: float
    next_attempt: float
    attempts: int = 0
    last_error: str = ""
    size: int = 0
    smtputf8: bool = False

    @property
    def pending(self) -> list[Recipient]:
        return [r for r in self.recipients if r.state == "pending"]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Entry:
        data = json.loads(raw)
        data["recipients"] = [Recipient(**r) for r in data["recipients"]]
        return cls(**data)


@dataclass
class _Cached:
    stamp: tuple[int, int]
    entry: Entry


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_id() -> str:
    """Sortable by time, unique without coordination: milliseconds then 32 random bits."""
    return f"{int(time.time() * 1000):011X}{secrets.token_hex(4).upper()}"


@dataclass
class Spool:
    root: Path
    fsync: bool = True
    _cache: dict[str, _Cached] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.tmp = self.root / "tmp"
        self.queue = self.root / "queue"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.queue.mkdir(parents=True, exist_ok=True)

    # -- writing ----------------------------------------------------------------------------

    def _write_durable(self, final: Path, data: bytes) -> None:
        tmp = self.tmp / f"{final.name}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)

    def enqueue(
        self,
        sender: str,
        recipients: list[str],
        data: bytes,
        *,
        queue_id: str | None = None,
        smtputf8: bool = False,
        now: float | None = None,
    ) -> Entry:
        """Make the message durable in the queue; when this returns, it survives a crash."""
        now = time.time() if now is None else now
        entry = Entry(
            id=queue_id or new_id(),
            sender=sender,
            recipients=[Recipient(a) for a in dict.fromkeys(recipients)],
            created=now,
            next_attempt=now,
            size=len(data),
            smtputf8=smtputf8,
        )
        self._write_durable(self.queue / f"{entry.id}.msg", data)
        self._write_durable(self.queue / f"{entry.id}.json", entry.to_json())
        if self.fsync:
            _fsync_dir(self.queue)
        return entry

    def save(self, entry: Entry) -> bool:
        """Record a new state of an entry; False when it was deleted meanwhile."""
        if not (self.queue / f"{entry.id}.json").exists():
            return False
        self._write_durable(self.queue / f"{entry.id}.json", entry.to_json())
        if not (self.queue / f"{entry.id}.msg").exists():
            # Deleted between the check and the write: do not bring the envelope back.
            (self.queue / f"{entry.id}.json").unlink(missing_ok=True)
            return False
        if self.fsync:
            _fsync_dir(self.queue)
        return True

    def remove(self, queue_id: str) -> bool:
        """Drop an entry (delivered, bounced or deleted by the admin)."""
        found = False
        for suffix in (".json", ".msg"):
            try:
                (self.queue / f"{queue_id}{suffix}").unlink()
                found = True
            except FileNotFoundError:
                pass
        self._cache.pop(queue_id, None)
        if found and self.fsync:
            _fsync_dir(self.queue)
        return found

    # -- reading ----------------------------------------------------------------------------

    def ids(self) -> list[str]:
        return sorted(n[:-5] for n in os.listdir(self.queue) if n.endswith(".json"))

    def load(self, queue_id: str) -> Entry | None:
        """The entry's current state from disk (cached while the file is unchanged)."""
        if not _valid_id(queue_id):
            return None
        path = self.queue / f"{queue_id}.json"
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            cached = self._cache.get(queue_id)
            if cached and cached.stamp == stamp:
                return cached.entry
            entry = Entry.from_json(path.read_bytes())
        except FileNotFoundError:
            self._cache.pop(queue_id, None)
            return None
        self._cache[queue_id] = _Cached(stamp, entry)
        return entry

    def entries(self) -> list[Entry]:
        found = [self.load(i) for i in self.ids()]
        live = {e.id for e in found if e is not None}
        for gone in set(self._cache) - live:
            del self._cache[gone]
        return [e for e in found if e is not None]

    def read(self, queue_id: str) -> bytes:
        return (self.queue / f"{queue_id}.msg").read_bytes()

    def sweep(self, now: float | None = None) -> int:
        """Remove leftovers of crashed writes: tmp files and messages without an envelope."""
        now = time.time() if now is None else now
        removed = 0
        for path in list(self.tmp.iterdir()):
            if now - path.stat().st_mtime > ORPHAN_AGE:
                path.unlink(missing_ok=True)
                removed += 1
        for path in list(self.queue.glob("*.msg")):
            if not path.with_suffix(".json").exists() and now - path.stat().st_mtime > ORPHAN_AGE:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _valid_id(queue_id: str) -> bool:
    return bool(queue_id) and queue_id.isalnum() and len(queue_id) <= 40
