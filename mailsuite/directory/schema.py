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
    # 3: external accounts polled into users' mailboxes, and what was already copied from each
    """
    CREATE TABLE external_accounts (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(address) ON DELETE CASCADE,
        label TEXT NOT NULL COLLATE NOCASE,
        display_name TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL,
        login TEXT NOT NULL,
        secret BLOB NOT NULL,
        protocol TEXT NOT NULL CHECK (protocol IN ('pop3', 'imap')),
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        security TEXT NOT NULL CHECK (security IN ('tls', 'starttls', 'plain')),
        accept_self_signed INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        last_attempt REAL,
        last_success REAL,
        last_error TEXT NOT NULL DEFAULT '',
        last_error_at REAL,
        failures INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL DEFAULT 0,
        lease_until REAL,
        lease_owner TEXT,
        fetched INTEGER NOT NULL DEFAULT 0,
        UNIQUE (owner, label)
    );
    CREATE TABLE external_folders (
        account_id INTEGER NOT NULL REFERENCES external_accounts(id) ON DELETE CASCADE,
        remote TEXT NOT NULL,
        local TEXT NOT NULL,
        uidvalidity INTEGER,
        PRIMARY KEY (account_id, remote)
    );
    CREATE TABLE external_seen (
        account_id INTEGER NOT NULL REFERENCES external_accounts(id) ON DELETE CASCADE,
        remote TEXT NOT NULL,
        uid TEXT NOT NULL,
        local TEXT NOT NULL,
        message_id TEXT NOT NULL DEFAULT '',
        size INTEGER NOT NULL,
        digest TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'skipped')),
        local_uidnext INTEGER,
        local_uid INTEGER,
        at REAL NOT NULL,
        PRIMARY KEY (account_id, remote, uid)
    );
    CREATE INDEX external_seen_message ON external_seen(account_id, local, message_id, size);
    CREATE INDEX external_seen_digest ON external_seen(account_id, local, digest);
    CREATE INDEX external_seen_pending ON external_seen(account_id, state);
    """,
    # 4: each account's language for e-mails and mail-client notices (NULL: the site's)
    """
    ALTER TABLE accounts ADD COLUMN language TEXT;
    """,
    # 5: permanent login names beside the address (seed 002: a six-digit number), unique
    # among themselves and the legacy logins; and each account's quota in bytes (NULL: none)
    """
    CREATE TABLE logins (
        login TEXT PRIMARY KEY COLLATE NOCASE,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        created REAL NOT NULL
    );
    CREATE INDEX logins_account ON logins(account_id);
    ALTER TABLE accounts ADD COLUMN quota INTEGER;
    """,
]
