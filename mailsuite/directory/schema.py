"""The directory's tables, as numbered migrations applied in order.

`PRAGMA user_version` records how far a database has come, so an old database is brought up
to date on open and a newer one is refused rather than misread. A migration is only ever
appended, never edited, once it has shipped.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: accounts, aliases, tokens, throttling, audit
    """
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        local TEXT NOT NULL,
        domain TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        contact TEXT,
        password_hash TEXT,
        must_change INTEGER NOT NULL DEFAULT 0,
        temp_expires REAL,
        state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
        legacy_login TEXT UNIQUE COLLATE NOCASE,
        created REAL NOT NULL,
        password_changed REAL,
        last_login REAL,
        terms_accepted REAL
    );
    CREATE TABLE password_history (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        password_hash TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX password_history_account ON password_history(account_id, created);
    CREATE TABLE aliases (
        alias TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX aliases_target ON aliases(target);
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        token_hash TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        expires REAL NOT NULL,
        used REAL,
        attempts INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tokens_account ON tokens(account_id, kind);
    CREATE TABLE login_failures (
        key TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX login_failures_key ON login_failures(key, at);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        event TEXT NOT NULL,
        address TEXT,
        remote_ip TEXT,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_address ON audit(address, at);
    """,
    # 2: moving users from an old mail system: per-user import state and what was copied
    """
    CREATE TABLE migration_users (
        address TEXT PRIMARY KEY REFERENCES accounts(address) ON DELETE CASCADE,
        source TEXT NOT NULL DEFAULT '',
        since TEXT,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'running', 'done', 'failed')),
        copied INTEGER NOT NULL DEFAULT 0,
        duplicates INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        started REAL,
        finished REAL,
        updated REAL NOT NULL
    );
    CREATE TABLE migration_copied (
        address TEXT NOT NULL REFERENCES accounts(address) ON DELETE CASCADE,
        folder TEXT NOT NULL,
        digest TEXT NOT NULL,
        message_id TEXT NOT NULL DEFAULT '',
        size INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
        uid INTEGER,
        at REAL NOT NULL,
        PRIMARY KEY (address, folder, digest)
    );
    CREATE INDEX migration_copied_pending ON migration_copied(address, state);
    """,
]
