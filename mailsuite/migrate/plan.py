"""Bulk migration from a CSV plan: accounts, legacy logins, then imports in parallel.

A plan row is `legacy login, new address, contact e-mail, source`. Running a plan creates
the accounts that do not exist yet with temporary passwords, records the legacy logins and
puts every user on the migration list in the directory; then it imports with at most `jobs`
users at once. Everything it does is recorded before it moves on, so running the same plan
again after a crash carries on: existing accounts are kept, users whose import finished are
skipped, and an interrupted import resumes without copying anything twice.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from mailsuite.directory import Directory, DirectoryError, normalize_address
from mailsuite.directory import migration as state
from mailsuite.migrate.importer import Importer, Summary
from mailsuite.migrate.message import Filter
from mailsuite.migrate.sources import open_source, redact
from mailsuite.store import Store

MAX_ROWS = 100_000
MAX_LEGACY_LOGIN = 64


class PlanError(Exception):
    """The plan file is unusable; the message names the line."""


@dataclass(frozen=True)
class PlanRow:
    line: int
    legacy_login: str
    address: str
    contact: str | None
    source: str


def read_plan(path: Path) -> list[PlanRow]:
    """Parse and check the whole file first, so a typo on line 900 stops nothing half-way.

    A first row whose second column is not an address is taken as a header.
    """
    rows: list[PlanRow] = []
    problems: list[str] = []
    seen_addresses: set[str] = set()
    seen_logins: set[str] = set()
    with path.open(newline="", encoding="utf-8-sig") as f:
        for number, cols in enumerate(csv.reader(f), start=1):
            if number > MAX_ROWS:
                raise PlanError(f"{path}: more than {MAX_ROWS} rows")
            if not cols or all(not c.strip() for c in cols) or cols[0].lstrip().startswith("#"):
                continue
            cols = [c.strip() for c in cols]
            if number == 1 and len(cols) == 4 and "@" not in cols[1]:
                continue  # a header row
            if len(cols) != 4:
                problems.append(f"line {number}: expected 4 columns, found {len(cols)}")
                continue
            legacy, address, contact, source = cols
            try:
                address = normalize_address(address)
                contact = normalize_address(contact) if contact else None
            except DirectoryError as exc:
                problems.append(f"line {number}: {exc}")
                continue
            if not legacy or "@" in legacy or len(legacy) > MAX_LEGACY_LOGIN:
                problems.append(
                    f"line {number}: legacy login {legacy!r} is empty, too long or an address"
                )
                continue
            if not source:
                problems.append(f"line {number}: no source")
                continue
            if address in seen_addresses or legacy.lower() in seen_logins:
                problems.append(f"line {number}: {address} or {legacy} appears twice")
                continue
            seen_addresses.add(address)
            seen_logins.add(legacy.lower())
            rows.append(PlanRow(number, legacy, address, contact, source))
    if problems:
        raise PlanError("\n".join(f"{path}: {p}" for p in problems))
    return rows


class PasswordFile:
    """Temporary passwords the admin hands out (no contact address, or the e-mail failed):
    created with mode 0600, each line on disk before the account exists."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        self.written = 0

    def add(self, address: str, legacy_login: str, contact: str | None, password: str) -> None:
        self._writer.writerow([address, legacy_login, contact or "", password])
        self._file.flush()
        os.fsync(self._file.fileno())
        self.written += 1

    def close(self) -> None:
        self._file.close()


@dataclass
class Outcome:
    address: str
    summary: Summary | None
    error: str = ""


def ensure_accounts(
    directory: Directory,
    rows: list[PlanRow],
    since: date,
    *,
    new_password: Callable[[], tuple[str, str, float]],
    deliver: Callable[[PlanRow, str, float], None],
) -> tuple[int, int]:
    """Create missing accounts (temporary password), record legacy logins, list every user
    for migration. Returns (created, existing).

    `new_password()` gives (password, hash, expiry); `deliver(row, password, expiry)` hands
    the password to the user (e-mail or the password file) and runs before the account is
    created: a crash in between costs the user one stale message, never an account whose
    password nobody knows.
    """
    created = existing = 0
    for row in rows:
        account = directory.get_account(row.address)
        if account is None:
            password, password_hash, expires = new_password()
            deliver(row, password, expires)
            directory.add_account(
                row.address,
                password_hash=password_hash,
                contact=row.contact,
                temporary=True,
                temp_expires=expires,
                legacy_login=row.legacy_login,
            )
            created += 1
        else:
            existing += 1
            if account.legacy_login != row.legacy_login:
                directory.update_account(row.address, legacy_login=row.legacy_login)
            if row.contact and not account.contact:
                directory.update_account(row.address, contact=row.contact)
        state.plan_user(directory, row.address, redact(row.source), since.isoformat())
    return created, existing


def import_user(
    store: Store,
    directory: Directory,
    address: str,
    source: str,
    since: date,
    *,
    folder: str | None = None,
    wanted: Filter | None = None,
    password: str | None = None,
    timeout: float = 60,
    on_total: Callable[[int], None] = lambda n: None,
    advance: Callable[[int], None] = lambda n: None,
) -> Summary:
    """One user's whole import with its status kept in the directory (blocking)."""
    state.plan_user(directory, address, redact(source), since.isoformat())
    address = directory.require_account(address).address
    state.set_status(directory, address, "running")
    try:
        src = open_source(source, password=password, timeout=timeout)
        try:
            importer = Importer(store, directory, address, src, since, folder=folder, wanted=wanted)
            on_total(importer.prepare())
            summary = importer.run(advance)
        finally:
            src.close()
    except Exception as exc:
        # One user's broken source must not stop a bulk run: record why, let the caller say.
        state.set_status(directory, address, "failed", error=str(exc) or type(exc).__name__)
        raise
    reasons = "; ".join(f"{what}: {why}" for what, why in summary.reasons[:5])
    state.set_status(
        directory,
        address,
        "failed" if summary.failed else "done",
        copied=summary.copied,
        duplicates=summary.duplicates,
        failed=summary.failed,
        error=reasons,
    )
    return summary


def run_plan(
    store: Store,
    directory: Directory,
    rows: list[PlanRow],
    since: date,
    *,
    jobs: int,
    rerun: bool = False,
    timeout: float = 60,
    wanted: Filter | None = None,
) -> Iterator[Outcome]:
    """Import every planned user whose import has not finished, `jobs` at a time; yields
    each outcome as it completes."""
    todo = []
    for row in rows:
        user = state.get_user(directory, row.address)
        if rerun or user is None or user.status != "done":
            todo.append(row)

    def work(row: PlanRow) -> Outcome:
        try:
            summary = import_user(
                store, directory, row.address, row.source, since, wanted=wanted, timeout=timeout
            )
        except Exception as exc:
            return Outcome(row.address, None, str(exc) or type(exc).__name__)
        return Outcome(row.address, summary)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="migrate") as pool:
        futures = [pool.submit(work, row) for row in todo]
        for future in as_completed(futures):
            yield future.result()
