"""Passwords bcrypt proved a moment ago, so a repeated login does not pay for bcrypt again.

Webmail logs in on every page and phones poll every few minutes, each time with the same
right password; at cost 12 each of those is a quarter of a second of CPU. Like Dovecot's auth
cache, a login whose password bcrypt accepted leaves behind, in memory only, an HMAC of what
was proved, under a key made at random when the process starts:

    HMAC-SHA256(key, account id, the account's stored hash, the password)

The entry is filed under the account's id and lives `accounts.credential_cache_lifetime`
(0 turns the cache off).
It cannot help another account (its id is in the digest and it is filed under its own id),
and it stops matching the moment the password changes in the directory, whoever changes it
(the web site, the CLI in another process): every login reads the account afresh and the new
stored hash gives a different digest. The password itself is never kept, and the digest is
worthless outside this process, whose key nobody else has. A wrong password is never cached,
and throttling is checked before the cache is asked, so a locked-out network stays locked out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable


class CredentialCache:
    """Account id → (digest of the proved credential, when bcrypt proved it). Asked on the
    loop; locked all the same, so a caller in a worker thread is safe too."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._key = secrets.token_bytes(32)
        self._clock = clock
        self._entries: dict[int, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def _digest(self, account_id: int, password_hash: str, password: str) -> bytes:
        # The id and the hash hold no NUL, so the password, last, cannot shift the fields.
        secret = password.encode("utf-8", "surrogatepass")
        message = b"%d\0%s\0%s" % (account_id, password_hash.encode(), secret)
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def matches(self, account_id: int, password_hash: str, password: str, lifetime: float) -> bool:
        """Whether bcrypt proved this very password against this very stored hash for this
        account less than `lifetime` seconds ago (the setting as it is now, so shortening it
        by a reload shortens what is already kept)."""
        with self._lock:
            entry = self._entries.get(account_id)
            if entry is None:
                return False
            digest, proved = entry
            if self._clock() - proved >= lifetime:
                del self._entries[account_id]
                return False
        return hmac.compare_digest(digest, self._digest(account_id, password_hash, password))

    def remember(self, account_id: int, password_hash: str, password: str, lifetime: float) -> None:
        """Keep the proof, replacing the account's earlier one (0 s: keep nothing). Once a
        lifetime, entries older than that are dropped on the way, so the cache holds little
        more than the accounts that logged in within the last two lifetimes."""
        if lifetime <= 0:
            return
        digest = self._digest(account_id, password_hash, password)
        now = self._clock()
        with self._lock:
            self._entries[account_id] = (digest, now)
            if now >= self._next_prune:
                self._next_prune = now + lifetime
                stale = [k for k, (_, proved) in self._entries.items() if now - proved >= lifetime]
                for k in stale:
                    del self._entries[k]

    def forget(self, account_id: int) -> None:
        """Drop the account's entry: it is no longer active, so nothing of it should linger."""
        with self._lock:
            self._entries.pop(account_id, None)
