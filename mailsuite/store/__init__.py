"""Maildir++ store: the only code that touches `maildirs/` (layout in `maildir.py`).

Everything is synchronous and thread-safe; from the event loop call it through
`ctx.run_io` unless it only reads memory (`Folder.uidvalidity`, `uidnext`, `name`).

    store = Store(root, fsync=True); store.attach_loop(loop)
    store.deliver(addresses, data, folder="INBOX", flags=(), internal_date=None) -> {addr: uid}
    store.prepare(addresses, data, ...) -> Prepared  (tmp/ written and fsynced, not visible)
    store.deliver_many([Prepared]) -> [{addr: uid} | Exception]  (one commit per folder)
    store.mailbox(address) -> Mailbox          store.purge(address) -> bool
    store.watch(address, folder, callback) -> Watch (.cancel())
    store.sync_watched() -> int                store.has_mailbox(address) -> bool

    Mailbox: list_folders() -> [FolderInfo], folder(name) -> Folder, create_folder(name),
             delete_folder(name), rename_folder(old, new), subscribe(name),
             unsubscribe(name), subscriptions() -> [str],
             adopt_uidvalidity(name, value)  (a migration keeping another server's UIDs)
    export.export_mailbox(store, address, dest) -> ExportSummary  (with dovecot-uidlist)
    uidlist.read_uidlist(folder_dir) -> UidList | None  (Dovecot's UIDs of a Maildir)
    Folder:  uidvalidity, uidnext, name, sync() -> [Change], messages() -> [MessageInfo],
             get(uid), recent() -> set, status() -> FolderStatus, read(uid) -> bytes,
             append(data, flags=(), internal_date=None, *, uid=None) -> uid,
             append_many([NewMessage]) -> [uid | Exception], reserve_uids(uidnext),
             store_flags(uids, flags, mode) -> [MessageInfo], expunge(uids) -> [uid],
             store_flags_unchanged_since(uids, flags, mode, modseq) -> ([MessageInfo], [uid]),
             highest_modseq() -> int, vanished_since(modseq) -> [uid] | None  (RFC 7162),
             copy(uids, dest) -> [(src, dst)], move(uids, dest) -> [(src, dst)],
             claim_recent() -> set, cache_get(uid, name), cache_put(uid, name, blob)

Errors are `StoreError` subclasses: BadFolderName, NoSuchFolder, FolderExists, NotAllowed,
NoSuchMessage, BadFlag, TooLarge, UidInUse.
"""

from .errors import (
    BadFlag,
    BadFolderName,
    FolderExists,
    NoSuchFolder,
    NoSuchMessage,
    NotAllowed,
    StoreError,
    TooLarge,
    UidInUse,
)
from .folder import Folder
from .mailbox import Mailbox
from .model import Change, FolderInfo, FolderStatus, MessageInfo, NewMessage
from .store import Prepared, Store, Watch

__all__ = [
    "BadFlag",
    "BadFolderName",
    "Change",
    "Folder",
    "FolderExists",
    "FolderInfo",
    "FolderStatus",
    "Mailbox",
    "MessageInfo",
    "NewMessage",
    "NoSuchFolder",
    "NoSuchMessage",
    "NotAllowed",
    "Prepared",
    "Store",
    "StoreError",
    "TooLarge",
    "UidInUse",
    "Watch",
]
