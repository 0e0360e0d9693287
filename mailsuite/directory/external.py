"""External accounts in the directory: settings, fetch state and what was already copied.

Three tables (schema migration 3). `external_accounts` holds each user's remote mailboxes
(the password only as a Fernet token made by `mailsuite.secrets`; this module never sees it
in the clear), the schedule (`next_attempt`, a cross-process `lease_until` so the server and
`mailsuite external fetch` never fetch one account at once) and the last outcome.
`external_folders` maps a remote folder to its local folder and remembers its UIDVALIDITY.
`external_seen` remembers every message copied, by its remote id (the POP3 UIDL, or
"UIDVALIDITY:UID" for IMAP), with its Message-ID, size and content digest.

When the account moves to another protocol, server or login, what was learnt about the old
remote is retired: its folders' state is dropped and its `external_seen` rows are moved out of
every remote's name space (`RETIRED` prefix), so ids another server happens to reuse are never
taken for copies; the rows stay as the record of the copies made, which a re-read matches by
Message-ID, size or digest. `copied_count` counts distinct local copies, so a message matched
again after a switch is counted once.

A copy is recorded in two steps around the store write: `begin_copy` (state `pending`, with
the local folder's UIDNEXT before the write), then `finish_copy` once the store says the
message is durable. A crash between them leaves a `pending` row; the next run looks for the
message in the local folder from that UIDNEXT on and either confirms it or forgets the row,
so nothing is copied twice and nothing is lost.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from mailsuite.directory.directory import Directory
from mailsuite.directory.models import (
    Account,
    AlreadyExists,
    DirectoryError,
    normalize_address,
)
from mailsuite.i18n import N_

PROTOCOLS = ("pop3", "imap")
RETIRED = "\x00retired:"
"""Prefix of the `remote` of copies recorded from an earlier server: no IMAP folder name can
start with NUL (RFC 3501 9: CHAR8 excludes %x00), and POP3's remote is ""."""
MOVING = ("protocol", "host", "port", "login")
"""Fields whose change makes the remote another mailbox, as far as its ids are concerned."""
SECURITIES = ("tls", "starttls", "plain")
MAX_LABEL = 40
MAX_ERROR = 500
_LABEL_FORBIDDEN = set("/\\.*%\"'<>&")
_RESERVED = {"inbox", "sent", "drafts", "trash", "junk", "archive"}
_EDITABLE = {
    "label",
    "display_name",
    "email",
    "login",
    "secret",
    "protocol",
    "host",
    "port",
    "security",
    "accept_self_signed",
}


class LimitReached(DirectoryError):
    """The user already has as many external accounts as allowed."""


class NoSuchExternal(DirectoryError):
    pass


@dataclass(frozen=True)
class ExternalAccount:
    id: int
    owner: str
    label: str
    display_name: str
    email: str
    login: str
    secret: bytes
    protocol: str
    host: str
    port: int
    security: str
    accept_self_signed: bool
    created: float
    updated: float
    last_attempt: float | None
    last_success: float | None
    last_error: str
    last_error_at: float | None
    failures: int
    next_attempt: float
    lease_until: float | None
    lease_owner: str | None
    fetched: int
    # What `last_error` names, for words in the user's language: the failure's reason (a
    # remote client's, or the fetcher's own) and its values; "" and {} when unknown.
    last_error_reason: str = ""
    last_error_params: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print the token
        return f"ExternalAccount({self.id}, {self.owner!r}, {self.label!r}, {self.protocol})"


@dataclass(frozen=True)
class Pending:
    remote: str
    uid: str
    local: str
    message_id: str
    size: int
    digest: str
    local_uidnext: int | None


def check_label(label: str) -> str:
    """The label names the account and its local folder, so it must be a plain folder name."""
    label = " ".join(label.split())
    if not label:
        raise DirectoryError(
            "Dostawca (the account's label) is required", key=N_("dir.label.required")
        )
    if len(label) > MAX_LABEL:
        raise DirectoryError(
            f"the label is longer than {MAX_LABEL} characters",
            key=N_("dir.label.long"),
            limit=MAX_LABEL,
        )
    bad = sorted({ch for ch in label if ch in _LABEL_FORBIDDEN or ord(ch) < 0x20})
    if bad:
        raise DirectoryError(
            f"the label may not contain {' '.join(bad)}",
            key=N_("dir.label.chars"),
            chars=" ".join(bad),
        )
    if label.lower() in _RESERVED:
        raise DirectoryError(
            f"{label!r} is the name of a standard folder; choose another label",
            key=N_("dir.label.reserved"),
            label=label,
        )
    return label


def _check(fields: dict[str, Any]) -> dict[str, Any]:
    if "label" in fields:
        fields["label"] = check_label(fields["label"])
    if "email" in fields:
        fields["email"] = normalize_address(fields["email"])
    if "display_name" in fields:
        fields["display_name"] = " ".join(str(fields["display_name"]).split())[:100]
    if "login" in fields and not str(fields["login"]).strip():
        raise DirectoryError("the login (user name) is required", key=N_("dir.login.required"))
    if "protocol" in fields and fields["protocol"] not in PROTOCOLS:
        raise DirectoryError("the protocol must be pop3 or imap", key=N_("dir.protocol"))
    if "security" in fields and fields["security"] not in SECURITIES:
        raise DirectoryError("security must be tls, starttls or plain", key=N_("dir.security"))
    if "host" in fields:
        host = str(fields["host"]).strip().lower()
        if not host or len(host) > 253 or any(c.isspace() or c in "/@:" for c in host):
            raise DirectoryError(
                f"{fields['host']!r} is not a server name", key=N_("dir.host"), host=fields["host"]
            )
        fields["host"] = host
    if "port" in fields:
        port = int(fields["port"])
        if not 1 <= port <= 65535:
            raise DirectoryError("the port must be a number from 1 to 65535", key=N_("dir.port"))
        fields["port"] = port
    if "accept_self_signed" in fields:
        fields["accept_self_signed"] = int(bool(fields["accept_self_signed"]))
    return fields


def check_fields(**fields: Any) -> dict[str, Any]:
    """The fields as the directory would store them (host lower-cased, port an int), or the
    DirectoryError it would refuse them with, so a form can name problems before a
    connection test."""
    return _check(dict(fields))


# `last_error` holds the sentence, then (after this separator) the reason and its values as
# JSON, so the admin's English and the user's words come from one column.
_NAMED = "\x1f"


def _record(row: dict[str, Any]) -> ExternalAccount:
    row = dict(row)
    row["accept_self_signed"] = bool(row["accept_self_signed"])
    row["secret"] = bytes(row["secret"])
    sentence, _, named = (row.get("last_error") or "").partition(_NAMED)
    row["last_error"] = sentence
    reason, _, values = named.partition(_NAMED)
    try:
        params = json.loads(values) if values else {}
    except ValueError:
        params = {}
    row["last_error_reason"] = reason
    row["last_error_params"] = params if isinstance(params, dict) else {}
    return ExternalAccount(**row)


def add_external(
    directory: Directory,
    owner: str,
    *,
    label: str,
    display_name: str,
    email: str,
    login: str,
    secret: bytes,
    protocol: str,
    host: str,
    port: int,
    security: str,
    accept_self_signed: bool = False,
    limit: int,
) -> ExternalAccount:
    """Add an external account for `owner`; LimitReached when it already has `limit`."""
    account = directory.require_account(owner)
    fields = _check(
        {
            "label": label,
            "display_name": display_name,
            "email": email,
            "login": login,
            "protocol": protocol,
            "host": host,
            "port": port,
            "security": security,
            "accept_self_signed": accept_self_signed,
        }
    )
    now = directory.clock()
    with directory.transaction() as conn:
        count = conn.execute(
            "SELECT count(*) FROM external_accounts WHERE owner = ?", (account.address,)
        ).fetchone()[0]
        if count >= limit:
            raise LimitReached(
                f"{account.address} already has {count} external accounts; the limit is {limit}"
            )
        clash = conn.execute(
            "SELECT 1 FROM external_accounts WHERE owner = ? AND label = ?",
            (account.address, fields["label"]),
        ).fetchone()
        if clash:
            raise AlreadyExists(
                f"an external account labelled {fields['label']!r} exists",
                key=N_("dir.label.taken"),
                label=fields["label"],
            )
        cursor = conn.execute(
            "INSERT INTO external_accounts (owner, label, display_name, email, login, secret,"
            " protocol, host, port, security, accept_self_signed, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account.address,
                fields["label"],
                fields["display_name"],
                fields["email"],
                fields["login"],
                secret,
                fields["protocol"],
                fields["host"],
                fields["port"],
                fields["security"],
                fields["accept_self_signed"],
                now,
                now,
            ),
        )
    found = external_by_id(directory, int(cursor.lastrowid or 0))
    assert found is not None
    return found


def external_by_id(directory: Directory, account_id: int) -> ExternalAccount | None:
    rows = directory._rows("SELECT * FROM external_accounts WHERE id = ?", (account_id,))
    return _record(rows[0]) if rows else None


def get_external(directory: Directory, owner: str, label: str) -> ExternalAccount:
    """The account labelled `label` (case-insensitive) of `owner`, or NoSuchExternal."""
    rows = directory._rows(
        "SELECT * FROM external_accounts WHERE owner = ? AND label = ?",
        (owner.strip().lower(), " ".join(label.split())),
    )
    if not rows:
        raise NoSuchExternal(f"{owner} has no external account labelled {label!r}")
    return _record(rows[0])


def list_external(directory: Directory, owner: str | None = None) -> list[ExternalAccount]:
    if owner is None:
        rows = directory._rows("SELECT * FROM external_accounts ORDER BY owner, label")
    else:
        rows = directory._rows(
            "SELECT * FROM external_accounts WHERE owner = ? ORDER BY label",
            (owner.strip().lower(),),
        )
    return [_record(r) for r in rows]


def update_external(directory: Directory, account_id: int, **fields: Any) -> ExternalAccount:
    """Change settings. A new protocol, host, port or login retires what is known about the
    old remote (folder state and remote ids); the copies already made are still recognised
    by Message-ID, size and digest, and still counted. The account is due at once."""
    unknown = set(fields) - _EDITABLE
    if unknown:
        raise DirectoryError(f"cannot change {', '.join(sorted(unknown))}")
    current = external_by_id(directory, account_id)
    if current is None:
        raise NoSuchExternal(f"no external account {account_id}")
    fields = _check(dict(fields))
    fields.update(updated=directory.clock(), next_attempt=0, failures=0)
    moved = any(k in fields and fields[k] != getattr(current, k) for k in MOVING)
    assignments = ", ".join(f"{key} = ?" for key in fields)
    with directory.transaction() as conn:
        if "label" in fields and fields["label"].lower() != current.label.lower():
            clash = conn.execute(
                "SELECT 1 FROM external_accounts WHERE owner = ? AND label = ? AND id != ?",
                (current.owner, fields["label"], account_id),
            ).fetchone()
            if clash:
                raise AlreadyExists(
                    f"an external account labelled {fields['label']!r} exists",
                    key=N_("dir.label.taken"),
                    label=fields["label"],
                )
        conn.execute(
            f"UPDATE external_accounts SET {assignments} WHERE id = ?",
            (*fields.values(), account_id),
        )
        if moved:
            conn.execute("DELETE FROM external_folders WHERE account_id = ?", (account_id,))
            # One prefix per move keeps (account_id, remote, uid) unique across moves.
            prefix = f"{RETIRED}{int(fields['updated'] * 1e6)}:"
            conn.execute(
                "UPDATE external_seen SET remote = ? || remote WHERE account_id = ?"
                " AND substr(remote, 1, ?) != ?",
                (prefix, account_id, len(RETIRED), RETIRED),
            )
    updated = external_by_id(directory, account_id)
    assert updated is not None
    return updated


def delete_external(directory: Directory, account_id: int) -> None:
    """Forget the account and its fetch state (local mail is the caller's business)."""
    with directory.transaction() as conn:
        conn.execute("DELETE FROM external_accounts WHERE id = ?", (account_id,))


def external_senders(directory: Directory, account: Account) -> list[tuple[str, str]]:
    """(address, display name) of every external address `account` may send as."""
    rows = directory._rows(
        "SELECT email, display_name FROM external_accounts WHERE owner = ? ORDER BY label",
        (account.address,),
    )
    seen: dict[str, str] = {}
    for row in rows:
        seen.setdefault(row["email"], row["display_name"])
    return list(seen.items())


def reencrypt_all(directory: Directory, convert: Any) -> int:
    """Rewrite every stored secret with `convert(token) -> token` in one transaction."""
    with directory.transaction() as conn:
        rows = conn.execute("SELECT id, secret FROM external_accounts").fetchall()
        for account_id, secret in rows:
            conn.execute(
                "UPDATE external_accounts SET secret = ? WHERE id = ?",
                (convert(bytes(secret)), account_id),
            )
    return len(rows)


# -- schedule and outcome -------------------------------------------------------------------


def due_accounts(directory: Directory, now: float) -> list[ExternalAccount]:
    rows = directory._rows(
        "SELECT * FROM external_accounts WHERE next_attempt <= ? ORDER BY next_attempt, id",
        (now,),
    )
    return [_record(r) for r in rows]


def _lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_alive(owner: str | None) -> bool:
    """False when the lease was left by a process on this host that no longer runs."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(directory: Directory, account_id: int, seconds: float) -> bool:
    """Take the account for a fetch for up to `seconds` (renewed while it runs); False when
    another live process or thread holds it. A lease left by a killed process on this host is
    taken over at once."""
    now = directory.clock()
    with directory.transaction() as conn:
        row = conn.execute(
            "SELECT lease_until, lease_owner FROM external_accounts WHERE id = ?",
            (account_id,),
        ).fetchone()
        if row is None:
            return False
        until, owner = row
        if until is not None and until >= now and _holder_alive(owner):
            return False
        conn.execute(
            "UPDATE external_accounts SET lease_until = ?, lease_owner = ?, last_attempt = ?"
            " WHERE id = ?",
            (now + seconds, _lease_owner(), now, account_id),
        )
    return True


def record_outcome(
    directory: Directory,
    account_id: int,
    *,
    error: str | None,
    next_attempt: float,
    reason: str = "",
    params: dict[str, Any] | None = None,
) -> None:
    """Release the lease and note the result (`error` None: success); `reason` and
    `params` name the failure so a page can word it in its user's language."""
    now = directory.clock()
    if error is not None:
        error = error[:MAX_ERROR]
        if reason:
            named = json.dumps(params or {}, ensure_ascii=False, default=str)
            error = f"{error}{_NAMED}{reason}{_NAMED}{named}"
    with directory.transaction() as conn:
        if error is None:
            conn.execute(
                "UPDATE external_accounts SET lease_until = NULL, last_success = ?,"
                " failures = 0, next_attempt = ?, last_error = '' WHERE id = ?",
                (now, next_attempt, account_id),
            )
        else:
            conn.execute(
                "UPDATE external_accounts SET lease_until = NULL, last_error = ?,"
                " last_error_at = ?, failures = failures + 1, next_attempt = ? WHERE id = ?",
                (error, now, next_attempt, account_id),
            )


def request_fetch(directory: Directory, account_id: int) -> None:
    """Make the account due now ("pobierz teraz")."""
    with directory.transaction() as conn:
        conn.execute("UPDATE external_accounts SET next_attempt = 0 WHERE id = ?", (account_id,))


# -- folders and copies ---------------------------------------------------------------------


def folder_state(directory: Directory, account_id: int, remote: str) -> tuple[str, int | None]:
    """(local folder, remembered UIDVALIDITY) of a remote folder, or ("", None) if new."""
    rows = directory._rows(
        "SELECT local, uidvalidity FROM external_folders WHERE account_id = ? AND remote = ?",
        (account_id, remote),
    )
    return (rows[0]["local"], rows[0]["uidvalidity"]) if rows else ("", None)


def set_folder_state(
    directory: Directory, account_id: int, remote: str, local: str, uidvalidity: int | None
) -> None:
    """Remember the folder's mapping and UIDVALIDITY; copies under an older UIDVALIDITY are
    forgotten (they have been matched to the new UIDs by then)."""
    with directory.transaction() as conn:
        conn.execute(
            "INSERT INTO external_folders (account_id, remote, local, uidvalidity)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(account_id, remote) DO UPDATE SET"
            " local = excluded.local, uidvalidity = excluded.uidvalidity",
            (account_id, remote, local, uidvalidity),
        )
        if uidvalidity is not None:
            conn.execute(
                "DELETE FROM external_seen WHERE account_id = ? AND remote = ?"
                " AND uid NOT LIKE ? AND state != 'pending'",
                (account_id, remote, f"{uidvalidity}:%"),
            )


def seen_uids(directory: Directory, account_id: int, remote: str) -> set[str]:
    rows = directory._rows(
        "SELECT uid FROM external_seen WHERE account_id = ? AND remote = ?",
        (account_id, remote),
    )
    return {r["uid"] for r in rows}


def has_copies(directory: Directory, account_id: int, local: str) -> bool:
    rows = directory._rows(
        "SELECT 1 FROM external_seen WHERE account_id = ? AND local = ? AND state = 'done' LIMIT 1",
        (account_id, local),
    )
    return bool(rows)


@dataclass(frozen=True)
class Copy:
    """A copy already made in a local folder; `local_uid` is None for rows recorded before
    matches carried it."""

    local_uid: int | None


def find_copy(
    directory: Directory,
    account_id: int,
    local: str,
    *,
    message_id: str = "",
    size: int | None = None,
    digest: str = "",
) -> Copy | None:
    """The copy with this Message-ID and size, or this digest, already in `local`."""
    order = " ORDER BY local_uid IS NULL LIMIT 1"
    if message_id and size is not None:
        rows = directory._rows(
            "SELECT local_uid FROM external_seen WHERE account_id = ? AND local = ?"
            " AND message_id = ? AND size = ? AND state = 'done'" + order,
            (account_id, local, message_id, size),
        )
        if rows:
            return Copy(rows[0]["local_uid"])
    if digest:
        rows = directory._rows(
            "SELECT local_uid FROM external_seen WHERE account_id = ? AND local = ?"
            " AND digest = ? AND state = 'done'" + order,
            (account_id, local, digest),
        )
        if rows:
            return Copy(rows[0]["local_uid"])
    return None


def is_duplicate(
    directory: Directory,
    account_id: int,
    local: str,
    *,
    message_id: str = "",
    size: int | None = None,
    digest: str = "",
) -> bool:
    """True when a copy with this Message-ID and size, or this digest, is already in `local`."""
    found = find_copy(directory, account_id, local, message_id=message_id, size=size, digest=digest)
    return found is not None


def mark(
    directory: Directory,
    account_id: int,
    remote: str,
    uid: str,
    local: str,
    *,
    state: str,
    message_id: str = "",
    size: int = 0,
    digest: str = "",
    local_uidnext: int | None = None,
    local_uid: int | None = None,
    duplicate: bool = False,
) -> None:
    """Record one remote message: `pending` before a store write, `done` when it is in the
    local folder (written now, or found there already: `duplicate`, with the local UID of the
    copy it matched), `skipped` when it will never be copied (too large)."""
    with directory.transaction() as conn:
        conn.execute(
            "INSERT INTO external_seen (account_id, remote, uid, local, message_id, size, digest,"
            " state, local_uidnext, local_uid, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(account_id, remote, uid) DO UPDATE SET local = excluded.local,"
            " message_id = excluded.message_id, size = excluded.size, digest = excluded.digest,"
            " state = excluded.state, local_uidnext = excluded.local_uidnext,"
            " local_uid = excluded.local_uid, at = excluded.at",
            (
                account_id,
                remote,
                uid,
                local,
                message_id[:998],
                size,
                digest,
                state,
                local_uidnext,
                local_uid,
                directory.clock(),
            ),
        )
        if state == "done" and local_uid is not None and not duplicate:
            conn.execute(
                "UPDATE external_accounts SET fetched = fetched + 1 WHERE id = ?", (account_id,)
            )


def forget(directory: Directory, account_id: int, remote: str, uid: str) -> None:
    with directory.transaction() as conn:
        conn.execute(
            "DELETE FROM external_seen WHERE account_id = ? AND remote = ? AND uid = ?",
            (account_id, remote, uid),
        )


def pending_copies(directory: Directory, account_id: int) -> list[Pending]:
    rows = directory._rows(
        "SELECT remote, uid, local, message_id, size, digest, local_uidnext FROM external_seen"
        " WHERE account_id = ? AND state = 'pending'",
        (account_id,),
    )
    return [Pending(**r) for r in rows]


def copied_count(directory: Directory, account_id: int) -> int:
    """How many messages were copied into the account's folders: distinct local copies, so
    one message seen again over another protocol or after a UIDVALIDITY change counts once.
    A match recorded without its local UID (older rows) counts unless a row with a local UID
    records the same message."""
    rows = directory._rows(
        "SELECT (SELECT count(*) FROM (SELECT DISTINCT local, local_uid FROM external_seen"
        " WHERE account_id = ? AND state = 'done' AND local_uid IS NOT NULL))"
        " + (SELECT count(*) FROM external_seen AS s WHERE account_id = ? AND state = 'done'"
        " AND local_uid IS NULL AND NOT EXISTS (SELECT 1 FROM external_seen AS o"
        " WHERE o.account_id = s.account_id AND o.local = s.local AND o.state = 'done'"
        " AND o.local_uid IS NOT NULL AND ((s.message_id != '' AND o.message_id = s.message_id"
        " AND o.size = s.size) OR (s.digest != '' AND o.digest = s.digest)))) AS n",
        (account_id, account_id),
    )
    return int(rows[0]["n"])


def claim_renew(directory: Directory, account_id: int, seconds: float) -> None:
    """Extend a running fetch's lease."""
    with directory.transaction() as conn:
        conn.execute(
            "UPDATE external_accounts SET lease_until = ? WHERE id = ?",
            (directory.clock() + seconds, account_id),
        )


def relabel(directory: Directory, account_id: int, old: str, new: str) -> None:
    """The local folders were renamed from `old` to `new`: follow them."""
    with directory.transaction() as conn:
        for table in ("external_folders", "external_seen"):
            conn.execute(
                f"UPDATE {table} SET local = ? || substr(local, ?)"
                " WHERE account_id = ? AND (local = ? OR local LIKE ? ESCAPE '\\')",
                (new, len(old) + 1, account_id, old, _like_prefix(old) + "/%"),
            )


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
