"""Copying one external account into its owner's mailbox (synchronous: run it in a thread).

POP3 accounts land in the folder named after the label; IMAP accounts are mirrored under it
(remote INBOX -> "Label", remote "Work/2026" -> "Label/Work/2026"). The remote side is only
read (mailsuite.remote). Delivery goes through `Store.deliver`, the same path as SMTP.

Nothing twice, nothing lost: every message is recorded in the directory before and after the
store write (mailsuite.directory.external). When a folder is read afresh (first read with
copies already present, a protocol switch, or a changed UIDVALIDITY) each message is first
compared with the copies already made, by Message-ID and size or by content digest, so a
re-sync adds only what is really new.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mailsuite import quota
from mailsuite.config import Settings
from mailsuite.directory import Directory
from mailsuite.directory import external as ext_db
from mailsuite.directory.external import ExternalAccount
from mailsuite.remote import MessageGone, ProtocolError, RemoteError, RemoteIMAP, RemotePOP3
from mailsuite.secrets import SecretBox, SecretError
from mailsuite.store import FolderExists, NoSuchFolder, Store, StoreError

log = logging.getLogger("mailsuite.fetcher")

MAX_PER_RUN = 20_000  # messages copied per account per run; the rest follow at once after
LEASE = 300.0  # seconds a fetch holds an account unless it renews
RENEW_AFTER = 60.0  # seconds between renewals while a fetch runs
MAX_BACKOFF = 6 * 3600.0
KEPT_FLAGS = {"\\seen": "\\Seen", "\\answered": "\\Answered", "\\flagged": "\\Flagged"}
SKIPPED_FOLDERS = {"\\noselect", "\\nonexistent", "\\all"}  # \All: Gmail's virtual copy
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
_BAD_IN_NAME = re.compile(r"[\\.*%/\x00-\x1f\x7f]")
MAX_DEPTH = 16


@dataclass
class FetchResult:
    """What one run did; `error` is None on success."""

    account_id: int
    label: str
    copied: int = 0
    skipped: int = 0
    error: str | None = None
    kind: str | None = None  # "connect", "tls", "login", "protocol", "busy", "secret", "store"
    reason: str = ""  # the RemoteError's reason, or "secret", "store", "bug", "folders"
    params: dict[str, Any] = field(default_factory=dict)
    folder_errors: list[str] = field(default_factory=list)
    failed_folders: list[str] = field(default_factory=list)
    more: bool = False
    renewed: float = field(default_factory=time.monotonic)


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """A RemoteError's values that words need, without the server's own detail."""
    return {
        k: v
        for k, v in params.items()
        if isinstance(v, str | int) and not k.startswith("detail") and k != "service"
    }


def message_id(data: bytes) -> str:
    """The Message-ID header's value without white space ("" when there is none)."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    if not match:
        return ""
    return re.sub(rb"\s+", b"", match.group(1)).decode("ascii", "replace")[:998]


def local_folder(label: str, remote: str, delimiter: str | None) -> str:
    """The local folder for a remote IMAP folder: INBOX is the label itself."""
    parts = remote.split(delimiter) if delimiter else [remote]
    if parts and parts[0].upper() == "INBOX":
        parts = parts[1:]
    clean = [_BAD_IN_NAME.sub("_", p).strip() or "_" for p in parts]
    if len(clean) > MAX_DEPTH - 1:
        clean = [*clean[: MAX_DEPTH - 2], "_".join(clean[MAX_DEPTH - 2 :])]
    return "/".join([label, *clean])


class Fetcher:
    """Fetches external accounts; thread-safe (the directory and store are)."""

    def __init__(self, directory: Directory, store: Store, settings: Settings) -> None:
        self.directory = directory
        self.store = store
        self.settings = settings
        self.secrets = SecretBox(settings.paths.secret_key)
        self.stopping = threading.Event()

    # -- connecting ------------------------------------------------------------------------

    def client(
        self,
        protocol: str,
        host: str,
        port: int,
        security: str,
        login: str,
        password: str,
        accept_self_signed: bool = False,
    ) -> RemoteIMAP | RemotePOP3:
        cls = RemoteIMAP if protocol == "imap" else RemotePOP3
        return cls(
            host,
            port,
            security,
            login,
            password,
            self.settings.fetcher.timeout,
            verify=not accept_self_signed,
        )

    def client_for(self, account: ExternalAccount) -> RemoteIMAP | RemotePOP3:
        return self.client(
            account.protocol,
            account.host,
            account.port,
            account.security,
            account.login,
            self.secrets.decrypt(account.secret),
            account.accept_self_signed,
        )

    def test(self, remote: RemoteIMAP | RemotePOP3) -> int:
        """Connect, log in and look at the inbox; returns its message count. RemoteError
        says why not."""
        with remote:
            if isinstance(remote, RemoteIMAP):
                return remote.examine("INBOX")[2]
            return len(remote.uidl())

    # -- fetching --------------------------------------------------------------------------

    def fetch(self, account: ExternalAccount) -> FetchResult:
        """One run for one account; the outcome is recorded in the directory. Never raises
        for remote, secret or store trouble: the result says what went wrong."""
        result = FetchResult(account.id, account.label)
        if not ext_db.claim(self.directory, account.id, LEASE):
            result.error, result.kind = "a fetch of this account is already running", "busy"
            return result
        started = time.monotonic()
        interval = self.settings.fetcher.interval
        try:
            self._recover(account)
            remote = self.client_for(account)
            with remote:
                if isinstance(remote, RemoteIMAP):
                    self._run_imap(account, remote, result)
                else:
                    self._run_pop3(account, remote, result)
        except RemoteError as exc:
            result.error, result.kind = str(exc), exc.kind
            result.reason, result.params = exc.reason, _plain(exc.params)
        except SecretError as exc:
            result.error, result.kind, result.reason = str(exc), "secret", "secret"
        except (StoreError, OSError) as exc:
            log.exception("external %s of %s: local delivery failed", account.label, account.owner)
            result.error, result.kind = f"local mailbox error: {exc}", "store"
            result.reason = "store"
        except Exception:
            # Still release the lease and note the failure: one broken account must not
            # stay locked or stop the others.
            log.exception("external %s of %s: fetch failed", account.label, account.owner)
            result.error, result.kind = "internal error while fetching; see the server log", "bug"
            result.reason = "bug"
        if result.error is None and result.folder_errors:
            result.error, result.kind = "; ".join(result.folder_errors)[:500], "protocol"
            result.reason = "folders"
            result.params = {"folders": ", ".join(result.failed_folders)[:300]}
        now = self.directory.clock()
        if result.error is None:
            next_attempt = now + (1.0 if result.more else interval)
        else:
            backoff = min(interval * 2 ** min(account.failures, 10), max(interval, MAX_BACKOFF))
            next_attempt = now + backoff
        ext_db.record_outcome(
            self.directory,
            account.id,
            error=result.error,
            next_attempt=next_attempt,
            reason=result.reason,
            params=result.params,
        )
        log.info(
            "external %s of %s: %d copied, %d skipped in %.1f s%s",
            account.label,
            account.owner,
            result.copied,
            result.skipped,
            time.monotonic() - started,
            f"; error: {result.error}" if result.error else "",
        )
        return result

    def _run_pop3(self, account: ExternalAccount, remote: RemotePOP3, result: FetchResult) -> None:
        local = account.label
        self._ensure_folder(account.owner, local)
        known_local, _ = ext_db.folder_state(self.directory, account.id, "")
        fresh = not known_local and ext_db.has_copies(self.directory, account.id, local)
        seen = ext_db.seen_uids(self.directory, account.id, "")
        sizes = remote.sizes()
        for msgno, uid in remote.uidl():
            if uid in seen:
                continue
            if self._stop(result):
                break
            size = sizes.get(msgno, 0)
            if size > self.settings.limits.message_size:
                self._skip(account, "", uid, local, size, result)
                continue
            data = remote.retr(msgno)
            self._deliver(account, "", uid, local, data, (), None, fresh, result)
        ext_db.set_folder_state(self.directory, account.id, "", local, None)

    def _run_imap(self, account: ExternalAccount, remote: RemoteIMAP, result: FetchResult) -> None:
        for name, delimiter, flags in remote.folders():
            if {f.lower() for f in flags} & SKIPPED_FOLDERS:
                continue
            if self._stop(result):
                break
            local = local_folder(account.label, name, delimiter)
            try:
                self._sync_folder(account, remote, name, local, result)
            except ProtocolError as exc:
                result.folder_errors.append(f"{name}: {exc}")
                result.failed_folders.append(name)

    def _sync_folder(
        self,
        account: ExternalAccount,
        remote: RemoteIMAP,
        name: str,
        local: str,
        result: FetchResult,
    ) -> None:
        validity, _, count = remote.examine(name)
        _, known_validity = ext_db.folder_state(self.directory, account.id, name)
        self._ensure_folder(account.owner, local)
        if count == 0:
            ext_db.set_folder_state(self.directory, account.id, name, local, validity)
            return
        seen = ext_db.seen_uids(self.directory, account.id, name)
        todo = [(u, s) for u, s in remote.sizes(name) if f"{validity}:{u}" not in seen]
        # A new UIDVALIDITY (RFC 3501 2.3.1.1) means every UID may have changed: match by
        # Message-ID and size against the copies already made before fetching anything.
        fresh = (known_validity is not None and known_validity != validity) or (
            known_validity is None and ext_db.has_copies(self.directory, account.id, local)
        )
        ids = remote.message_ids(name, [u for u, _ in todo]) if fresh and todo else {}
        for uid, size in todo:
            if self._stop(result):
                return
            key = f"{validity}:{uid}"
            if size > self.settings.limits.message_size:
                self._skip(account, name, key, local, size, result)
                continue
            mid, mid_size = ids.get(uid, ("", size))
            copy = (
                ext_db.find_copy(self.directory, account.id, local, message_id=mid, size=mid_size)
                if mid
                else None
            )
            if copy is not None:
                ext_db.mark(
                    self.directory,
                    account.id,
                    name,
                    key,
                    local,
                    state="done",
                    message_id=mid,
                    size=mid_size,
                    local_uid=copy.local_uid,
                    duplicate=True,
                )
                continue
            try:
                data, flags, when = remote.fetch(name, uid)
            except MessageGone:
                continue  # expunged on the server since the listing: nothing to copy
            kept = tuple(KEPT_FLAGS[f.lower()] for f in flags if f.lower() in KEPT_FLAGS)
            self._deliver(account, name, key, local, data, kept, when, fresh, result)
        if not result.more:
            ext_db.set_folder_state(self.directory, account.id, name, local, validity)

    # -- delivery --------------------------------------------------------------------------

    def _deliver(
        self,
        account: ExternalAccount,
        remote: str,
        uid: str,
        local: str,
        data: bytes,
        flags: tuple[str, ...],
        when: float | None,
        fresh: bool,
        result: FetchResult,
    ) -> None:
        """Copy one message: recorded as pending, written durably, recorded as done."""
        digest = hashlib.sha256(data).hexdigest()
        mid = message_id(data)
        common = {"message_id": mid, "size": len(data), "digest": digest}
        copy = ext_db.find_copy(self.directory, account.id, local, **common) if fresh else None
        if copy is not None:
            ext_db.mark(
                self.directory,
                account.id,
                remote,
                uid,
                local,
                state="done",
                local_uid=copy.local_uid,
                duplicate=True,
                **common,
            )
            return
        # The owner's quota holds for fetched mail as for SMTP: a full mailbox stops the run
        # before anything is recorded, the message stays on the other server and comes with
        # a later run once there is room.
        if quota.check(self.settings, self.directory, self.store, account.owner, len(data)) != (
            quota.Verdict.FITS
        ):
            raise quota.OverQuota("the mailbox is over its quota")
        uidnext = self.store.mailbox(account.owner).folder(local).uidnext
        ext_db.mark(
            self.directory,
            account.id,
            remote,
            uid,
            local,
            state="pending",
            local_uidnext=uidnext,
            **common,
        )
        uids = self.store.deliver(
            [account.owner], data, folder=local, flags=flags, internal_date=when
        )
        ext_db.mark(
            self.directory,
            account.id,
            remote,
            uid,
            local,
            state="done",
            local_uid=uids[account.owner],
            **common,
        )
        result.copied += 1
        if time.monotonic() - result.renewed > RENEW_AFTER:
            ext_db.claim_renew(self.directory, account.id, LEASE)
            result.renewed = time.monotonic()

    def _skip(
        self,
        account: ExternalAccount,
        remote: str,
        uid: str,
        local: str,
        size: int,
        result: FetchResult,
    ) -> None:
        ext_db.mark(self.directory, account.id, remote, uid, local, state="skipped", size=size)
        result.skipped += 1
        log.warning(
            "external %s of %s: a message of %d bytes is over the limit; skipped",
            account.label,
            account.owner,
            size,
        )

    def _stop(self, result: FetchResult) -> bool:
        if self.stopping.is_set():
            result.more = True
            return True
        if result.copied >= MAX_PER_RUN:
            result.more = True
            return True
        return False

    def _ensure_folder(self, owner: str, name: str) -> None:
        mailbox = self.store.mailbox(owner)
        try:
            mailbox.folder(name)
        except NoSuchFolder:
            try:
                mailbox.create_folder(name)
            except FolderExists:
                return
            mailbox.subscribe(name)

    def _recover(self, account: ExternalAccount) -> None:
        """Settle copies a crashed run began: confirm those the store holds, forget the rest."""
        for item in ext_db.pending_copies(self.directory, account.id):
            found = None
            try:
                folder = self.store.mailbox(account.owner).folder(item.local)
                folder.sync()
                for info in folder.messages():
                    if info.uid < (item.local_uidnext or 0) or info.size != item.size:
                        continue
                    if hashlib.sha256(folder.read(info.uid)).hexdigest() == item.digest:
                        found = info.uid
                        break
            except NoSuchFolder:
                found = None
            if found is None:
                ext_db.forget(self.directory, account.id, item.remote, item.uid)
            else:
                ext_db.mark(
                    self.directory,
                    account.id,
                    item.remote,
                    item.uid,
                    item.local,
                    state="done",
                    message_id=item.message_id,
                    size=item.size,
                    digest=item.digest,
                    local_uid=found,
                )


def delete_local_folders(store: Store, owner: str, label: str) -> int:
    """Delete the account's folder and everything under it; returns how many folders."""
    mailbox = store.mailbox(owner)
    names = [
        f.name
        for f in mailbox.list_folders()
        if f.name.lower() == label.lower() or f.name.lower().startswith(label.lower() + "/")
    ]
    for name in sorted(names, key=lambda n: n.count("/"), reverse=True):
        try:
            mailbox.delete_folder(name)
        except NoSuchFolder:
            continue
    return len(names)
