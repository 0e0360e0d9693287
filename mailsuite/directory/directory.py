"""The directory: accounts, aliases, tokens, login throttling and the audit log in SQLite.

This is the only module that speaks SQL about accounts; the web site, the CLI and the auth
path all call these methods, so a PostgreSQL backend would be a second implementation of this
class rather than a rewrite. It never touches Maildirs and never sees a plain password:
callers hash first (`mailsuite.passwords`).

Calls are synchronous and may wait: another process (the CLI, a second worker) can hold the
write lock, so servers call them from worker threads, never from the event loop. Each thread
has its own connection, so reads (WAL) never queue behind a write; writes in this process
take turns on one lock, and a write that cannot start within `busy_timeout` (about a second)
raises `DirectoryUnavailable` instead of waiting on.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from mailsuite.directory.models import (
    Account,
    Alias,
    AlreadyExists,
    DirectoryError,
    DirectoryUnavailable,
    InvalidAddress,
    NoSuchAccount,
    Token,
    check_login_name,
    normalize_address,
)
from mailsuite.directory.schema import MIGRATIONS
from mailsuite.i18n import LANGUAGES

Clock = Callable[[], float]

BUSY_TIMEOUT = 1.0  # seconds a write waits for another process's lock before giving up
MIGRATION_TIMEOUT = 30.0  # opening may wait longer: a second process may be migrating
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _unavailable(exc: sqlite3.OperationalError) -> DirectoryError | sqlite3.OperationalError:
    """SQLite's "database is locked" as the directory's own temporary failure; other errors
    are left as they are."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _BUSY_CODES:
        return DirectoryUnavailable("the directory database is busy; try again shortly")
    return exc


def token_digest(secret: str) -> str:
    """Tokens and codes are stored only as this digest, so a copied database opens nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _quota(value: object) -> int | None:
    """A quota as stored: whole bytes (0: no limit), or None for the configured default."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DirectoryError(f"a quota is a number of bytes, not {value!r}")
    return value


def _login_taken(
    conn: sqlite3.Connection, login: str, *, besides: int | None = None, legacy: bool = False
) -> bool:
    """Whether `login` is anyone's login name or legacy login (the columns compare without
    case); `besides` and `legacy`: the legacy login of that account itself does not count."""
    if conn.execute("SELECT 1 FROM logins WHERE login = ?", (login,)).fetchone():
        return True
    row = conn.execute("SELECT id FROM accounts WHERE legacy_login = ?", (login,)).fetchone()
    return row is not None and not (legacy and row[0] == besides)


def _insert_login(conn: sqlite3.Connection, account_id: int, login: str, now: float) -> None:
    """Caller holds a write transaction."""
    if _login_taken(conn, login):
        raise AlreadyExists(f"login {login!r} is already in use")
    conn.execute(
        "INSERT INTO logins (login, account_id, created) VALUES (?, ?, ?)",
        (login, account_id, now),
    )


def _generate_login(conn: sqlite3.Connection, account_id: int, digits: int, now: float) -> str:
    """A fresh login of `digits` random digits for the account (caller holds a write
    transaction). Fewer than 4 digits would run out and be guessed: refused."""
    if not 4 <= digits <= 12:
        raise DirectoryError(f"a generated login has 4 to 12 digits, not {digits}")
    for _ in range(1000):
        login = str(secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1))
        if not _login_taken(conn, login):
            _insert_login(conn, account_id, login, now)
            return login
    raise DirectoryError(f"no free {digits}-digit login is left; use more digits")


class Directory:
    """One SQLite directory database; `domains` are the mail domains accounts may live in."""

    def __init__(
        self,
        path: Path,
        domains: list[str],
        *,
        clock: Clock = time.time,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.domains = [d.lower() for d in domains]
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        self._closed = False
        conn = self._conn()
        conn.execute(f"PRAGMA busy_timeout = {int(MIGRATION_TIMEOUT * 1000)}")
        conn.execute("PRAGMA journal_mode=WAL")  # kept in the file: every connection uses it
        self._migrate()
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")

    def close(self) -> None:
        """Close every thread's connection; the directory is not used afterwards."""
        with self._opened_lock:
            self._closed = True
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection (made on first use)."""
        found: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if found is None:
            conn = sqlite3.connect(
                self.path,
                check_same_thread=False,  # so that close() may close it from another thread
                isolation_level=None,
                timeout=self.busy_timeout,
            )
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            with self._opened_lock:
                if self._closed:
                    conn.close()
                    raise DirectoryError(f"{self.path} is closed")
                self._opened.append(conn)
            found = self._local.db = sqlite_utils.Database(conn)
        return found

    def _conn(self) -> sqlite3.Connection:
        return self.db.conn

    def _migrate(self) -> None:
        with self._write_lock:
            conn = self._conn()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise DirectoryError(
                    f"{self.path} was written by a newer mailsuite (schema {version}); upgrade"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                conn.executescript(
                    f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
                )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE so two processes never deadlock upgrading.

        Waiting for this process's other writers and for another process's lock together
        take at most `busy_timeout`; then `DirectoryUnavailable` is raised and nothing is
        written.
        """
        deadline = time.monotonic() + self.busy_timeout
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise DirectoryUnavailable("the directory database is busy; try again shortly")
        try:
            conn = self._conn()
            left = max(0.0, deadline - time.monotonic())
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(left * 1000)}")
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _unavailable(exc) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            self._write_lock.release()

    def _rows(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        try:
            return list(self.db.query(sql, params))
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from None

    @staticmethod
    def _account(row: dict[str, Any] | None) -> Account | None:
        if row is None:
            return None
        row = dict(row)
        row["must_change"] = bool(row["must_change"])
        return Account(**row)

    # -- accounts ---------------------------------------------------------------------------

    def check_address(self, address: str) -> str:
        """Normalise an address and require one of our domains."""
        address = normalize_address(address)
        domain = address.rpartition("@")[2]
        if domain not in self.domains:
            raise InvalidAddress(
                f"{domain!r} is not one of this server's domains ({', '.join(self.domains)})"
            )
        return address

    def get_account(self, address: str) -> Account | None:
        rows = self._rows("SELECT * FROM accounts WHERE address = ?", (address.strip().lower(),))
        return self._account(rows[0] if rows else None)

    def require_account(self, address: str) -> Account:
        account = self.get_account(address)
        if account is None:
            raise NoSuchAccount(f"no account {address.strip().lower()!r}")
        return account

    def account_by_id(self, account_id: int) -> Account | None:
        rows = self._rows("SELECT * FROM accounts WHERE id = ?", (account_id,))
        return self._account(rows[0] if rows else None)

    def list_accounts(self, domain: str | None = None) -> list[Account]:
        if domain:
            rows = self._rows(
                "SELECT * FROM accounts WHERE domain = ? ORDER BY address", (domain.lower(),)
            )
        else:
            rows = self._rows("SELECT * FROM accounts ORDER BY domain, local")
        return [a for a in map(self._account, rows) if a is not None]

    def add_account(
        self,
        address: str,
        *,
        password_hash: str | None,
        name: str = "",
        contact: str | None = None,
        temporary: bool = False,
        temp_expires: float | None = None,
        legacy_login: str | None = None,
        login_names: Sequence[str] = (),
        login_digits: int = 0,
        quota: int | None = None,
    ) -> Account:
        """Create an account; an address taken by an account or alias is refused, and so is
        a legacy login or login name taken by anyone. `login_digits` (seed 002: 6) gives it
        a generated permanent login of that many digits as well; all in one transaction."""
        address = self.check_address(address)
        if contact is not None:
            contact = normalize_address(contact)
        names = [check_login_name(n) for n in login_names]
        local, _, domain = address.rpartition("@")
        now = self.clock()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM accounts WHERE address = ?", (address,)).fetchone():
                raise AlreadyExists(f"account {address!r} already exists")
            if conn.execute("SELECT 1 FROM aliases WHERE alias = ?", (address,)).fetchone():
                raise AlreadyExists(f"{address!r} is already an alias")
            if legacy_login and _login_taken(conn, legacy_login):
                raise AlreadyExists(f"legacy login {legacy_login!r} is already in use")
            cursor = conn.execute(
                "INSERT INTO accounts (address, local, domain, name, contact, password_hash,"
                " must_change, temp_expires, legacy_login, created, password_changed, quota)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    address,
                    local,
                    domain,
                    name,
                    contact,
                    password_hash,
                    int(temporary),
                    temp_expires if temporary else None,
                    legacy_login,
                    now,
                    None if temporary else now,
                    _quota(quota),
                ),
            )
            account_id = int(cursor.lastrowid or 0)
            for name_ in names:
                _insert_login(conn, account_id, name_, now)
            if login_digits:
                names.append(_generate_login(conn, account_id, login_digits, now))
        self.audit("account.add", address, "temporary password" if temporary else "")
        for name_ in names:
            self.audit("login.add", address, name_)
        return self.require_account(address)

    def set_password(
        self,
        address: str,
        password_hash: str,
        *,
        temporary: bool = False,
        temp_expires: float | None = None,
    ) -> Account:
        """Replace the password; a permanent one clears the must-change flag and is remembered
        in the history so the reuse rule can refuse it later. Any pending forgotten-password
        reset ends: its temporary password is no longer needed."""
        account = self.require_account(address)
        now = self.clock()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE tokens SET used = ? WHERE account_id = ? AND kind = 'reset'"
                " AND used IS NULL",
                (now, account.id),
            )
            conn.execute(
                "UPDATE accounts SET password_hash = ?, must_change = ?, temp_expires = ?,"
                " password_changed = ? WHERE id = ?",
                (
                    password_hash,
                    int(temporary),
                    temp_expires if temporary else None,
                    None if temporary else now,
                    account.id,
                ),
            )
            if account.password_hash and not account.must_change:
                conn.execute(
                    "INSERT INTO password_history (account_id, password_hash, created)"
                    " VALUES (?, ?, ?)",
                    (account.id, account.password_hash, now),
                )
        self.audit("password.temporary" if temporary else "password.change", account.address)
        return self.require_account(account.address)

    def password_history(self, address: str, count: int) -> list[str]:
        """The last `count` permanent password hashes before the current one, newest first."""
        account = self.require_account(address)
        rows = self._rows(
            "SELECT password_hash FROM password_history WHERE account_id = ?"
            " ORDER BY created DESC, rowid DESC LIMIT ?",
            (account.id, count),
        )
        return [r["password_hash"] for r in rows]

    def set_state(self, address: str, state: str) -> Account:
        if state not in ("active", "disabled"):
            raise DirectoryError(f"unknown state {state!r}")
        account = self.require_account(address)
        with self.transaction() as conn:
            conn.execute("UPDATE accounts SET state = ? WHERE id = ?", (state, account.id))
        self.audit(f"account.{'enable' if state == 'active' else 'disable'}", account.address)
        return self.require_account(account.address)

    _PROFILE = frozenset(
        {"name", "contact", "legacy_login", "terms_accepted", "last_login", "language", "quota"}
    )

    def _profile_fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """`fields` checked and normalised for the accounts table; DirectoryError otherwise."""
        fields = dict(fields)
        unknown = set(fields) - self._PROFILE
        if unknown:
            raise DirectoryError(f"cannot change {', '.join(sorted(unknown))}")
        if fields.get("contact"):
            fields["contact"] = normalize_address(fields["contact"])
        if fields.get("language") not in (None, *LANGUAGES):
            raise DirectoryError(
                f"unknown language {fields['language']!r} (expected {', '.join(LANGUAGES)})"
            )
        if "quota" in fields:
            fields["quota"] = _quota(fields["quota"])
        return fields

    def _set_fields(
        self, conn: sqlite3.Connection, account: Account, fields: dict[str, Any]
    ) -> None:
        """Caller holds a write transaction and checked `fields` (`_profile_fields`)."""
        legacy = fields.get("legacy_login")
        if legacy and _login_taken(conn, legacy, besides=account.id, legacy=True):
            raise AlreadyExists(f"legacy login {legacy!r} is in use")
        if fields:
            assignments = ", ".join(f"{key} = ?" for key in fields)
            conn.execute(
                f"UPDATE accounts SET {assignments} WHERE id = ?", (*fields.values(), account.id)
            )

    def update_account(self, address: str, **fields: Any) -> Account:
        """Change profile fields: name, contact, legacy_login, terms_accepted, last_login,
        language (None: the site's), quota (bytes; 0: no limit; None: `accounts.quota`)."""
        fields = self._profile_fields(fields)
        account = self.require_account(address)
        if not fields:
            return account
        try:
            with self.transaction() as conn:
                self._set_fields(conn, account, fields)
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"legacy login {fields.get('legacy_login')!r} is in use") from None
        return self.require_account(account.address)

    def edit_account(
        self,
        address: str,
        fields: Mapping[str, Any],
        *,
        add_logins: Sequence[str] = (),
        remove_logins: Sequence[str] = (),
        generate_digits: int = 0,
    ) -> tuple[Account, list[str]]:
        """An admin's edit (`user edit`): profile fields as in `update_account`, login names
        removed, added and (with `generate_digits`) generated, all in one transaction, so
        a refused part leaves the account as it was. Returns the account and the logins
        generated."""
        fields = self._profile_fields(fields)
        adding = [check_login_name(n) for n in add_logins]
        account = self.require_account(address)
        now = self.clock()
        generated: list[str] = []
        try:
            with self.transaction() as conn:
                self._set_fields(conn, account, fields)
                for login in remove_logins:
                    cursor = conn.execute(
                        "DELETE FROM logins WHERE account_id = ? AND login = ?",
                        (account.id, login.strip()),
                    )
                    if cursor.rowcount == 0:
                        raise NoSuchAccount(
                            f"{account.address} has no login name {login.strip()!r}"
                        )
                for login in adding:
                    _insert_login(conn, account.id, login, now)
                if generate_digits:
                    generated.append(_generate_login(conn, account.id, generate_digits, now))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"legacy login {fields.get('legacy_login')!r} is in use") from None
        changed = [*sorted(fields), *(f"-login {n.strip()}" for n in remove_logins)]
        changed += [f"+login {n}" for n in (*adding, *generated)]
        self.audit("account.edit", account.address, ", ".join(changed))
        return self.require_account(account.address), generated

    def delete_account(self, address: str) -> Account:
        """Remove the account and the aliases that point at it; its mail is the store's."""
        account = self.require_account(address)
        with self.transaction() as conn:
            conn.execute("DELETE FROM aliases WHERE target = ?", (account.address,))
            conn.execute("DELETE FROM accounts WHERE id = ?", (account.id,))
        self.audit("account.delete", account.address)
        return account

    # -- resolution -------------------------------------------------------------------------

    def resolve_login(self, login: str) -> Account | None:
        """The account a typed login means: full address, alias, permanent login name, or
        legacy login (whether a legacy login may still be used is the caller's business:
        `legacy_login_used`)."""
        login = login.strip()
        if not login or len(login) > 254:
            return None
        lowered = login.lower()
        if "@" in lowered:
            account = self.get_account(lowered)
            if account is not None:
                return account
            rows = self._rows("SELECT target FROM aliases WHERE alias = ?", (lowered,))
            return self.get_account(rows[0]["target"]) if rows else None
        rows = self._rows(
            "SELECT accounts.* FROM logins JOIN accounts ON accounts.id = logins.account_id"
            " WHERE logins.login = ?",
            (login,),
        )
        if not rows:
            rows = self._rows("SELECT * FROM accounts WHERE legacy_login = ?", (login,))
        return self._account(rows[0] if rows else None)

    # -- permanent login names ----------------------------------------------------------------

    def login_names(self, address: str) -> list[str]:
        """The account's permanent login names, oldest first."""
        account = self.require_account(address)
        rows = self._rows(
            "SELECT login FROM logins WHERE account_id = ? ORDER BY created, rowid", (account.id,)
        )
        return [r["login"] for r in rows]

    def add_login_name(self, address: str, login: str) -> str:
        """Give the account the login name `login`, usable wherever the address is (web, IMAP,
        POP3, SMTP); AlreadyExists when anyone has it as a login name or legacy login."""
        account = self.require_account(address)
        login = check_login_name(login)
        with self.transaction() as conn:
            _insert_login(conn, account.id, login, self.clock())
        self.audit("login.add", account.address, login)
        return login

    def generate_login_name(self, address: str, digits: int) -> str:
        """Give the account a new login of `digits` random digits (no leading zero), unused by
        anyone, and return it."""
        account = self.require_account(address)
        with self.transaction() as conn:
            login = _generate_login(conn, account.id, digits, self.clock())
        self.audit("login.add", account.address, login)
        return login

    def remove_login_name(self, address: str, login: str) -> None:
        """Take a login name from the account; NoSuchAccount when it has no such name."""
        account = self.require_account(address)
        with self.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM logins WHERE account_id = ? AND login = ?", (account.id, login.strip())
            )
            if cursor.rowcount == 0:
                raise NoSuchAccount(f"{account.address} has no login name {login.strip()!r}")
        self.audit("login.remove", account.address, login.strip())

    def resolve_recipient(self, address: str) -> list[Account]:
        """Accounts that receive mail sent to `address` (empty when nobody does)."""
        address = address.strip().lower()
        account = self.get_account(address)
        if account is not None:
            return [account]
        rows = self._rows("SELECT target FROM aliases WHERE alias = ?", (address,))
        targets = [self.get_account(r["target"]) for r in rows]
        return [t for t in targets if t is not None]

    def addresses_of(self, account: Account) -> list[str]:
        """The addresses this account may send as: its own and its aliases."""
        rows = self._rows(
            "SELECT alias FROM aliases WHERE target = ? ORDER BY alias", (account.address,)
        )
        return [account.address, *(r["alias"] for r in rows)]

    # -- aliases ----------------------------------------------------------------------------

    def add_alias(self, alias: str, target: str) -> Alias:
        alias = self.check_address(alias)
        target_account = self.require_account(target)
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM accounts WHERE address = ?", (alias,)).fetchone():
                raise AlreadyExists(f"{alias!r} is an account, not free for an alias")
            if conn.execute("SELECT 1 FROM aliases WHERE alias = ?", (alias,)).fetchone():
                raise AlreadyExists(f"alias {alias!r} already exists")
            conn.execute(
                "INSERT INTO aliases (alias, target, created) VALUES (?, ?, ?)",
                (alias, target_account.address, self.clock()),
            )
        self.audit("alias.add", target_account.address, alias)
        return Alias(alias, target_account.address, self.clock())

    def delete_alias(self, alias: str) -> None:
        alias = alias.strip().lower()
        with self.transaction() as conn:
            cursor = conn.execute("DELETE FROM aliases WHERE alias = ?", (alias,))
            if cursor.rowcount == 0:
                raise NoSuchAccount(f"no alias {alias!r}")
        self.audit("alias.delete", None, alias)

    def list_aliases(self) -> list[Alias]:
        return [Alias(**r) for r in self._rows("SELECT * FROM aliases ORDER BY alias")]

    # -- tokens (activation links, reset links, one-time codes) ------------------------------

    def create_token(self, kind: str, address: str, secret: str, lifetime: float) -> Token:
        """Store a token by digest only; earlier unused tokens of the same kind stop working,
        so only the newest link or code in the user's inbox is valid."""
        account = self.require_account(address)
        now = self.clock()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE tokens SET used = ? WHERE account_id = ? AND kind = ? AND used IS NULL",
                (now, account.id, kind),
            )
            cursor = conn.execute(
                "INSERT INTO tokens (kind, account_id, token_hash, created, expires)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind, account.id, token_digest(secret), now, now + lifetime),
            )
            token_id = cursor.lastrowid
        return self._token(token_id)

    def _token(self, token_id: int | None) -> Token:
        rows = self._rows(
            "SELECT id, kind, account_id, created, expires, used, attempts FROM tokens"
            " WHERE id = ?",
            (token_id,),
        )
        return Token(**rows[0])

    def find_token(self, kind: str, secret: str) -> Token | None:
        """The token with this secret, used or not, expired or not: the caller says which."""
        rows = self._rows(
            "SELECT id, kind, account_id, created, expires, used, attempts FROM tokens"
            " WHERE kind = ? AND token_hash = ?",
            (kind, token_digest(secret)),
        )
        return Token(**rows[0]) if rows else None

    def latest_token(self, kind: str, address: str) -> Token | None:
        account = self.require_account(address)
        rows = self._rows(
            "SELECT id, kind, account_id, created, expires, used, attempts FROM tokens"
            " WHERE kind = ? AND account_id = ? ORDER BY id DESC LIMIT 1",
            (kind, account.id),
        )
        return Token(**rows[0]) if rows else None

    def token_matches(self, token: Token, secret: str) -> bool:
        """Compare a secret with a stored token in constant time and count the attempt."""
        rows = self._rows("SELECT token_hash FROM tokens WHERE id = ?", (token.id,))
        with self.transaction() as conn:
            conn.execute("UPDATE tokens SET attempts = attempts + 1 WHERE id = ?", (token.id,))
        return bool(rows) and hmac.compare_digest(rows[0]["token_hash"], token_digest(secret))

    def use_token(self, token: Token) -> bool:
        """Mark a token used; False when another request used it first (single use)."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE tokens SET used = ? WHERE id = ? AND used IS NULL", (self.clock(), token.id)
            )
        return cursor.rowcount == 1

    # -- login throttling -------------------------------------------------------------------
    #
    # One table of timestamped rows per key ("a failure of this key at this time"); what a key
    # means (an account from a network, a network, the whole server) is the caller's business.

    def reserve_attempt(
        self, limits: Sequence[tuple[str, int]], *, since: float, lockout: float
    ) -> list[int] | None:
        """Claim an attempt against every `(key, limit)`, or refuse it, in one transaction.

        Refused (None) when a key already has `limit` rows since `since` and the newest is
        under `lockout` old. Otherwise one row per key is written now, counting as a failure
        until `release_attempt` takes it back, so attempts running at the same time see each
        other before any of them has checked a password. Returns the rows to release.
        """
        now = self.clock()
        with self.transaction() as conn:
            for key, limit in limits:
                n, last = conn.execute(
                    "SELECT count(*), max(at) FROM login_failures WHERE key = ? AND at >= ?",
                    (key, since),
                ).fetchone()
                if n >= limit and last is not None and now - last < lockout:
                    return None
            return [
                int(
                    conn.execute(
                        "INSERT INTO login_failures (key, at) VALUES (?, ?)", (key, now)
                    ).lastrowid
                    or 0
                )
                for key, _ in limits
            ]

    def release_attempt(self, rows: Sequence[int], *, forgive: Sequence[str] = ()) -> None:
        """The attempt succeeded: delete its rows and every failure of the `forgive` keys."""
        with self.transaction() as conn:
            conn.executemany("DELETE FROM login_failures WHERE rowid = ?", [(r,) for r in rows])
            conn.executemany("DELETE FROM login_failures WHERE key = ?", [(k,) for k in forgive])

    def note_failure(
        self, keys: Sequence[str], counts: Sequence[tuple[str, float]] = ()
    ) -> list[int]:
        """Record a failure of each key and, in the same transaction, how many rows each
        `(key, since)` of `counts` has since then (this failure included)."""
        now = self.clock()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO login_failures (key, at) VALUES (?, ?)", [(k, now) for k in keys]
            )
            return [
                conn.execute(
                    "SELECT count(*) FROM login_failures WHERE key = ? AND at >= ?", (key, since)
                ).fetchone()[0]
                for key, since in counts
            ]

    def record_failure(self, keys: list[str]) -> None:
        self.note_failure(keys)

    def failures_since(self, key: str, since: float) -> tuple[int, float | None]:
        """How many failures `key` has had since `since`, and when the newest was."""
        rows = self._rows(
            "SELECT count(*) AS n, max(at) AS last FROM login_failures WHERE key = ? AND at >= ?",
            (key, since),
        )
        return rows[0]["n"], rows[0]["last"]

    def clear_failures(self, keys: list[str], *, older_than: float | None = None) -> None:
        """Forget every failure of `keys` and, with `older_than`, every row older than that."""
        with self.transaction() as conn:
            for key in keys:
                conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))
            if older_than is not None:
                conn.execute("DELETE FROM login_failures WHERE at < ?", (older_than,))

    # -- audit ------------------------------------------------------------------------------

    def audit(
        self, event: str, address: str | None = None, detail: str = "", remote_ip: str | None = None
    ) -> None:
        """Record who did what; callers never pass secrets in `detail`."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO audit (at, event, address, remote_ip, detail) VALUES (?, ?, ?, ?, ?)",
                (self.clock(), event, address, remote_ip, detail),
            )

    def audit_log(self, address: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if address:
            return self._rows(
                "SELECT * FROM audit WHERE address = ? ORDER BY id DESC LIMIT ?",
                (address.lower(), limit),
            )
        return self._rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
