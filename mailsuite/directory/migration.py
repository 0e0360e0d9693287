"""Migration state in the directory: which user's import stands where, and what was copied.

Two tables (schema migration 2). `migration_users` holds one row per user being moved: the
source (never with its password), the date imports start from, the status of the last run
and its counts, so a bulk plan can be resumed after a crash and `migrate status` can report.
`migration_copied` remembers every message copied into a user's folder by its digest (the
Message-ID plus a hash of the content), which makes a second import add nothing.

A copy is recorded in two steps around the store write: `begin_copy` before (state
`pending`), `finish_copy` after the store says the message is durable. A crash between the
two leaves a `pending` row, and the next run asks the store whether the message arrived
(`pending_copies`, then `finish_copy` or `drop_pending`): nothing is copied twice and
nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsuite.directory.directory import Directory
from mailsuite.directory.models import DirectoryError

STATUSES = ("pending", "running", "done", "failed")
MAX_ERROR = 2000  # characters of the last error kept per user


@dataclass(frozen=True)
class MigrationUser:
    address: str
    source: str
    since: str | None
    status: str
    copied: int
    duplicates: int
    failed: int
    error: str
    started: float | None
    finished: float | None
    updated: float


@dataclass(frozen=True)
class PendingCopy:
    folder: str
    digest: str
    message_id: str
    size: int


def is_copied(directory: Directory, address: str, folder: str, digest: str) -> bool:
    """True when this message already reached `folder` of `address` (or may have: pending)."""
    rows = directory._rows(
        "SELECT 1 FROM migration_copied WHERE address = ? AND folder = ? AND digest = ?",
        (address, folder, digest),
    )
    return bool(rows)


def begin_copy(
    directory: Directory, address: str, folder: str, digest: str, message_id: str, size: int
) -> bool:
    """Note that a copy is about to be written; False when the digest is already known, so
    two workers importing into the same folder never both write it."""
    with directory.transaction() as conn:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO migration_copied"
            " (address, folder, digest, message_id, size, state, at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?)",
            (address, folder, digest, message_id[:998], size, directory.clock()),
        )
    return cursor.rowcount == 1


def finish_copy(directory: Directory, address: str, folder: str, digest: str, uid: int) -> None:
    """The store holds the message durably under `uid`."""
    with directory.transaction() as conn:
        conn.execute(
            "UPDATE migration_copied SET state = 'done', uid = ?, at = ?"
            " WHERE address = ? AND folder = ? AND digest = ?",
            (uid, directory.clock(), address, folder, digest),
        )


def drop_pending(directory: Directory, address: str, folder: str, digest: str) -> None:
    """The write never reached the store: forget it so the next run copies it again."""
    with directory.transaction() as conn:
        conn.execute(
            "DELETE FROM migration_copied WHERE address = ? AND folder = ? AND digest = ?"
            " AND state = 'pending'",
            (address, folder, digest),
        )


def pending_copies(directory: Directory, address: str) -> list[PendingCopy]:
    """Copies a crashed run began and did not confirm."""
    rows = directory._rows(
        "SELECT folder, digest, message_id, size FROM migration_copied"
        " WHERE address = ? AND state = 'pending' ORDER BY folder",
        (address,),
    )
    return [PendingCopy(**r) for r in rows]


def copied_uids(directory: Directory, address: str, folder: str) -> set[int]:
    """The UIDs under which imports wrote messages into `folder` of `address`."""
    rows = directory._rows(
        "SELECT uid FROM migration_copied WHERE address = ? AND folder = ? AND state = 'done'",
        (address, folder),
    )
    return {int(r["uid"]) for r in rows if r["uid"] is not None}


def copied_count(directory: Directory, address: str) -> int:
    rows = directory._rows(
        "SELECT count(*) AS n FROM migration_copied WHERE address = ? AND state = 'done'",
        (address,),
    )
    return int(rows[0]["n"])


def get_user(directory: Directory, address: str) -> MigrationUser | None:
    rows = directory._rows(
        "SELECT * FROM migration_users WHERE address = ?", (address.strip().lower(),)
    )
    return MigrationUser(**rows[0]) if rows else None


def list_users(directory: Directory) -> list[MigrationUser]:
    rows = directory._rows("SELECT * FROM migration_users ORDER BY address")
    return [MigrationUser(**r) for r in rows]


def plan_user(directory: Directory, address: str, source: str, since: str | None) -> MigrationUser:
    """Put `address` on the migration list (status `pending`), or refresh its source and date
    while keeping the status, so re-running a plan resumes rather than restarts."""
    account = directory.require_account(address)
    now = directory.clock()
    with directory.transaction() as conn:
        conn.execute(
            "INSERT INTO migration_users (address, source, since, updated) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(address) DO UPDATE SET source = excluded.source,"
            " since = excluded.since, updated = excluded.updated",
            (account.address, source, since, now),
        )
    user = get_user(directory, account.address)
    assert user is not None
    return user


def set_status(
    directory: Directory,
    address: str,
    status: str,
    *,
    copied: int | None = None,
    duplicates: int | None = None,
    failed: int | None = None,
    error: str | None = None,
) -> None:
    """Record where a user's import stands; `running` stamps the start, `done` and `failed`
    the finish. Counts describe the last run."""
    if status not in STATUSES:
        raise DirectoryError(f"unknown migration status {status!r}")
    now = directory.clock()
    fields: dict[str, object] = {"status": status, "updated": now}
    if status == "running":
        fields.update(started=now, finished=None)
    elif status in ("done", "failed"):
        fields["finished"] = now
    for key, value in (("copied", copied), ("duplicates", duplicates), ("failed", failed)):
        if value is not None:
            fields[key] = value
    if error is not None:
        fields["error"] = error[:MAX_ERROR]
    assignments = ", ".join(f"{key} = ?" for key in fields)
    with directory.transaction() as conn:
        cursor = conn.execute(
            f"UPDATE migration_users SET {assignments} WHERE address = ?",
            (*fields.values(), address),
        )
    if cursor.rowcount == 0:
        raise DirectoryError(f"{address!r} is not being migrated")
